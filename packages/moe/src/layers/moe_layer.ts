/**
 * MoE: DeepSpeed's sparse gated FFN layer (`deepspeed.moe.layer.MoE`), index-based and fused:
 *
 *   gate → slots → permute tokens into an expert-contiguous buffer (one native pass)
 *        → experts as grouped GEMMs (one native call per layer)
 *        → unpermute + combine with the gate weights (one native pass)
 *
 * never a dense [S, E, C] one-hot einsum. Dropped assignments contribute nothing, so a token
 * with every choice dropped gets 0 from the MoE branch (the block's residual connection
 * carries it). With `useResidual` (Residual MoE, Rajbhandari et al. 2022) a dense FFN runs
 * beside the experts and `out = moe(x)·c0 + mlp(x)·c1`, `c = softmax(Linear(d, 2)(x))`.
 *
 * Expert parallelism plugs in through `expertGroup`: the layer hands the permuted buffer
 * (rows grouped by global expert) to `expertGroup.dispatch`, runs its local experts on what
 * comes back, and returns the outputs through the handle's `combine`. Without a group all
 * experts are local.
 *
 * Tensor parallelism plugs in through `setTensorParallelGroup` (the engine calls it). The ranks
 * of a tensor-parallel group hold the same tokens and route them the same way, so the layer
 * de-duplicates them before the experts (DeepSpeed's `drop_tokens`): rank r takes block r of
 * P contiguous blocks of the expert-contiguous buffer, only those rows go through the
 * all-to-all and the experts (1/P of the traffic and of the expert work per rank), and an
 * all-gather over the group puts the outputs back together (backward: each rank keeps its
 * block of the gradient, which every rank of the group holds the same copy of). The experts
 * are split over the group (enableExpertTensorParallelism) or run whole on each rank's rows.
 */
import * as T from '@vlmoe/tensor';
import { z, type Z } from '@vlmoe/tensor';
import { gatherRows, RowLayout, scatterRows, type ExpertParallelLayer, type ProcessGroup, type TensorParallelModule } from '@vlmoe/parallel';
import { DEFAULT_ROUTING_POLICY, TopKGate } from '../router/gate.js';
import { ROUTER_OPTIONS_SHAPE, resolveRouterOptions, type ResolvedRouterOptions, type RouterOptions } from '../router/options.js';
import { compactRows, type GateOutput, type RoutingPolicy } from '../router/route.js';
import { DEFAULT_EXPERT_ACTIVATION, DEFAULT_EXPERT_DROPOUT, Experts, type ExpertActivation } from './experts.js';

/** What an expert-parallel all-to-all returns for one forward. */
export interface ExpertDispatch {
  /** Rows for this rank's local experts, grouped by local expert. */
  x: T.Tensor;
  /** Rows per local expert in `x`. */
  groupSizes: number[];
  /** Sends the local experts' outputs (same rows as `x`) back; returns rows in the original order. Differentiable. */
  combine(y: T.Tensor): T.Tensor;
}

/** The expert-parallel hook (implemented over a process group by @vlmoe/parallel). */
export interface ExpertGroup {
  /** Ranks in the expert-parallel group; numExperts must divide evenly among them. */
  readonly size: number;
  readonly rank: number;
  /** Dropless capacity: the largest per-expert count over the group. */
  maxCount?(localMax: number): number;
  /**
   * All-to-all: `x` holds this rank's tokens grouped by global expert (`countsPerExpert[e]`
   * rows for expert e); returns the rows every rank sent to this rank's local experts.
   * Differentiable (backward is the reverse exchange).
   */
  dispatch(x: T.Tensor, countsPerExpert: number[]): ExpertDispatch;
}

/**
 * The options of an MoE layer that a JSON config can hold: the router's (DeepSpeed's names)
 * plus what the layer adds. The model config's MoE block extends this type, so a new option
 * here reaches the model config, its parser and the CLI without touching them.
 */
export interface MoELayerConfig extends RouterOptions {
  /** Routing policy: DeepSpeed's token choice (default) or expert choice. */
  policy?: RoutingPolicy;
  /** Gumbel-sample choices 2..k in training (DeepSpeed `top2_2nd_expert_sampling`). Default false. */
  top2SecondExpertSampling?: boolean;
  /** Residual MoE: a dense FFN beside the experts, mixed by a learned coefficient. Default false. */
  useResidual?: boolean;
  /** Expert activation (default gelu). */
  activation?: ExpertActivation;
  /** Expert dropout in training (default 0). */
  dropout?: number;
  /**
   * Under tensor parallelism, split every expert's FFN over the tensor-parallel group (its
   * hidden units, as a dense FFN is split) instead of holding and computing every expert on
   * every rank of the group (DeepSpeed's `enable_expert_tensor_parallelism`). Default false.
   */
  enableExpertTensorParallelism?: boolean;
  /**
   * Fine-grained experts (DeepSeekMoE): split every expert into this many smaller ones (hidden
   * size / m each) and route each token to k·m of the numExperts·m, so total and active
   * parameters stay those of numExperts experts at top-k. Default 1.
   */
  expertSizeRatio?: number;
  /**
   * Shared experts (DeepSeekMoE): this many always-on experts of the (fine-grained) expert
   * size, run as one dense FFN of n × that hidden size on every token and added to the routed
   * experts' output. Default 0.
   */
  sharedExperts?: number;
  /**
   * LIMoE's entropy regularisers (Mustafa et al. 2022), per layer (so per modality: a VL-MoE
   * layer routes one modality): + localEntropyWeight × the mean over tokens of the entropy of
   * each token's gates (low: each token sure of its experts) and − globalEntropyWeight × the
   * entropy of the gates averaged over the tokens (high: every expert used). Default 0 each.
   */
  localEntropyWeight?: number;
  globalEntropyWeight?: number;
}

export interface ResolvedMoELayerConfig extends ResolvedRouterOptions {
  policy: RoutingPolicy;
  top2SecondExpertSampling: boolean;
  useResidual: boolean;
  activation: ExpertActivation;
  dropout: number;
  enableExpertTensorParallelism: boolean;
  expertSizeRatio: number;
  sharedExperts: number;
  localEntropyWeight: number;
  globalEntropyWeight: number;
}

/** The JSON schema of every MoE layer option (zod; the compiler keeps it complete). */
export const MOE_LAYER_CONFIG_SHAPE = {
  ...ROUTER_OPTIONS_SHAPE,
  policy: z.enum(['token-choice', 'expert-choice']).optional().describe("routing policy (default 'token-choice', DeepSpeed's)"),
  top2SecondExpertSampling: z.boolean().optional().describe('Gumbel-sample choices 2..k in training (default false)'),
  useResidual: z.boolean().optional().describe('residual MoE: a dense FFN beside the experts (default false)'),
  activation: z.enum(['gelu', 'gelu_tanh', 'relu']).optional().describe("expert activation (default 'gelu')"),
  dropout: z.number().optional().describe('expert dropout in training (default 0)'),
  enableExpertTensorParallelism: z.boolean().optional().describe("with tensor_parallel_size > 1: split each expert's FFN over the tensor-parallel group instead of replicating the experts there (default false)"),
  expertSizeRatio: z.int().optional().describe('fine-grained experts (DeepSeekMoE): split each expert into m of hidden size / m, route to k·m of numExperts·m (default 1)'),
  sharedExperts: z.int().optional().describe('shared experts (DeepSeekMoE): always-on experts of the expert size, one dense FFN added to the routed output (default 0)'),
  localEntropyWeight: z.number().optional().describe("LIMoE's local entropy loss weight: the mean entropy of each token's gates, minimised (default 0)"),
  globalEntropyWeight: z.number().optional().describe("LIMoE's global entropy weight: the entropy of the tokens' mean gates, maximised (default 0)"),
} satisfies { readonly [K in keyof Required<MoELayerConfig>]: Z.ZodType };

/** Every MoE layer option with its default filled in (the defaults of the router, the gate and the experts). */
export function resolveMoELayerConfig(o: MoELayerConfig): ResolvedMoELayerConfig {
  const r: ResolvedMoELayerConfig = {
    ...resolveRouterOptions(o),
    policy: o.policy ?? DEFAULT_ROUTING_POLICY,
    top2SecondExpertSampling: o.top2SecondExpertSampling ?? false,
    useResidual: o.useResidual ?? false,
    activation: o.activation ?? DEFAULT_EXPERT_ACTIVATION,
    dropout: o.dropout ?? DEFAULT_EXPERT_DROPOUT,
    enableExpertTensorParallelism: o.enableExpertTensorParallelism ?? false,
    expertSizeRatio: o.expertSizeRatio ?? 1,
    sharedExperts: o.sharedExperts ?? 0,
    localEntropyWeight: o.localEntropyWeight ?? 0,
    globalEntropyWeight: o.globalEntropyWeight ?? 0,
  };
  for (const f of ['localEntropyWeight', 'globalEntropyWeight'] as const) if (!(Number.isFinite(r[f]) && r[f] >= 0)) throw new RangeError(`MoE: ${f} must be a finite number ≥ 0, got ${o[f]}`);
  if (!(Number.isInteger(r.expertSizeRatio) && r.expertSizeRatio >= 1)) throw new RangeError(`MoE: expertSizeRatio must be an integer ≥ 1, got ${o.expertSizeRatio}`);
  if (!(Number.isInteger(r.sharedExperts) && r.sharedExperts >= 0)) throw new RangeError(`MoE: sharedExperts must be an integer ≥ 0, got ${o.sharedExperts}`);
  if (r.policy !== 'token-choice' && r.policy !== 'expert-choice') throw new RangeError(`MoE: policy must be 'token-choice' or 'expert-choice', got '${String(o.policy)}'`);
  if (!['gelu', 'gelu_tanh', 'relu'].includes(r.activation)) throw new RangeError(`MoE: activation must be 'gelu', 'gelu_tanh' or 'relu', got '${r.activation}'`);
  if (!(r.dropout >= 0 && r.dropout < 1)) throw new RangeError(`MoE: dropout must be in [0, 1), got ${r.dropout}`);
  return r;
}

/**
 * The experts a layer really holds (DeepSeekMoE's fine-grained segmentation): numExperts·m
 * experts of hidden size h/m, k·m per token, and the shared FFN's hidden size n·h/m.
 */
export function expertLayout(o: { numExperts: number; k?: number; expertSizeRatio?: number; sharedExperts?: number }, ffnHiddenSize: number): { numExperts: number; k: number; ffnHiddenSize: number; sharedHiddenSize: number } {
  const m = o.expertSizeRatio ?? 1, k = o.k ?? 1;
  if (ffnHiddenSize % m !== 0) throw new RangeError(`MoE: expertSizeRatio ${m} must divide the expert hidden size ${ffnHiddenSize}`);
  const h = ffnHiddenSize / m;
  return { numExperts: o.numExperts * m, k: k * m, ffnHiddenSize: h, sharedHiddenSize: (o.sharedExperts ?? 0) * h };
}

export interface MoEOptions extends MoELayerConfig {
  hiddenSize: number;
  /** A dense FFN every expert starts as a copy of (DeepSpeed's `expert`); or give `ffnHiddenSize`. */
  expert?: T.nn.FeedForward;
  /** Expert hidden size when no `expert` is given (experts initialised independently). */
  ffnHiddenSize?: number;
  expertGroup?: ExpertGroup | null;
  dtype?: 'float32' | 'float64';
  generator?: T.Generator;
}

export interface MoEOutput {
  /** Shaped like the input. */
  output: T.Tensor;
  /** Balance loss, unscaled (callers commonly weight it 0.01). Scalar. */
  auxLoss: T.Tensor;
  /** Router z-loss, unscaled (commonly 1e-3). Scalar. */
  zLoss: T.Tensor;
  /** int64 [E]: assignments per expert before dropping (DeepSpeed's `exp_counts` for all choices). */
  expertCounts: T.Tensor;
  /** Assignments dropped (expert choice: tokens no expert picked). */
  dropped: number;
  /** Slots per expert this call. */
  capacity: number;
  /**
   * The router's mean per-token entropy, −Σₑ pₑ log pₑ of the softmax gates, in nats: ln E when
   * every token is unsure, 0 when every token is certain of one expert.
   */
  routerEntropy: number;
  /** LIMoE's regularisers, weighted (localEntropyWeight · local − globalEntropyWeight · global; 0 when both weights are 0). Scalar, differentiable. */
  entropyLoss: T.Tensor;
}

/**
 * LIMoE's two entropies (nats) of gates [S, E], differentiable: `local`, the mean over tokens
 * of each token's −Σₑ pₑ log pₑ; `global`, the entropy of the gates averaged over the tokens
 * (a gate of exactly 0 adds 0 · log(1e-30) = 0).
 */
export function routerEntropies(gates: T.Tensor): { local: T.Tensor; global: T.Tensor } {
  const S = gates.shape[0]!;
  const h = (p: T.Tensor) => T.neg(T.sum(T.mul(p, T.log(T.clamp(p, 1e-30))), -1));
  if (S === 0) return { local: T.zeros([], { dtype: gates.dtype, device: gates.device }), global: T.zeros([], { dtype: gates.dtype, device: gates.device }) };
  return { local: T.mean(h(gates)), global: h(T.mean(gates, 0)) };
}

/** The mean per-token entropy (nats) of gates [S, E] as a number (routerEntropies' local), without recording a graph. */
export function routerEntropy(gates: T.Tensor): number {
  const h = T.noGrad(() => T.scope(() => routerEntropies(gates).local.item()));
  return h > 0 ? h : 0; // never -0
}

function reduceCapacityOf(group: ExpertGroup | null): ((localMax: number) => number) | undefined {
  return group?.maxCount ? (m: number) => group.maxCount!(m) : undefined;
}

export class MoE extends T.nn.Module implements ExpertParallelLayer, TensorParallelModule {
  gate: TopKGate;
  experts: Experts;
  mlp: T.nn.FeedForward | null = null;
  coefficient: T.nn.Linear | null = null;
  /** DeepSeekMoE's shared experts: one dense FFN every token goes through, added to the routed output (sharedExperts > 0). */
  shared: T.nn.FeedForward | null = null;
  readonly hiddenSize: number;
  readonly numExperts: number;
  numLocalExperts: number;
  private _group: ExpertGroup | null;
  private _tp: ProcessGroup | null = null;
  private readonly _entropyWeights: { localEntropyWeight: number; globalEntropyWeight: number };

  constructor(o: MoEOptions) {
    super();
    if (!(Number.isInteger(o.hiddenSize) && o.hiddenSize >= 1)) throw new RangeError(`MoE: hiddenSize must be an integer ≥ 1, got ${o.hiddenSize}`);
    if (o.expert && o.expert.dim !== o.hiddenSize) throw new Error(`MoE: expert maps ${o.expert.dim} features but hiddenSize is ${o.hiddenSize}`);
    if (!o.expert && o.ffnHiddenSize === undefined) throw new Error('MoE: give either expert (a FeedForward to copy) or ffnHiddenSize');
    const given = resolveMoELayerConfig(o);
    if (o.expert && given.expertSizeRatio > 1) throw new Error('MoE: expertSizeRatio > 1 splits the experts; copying one dense FFN into them (expert) is not supported');
    const lay = expertLayout(given, o.expert ? o.expert.hidden : o.ffnHiddenSize!);
    // fine-grained: the router and the experts see numExperts·m experts, k·m per token
    const c = resolveMoELayerConfig({ ...given, numExperts: lay.numExperts, k: lay.k });
    this.hiddenSize = o.hiddenSize;
    this.numExperts = lay.numExperts;
    this._entropyWeights = { localEntropyWeight: c.localEntropyWeight, globalEntropyWeight: c.globalEntropyWeight };
    this._group = o.expertGroup ?? null;
    const P = this._group?.size ?? 1;
    if (!(Number.isInteger(P) && P >= 1 && this.numExperts % P === 0)) throw new Error(`MoE: numExperts = ${this.numExperts} must divide evenly over the expert-parallel group of size ${P}`);
    this.numLocalExperts = this.numExperts / P;
    this.gate = new TopKGate({ ...c, hiddenSize: o.hiddenSize, generator: o.generator, dtype: o.dtype === 'float64' ? 'float64' : 'float32' });
    this.gate.setReduceCapacity(reduceCapacityOf(this._group));
    const h = lay.ffnHiddenSize;
    this.experts = o.expert
      ? Experts.fromFeedForward(o.expert, this.numLocalExperts, { dropout: o.dropout, generator: o.generator, tensorParallel: c.enableExpertTensorParallelism })
      : new Experts({ numExperts: this.numLocalExperts, hiddenSize: o.hiddenSize, ffnHiddenSize: h, activation: c.activation, dropout: c.dropout, dtype: o.dtype, generator: o.generator, tensorParallel: c.enableExpertTensorParallelism });
    if (c.useResidual) {
      this.mlp = new T.nn.FeedForward(o.hiddenSize, o.expert ? o.expert.hidden : o.ffnHiddenSize!, { dtype: o.dtype, generator: o.generator, dropout: c.dropout });
      if (o.expert) T.noGrad(() => {
        T.copy_(this.mlp!.fc1.weight, o.expert!.fc1.weight);
        T.copy_(this.mlp!.fc2.weight, o.expert!.fc2.weight);
        if (o.expert!.fc1.bias) T.copy_(this.mlp!.fc1.bias!, o.expert!.fc1.bias);
        if (o.expert!.fc2.bias) T.copy_(this.mlp!.fc2.bias!, o.expert!.fc2.bias);
      });
      this.coefficient = new T.nn.Linear(o.hiddenSize, 2, { dtype: o.dtype, generator: o.generator });
    }
    if (lay.sharedHiddenSize > 0) this.shared = new T.nn.FeedForward(o.hiddenSize, lay.sharedHiddenSize, { dtype: o.dtype, generator: o.generator, dropout: c.dropout });
  }

  /** The expert-parallel group this layer dispatches through (null: every expert is local). */
  get expertGroup(): ExpertGroup | null {
    return this._group;
  }

  /**
   * Spreads the experts over an expert-parallel group after construction — what the engine
   * does for every MoE layer of the model it wraps (DeepSpeed's `set_deepspeed_parallelism`):
   * this rank keeps experts [rank·L, (rank+1)·L), L = numExperts / P, of the E it built and
   * frees the others, and tokens go to their experts by all-to-all from now on. Building
   * every expert and keeping a slice gives the same initial weights on any layout.
   */
  setExpertParallelGroup(group: ExpertGroup): void {
    const P = group.size;
    if (this._group) {
      if (this._group.size === P && this._group.rank === group.rank) return;
      throw new Error(`MoE: the layer already spreads its experts over a group of ${this._group.size}; cannot move it to a group of ${P}`);
    }
    if (!(Number.isInteger(P) && P >= 1 && this.numExperts % P === 0)) throw new Error(`MoE: numExperts = ${this.numExperts} must divide evenly over the expert-parallel group of size ${P}`);
    if (P === 1) return;
    const L = this.numExperts / P;
    this.experts.keepExperts(group.rank * L, L);
    this.numLocalExperts = L;
    this._group = group;
    this.gate.setReduceCapacity(reduceCapacityOf(group));
  }

  /**
   * Tensor parallelism (see the file comment): each rank of `group` runs the experts on its own
   * block of the tokens from now on. Returns whether the experts were split (expert tensor
   * parallelism); otherwise nothing is split, the experts stay whole on every rank.
   */
  setTensorParallelGroup(group: ProcessGroup): boolean {
    if (group.size === 1) return false;
    if (this._tp && this._tp !== group) throw new Error('MoE: the layer already uses another tensor-parallel group');
    this._tp = group;
    return this.experts.setTensorParallelGroup(group);
  }

  /** Routing only (no experts run): the gate's decisions for tokens x [..., d]. */
  route(x: T.Tensor): GateOutput {
    return this.gate.forward(x.reshape(-1, this.hiddenSize));
  }

  /** x [..., d]; `sequenceIds`: each token's sequence (x's tokens in order), for loadBalancingType 'seq_aux_loss'. */
  forward(x: T.Tensor, o: { sequenceIds?: ArrayLike<number> | null } = {}): MoEOutput {
    if (x.shape[x.ndim - 1] !== this.hiddenSize) throw new Error(`MoE: input's last dim must be hiddenSize = ${this.hiddenSize}, got shape [${x.shape.join(', ')}]`);
    return T.scope(() => {
      const tokens = x.reshape(-1, this.hiddenSize);
      // profiler ranges (T.profile): routing, permute, experts, all-to-all
      const gate = T.recordFunction('moe.routing', () => this.gate.forward(tokens, o));
      const { row, groupSizes, numRows } = T.recordFunction('moe.routing', () => compactRows(gate));
      const buf = T.recordFunction('moe.permute', () => T.moePermute(tokens, row, numRows));
      // under tensor parallelism: this rank's block of the (replicated) rows, and its rows per expert
      const tp = this._tp;
      const share = tp ? RowLayout.blocks(numRows, tp.size) : null;
      const rows = tp ? T.recordFunction('moe.permute', () => scatterRows(tp, buf, share!, 'slice')) : buf;
      const sizes = tp ? blockSizes(groupSizes, share!.starts[tp.rank]!, share!.counts[tp.rank]!) : groupSizes;
      let y: T.Tensor;
      if (this._group) {
        const group = this._group;
        const d = T.recordFunction('moe.all-to-all', () => group.dispatch(rows, sizes));
        const e = T.recordFunction('moe.experts', () => this.experts.forward(d.x, d.groupSizes));
        y = T.recordFunction('moe.all-to-all', () => d.combine(e));
      } else {
        y = T.recordFunction('moe.experts', () => this.experts.forward(rows, sizes));
      }
      if (tp) y = T.recordFunction('moe.permute', () => gatherRows(tp, y, share!, 'slice'));
      let out = T.recordFunction('moe.permute', () => T.moeUnpermute(y, row, gate.combineWeight));
      if (this.mlp && this.coefficient) {
        const c = T.softmax(this.coefficient.forward(tokens), -1);
        out = T.add(T.mul(out, c.narrow(1, 0, 1)), T.mul(this.mlp.forward(tokens), c.narrow(1, 1, 1)));
      }
      if (this.shared) out = T.add(out, T.recordFunction('moe.shared', () => this.shared!.forward(tokens)));
      const { localEntropyWeight: wl, globalEntropyWeight: wg } = this._entropyWeights;
      let entropyLoss = T.zeros([], { dtype: gate.auxLoss.dtype, device: gate.auxLoss.device });
      if (wl > 0 || wg > 0) {
        const e = routerEntropies(gate.gates);
        entropyLoss = T.sub(T.mul(e.local, wl), T.mul(e.global, wg));
      }
      return { output: out.reshape(...x.shape), auxLoss: gate.auxLoss, zLoss: gate.zLoss, expertCounts: gate.countsBefore, dropped: gate.dropped, capacity: gate.capacity, routerEntropy: routerEntropy(gate.gates), entropyLoss };
    });
  }
}

/** Rows per expert within rows [start, start + count) of a buffer with `groupSizes[e]` rows per expert, in order. */
function blockSizes(groupSizes: readonly number[], start: number, count: number): number[] {
  let at = 0;
  return groupSizes.map((n) => {
    const lo = Math.max(at, start), hi = Math.min(at + n, start + count);
    at += n;
    return Math.max(0, hi - lo);
  });
}
