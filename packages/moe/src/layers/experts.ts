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
 * Under tensor parallelism the MoE layer hands the pool a tensor-parallel group of P ranks
 * (`setTensorParallelGroup`) and from then on gives each rank its own share of the tokens
 * (it de-duplicates the rows every rank of the group would otherwise route):
 *
 * - expert tensor parallelism (`tensorParallel`, the MoE layer's enableExpertTensorParallelism):
 *   rank r keeps hidden units [r·h/P, (r+1)·h/P) of every expert — w1 and b1 by columns, w2
 *   by rows (zero-padded when P does not divide h: padded units stay 0) — and b2 whole. The
 *   ranks' rows are all-gathered (expert by expert), each rank computes its hidden units'
 *   partial outputs for all of them, and a reduce-scatter hands every rank the sums for its
 *   own rows, to which b2 is added (Megatron's expert tensor parallelism with the all-to-all
 *   dispatcher; backward: reduce-scatter of the input gradient, all-gather of the output's).
 *   b2 sees only this rank's rows: it gets the tag `tensorParallelTokens` (below);
 * - otherwise every rank keeps every expert whole and runs it on its own rows; the parameters
 *   get the tag `tensorParallelTokens`, so the engine sums their gradients over the
 *   tensor-parallel group as well (each rank saw a share of the tokens).
 *
 * Dropout then applies each rank's part of the mask one process draws for all rows
 * (T.dropoutSlice), so the generators stay in step over the group.
 */
import * as T from '@vlmoe/tensor';
import { gatherRows, RowLayout, scatterRows, splitTag, tensorParallelParameter, type ProcessGroup } from '@vlmoe/parallel';

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
  /** Split the hidden units over a tensor-parallel group when the MoE layer hands one (setTensorParallelGroup). Default false. */
  tensorParallel?: boolean;
}

/** The experts' default activation and dropout. */
export const DEFAULT_EXPERT_ACTIVATION: ExpertActivation = 'gelu';
export const DEFAULT_EXPERT_DROPOUT = 0;

function param(shape: number[], bound: number, o: ExpertsOptions): T.nn.Parameter {
  const t = T.uniform(shape, -bound, bound, { dtype: o.dtype ?? 'float32', generator: o.generator });
  return T.nn.parameterFrom(t, { tags: { expert: true } });
}

export class Experts extends T.nn.Module {
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
  private _split = false;

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
    ex.copyDense(ffn.fc1.weight, ffn.fc1.bias, ffn.fc2.weight, ffn.fc2.bias);
    return ex;
  }

  /**
   * Makes every expert held a copy of one dense FFN given by its torch-layout weights
   * (fc1 [h, d], fc2 [d, h]; absent biases are zeros) — DeepSpeed's deep copy, and sparse
   * upcycling (`upcycle`). `noise` > 0 adds noise · std(W) · N(0, 1) to each expert's weight
   * matrices (not the biases), drawn from `generator`, so the copies can drift apart.
   */
  copyDense(fc1Weight: T.Tensor, fc1Bias: T.Tensor | null, fc2Weight: T.Tensor, fc2Bias: T.Tensor | null, o: { noise?: number; generator?: T.Generator } = {}): void {
    const E = this.numExperts, d = this.hiddenSize, h = this.ffnHiddenSize;
    const same = (t: T.Tensor, shape: number[], what: string) => {
      if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) throw new Error(`Experts.copyDense: ${what} is [${t.shape.join(', ')}], the experts need [${shape.join(', ')}]`);
    };
    same(fc1Weight, [h, d], 'fc1 weight');
    same(fc2Weight, [d, h], 'fc2 weight');
    if (fc1Bias) same(fc1Bias, [h], 'fc1 bias');
    if (fc2Bias) same(fc2Bias, [d], 'fc2 bias');
    const noise = o.noise ?? 0;
    if (!(noise >= 0 && Number.isFinite(noise))) throw new RangeError(`Experts.copyDense: noise must be a finite number ≥ 0, got ${noise}`);
    T.noGrad(() => T.scope(() => {
      const stack = (t: T.Tensor) => T.cast(t, this.w1.dtype).unsqueeze(0).expand(E, ...t.shape);
      const noisy = (w: T.Tensor) => (noise > 0 ? T.add(stack(w), T.mul(T.randn([E, ...w.shape], { dtype: this.w1.dtype, generator: o.generator }), noise * Math.sqrt(T.variance(T.cast(w, 'float64')).item()))) : stack(w));
      T.copy_(this.w1, noisy(fc1Weight.t()));
      T.copy_(this.w2, noisy(fc2Weight.t()));
      if (fc1Bias) T.copy_(this.b1, stack(fc1Bias));
      else T.fill_(this.b1, 0);
      if (fc2Bias) T.copy_(this.b2, stack(fc2Bias));
      else T.fill_(this.b2, 0);
    }));
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
      // in a scope: the narrowed view goes with it, so the full pool is freed at once (a view left
      // to the collector kept every expert alive on every rank until a finalizer ran)
      const mine = T.scope(() => T.noGrad(() => T.clone(old.narrow(0, first, count))));
      this[k] = new T.nn.Parameter(mine, { tags: old.tags });
      mine.dispose();
      old.dispose();
    }
    this.firstExpert += first;
    this.numExperts = count;
  }

  /**
   * Tensor parallelism (see the file comment): from now on each rank of `group` passes its own
   * rows. Splits every expert's hidden units over the group when the pool is splittable and
   * returns true (b2, whole, gets the tag `tensorParallelTokens`); else keeps the experts whole,
   * tags them `tensorParallelTokens` and returns false.
   */
  setTensorParallelGroup(group: ProcessGroup): boolean {
    if (group.size === 1) return false;
    if (this._tp) {
      if (this._tp !== group) throw new Error('Experts: already set to another tensor-parallel group');
      return this._split;
    }
    this._tp = group;
    if (!this._splittable) {
      for (const p of this.parameters()) p.tags.tensorParallelTokens = true;
      return false;
    }
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
    // b2 stays whole and is added to this rank's rows only
    this.b2.tags.tensorParallelTokens = true;
    this._split = true;
    return true;
  }

  /** The activations of the first layer (the unfused path): act(x_g · w1[g] + b1[g]) per group. */
  private hidden(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>): T.Tensor {
    const h = T.groupedLinear(x, this.w1, this.b1, groupSizes);
    return this.activation === 'relu' ? T.relu(h) : T.gelu(h, this.activation === 'gelu_tanh' ? 'tanh' : 'none');
  }

  /** b2 of each row's expert: [R, d] (rows grouped by expert). */
  private biasRows(groupSizes: T.Tensor | ArrayLike<number>, R: number): T.Tensor {
    const sizes = sizesOf(groupSizes);
    const idx = new Int32Array(R);
    let at = 0;
    sizes.forEach((n, e) => {
      idx.fill(e, at, at + n);
      at += n;
    });
    return T.embedding(T.tensor(idx, { dtype: 'int64' }), this.b2);
  }

  /**
   * Expert tensor parallelism: every rank's rows gathered expert by expert, partial outputs over
   * this rank's hidden units, reduce-scattered back to the rows' ranks, plus b2.
   */
  private forwardSplit(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>, tp: ProcessGroup): T.Tensor {
    return T.scope(() => {
      const mine = sizesOf(groupSizes), P = tp.size, L = mine.length;
      const all = T.empty([P * L], { dtype: 'int64', device: tp.device });
      tp.allGatherIntoTensor(all, T.tensor(mine, { dtype: 'int64', device: tp.device }));
      const flat = Array.from(all.dataSync() as BigInt64Array, Number);
      const { layout, groupSizes: sizes } = RowLayout.groupMajor(Array.from({ length: P }, (_, r) => flat.slice(r * L, (r + 1) * L)));
      const xg = gatherRows(tp, x, layout, 'reduce-scatter');
      const dropping = this.dropout > 0 && this.training;
      let partial: T.Tensor;
      if (!dropping) partial = T.expertFFN(xg, this.w1, this.b1, this.w2, null, sizes, { activation: this.activation });
      else {
        let h = this.hidden(xg, sizes);
        h = T.dropoutSlice(h, this.dropout, true, this._gen ?? T.defaultGenerator, { whole: [layout.total, this.ffnHiddenSize], dim: 1, start: tp.rank * this.w1.shape[2]! });
        partial = T.groupedLinear(h, this.w2, null, sizes);
      }
      const y = T.add(scatterRows(tp, partial, layout, 'reduce-scatter'), this.biasRows(mine, x.shape[0]!));
      return dropping ? T.dropoutSlice(y, this.dropout, true, this._gen ?? T.defaultGenerator, { whole: [layout.total, this.hiddenSize], dim: 0, start: layout.starts[tp.rank]! }) : y;
    });
  }

  /** Whole experts on this rank's share of the rows; dropout draws the masks of all the group's rows (in rank order). */
  private forwardShare(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>, tp: ProcessGroup): T.Tensor {
    if (this.dropout === 0 || !this.training) return T.expertFFN(x, this.w1, this.b1, this.w2, this.b2, groupSizes, { activation: this.activation });
    return T.scope(() => {
      const counts = tp.allGather(T.tensor([x.shape[0]!], { dtype: 'int64', device: tp.device })).map((t) => Number(t.item()));
      const layout = new RowLayout(counts);
      const gen = this._gen ?? T.defaultGenerator;
      const at = (n: number) => ({ whole: [layout.total, n], dim: 0, start: layout.starts[tp.rank]! });
      const h = T.dropoutSlice(this.hidden(x, groupSizes), this.dropout, true, gen, at(this.ffnHiddenSize));
      return T.dropoutSlice(T.groupedLinear(h, this.w2, this.b2, groupSizes), this.dropout, true, gen, at(this.hiddenSize));
    });
  }

  /**
   * x [R, d], rows grouped by expert (`groupSizes[e]` rows for expert e, in order) → [R, d].
   * Without active dropout this is one fused native call (T.expertFFN) forward and one
   * backward; with dropout, grouped GEMM → activation → dropout → grouped GEMM → dropout.
   * Under tensor parallelism, each rank passes its own rows (see the file comment).
   */
  forward(x: T.Tensor, groupSizes: T.Tensor | ArrayLike<number>): T.Tensor {
    if (this._tp) return this._split ? this.forwardSplit(x, groupSizes, this._tp) : this.forwardShare(x, groupSizes, this._tp);
    if (this.dropout === 0 || !this.training) return T.expertFFN(x, this.w1, this.b1, this.w2, this.b2, groupSizes, { activation: this.activation });
    return T.scope(() => {
      const h = T.dropout(this.hidden(x, groupSizes), this.dropout, this.training, this._gen);
      return T.dropout(T.groupedLinear(h, this.w2, this.b2, groupSizes), this.dropout, this.training, this._gen);
    });
  }
}

/** Rows per expert as numbers. */
function sizesOf(groupSizes: T.Tensor | ArrayLike<number>): number[] {
  return (groupSizes as T.Tensor).shape ? Array.from((groupSizes as T.Tensor).dataSync() as ArrayLike<number | bigint>, Number) : Array.from(groupSizes as ArrayLike<number>);
}
