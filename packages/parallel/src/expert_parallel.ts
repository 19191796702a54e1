/**
 * Expert parallelism (DeepSpeed-MoE): the experts of an MoE layer are spread over the ranks
 * of an expert-parallel group, E / P per rank (rank q holds experts [q·L, (q+1)·L)). It
 * implements @vlmoe/moe's `ExpertGroup` hook:
 *
 *   dispatch: every rank's expert-contiguous buffer (rows grouped by global expert) is
 *     exchanged by all-to-all (variable split sizes, so dropless routing works), then
 *     reordered so each local expert's rows from all ranks are contiguous;
 *   combine: the inverse reorder and the reverse all-to-all.
 *
 * Both are differentiable: the backward of an all-to-all is the all-to-all of the
 * gradients with the split sizes swapped. Every rank of the group must run the same layers
 * in the same order (forward and backward), as with any collective.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from './process_group.js';

/** Differentiable all-to-all of rows: `rowsOut[j]` rows come from rank j, `rowsIn[j]` go to rank j. */
export function allToAllRows(pg: ProcessGroup, x: T.Tensor, rowsOut: readonly number[], rowsIn: readonly number[]): T.Tensor {
  const rest = x.shape.slice(1);
  const exchange = (src: T.Tensor, outRows: readonly number[], inRows: readonly number[]) => {
    const out = T.empty([outRows.reduce((a, b) => a + b, 0), ...rest], { dtype: src.dtype, device: src.device });
    pg.allToAllSingle(out, src, outRows, inRows);
    return out;
  };
  return T.customOp('allToAll', [x], () => exchange(T.contiguous(x), rowsOut, rowsIn), (g) => [exchange(T.contiguous(g), rowsIn, rowsOut)]);
}

export interface ExpertDispatchResult {
  x: T.Tensor;
  groupSizes: number[];
  combine(y: T.Tensor): T.Tensor;
}

export class ExpertParallelGroup {
  readonly size: number;
  readonly rank: number;
  constructor(readonly pg: ProcessGroup) {
    this.size = pg.size;
    this.rank = pg.rank;
  }

  /** The largest per-expert count over the group (DeepSpeed max-reduces dropless capacity). */
  maxCount(localMax: number): number {
    const t = T.tensor([localMax], { dtype: 'int64', device: this.pg.device });
    this.pg.allReduce(t, 'max');
    return Number(t.item());
  }

  dispatch(x: T.Tensor, countsPerExpert: number[]): ExpertDispatchResult {
    const P = this.size, E = countsPerExpert.length;
    if (E % P !== 0) throw new Error(`expert parallel: ${E} experts do not divide over ${P} ranks`);
    const L = E / P;
    const total = countsPerExpert.reduce((a, b) => a + b, 0);
    if (x.shape[0] !== total) throw new Error(`expert parallel: the buffer has ${x.shape[0]} rows but the expert counts sum to ${total}`);
    // 1. how many rows each rank sends each of my local experts: [P sources × L experts]
    const sent = T.tensor(countsPerExpert, { dtype: 'int64', device: this.pg.device });
    const recv = T.zeros([E], { dtype: 'int64', device: this.pg.device });
    this.pg.allToAllSingle(recv, sent);
    const rc = Array.from(recv.dataSync() as BigInt64Array, Number); // rc[i·L + l]: rows from rank i for local expert l
    const rowsIn = Array.from({ length: P }, (_, q) => countsPerExpert.slice(q * L, (q + 1) * L).reduce((a, b) => a + b, 0));
    const rowsOut = Array.from({ length: P }, (_, i) => rc.slice(i * L, (i + 1) * L).reduce((a, b) => a + b, 0));
    // 2. rows: arrive source-major (rank i's rows for my experts, expert by expert)
    const got = allToAllRows(this.pg, x, rowsOut, rowsIn);
    // 3. expert-major order for the grouped GEMMs: local expert l's rows from rank 0, 1, …
    const start: number[][] = [];
    let off = 0;
    for (let i = 0; i < P; i++) {
      start.push([]);
      for (let l = 0; l < L; l++) {
        start[i]!.push(off);
        off += rc[i * L + l]!;
      }
    }
    const perm: number[] = [];
    const groupSizes: number[] = [];
    for (let l = 0; l < L; l++) {
      let n = 0;
      for (let i = 0; i < P; i++) {
        for (let r = 0; r < rc[i * L + l]!; r++) perm.push(start[i]![l]! + r);
        n += rc[i * L + l]!;
      }
      groupSizes.push(n);
    }
    const inverse = new Array<number>(perm.length);
    perm.forEach((src, dst) => (inverse[src] = dst));
    const permT = T.tensor(perm, { dtype: 'int64', device: x.device }), invT = T.tensor(inverse, { dtype: 'int64', device: x.device });
    const local = perm.length ? T.indexSelect(got, 0, permT) : got;
    return {
      x: local,
      groupSizes,
      combine: (y: T.Tensor) => allToAllRows(this.pg, perm.length ? T.indexSelect(y, 0, invT) : y, rowsIn, rowsOut),
    };
  }
}
