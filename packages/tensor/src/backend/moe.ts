/** MoE kernels: slot assignment, fused gating, permute / unpermute, grouped GEMMs, the fused expert FFN. Each entry writes the argument block and makes one native call, which runs the kernel of the operands' device. */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put } from './native.js';
import { countFlops } from './flops.js';

export function moeAssign(expert: Tensor, priority: Tensor | null, S: number, k: number, E: number, C: number, slot: Tensor, countsBefore: Tensor, countsAfter: Tensor,
  countsFirst: Tensor | null = null, row: Tensor | null = null): void {
  let i = 0;
  A[i++] = S;
  A[i++] = k;
  A[i++] = E;
  A[i++] = C;
  i = put(i, expert);
  if (priority) i = put(i, priority);
  i = put(i, slot);
  i = put(i, countsBefore);
  i = put(i, countsAfter);
  if (countsFirst) i = put(i, countsFirst);
  if (row) put(i, row);
  native.moeAssign(priority ? 1 : 0, priority ? 1 : 0, countsFirst ? 1 : 0, row ? 1 : 0);
}

function moeGateHeader(S: number, E: number, k: number, P: number, eps: number, auxScale: number): number {
  A[0] = S;
  A[1] = E;
  A[2] = k;
  A[3] = P;
  A[4] = eps;
  A[5] = auxScale;
  return 6;
}

/**
 * Fused MoE gating forward (native-cuda cpu/moe_gate.h): softmax gates [S, E], top-k expert
 * index (int64 [S, k]), optional gate values of the choices (float64 [S, k]), P partial
 * column sums of the gates (float64 [P, E]) and optional lse [S]; all contiguous.
 */
export function moeGate(logits: Tensor, gates: Tensor, index: Tensor, topval: Tensor | null, colPartial: Tensor, lse: Tensor | null, S: number, E: number, k: number, P: number): void {
  let i = moeGateHeader(S, E, k, P, 0, 0);
  i = put(i, logits);
  i = put(i, gates);
  i = put(i, index);
  i = put(i, topval);
  i = put(i, colPartial);
  put(i, lse);
  native.moeGate(dtypeCode[logits.dtype], topval ? 1 : 0, lse ? 1 : 0);
}

/** Combine weights [S, k], balance loss [1] and optional z-loss [1] from moeGate's outputs and moeAssign's slots. */
export function moeCombine(gates: Tensor, index: Tensor, slot: Tensor, colPartial: Tensor, counts: Tensor, lse: Tensor | null, cw: Tensor, aux: Tensor, z: Tensor | null,
  S: number, E: number, k: number, P: number, eps: number, auxScale: number): void {
  let i = moeGateHeader(S, E, k, P, eps, auxScale);
  i = put(i, gates);
  i = put(i, index);
  i = put(i, slot);
  i = put(i, colPartial);
  i = put(i, counts);
  if (z) i = put(i, lse);
  i = put(i, cw);
  i = put(i, aux);
  put(i, z);
  native.moeCombine(dtypeCode[gates.dtype], z ? 1 : 0);
}

/** dlogits [S, E] of the fused gating from the gradients of gates, combine weights, aux and z (each optional). */
export function moeGateBackward(dlogits: Tensor, gates: Tensor, index: Tensor, slot: Tensor, counts: Tensor, lse: Tensor | null, gGates: Tensor | null, gCw: Tensor | null,
  gAux: Tensor | null, gZ: Tensor | null, S: number, E: number, k: number, eps: number, auxScale: number): void {
  let i = moeGateHeader(S, E, k, 1, eps, auxScale);
  i = put(i, gates);
  i = put(i, index);
  i = put(i, slot);
  i = put(i, counts);
  if (gZ) i = put(i, lse);
  i = put(i, gGates);
  i = put(i, gCw);
  i = put(i, gAux);
  i = put(i, gZ);
  put(i, dlogits);
  native.moeGateBackward(dtypeCode[dlogits.dtype], gGates ? 1 : 0, gCw ? 1 : 0, gAux ? 1 : 0, gZ ? 1 : 0);
}

function permuteHeader(S: number, k: number, d: number, R: number, row: Tensor): number {
  A[0] = S;
  A[1] = k;
  A[2] = d;
  A[3] = R;
  return put(4, row);
}

/**
 * MoE permute (CPU), all contiguous. Permute: `dst[row[a]] = w[a]·src[a / k]` for rows ≥ 0,
 * untargeted rows 0. Unpermute: `dst[s] = Σ_j w[s·k+j]·src[row[s·k+j]]` over kept choices.
 */
export function moePermute(dst: Tensor, src: Tensor, row: Tensor, w: Tensor | null, S: number, k: number, d: number, R: number, unpermute: boolean): void {
  let i = permuteHeader(S, k, d, R, row);
  if (w) i = put(i, w);
  i = put(i, src);
  put(i, dst);
  native.moePermute(dtypeCode[src.dtype], w ? 1 : 0, unpermute ? 1 : 0);
}

/** `dw[a] = ⟨dout[a / k], y[row[a]]⟩` (0 when dropped). */
export function moeUnpermuteWeightGrad(dw: Tensor, dout: Tensor, y: Tensor, row: Tensor, S: number, k: number, d: number, R: number): void {
  let i = permuteHeader(S, k, d, R, row);
  i = put(i, dout);
  i = put(i, y);
  put(i, dw);
  native.moeUnpermuteWeightGrad(dtypeCode[y.dtype]);
}

function groupHeader(G: number, K: number, N: number, R: number, sizes: Tensor): number {
  A[0] = G;
  A[1] = K;
  A[2] = N;
  A[3] = R;
  return put(4, sizes);
}

/** Grouped linear (CPU): `y_g = x_g·w_g + b_g` over consecutive row groups of `sizes` (int64 [G]). */
export function groupedLinear(y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, sizes: Tensor, G: number, K: number, N: number, R: number, reference = false): void {
  countFlops(2 * R * K * N);
  let i = groupHeader(G, K, N, R, sizes);
  i = put(i, x);
  i = put(i, w);
  if (b) i = put(i, b);
  put(i, y);
  native.groupedLinear(dtypeCode[x.dtype], b ? 1 : 0, reference ? 1 : 0);
}

/** Grouped linear backward (CPU): any of dx, dw, db may be null. */
export function groupedLinearBackward(x: Tensor, w: Tensor, dy: Tensor, dx: Tensor | null, dw: Tensor | null, db: Tensor | null, sizes: Tensor,
  G: number, K: number, N: number, R: number, reference = false): void {
  countFlops(2 * R * K * N * ((dx ? 1 : 0) + (dw ? 1 : 0)));
  let i = groupHeader(G, K, N, R, sizes);
  i = put(i, x);
  i = put(i, w);
  i = put(i, dy);
  if (dx) i = put(i, dx);
  if (dw) i = put(i, dw);
  if (db) put(i, db);
  native.groupedLinearBackward(dtypeCode[x.dtype], dx ? 1 : 0, dw ? 1 : 0, db ? 1 : 0, reference ? 1 : 0);
}

/** Fused expert FFN forward (CPU): per group, pre = x·w1 + b1, hid = act(pre), y = hid·w2 + b2. */
export function expertFFN(x: Tensor, w1: Tensor, b1: Tensor | null, w2: Tensor, b2: Tensor | null, pre: Tensor, hid: Tensor, y: Tensor, sizes: Tensor,
  G: number, D: number, H: number, R: number, act: number, reference = false): void {
  countFlops(4 * R * D * H); // x·w1 and hid·w2
  let i = groupHeader(G, D, H, R, sizes);
  i = put(i, x);
  i = put(i, w1);
  if (b1) i = put(i, b1);
  i = put(i, w2);
  if (b2) i = put(i, b2);
  i = put(i, pre);
  i = put(i, hid);
  put(i, y);
  native.expertFFN(dtypeCode[x.dtype], act, b1 ? 1 : 0, b2 ? 1 : 0, reference ? 1 : 0);
}

/** Fused expert FFN backward (CPU); null outputs are not computed. */
export function expertFFNBackward(x: Tensor, w1: Tensor, w2: Tensor, pre: Tensor, hid: Tensor, dy: Tensor, scratch: Tensor,
  out: { dx: Tensor | null; dw1: Tensor | null; db1: Tensor | null; dw2: Tensor | null; db2: Tensor | null }, sizes: Tensor,
  G: number, D: number, H: number, R: number, act: number, reference = false): void {
  // dhid = dy·w2ᵀ (for dx, dw1 or db1), dw2 = hidᵀ·dy, dx = dpre·w1ᵀ, dw1 = xᵀ·dpre
  const products = (out.dx || out.dw1 || out.db1 ? 1 : 0) + (out.dw2 ? 1 : 0) + (out.dx ? 1 : 0) + (out.dw1 ? 1 : 0);
  countFlops(2 * R * D * H * products);
  let i = groupHeader(G, D, H, R, sizes);
  for (const t of [x, w1, w2, pre, hid, dy, scratch, out.dx, out.dw1, out.db1, out.dw2, out.db2]) i = put(i, t);
  const mask = (out.dx ? 1 : 0) | (out.dw1 ? 2 : 0) | (out.db1 ? 4 : 0) | (out.dw2 ? 8 : 0) | (out.db2 ? 16 : 0);
  native.expertFFNBackward(dtypeCode[x.dtype], act, mask, reference ? 1 : 0);
}
