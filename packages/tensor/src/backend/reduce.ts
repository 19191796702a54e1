/** Reductions, cumulative sums and top-k. Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put, rowHeader } from './native.js';

export function reduce(op: number, out: Tensor, x: Tensor, index?: Tensor): void {
  const nd = x.shape.length;
  let i = 0;
  A[i++] = nd;
  for (let d = 0; d < nd; ++d) A[i++] = x.shape[d]!;
  const targets = index ? [out, x, index] : [out, x];
  for (const t of targets) {
    A[i++] = t.storage.handle;
    A[i++] = t.offset;
    for (let d = 0; d < nd; ++d) A[i++] = t === x || t.shape[d] !== 1 ? t.strides[d]! : 0;
  }
  native.reduce(op, dtypeCode[x.dtype], index ? 1 : 0);
}

/** Inclusive cumulative sum of x along dim into out (same shape). */
export function cumsum(out: Tensor, x: Tensor, dim: number): void {
  const shape = x.shape.filter((_, d) => d !== dim);
  let i = 0;
  A[i++] = shape.length;
  for (const s of shape) A[i++] = s;
  for (const t of [out, x]) {
    A[i++] = t.storage.handle;
    A[i++] = t.offset;
    for (let d = 0; d < x.shape.length; ++d) if (d !== dim) A[i++] = t.strides[d]!;
  }
  A[i++] = x.shape[dim]!;
  A[i++] = x.strides[dim]!;
  A[i++] = out.strides[dim]!;
  native.cumsum(dtypeCode[x.dtype]);
}

/** Row softmax of contiguous x [.., cols] into y; mask broadcastable to x (bool keep / additive). */
export function topk(values: Tensor, indices: Tensor, x: Tensor, k: number, largest: boolean): void {
  let i = rowHeader(x);
  A[i++] = k;
  i = put(i, x);
  i = put(i, values);
  put(i, indices);
  native.topk(dtypeCode[x.dtype], largest ? 1 : 0);
}

/**
 * MoE slot assignment (CPU): `slot[a]` for each (token, choice) assignment `a = s·k + j`
 * of `expert` (int64 [S·k]), −1 when dropped; per-expert counts before/after dropping.
 * policy 'position' keeps the first C of each expert's queue (choice rank, then position);
 * 'priority' keeps the C highest `priority` values (float64 [S·k]). Optional: first-choice
 * counts [E] and compact expert-contiguous rows [S·k].
 */
