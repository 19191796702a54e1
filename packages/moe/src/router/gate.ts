/**
 * TopKGate: DeepSpeed's gate module. Router weight `wg = Linear(d, E, bias = false)` applied
 * in float32 (or float64), noise per `noisyGatePolicy` in training, then `route()`.
 *
 * - 'Jitter' multiplies the router input by U(1 − 0.01, 1 + 0.01) (DeepSpeed's
 *   multiplicative_jitter).
 * - 'RSample' adds Gumbel(0, 1) noise to the logits that pick the first expert; gates and
 *   combine weights still come from the clean softmax.
 * - `top2SecondExpertSampling` adds Gumbel noise to the logits that pick choices 2..k
 *   (DeepSpeed's `top2_2nd_expert_sampling`; DeepSpeed also samples in eval, we keep eval
 *   deterministic).
 * - `useRts` draws the uniform priorities that decide which assignments an over-full
 *   expert keeps.
 * All randomness comes from the gate's generator, so a seed fixes the routing.
 */
import * as T from '@vlmoe/tensor';
import { resolveRouterOptions, type ResolvedRouterOptions } from './options.js';
import { route, type GateOutput, type RouteOptions, type RoutingPolicy } from './route.js';

export interface TopKGateOptions extends Omit<RouteOptions, 'training' | 'selectLogits' | 'secondSelectLogits' | 'rtsPriorities'> {
  hiddenSize: number;
  policy?: RoutingPolicy;
  /** Gumbel-sample choices 2..k in training (DeepSpeed `top2_2nd_expert_sampling`). Default false. */
  top2SecondExpertSampling?: boolean;
  /** Source of noise and RTS draws (default: the global generator). */
  generator?: T.Generator;
  /** Router precision (default float32, as DeepSpeed's fp32 gate). */
  dtype?: 'float32' | 'float64';
}

/** Gumbel(0, 1) draws: −log(−log(U)), U in (0, 1). */
function gumbel(shape: number[], dtype: T.DType, generator?: T.Generator): T.Tensor {
  return T.noGrad(() => T.neg(T.log(T.neg(T.log(T.uniform(shape, 1e-12, 1, { dtype, generator }))))));
}

/** The default routing policy (DeepSpeed's token choice). */
export const DEFAULT_ROUTING_POLICY: RoutingPolicy = 'token-choice';

export class TopKGate extends T.nn.Module {
  wg: T.nn.Linear;
  readonly options: ResolvedRouterOptions;
  readonly policy: RoutingPolicy;
  private readonly _o: TopKGateOptions;

  constructor(options: TopKGateOptions) {
    super();
    this.options = resolveRouterOptions(options);
    if (!(Number.isInteger(options.hiddenSize) && options.hiddenSize >= 1)) throw new RangeError(`TopKGate: hiddenSize must be an integer ≥ 1, got ${options.hiddenSize}`);
    this.policy = options.policy ?? DEFAULT_ROUTING_POLICY;
    if (this.policy !== 'token-choice' && this.policy !== 'expert-choice') throw new RangeError(`TopKGate: policy must be 'token-choice' or 'expert-choice', got '${String(this.policy)}'`);
    this._o = { ...options };
    this.wg = new T.nn.Linear(options.hiddenSize, this.options.numExperts, { bias: false, dtype: options.dtype ?? 'float32', generator: options.generator });
  }

  /** Dropless capacity over an expert-parallel group: maps this rank's largest per-expert count to the group's. */
  setReduceCapacity(fn: ((localMax: number) => number) | undefined): void {
    this._o.reduceCapacity = fn;
  }

  /** Router logits [S, E] for tokens x [S, d] (with Jitter noise in training). */
  logits(x: T.Tensor): T.Tensor {
    const dtype = this.wg.weight.dtype;
    let inp = x.dtype === dtype ? x : T.cast(x, dtype);
    if (this.training && this.options.noisyGatePolicy === 'Jitter') inp = T.mul(inp, T.uniform(inp.shape.slice(), 1 - 1e-2, 1 + 1e-2, { dtype, generator: this._o.generator }));
    return this.wg.forward(inp);
  }

  forward(x: T.Tensor): GateOutput {
    if (x.ndim !== 2 || x.shape[1] !== this._o.hiddenSize) throw new Error(`TopKGate: input must be [tokens, hiddenSize = ${this._o.hiddenSize}], got [${x.shape.join(', ')}]`);
    const logits = this.logits(x);
    const S = logits.shape[0]!, E = this.options.numExperts, k = this.options.k;
    const g = this._o.generator;
    const train = this.training;
    const selectLogits = train && this.options.noisyGatePolicy === 'RSample' ? T.add(logits.detach(), gumbel([S, E], logits.dtype, g)) : null;
    const secondSelectLogits = train && this._o.top2SecondExpertSampling && k >= 2 ? T.add(logits.detach(), gumbel([S, E], logits.dtype, g)) : null;
    const rtsPriorities = this.options.useRts && this.policy === 'token-choice' ? T.uniform([S, k], 0, 1, { dtype: 'float64', generator: g }) : null;
    return route(logits, { ...this._o, training: train, selectLogits, secondSelectLogits, rtsPriorities, policy: this.policy });
  }
}
