/** Elementwise kernels (unary, predicates, binary, comparisons, where) and fills. Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, writeTensorIter } from './native.js';

export const OPS = native.ops;

export function unary(op: number, out: Tensor, a: Tensor, s0 = 0, s1 = 0): void {
  const i = writeTensorIter(out.shape, [out, a]);
  A[i] = s0;
  A[i + 1] = s1;
  native.ew(0, op, dtypeCode[a.dtype], dtypeCode[out.dtype]);
}

export function pred(op: number, out: Tensor, a: Tensor): void {
  writeTensorIter(out.shape, [out, a]);
  native.ew(1, op, dtypeCode[a.dtype], dtypeCode[out.dtype]);
}

export function binary(op: number, out: Tensor, a: Tensor, b: Tensor, s0 = 0): void {
  const i = writeTensorIter(out.shape, [out, a, b]);
  A[i] = s0;
  A[i + 1] = 0;
  native.ew(2, op, dtypeCode[a.dtype], dtypeCode[out.dtype]);
}

export function compare(op: number, out: Tensor, a: Tensor, b: Tensor): void {
  writeTensorIter(out.shape, [out, a, b]);
  native.ew(3, op, dtypeCode[a.dtype], dtypeCode[out.dtype]);
}

export function where(out: Tensor, cond: Tensor, a: Tensor, b: Tensor): void {
  writeTensorIter(out.shape, [out, cond, a, b]);
  native.ew(4, 0, dtypeCode[a.dtype], dtypeCode[out.dtype]);
}

/** Fills a contiguous tensor. */
export function fill(out: Tensor, value: number): void {
  A[0] = out.storage.handle;
  A[1] = out.offset;
  A[2] = out.numel;
  A[3] = value;
  native.fill(dtypeCode[out.dtype]);
}

/** kind 0 uniform [a, b), 1 normal(a, b), 2 integers [a, b). `out` contiguous. */
