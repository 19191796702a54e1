/** Fused neural-network kernels: softmax, flash attention, cross entropy, layer norm (forward and backward). Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put, rowHeader, operand } from './native.js';
import { countFlops } from './flops.js';

export function softmax(y: Tensor, x: Tensor, log: boolean, scale: number, mask?: Tensor): void {
  let i = rowHeader(x);
  A[i++] = scale;
  i = put(put(i, x), y);
  let kind = 0;
  if (mask) {
    kind = mask.dtype === 'bool' ? 1 : 2;
    const nd = x.shape.length;
    const off = nd - mask.shape.length;
    const st = (d: number) => {
      const md = d - off;
      return md < 0 || mask.shape[md] === 1 ? 0 : mask.strides[md]!;
    };
    A[i++] = mask.storage.handle;
    A[i++] = mask.offset;
    A[i++] = nd - 1;
    for (let d = 0; d < nd - 1; ++d) A[i++] = x.shape[d]!;
    for (let d = 0; d < nd - 1; ++d) A[i++] = st(d);
    A[i++] = st(nd - 1);
  }
  native.softmax(dtypeCode[x.dtype], log ? 1 : 0, kind);
}

export function softmaxBackward(dx: Tensor, y: Tensor, g: Tensor, log: boolean): void {
  put(put(put(rowHeader(y), y), g), dx);
  native.softmaxBackward(dtypeCode[y.dtype], log ? 1 : 0);
}

/**
 * The attention header: B, H, Lq, Lk, D, Dv, scale, q, k, v, out, lse (all contiguous,
 * q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]).
 */
/** Multiply-adds ×2 of one attention pass's two products (q·kᵀ and p·v): 2·B·H·Lq·Lk·(D + Dv). */
function attentionFlops(q: Tensor, k: Tensor, v: Tensor): number {
  const [B, H, Lq, D] = q.shape as [number, number, number, number];
  return 2 * B * H * Lq * k.shape[2]! * (D + v.shape[3]!);
}

function attentionHeader(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, scale: number): number {
  const [B, H, Lq, D] = q.shape as [number, number, number, number];
  A[0] = B;
  A[1] = H;
  A[2] = Lq;
  A[3] = k.shape[2]!;
  A[4] = D;
  A[5] = v.shape[3]!;
  A[6] = scale;
  return put(put(put(put(put(7, q), k), v), out), lse);
}

/** The mask operand (broadcastable to [B, H, Lq, Lk]): handle, offset, 4 strides; returns [slot, kind]. */
function attentionMask(i: number, q: Tensor, k: Tensor, mask: Tensor | null): [number, number] {
  if (!mask) return [i, 0];
  const shape = [q.shape[0]!, q.shape[1]!, q.shape[2]!, k.shape[2]!];
  const off = 4 - mask.ndim;
  A[i++] = mask.storage.handle;
  A[i++] = mask.offset;
  for (let d = 0; d < 4; ++d) {
    const md = d - off;
    A[i++] = md < 0 || mask.shape[md] === 1 || shape[d] === 1 ? 0 : mask.strides[md]!;
  }
  return [i, mask.dtype === 'bool' ? 1 : 2];
}

/** Fused attention forward: out [B,H,Lq,Dv] and lse [B,H,Lq] (float64 for float64 inputs, else float32). */
export function attention(out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, scale: number, mask: Tensor | null, causal: boolean): void {
  countFlops(attentionFlops(q, k, v));
  const [, kind] = attentionMask(attentionHeader(q, k, v, out, lse, scale), q, k, mask);
  native.attention(dtypeCode[q.dtype], kind, causal ? 1 : 0);
}

/** Fused attention backward: dq, dk, dv from q, k, v, out, lse and dout (all contiguous). */
export function attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor,
  scale: number, mask: Tensor | null, causal: boolean): void {
  countFlops(2 * attentionFlops(q, k, v)); // dv = pᵀ·dout, dp = dout·vᵀ, dq = ds·k, dk = dsᵀ·q
  const i = put(put(put(put(attentionHeader(q, k, v, out, lse, scale), dout), dq), dk), dv);
  const [, kind] = attentionMask(i, q, k, mask);
  native.attentionBackward(dtypeCode[q.dtype], kind, causal ? 1 : 0);
}

function crossEntropyHeader(N: number, C: number, ignoreIndex: number, smoothing: number): number {
  A[0] = N;
  A[1] = C;
  A[2] = ignoreIndex;
  A[3] = smoothing;
  return 4;
}

/**
 * Fused cross entropy of contiguous logits [N, C] against contiguous targets [N] (int32 /
 * int64): per-row loss and lse [N] (float64 for float64 logits, else float32).
 */
export function crossEntropy(loss: Tensor, lse: Tensor, logits: Tensor, target: Tensor, N: number, C: number, ignoreIndex: number, smoothing: number): void {
  let i = crossEntropyHeader(N, C, ignoreIndex, smoothing);
  i = put(i, logits);
  i = put(i, target);
  i = put(i, loss);
  put(i, lse);
  native.crossEntropy(dtypeCode[logits.dtype], dtypeCode[target.dtype]);
}

/** dlogits [N, C] = (softmax − (1 − ε)·onehot − ε/C)·g (0 rows where ignored); g, lse [N] contiguous. */
export function crossEntropyBackward(dlogits: Tensor, logits: Tensor, target: Tensor, lse: Tensor, g: Tensor, N: number, C: number, ignoreIndex: number, smoothing: number): void {
  let i = crossEntropyHeader(N, C, ignoreIndex, smoothing);
  i = put(i, logits);
  i = put(i, target);
  i = put(i, lse);
  i = put(i, g);
  put(i, dlogits);
  native.crossEntropyBackward(dtypeCode[logits.dtype], dtypeCode[target.dtype]);
}

export function layerNorm(y: Tensor, mean: Tensor, rstd: Tensor, x: Tensor, w: Tensor | null, b: Tensor | null, eps: number): void {
  let i = rowHeader(x);
  A[i++] = eps;
  i = put(i, x);
  i = put(i, w);
  i = put(i, b);
  i = put(i, y);
  i = put(i, mean);
  put(i, rstd);
  native.layerNorm(dtypeCode[x.dtype], w ? 1 : 0, b ? 1 : 0);
}

export function layerNormBackward(x: Tensor, w: Tensor | null, mean: Tensor, rstd: Tensor, g: Tensor,
  dx: Tensor | null, dw: Tensor | null, db: Tensor | null): void {
  let i = rowHeader(x);
  i = put(i, x);
  i = put(i, w);
  i = put(i, mean);
  i = put(i, rstd);
  i = put(i, g);
  i = put(i, dx);
  i = put(i, dw);
  put(i, db);
  native.layerNormBackward(dtypeCode[x.dtype], w ? 1 : 0, dx ? 1 : 0, dw ? 1 : 0, db ? 1 : 0);
}
