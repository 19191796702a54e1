/** Indexing kernels: index_select, index_add, gather, scatter_add. Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put, writeTensorIter } from './native.js';

function indexBlock(first: Tensor, idx: Tensor, last: Tensor, outer: number, size: number, inner: number): void {
  A[0] = outer;
  A[1] = size;
  A[2] = inner;
  A[3] = idx.numel;
  put(put(put(4, first), idx), last);
}

/** out[o, j, i] = x[o, idx[j], i] for x viewed [outer, size, inner]. */
export function indexSelect(out: Tensor, x: Tensor, idx: Tensor, outer: number, size: number, inner: number): void {
  indexBlock(x, idx, out, outer, size, inner);
  native.indexSelect(dtypeCode[x.dtype], dtypeCode[idx.dtype]);
}

/** out[o, idx[j], i] += src[o, j, i] (duplicates accumulate). */
export function indexAdd(out: Tensor, idx: Tensor, src: Tensor, outer: number, size: number, inner: number): void {
  indexBlock(out, idx, src, outer, size, inner);
  native.indexAdd(dtypeCode[out.dtype], dtypeCode[idx.dtype]);
}

/** out = x gathered along dim by idx (out and idx share a shape). */
export function gather(out: Tensor, x: Tensor, dim: number, idx: Tensor): void {
  const xs = x.strides.slice();
  const ds = xs[dim]!;
  xs[dim] = 0;
  let i = writeTensorIter(idx.shape, [out, idx]);
  const nd = idx.shape.length;
  // x operand: x's strides with the gathered dim zeroed.
  A[i++] = x.storage.handle;
  A[i++] = x.offset;
  for (let d = 0; d < nd; ++d) A[i++] = xs[d]!;
  A[i++] = ds;
  A[i++] = x.shape[dim]!;
  native.gather(dtypeCode[x.dtype], dtypeCode[idx.dtype]);
}

/** out[..idx..] += src along dim (idx and src share a shape). */
export function scatterAdd(out: Tensor, dim: number, idx: Tensor, src: Tensor): void {
  const nd = idx.shape.length;
  let i = 0;
  A[i++] = nd;
  for (let d = 0; d < nd; ++d) A[i++] = idx.shape[d]!;
  A[i++] = out.storage.handle;
  A[i++] = out.offset;
  for (let d = 0; d < nd; ++d) A[i++] = d === dim ? 0 : out.strides[d]!;
  for (const t of [idx, src]) {
    A[i++] = t.storage.handle;
    A[i++] = t.offset;
    for (let d = 0; d < nd; ++d) A[i++] = t.strides[d]!;
  }
  A[i++] = out.strides[dim]!;
  A[i++] = out.shape[dim]!;
  native.scatterAdd(dtypeCode[out.dtype], dtypeCode[idx.dtype]);
}

/** y = x * keep / (1 - p); mask (uint8) records keep. All contiguous. */
