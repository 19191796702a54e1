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
 *
 * With `enableExpertBias` (auxiliary-loss-free balancing, DeepSeek-V3 / Megatron-Core) the gate
 * holds the per-expert bias as a buffer `expertBias` (float32 [E], zeros at first; saved in
 * checkpoints), adds up the assignments per expert of its training forwards, and
 * `updateExpertBias(group)` — called by the engine after each optimizer step, through
 * `afterOptimizerStep` — sums those loads over the data-parallel group and moves the bias by
 * biasUpdateRate · sign(mean load − load): over-loaded experts become less attractive. Every
 * rank sees the same sums, so every rank keeps the same bias.
 */
import * as T from '@vlmoe/tensor';
import type { ParallelGroups, ProcessGroup } from '@vlmoe/parallel';
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
  /** Aux-loss-free balancing: the per-expert bias on the selection scores (a buffer), or null. */
  expertBias: T.Tensor | null = null;
  private readonly _o: TopKGateOptions;
  /** Assignments per expert of the training forwards since the last bias update. */
  private _load: Float64Array | null = null;

  constructor(options: TopKGateOptions) {
    super();
    this.options = resolveRouterOptions(options);
    if (!(Number.isInteger(options.hiddenSize) && options.hiddenSize >= 1)) throw new RangeError(`TopKGate: hiddenSize must be an integer ≥ 1, got ${options.hiddenSize}`);
    this.policy = options.policy ?? DEFAULT_ROUTING_POLICY;
    if (this.policy !== 'token-choice' && this.policy !== 'expert-choice') throw new RangeError(`TopKGate: policy must be 'token-choice' or 'expert-choice', got '${String(this.policy)}'`);
    this._o = { ...options };
    if (this.options.enableExpertBias) {
      if (this.policy !== 'token-choice') throw new RangeError('TopKGate: enableExpertBias applies to token-choice routing, not expert choice');
      this.registerBuffer('expertBias', T.zeros([this.options.numExperts], { dtype: 'float32' }));
      this._load = new Float64Array(this.options.numExperts);
    }
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

  /** Routes tokens x [S, hiddenSize]; `sequenceIds`: each token's sequence (for loadBalancingType 'seq_aux_loss'). */
  forward(x: T.Tensor, o: { sequenceIds?: ArrayLike<number> | null } = {}): GateOutput {
    if (x.ndim !== 2 || x.shape[1] !== this._o.hiddenSize) throw new Error(`TopKGate: input must be [tokens, hiddenSize = ${this._o.hiddenSize}], got [${x.shape.join(', ')}]`);
    const logits = this.logits(x);
    const S = logits.shape[0]!, E = this.options.numExperts, k = this.options.k;
    const g = this._o.generator;
    const train = this.training;
    const selectLogits = train && this.options.noisyGatePolicy === 'RSample' ? T.add(logits.detach(), gumbel([S, E], logits.dtype, g)) : null;
    const secondSelectLogits = train && this._o.top2SecondExpertSampling && k >= 2 ? T.add(logits.detach(), gumbel([S, E], logits.dtype, g)) : null;
    const rtsPriorities = this.options.useRts && this.policy === 'token-choice' ? T.uniform([S, k], 0, 1, { dtype: 'float64', generator: g }) : null;
    const out = route(logits, { ...this._o, training: train, selectLogits, secondSelectLogits, rtsPriorities, policy: this.policy, expertBias: this.expertBias, sequenceIds: o.sequenceIds ?? null });
    if (train && this._load) {
      const c = out.countsBefore.dataSync() as BigInt64Array;
      for (let e = 0; e < E; e++) this._load[e] += Number(c[e]);
    }
    return out;
  }

  /** Assignments per expert counted since the last bias update (this rank's), or null without the expert bias. */
  get pendingLoad(): Float64Array | null {
    return this._load ? this._load.slice() : null;
  }

  /**
   * Moves the expert bias by biasUpdateRate · sign(mean load − load), the loads of the
   * training forwards since the last update summed over `group` (collective when given), and
   * starts counting again. Nothing without the expert bias. Returns the loads used.
   */
  updateExpertBias(group?: ProcessGroup | null): Float64Array | null {
    if (!this.expertBias || !this._load) return null;
    let load = this._load;
    if (group && group.size > 1) {
      load = T.scope(() => {
        const t = T.tensor(load, { dtype: 'float64' });
        group.allReduce(t, 'sum');
        return (t.dataSync() as Float64Array).slice();
      });
    }
    const E = load.length, mean = load.reduce((a, b) => a + b, 0) / E, rate = this.options.biasUpdateRate;
    const b = this.expertBias.dataSync() as Float32Array;
    const next = Array.from(b, (v, e) => v + rate * Math.sign(mean - load[e]!));
    T.noGrad(() => T.scope(() => T.copy_(this.expertBias!, T.tensor(next, { dtype: 'float32' }))));
    this._load = new Float64Array(E);
    return load;
  }

  /** The engine's hook after each optimizer step: the expert bias update over the data-parallel group. */
  afterOptimizerStep(groups: ParallelGroups): void {
    this.updateExpertBias(groups.dataParallel);
  }
}
