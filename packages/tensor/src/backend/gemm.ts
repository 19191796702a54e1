/** GEMM (strided batched, row-major). Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put } from './native.js';
import { countFlops } from './flops.js';

export interface GemmOperand {
  t: Tensor;
  ld: number;
  batchStride: number;
  trans: boolean;
}

/** C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major. */
export function gemm(batch: number, M: number, N: number, K: number, a: GemmOperand, b: GemmOperand, c: { t: Tensor; ld: number; batchStride: number },
  alpha = 1, beta = 0, reference = false): void {
  countFlops(2 * batch * M * N * K);
  let i = 0;
  A[i++] = batch;
  A[i++] = M;
  A[i++] = N;
  A[i++] = K;
  A[i++] = alpha;
  A[i++] = beta;
  A[i++] = a.ld;
  A[i++] = b.ld;
  A[i++] = c.ld;
  A[i++] = a.batchStride;
  A[i++] = b.batchStride;
  A[i++] = c.batchStride;
  i = put(i, a.t);
  i = put(i, b.t);
  put(i, c.t);
  // A and B share a dtype; C may be float32 under bfloat16 / float16 operands (a mixed-precision product)
  if (reference) native.gemmReference(dtypeCode[c.t.dtype], a.trans ? 1 : 0, b.trans ? 1 : 0);
  else native.gemm(dtypeCode[a.t.dtype], a.trans ? 1 : 0, b.trans ? 1 : 0, dtypeCode[c.t.dtype]);
}

/** Block shared by indexSelect and indexAdd: outer, size, inner, m, then three operands. */
