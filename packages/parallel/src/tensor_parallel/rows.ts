/**
 * Row mappings over a tensor-parallel group where each rank holds a different number of rows
 * (tokens) — what an MoE layer needs to stop routing the same token from every rank of the
 * group (DeepSpeed's `drop_tokens` / `gather_tokens`, Megatron's variable-size
 * `gather_from_sequence_parallel_region` / `reduce_scatter_to_sequence_parallel_region`).
 *
 * A `RowLayout` says how many rows each rank holds and where they sit in the full layout (the
 * rows of every rank together, in a given order). The mappings are each other's conjugates:
 *
 *   gatherRows(…, 'slice')            forward all-gather      backward this rank's rows
 *   scatterRows(…, 'slice')           forward this rank's rows backward all-gather
 *   gatherRows(…, 'reduce-scatter')   forward all-gather      backward reduce-scatter (sum)
 *   scatterRows(…, 'reduce-scatter')  forward reduce-scatter  backward all-gather
 *
 * 'slice' is for a full tensor every rank holds the same copy of (replicated activations: the
 * gradient of the full tensor is the same on every rank); 'reduce-scatter' for one every rank
 * computes a partial sum of, or uses in a computation whose gradient each rank holds a part of
 * (the rows of every rank pass through each rank's shard of a split expert). Every rank must
 * pass the same layout. The all-gather pads each rank's rows to the largest count.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';

export class RowLayout {
  /** First rank-major row of each rank: rank r's rows are [starts[r], starts[r] + counts[r]). */
  readonly starts: number[];
  readonly total: number;
  /** Full row i is rank-major row order[i] (null: the full layout is rank-major). */
  readonly order: Int32Array | null;

  /**
   * `counts[r]`: rows rank r holds. `order` (a permutation of the rank-major rows, the
   * concatenation of every rank's rows in rank order): full row i is rank-major row `order[i]`;
   * omitted, the full layout is rank-major.
   */
  constructor(readonly counts: readonly number[], order: Int32Array | null = null) {
    this.starts = [];
    let n = 0;
    for (const c of counts) {
      if (!(Number.isInteger(c) && c >= 0)) throw new RangeError(`RowLayout: counts must be integers ≥ 0, got [${counts.join(', ')}]`);
      this.starts.push(n);
      n += c;
    }
    this.total = n;
    if (order && order.length !== n) throw new RangeError(`RowLayout: the order has ${order.length} rows, the counts sum to ${n}`);
    this.order = order;
  }

  /** `total` rows cut into `size` contiguous blocks in rank order, the first `total mod size` one row longer. */
  static blocks(total: number, size: number): RowLayout {
    const q = Math.floor(total / size), extra = total % size;
    return new RowLayout(Array.from({ length: size }, (_, r) => q + (r < extra ? 1 : 0)));
  }

  /**
   * Each rank holds rows grouped by G groups (`counts[r][g]` rows of group g, groups in order);
   * the full layout groups them by group, then by rank: group 0's rows from rank 0, 1, …, then
   * group 1's. Returns the layout and each group's row count in the full layout.
   */
  static groupMajor(counts: readonly (readonly number[])[]): { layout: RowLayout; groupSizes: number[] } {
    const P = counts.length, G = counts[0]?.length ?? 0;
    if (counts.some((c) => c.length !== G)) throw new RangeError('RowLayout.groupMajor: every rank must list the same number of groups');
    const perRank = counts.map((c) => c.reduce((a, b) => a + b, 0));
    const order = new Int32Array(perRank.reduce((a, b) => a + b, 0));
    const groupSizes: number[] = [];
    // rank-major start of rank r's group g
    const at = counts.map((c, r) => {
      let s = perRank.slice(0, r).reduce((a, b) => a + b, 0);
      return c.map((n) => ((s += n), s - n));
    });
    let i = 0;
    for (let g = 0; g < G; g++) {
      let n = 0;
      for (let r = 0; r < P; r++) {
        for (let k = 0; k < counts[r]![g]!; k++) order[i++] = at[r]![g]! + k;
        n += counts[r]![g]!;
      }
      groupSizes.push(n);
    }
    return { layout: new RowLayout(perRank, order), groupSizes };
  }

  /** The full-layout rows of rank r (ascending rank-major → their full positions), as an index. */
  fullRowsOf(r: number): Int32Array {
    const out = new Int32Array(this.counts[r]!);
    const lo = this.starts[r]!, hi = lo + out.length;
    if (!this.order) for (let k = 0; k < out.length; k++) out[k] = lo + k;
    else this.order.forEach((rm, i) => {
      if (rm >= lo && rm < hi) out[rm - lo] = i;
    });
    return out;
  }
}

function check(pg: ProcessGroup, layout: RowLayout, what: string): void {
  if (layout.counts.length !== pg.size) throw new Error(`${what}: the layout lists ${layout.counts.length} ranks, the group has ${pg.size}`);
}

/** The dims after the rows. */
function rest(x: T.Tensor): number[] {
  return x.shape.slice(1);
}

/** Every rank's rows in the full layout (padded all-gather, then one index pass). */
function gatherPadded(pg: ProcessGroup, x: T.Tensor, layout: RowLayout): T.Tensor {
  const tail = rest(x);
  const width = Math.max(...layout.counts);
  if (width === 0) return T.empty([0, ...tail], { dtype: x.dtype, device: x.device });
  const mine = layout.counts[pg.rank]!;
  let src = T.contiguous(x);
  if (mine < width) src = T.cat([src, T.zeros([width - mine, ...tail], { dtype: x.dtype, device: x.device })], 0);
  const all = T.empty([pg.size * width, ...tail], { dtype: x.dtype, device: x.device });
  pg.allGatherIntoTensor(all, src);
  const uniform = layout.counts.every((c) => c === width);
  if (uniform && !layout.order) return all;
  // full row i ← padded row (rank r of rank-major row j)·width + (j − starts[r])
  const rankOf = new Int32Array(layout.total);
  layout.counts.forEach((c, r) => rankOf.fill(r, layout.starts[r]!, layout.starts[r]! + c));
  const idx = new Int32Array(layout.total);
  for (let i = 0; i < layout.total; i++) {
    const j = layout.order ? layout.order[i]! : i, r = rankOf[j]!;
    idx[i] = r * width + (j - layout.starts[r]!);
  }
  return T.indexSelect(all, 0, T.tensor(idx, { dtype: 'int64', device: x.device }));
}

/** This rank's rows of a full-layout tensor. */
function ownRows(pg: ProcessGroup, full: T.Tensor, layout: RowLayout): T.Tensor {
  const r = pg.rank;
  if (!layout.order) return T.contiguous(full.narrow(0, layout.starts[r]!, layout.counts[r]!));
  return T.indexSelect(full, 0, T.tensor(layout.fullRowsOf(r), { dtype: 'int64', device: full.device }));
}

/** The sum over ranks of every rank's full-layout tensor, this rank's rows of it. */
function reduceScatterRows(pg: ProcessGroup, full: T.Tensor, layout: RowLayout): T.Tensor {
  const tail = rest(full);
  let rm = T.contiguous(full);
  if (layout.order) {
    const inv = new Int32Array(layout.total);
    layout.order.forEach((j, i) => (inv[j] = i));
    rm = T.indexSelect(full, 0, T.tensor(inv, { dtype: 'int64', device: full.device }));
  }
  const out = T.empty([layout.counts[pg.rank]!, ...tail], { dtype: full.dtype, device: full.device });
  if (layout.total === 0) return out;
  pg.reduceScatter(out, layout.counts.map((c, r) => rm.narrow(0, layout.starts[r]!, c)), 'sum');
  return out;
}

/**
 * Every rank's rows `x` ([counts[rank], …]) together in the full layout ([total, …]).
 * Backward: 'slice' takes this rank's rows of the gradient; 'reduce-scatter' sums every
 * rank's gradient of them (see the file comment).
 */
export function gatherRows(pg: ProcessGroup, x: T.Tensor, layout: RowLayout, backward: 'slice' | 'reduce-scatter'): T.Tensor {
  check(pg, layout, 'gatherRows');
  if (x.shape[0] !== layout.counts[pg.rank]) throw new Error(`gatherRows: rank ${pg.rank} holds ${x.shape[0]} rows, the layout says ${layout.counts[pg.rank]}`);
  if (pg.size === 1) return x;
  return T.customOp('gatherRows', [x], () => gatherPadded(pg, x, layout),
    (g) => [backward === 'slice' ? ownRows(pg, g, layout) : reduceScatterRows(pg, g, layout)]);
}

/**
 * This rank's rows of the full-layout `x` ([total, …] → [counts[rank], …]): 'slice' takes them
 * from the copy every rank holds; 'reduce-scatter' sums them over the ranks' partial copies.
 * Backward: all-gather of the gradients (see the file comment).
 */
export function scatterRows(pg: ProcessGroup, x: T.Tensor, layout: RowLayout, forward: 'slice' | 'reduce-scatter'): T.Tensor {
  check(pg, layout, 'scatterRows');
  if (x.shape[0] !== layout.total) throw new Error(`scatterRows: the tensor has ${x.shape[0]} rows, the layout ${layout.total}`);
  if (pg.size === 1) return x;
  return T.customOp('scatterRows', [x], () => (forward === 'slice' ? ownRows(pg, x, layout) : reduceScatterRows(pg, x, layout)),
    (g) => [gatherPadded(pg, g, layout)]);
}
