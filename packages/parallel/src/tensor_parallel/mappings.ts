/**
 * Megatron-LM's tensor-parallel region mappings (megatron/core/tensor_parallel/mappings.py),
 * as autograd functions over a tensor-parallel group. Each is the conjugate of another:
 *
 *   copyToTensorParallelRegion      forward identity              backward all-reduce (sum)
 *   reduceFromTensorParallelRegion  forward all-reduce (sum)      backward identity
 *   scatterToTensorParallelRegion   forward this rank's slice     backward all-gather
 *   gatherFromTensorParallelRegion  forward all-gather            backward this rank's slice
 *
 * (slices and gathers along the last dim, rank r holding block r). A column-parallel linear
 * enters with `copyTo…` (its input is replicated; the gradient of the input is the sum of every
 * rank's partial one), a row-parallel linear leaves with `reduceFrom…` (each rank holds a
 * partial sum of the output). On a group of one rank every mapping is the identity. Every rank
 * of the group must run the same mappings in the same order, forward and backward.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';

/** In-place-safe all-reduce: a contiguous copy of `x`, summed over the group. */
function allReduced(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  const out = T.clone(T.contiguous(x));
  pg.allReduce(out, 'sum');
  return out;
}

/** Block `rank` of `size` equal blocks of the last dim (contiguous). */
function lastDimBlock(pg: ProcessGroup, x: T.Tensor, op: string): T.Tensor {
  const n = x.shape[x.ndim - 1]!;
  if (n % pg.size !== 0) throw new Error(`${op}: the last dim of ${JSON.stringify(x.shape)} (${n}) does not split over ${pg.size} tensor-parallel ranks`);
  const w = n / pg.size;
  return T.contiguous(x.narrow(x.ndim - 1, pg.rank * w, w));
}

/** Every rank's `x` side by side along the last dim (rank order). */
function lastDimGather(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  const P = pg.size;
  const shape = x.shape;
  const flat = T.empty([P * x.numel], { dtype: x.dtype, device: x.device });
  pg.allGatherIntoTensor(flat, T.reshape(T.contiguous(x), [x.numel]));
  // [P, …lead, n] → […lead, P, n] → […lead, P·n]
  const blocks = T.reshape(flat, [P, ...shape]);
  const k = shape.length;
  const moved = T.contiguous(T.permute(blocks, [...Array.from({ length: k - 1 }, (_, i) => i + 1), 0, k]));
  return T.reshape(moved, [...shape.slice(0, -1), P * shape[shape.length - 1]!]);
}

export function copyToTensorParallelRegion(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  if (pg.size === 1) return x;
  return T.customOp('copyToTensorParallelRegion', [x], () => x.detach(), (g) => [allReduced(pg, g)]);
}

export function reduceFromTensorParallelRegion(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  if (pg.size === 1) return x;
  return T.customOp('reduceFromTensorParallelRegion', [x], () => allReduced(pg, x), (g) => [g]);
}

export function scatterToTensorParallelRegion(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  if (pg.size === 1) return x;
  return T.customOp('scatterToTensorParallelRegion', [x], () => lastDimBlock(pg, x, 'scatterToTensorParallelRegion'), (g) => [lastDimGather(pg, g)]);
}

export function gatherFromTensorParallelRegion(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  if (pg.size === 1) return x;
  return T.customOp('gatherFromTensorParallelRegion', [x], () => lastDimGather(pg, x), (g) => [lastDimBlock(pg, g, 'gatherFromTensorParallelRegion')]);
}
