/**
 * Megatron-LM's tensor-parallel linears (the Megatron paper's column / row split), over a
 * tensor-parallel group of P ranks:
 *
 * - `ColumnParallelLinear`: `Y = X·Wᵀ + b` with W split by output features — rank r holds
 *   rows [r·out/P, (r+1)·out/P) of W and of b and computes its slice of Y from the whole X
 *   (when P does not divide out, ⌈out/P⌉ rows per rank, zero-padded at the end).
 *   Forward enters through `copyToTensorParallelRegion` (backward: all-reduce of dX), and
 *   leaves with the slice (`gatherOutput: false`, to feed a row-parallel layer) or gathers
 *   the full Y (`gatherOutput: true`).
 * - `RowParallelLinear`: W split by input features — rank r holds columns [r·in/P, (r+1)·in/P)
 *   and multiplies its slice of X (`inputIsParallel: true`, the output of a column-parallel
 *   layer; otherwise it takes its slice first); the partial products are summed with
 *   `reduceFromTensorParallelRegion` (one all-reduce forward, none backward) and the bias,
 *   replicated, is added once after the sum.
 *
 * A column → row pair (an MLP, or attention's q·k·v and output projection) costs one all-
 * reduce forward and one backward. Both are built from the full layer (`fromDense`), so they
 * start from the one-process layer's values whatever the layout (DESIGN principle 7); the
 * split parameters carry the `tensorParallel` tag (shard.ts).
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { copyToTensorParallelRegion, gatherFromTensorParallelRegion, reduceFromTensorParallelRegion, scatterToTensorParallelRegion } from './mappings.js';
import { shardOf, splitTag, type TensorParallelTag } from './shard.js';

/** A split parameter made from the full tensor: rank `pg.rank`'s shard, tagged. */
export function tensorParallelParameter(full: T.Tensor, pg: ProcessGroup, tag: TensorParallelTag, tags: T.nn.ParamTags = {}): T.nn.Parameter {
  // a copy, in a scope: a view of `full` (made on the way, or a contiguous shard kept as is) would
  // keep all of it alive after the layer drops it; a deferred full tensor (deferredInit) gives a
  // deferred copy of a contiguous shard, so only the shard is ever made
  const shard = T.scope(() => T.noGrad(() => T.clone(shardOf(full, tag, pg.rank, pg.size))));
  const p = new T.nn.Parameter(shard, { tags: { ...tags, tensorParallel: tag }, requiresGrad: full.requiresGrad });
  shard.dispose();
  return p;
}

/** A replicated copy of a full parameter (its own storage), keeping its tags. */
function replicated(p: T.nn.Parameter): T.nn.Parameter {
  const c = T.noGrad(() => T.clone(p));
  const out = new T.nn.Parameter(c, { tags: { ...p.tags }, requiresGrad: p.requiresGrad });
  c.dispose();
  return out;
}

export interface ColumnParallelOptions {
  /** All-gather the output slices into the full output (default false: keep this rank's slice). */
  gatherOutput?: boolean;
  /** Chunks of the output features split independently (3 for a fused q·k·v weight; default 1). */
  stride?: number;
}

export class ColumnParallelLinear extends T.nn.Module {
  weight: T.nn.Parameter;
  bias: T.nn.Parameter | null;
  readonly gatherOutput: boolean;
  /** Output features of the full layer. */
  readonly outFeatures: number;
  /**
   * Output features on this rank: out / P, or ⌈out / P⌉ when P does not divide out (a plain
   * split is then zero-padded, shard.ts: the last ranks' slices end in padding columns).
   */
  readonly outFeaturesPerRank: number;

  /** `weight` [out, in] and `bias` [out] are the full layer's; this rank keeps its shard. */
  constructor(readonly group: ProcessGroup, weight: T.nn.Parameter, bias: T.nn.Parameter | null, opts: ColumnParallelOptions = {}) {
    super();
    if (weight.ndim !== 2) throw new Error(`ColumnParallelLinear: weight must be [out, in], got [${weight.shape.join(', ')}]`);
    const tag = splitTag(weight.shape[0]!, 0, group.size, opts.stride ?? 1);
    this.weight = tensorParallelParameter(weight, group, tag, weight.tags);
    this.bias = bias ? tensorParallelParameter(bias, group, tag, bias.tags) : null;
    this.gatherOutput = opts.gatherOutput ?? false;
    this.outFeatures = weight.shape[0]!;
    this.outFeaturesPerRank = this.weight.shape[0]!;
  }

  static fromDense(linear: T.nn.Linear, group: ProcessGroup, opts: ColumnParallelOptions = {}): ColumnParallelLinear {
    return new ColumnParallelLinear(group, linear.weight, linear.bias, opts);
  }

  forward(x: T.Tensor): T.Tensor {
    const y = T.linear(copyToTensorParallelRegion(this.group, x), this.weight, this.bias);
    if (!this.gatherOutput) return y;
    const full = gatherFromTensorParallelRegion(this.group, y);
    return full.shape[full.ndim - 1] === this.outFeatures ? full : full.narrow(full.ndim - 1, 0, this.outFeatures);
  }
}

export interface RowParallelOptions {
  /** The input is already this rank's slice of the features (the output of a column-parallel layer). Default true. */
  inputIsParallel?: boolean;
}

export class RowParallelLinear extends T.nn.Module {
  weight: T.nn.Parameter;
  /** Replicated over the group, added after the all-reduce. */
  bias: T.nn.Parameter | null;
  readonly inputIsParallel: boolean;
  /** Input features on this rank. */
  readonly inFeaturesPerRank: number;

  constructor(readonly group: ProcessGroup, weight: T.nn.Parameter, bias: T.nn.Parameter | null, opts: RowParallelOptions = {}) {
    super();
    if (weight.ndim !== 2) throw new Error(`RowParallelLinear: weight must be [out, in], got [${weight.shape.join(', ')}]`);
    this.weight = tensorParallelParameter(weight, group, { dim: 1, stride: 1 }, weight.tags);
    this.bias = bias ? replicated(bias) : null;
    this.inputIsParallel = opts.inputIsParallel ?? true;
    this.inFeaturesPerRank = this.weight.shape[1]!;
  }

  static fromDense(linear: T.nn.Linear, group: ProcessGroup, opts: RowParallelOptions = {}): RowParallelLinear {
    return new RowParallelLinear(group, linear.weight, linear.bias, opts);
  }

  forward(x: T.Tensor): T.Tensor {
    const xp = this.inputIsParallel ? x : scatterToTensorParallelRegion(this.group, x);
    if (xp.shape[xp.ndim - 1] !== this.inFeaturesPerRank)
      throw new Error(`RowParallelLinear: expected ${this.inFeaturesPerRank} input features on tensor-parallel rank ${this.group.rank}, got [${xp.shape.join(', ')}]`);
    const y = reduceFromTensorParallelRegion(this.group, T.linear(xp, this.weight));
    return this.bias ? T.add(y, this.bias) : y;
  }
}
