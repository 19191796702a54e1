/**
 * Kernel entry points over tensors: each writes the argument block and makes one native
 * call. The native side checks every view against its storage's size, so a wrong stride
 * here raises an error instead of touching stray memory.
 */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { A, put, writeTensorIter } from './native.js';

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
  const [, kind] = attentionMask(attentionHeader(q, k, v, out, lse, scale), q, k, mask);
  native.attention(dtypeCode[q.dtype], kind, causal ? 1 : 0);
}

/** Fused attention backward: dq, dk, dv from q, k, v, out, lse and dout (all contiguous). */
export function attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor,
  scale: number, mask: Tensor | null, causal: boolean): void {
  const i = put(put(put(put(attentionHeader(q, k, v, out, lse, scale), dout), dq), dk), dv);
  const [, kind] = attentionMask(i, q, k, mask);
  native.attentionBackward(dtypeCode[q.dtype], kind, causal ? 1 : 0);
}

/** Writes rows and cols of x seen as contiguous rows of its last dim; returns the next slot. */
function rowHeader(x: Tensor): number {
  const cols = x.shape[x.shape.length - 1] ?? 1;
  A[0] = cols === 0 ? 0 : x.numel / cols;
  A[1] = cols;
  return 2;
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
  let i = groupHeader(G, D, H, R, sizes);
  for (const t of [x, w1, w2, pre, hid, dy, scratch, out.dx, out.dw1, out.db1, out.dw2, out.db2]) i = put(i, t);
  const mask = (out.dx ? 1 : 0) | (out.dw1 ? 2 : 0) | (out.db1 ? 4 : 0) | (out.dw2 ? 8 : 0) | (out.db2 ? 16 : 0);
  native.expertFFNBackward(dtypeCode[x.dtype], act, mask, reference ? 1 : 0);
}

export interface GemmOperand {
  t: Tensor;
  ld: number;
  batchStride: number;
  trans: boolean;
}

/** C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major. */
export function gemm(batch: number, M: number, N: number, K: number, a: GemmOperand, b: GemmOperand, c: { t: Tensor; ld: number; batchStride: number },
  alpha = 1, beta = 0, reference = false): void {
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
