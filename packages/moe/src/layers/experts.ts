/**
 * Experts: a pool of E two-layer FFNs (d → h → d) stored as stacked weights, run as grouped
 * GEMMs over the variable-sized, expert-contiguous token groups: one native call per layer
 * forward and one backward, never a per-expert loop in JavaScript.
 *
 *   w1 [E, d, h], b1 [E, h], w2 [E, h, d], b2 [E, d]   (in × out, as DeepSpeed-MoE stacks them)
 *
 * Parameters carry the tag `{ expert: true }`, which the parallel engine reads (expert
 * gradients are reduced over the expert-data-parallel group).
 *
 * Expert tensor parallelism (`tensorParallel`, the MoE layer's enableExpertTensorParallelism):
 * over a tensor-parallel group of P ranks, which all see the same tokens, rank r keeps hidden
 * units [r·h/P, (r+1)·h/P) of every expert — w1 and b1 by columns, w2 by rows (zero-padded
 * when P does not divide h: padded units stay 0) — and b2 whole; the partial outputs are
 * summed with one all-reduce (and the input gradient with one in backward), then b2 is added
 * by row. Hidden dropout applies this rank's slice of the one-process mask (T.dropoutSlice).
 */
import * as T from '@vlmoe/tensor';
import {
  copyToTensorParallelRegion, reduceFromTensorParallelRegion, splitTag, tensorParallelParameter, type ProcessGroup, type TensorParallelModule,
} from '@vlmoe/parallel';

export type ExpertActivation = T.ExpertActivation;

export interface ExpertsOptions {
  numExperts: number;
  hiddenSize: number;
  ffnHiddenSize: number;
  activation?: ExpertActivation;
  /** Dropout on the hidden activations and the output, in training (default 0). */
  dropout?: number;
  dtype?: 'float32' | 'float64';
  generator?: T.Generator;
  /** Split over a tensor-parallel group when the engine hands one (setTensorParallelGroup). Default false. */
  tensorParallel?: boolean;
}

/** The experts' default activation and dropout. */
export const DEFAULT_EXPERT_ACTIVATION: ExpertActivation = 'gelu';
export const DEFAULT_EXPERT_DROPOUT = 0;

function param(shape: number[], bound: number, o: ExpertsOptions): T.nn.Parameter {
  const t = T.uniform(shape, -bound, bound, { dtype: o.dtype ?? 'float32', generator: o.generator });
  return new T.nn.Parameter(t, { tags: { expert: true } });
}

export class Experts extends T.nn.Module implements TensorParallelModule {
  w1: T.nn.Parameter;
  b1: T.nn.Parameter;
  w2: T.nn.Parameter;
  b2: T.nn.Parameter;
  /** Experts held here (all of them, or this rank's share under expert parallelism). */
  numExperts: number;
  /** Global index of the first expert held here (0 unless `keepExperts` cut the pool). */
  firstExpert = 0;
  readonly hiddenSize: number;
  readonly ffnHiddenSize: number;
  readonly activation: ExpertActivation;
  readonly dropout: number;
  private readonly _gen: T.Generator | undefined;
  private readonly _splittable: boolean;
  private _tp: ProcessGroup | null = null;

  /** Each expert initialised independently like torch.nn.Linear (U(±1/√fan_in)). */
  constructor(o: ExpertsOptions) {
    super();
    for (const f of ['numExperts', 'hiddenSize', 'ffnHiddenSize'] as const)
      if (!(Number.isInteger(o[f]) && o[f] >= 1)) throw new RangeError(`Experts: ${f} must be an integer ≥ 1, got ${o[f]}`);
    const act = o.activation ?? DEFAULT_EXPERT_ACTIVATION;
    if (!['gelu', 'gelu_tanh', 'relu'].includes(act)) throw new RangeError(`Experts: activation must be 'gelu', 'gelu_tanh' or 'relu', got '${act}'`);
    const drop = o.dropout ?? DEFAULT_EXPERT_DROPOUT;
    if (!(drop >= 0 && drop < 1)) throw new RangeError(`Experts: dropout must be in [0, 1), got ${drop}`);
    this.numExperts = o.numExperts;
    this.hiddenSize = o.hiddenSize;
    this.ffnHiddenSize = o.ffnHiddenSize;
    this.activation = act;
    this.dropout = drop;
    this._gen = o.generator;
    this._splittable = o.tensorParallel ?? false;
    const E = o.numExperts, d = o.hiddenSize, h = o.ffnHiddenSize;
    this.w1 = param([E, d, h], 1 / Math.sqrt(d), o);
    this.b1 = param([E, h], 1 / Math.sqrt(d), o);
    this.w2 = param([E, h, d], 1 / Math.sqrt(h), o);
    this.b2 = param([E, d], 1 / Math.sqrt(h), o);
  }

  /**
   * Every expert a copy of one dense FFN (`fc1` [h, d], `fc2` [d, h] in torch layout), as
   * DeepSpeed deep-copies the `expert` module it is given.
   */
  static fromFeedForward(ffn: T.nn.FeedForward, numExperts: number, o: { dropout?: number; generator?: T.Generator; tensorParallel?: boolean } = {}): Experts {
    const d = ffn.dim, h = ffn.hidden;
    const ex = new Experts({ numExperts, hiddenSize: d, ffnHiddenSize: h, activation: ffn.opts.approximate === 'tanh' ? 'gelu_tanh' : 'gelu',
      dropout: o.dropout ?? ffn.opts.dropout ?? 0, dtype: ffn.fc1.weight.dtype as 'float32' | 'float64', generator: o.generator, tensorParallel: o.tensorParallel });
    T.noGrad(() => {
      const stack = (t: T.Tensor) => t.unsqueeze(0).expand(numExperts, ...t.shape);
      T.copy_(ex.w1, stack(ffn.fc1.weight.t()));
      T.copy_(ex.w2, stack(ffn.fc2.weight.t()));
      if (ffn.fc1.bias) T.copy_(ex.b1, stack(ffn.fc1.bias));
      else T.fill_(ex.b1, 0);
      if (ffn.fc2.bias) T.copy_(ex.b2, stack(ffn.fc2.bias));
      else T.fill_(ex.b2, 0);
    });
    return ex;
  }

  /**
   * Keeps experts [first, first + count) and frees the rest (expert parallelism: each rank
   * keeps its slice of the pool it built, so the initial weights do not depend on the layout).
   */
  keepExperts(first: number, count: number): void {
    if (!(Number.isInteger(first) && Number.isInteger(count) && first >= 0 && count >= 1 && first + count <= this.numExperts))
      throw new RangeError(`Experts.keepExperts: [${first}, ${first + count}) is not a range of the ${this.numExperts} experts held`);
    if (count === this.numExperts) return;
    for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
      const old = this[k];
      this[k] = new T.nn.Parameter(T.noGrad(() => T.clone(old.narrow(0, first, count))), { tags: old.tags });
      old.dispose();
    }
    this.firstExpert += first;
    this.numExperts = count;
  }

  /** Expert tensor parallelism (see the file comment): splits every expert's hidden units over `group`; false when this pool is not splittable. */
  setTensorParallelGroup(group: ProcessGroup): boolean {
    if (!this._splittable) return false;
    if (group.size === 1 || this._tp) return true;
    const P = group.size, h = this.ffnHiddenSize;
    if (this.dropout > 0 && h % P !== 0) throw new Error(`Experts: dropout inside the split hidden units needs ${h} hidden units to divide over ${P} tensor-parallel ranks`);
    const split = (k: 'w1' | 'b1' | 'w2', dim: number) => {
      const old = this[k];
      this[k] = tensorParallelParameter(old, group, splitTag(h, dim, P), old.tags);
      old.dispose();
    };
    split('w1', 2);
    split('b1', 1);
    split('w2', 1);
    this._tp = group;
    return true;
  }

  /** The activations of the first layer (the unfused path): act(x_g · w1[g] + b1[g]) per group. */
  private hidden(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>): T.Tensor {
    const h = T.groupedLinear(x, this.w1, this.b1, groupSizes);
    return this.activation === 'relu' ? T.relu(h) : T.gelu(h, this.activation === 'gelu_tanh' ? 'tanh' : 'none');
  }

  /** b2 of each row's expert: [R, d] (rows grouped by expert). */
  private biasRows(groupSizes: T.Tensor | ArrayLike<number>, R: number): T.Tensor {
    const sizes = (groupSizes as T.Tensor).shape ? Array.from((groupSizes as T.Tensor).dataSync() as ArrayLike<number | bigint>, Number) : Array.from(groupSizes as ArrayLike<number>);
    const idx = new Int32Array(R);
    let at = 0;
    sizes.forEach((n, e) => {
      idx.fill(e, at, at + n);
      at += n;
    });
    return T.embedding(T.tensor(idx, { dtype: 'int64' }), this.b2);
  }

  /** The tensor-parallel forward: partial outputs over this rank's hidden units, summed over the group, plus b2. */
  private forwardSplit(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>, tp: ProcessGroup): T.Tensor {
    return T.scope(() => {
      const xin = copyToTensorParallelRegion(tp, x);
      const dropping = this.dropout > 0 && this.training;
      let y: T.Tensor;
      if (!dropping) y = T.expertFFN(xin, this.w1, this.b1, this.w2, null, groupSizes, { activation: this.activation });
      else {
        let h = this.hidden(xin, groupSizes);
        h = T.dropoutSlice(h, this.dropout, true, this._gen ?? T.defaultGenerator, { whole: [h.shape[0]!, this.ffnHiddenSize], dim: 1, start: tp.rank * this.w1.shape[2]! });
        y = T.groupedLinear(h, this.w2, null, groupSizes);
      }
      y = T.add(reduceFromTensorParallelRegion(tp, y), this.biasRows(groupSizes, x.shape[0]!));
      return dropping ? T.dropout(y, this.dropout, true, this._gen) : y;
    });
  }

  /**
   * x [R, d], rows grouped by expert (`groupSizes[e]` rows for expert e, in order) → [R, d].
   * Without active dropout this is one fused native call (T.expertFFN) forward and one
   * backward; with dropout, grouped GEMM → activation → dropout → grouped GEMM → dropout.
   */
  forward(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>): T.Tensor {
    if (this._tp) return this.forwardSplit(x, groupSizes, this._tp);
    if (this.dropout === 0 || !this.training) return T.expertFFN(x, this.w1, this.b1, this.w2, this.b2, groupSizes, { activation: this.activation });
    return T.scope(() => {
      const h = T.dropout(this.hidden(x, groupSizes), this.dropout, this.training, this._gen);
      return T.dropout(T.groupedLinear(h, this.w2, this.b2, groupSizes), this.dropout, this.training, this._gen);
    });
  }
}
