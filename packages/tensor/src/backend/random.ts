/** Random numbers (Philox streams: uniform, normal, integers) and dropout. Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put } from './native.js';

export function random(kind: number, out: Tensor, seed: number, offset: number, a: number, b: number): void {
  A[0] = out.storage.handle;
  A[1] = out.offset;
  A[2] = out.numel;
  A[3] = seed;
  A[4] = offset;
  A[5] = a;
  A[6] = b;
  native.random(kind, dtypeCode[out.dtype]);
}

/**
 * Reduction of `x` into `out` (same ndim as x, size 1 on reduced dims) — out's strides on
 * reduced dims are written as 0. op: 0 sum, 1 max, 2 min, 3 prod.
 */
export function dropout(y: Tensor, mask: Tensor, x: Tensor, p: number, seed: number, offset: number): void {
  A[0] = x.numel;
  A[1] = p;
  A[2] = seed;
  A[3] = offset;
  let i = put(4, x);
  i = put(i, y);
  put(i, mask);
  native.dropout(dtypeCode[x.dtype]);
}
