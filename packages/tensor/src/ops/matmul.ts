/**
 * Matrix products: matmul (1-D, 2-D and batched with broadcasting), bmm, mm, and linear
 * (x·Wᵀ + b with the bias fused into the GEMM's C). Operands are passed to GEMM in place
 * when their layout is row- or column-major; other views are copied first.
 */
import * as kernels from '../backend/kernels.js';
import { needsGrad, record } from '../autograd.js';
import type { GemmOperand } from '../backend/kernels.js';
import { isFloating } from '../dtype.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { cast, clone, copy_ } from './elementwise.js';
import { autocastDType } from '../autocast.js';
import { noGrad } from '../autograd.js';
import { sum, sumTo } from './reduce.js';
import { checkSameDevice } from './util.js';
import { expand, reshape, squeeze, transpose, unsqueeze } from './views.js';

/** GEMM operand for a [batch, rows, cols] view; null when it needs a copy. */
function asOperand(x: Tensor): GemmOperand | null {
  const [, r, c] = x.shape as [number, number, number];
  const [sb, sr, sc] = x.strides as [number, number, number];
  const batchStride = x.shape[0] === 1 ? 0 : sb;
  if ((sc === 1 || c === 1) && (r === 1 || sr >= c)) return { t: x, ld: Math.max(r === 1 ? c : sr, 1), batchStride, trans: false };
  if ((sr === 1 || r === 1) && (c === 1 || sc >= r)) return { t: x, ld: Math.max(c === 1 ? r : sc, 1), batchStride, trans: true };
  return null;
}

function operand(x: Tensor): GemmOperand {
  return asOperand(x) ?? asOperand(noGrad(() => clone(x)))!;
}

/**
 * The operands a float32 product multiplies: under autocast, copies rounded to its half dtype
 * (`temps`, disposed by the caller after the GEMM); otherwise a and b themselves.
 */
function productOperands(a: Tensor, b: Tensor, reference: boolean): { a: Tensor; b: Tensor; temps: Tensor[] } {
  const half = autocastDType();
  if (!half || reference || a.dtype !== 'float32' || b.dtype !== 'float32') return { a, b, temps: [] };
  const ah = noGrad(() => cast(a, half)), bh = noGrad(() => cast(b, half));
  return { a: ah, b: bh, temps: [ah, bh] };
}

/** Raw batched product of [B, M, K] and [B, K, N] views into a new [B, M, N] (no autograd). */
function bmmRaw(a: Tensor, b: Tensor, reference = false): Tensor {
  const [B, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  const out = empty([B, M, N], a.dtype, a.device);
  if (out.numel === 0) return out;
  if (K === 0) return noGrad(() => {
    kernels.fill(out, 0);
    return out;
  });
  const p = productOperands(a, b, reference);
  kernels.gemm(B, M, N, K, operand(p.a), operand(p.b), { t: out, ld: N, batchStride: M * N }, 1, 0, reference);
  for (const t of p.temps) t.dispose();
  return out;
}

function checkMatmul(op: string, a: Tensor, b: Tensor): void {
  a.check(op);
  b.check(op);
  checkSameDevice(op, a, b);
  if (a.dtype !== b.dtype) throw new TypeError(`${op}: dtypes differ (${a.dtype} and ${b.dtype})`);
  if (!isFloating(a.dtype)) throw new TypeError(`${op}: expected float32 or float64 tensors, got ${a.dtype}`);
}

/** Batched matrix product of [B, M, K] and [B, K, N]. */
export function bmm(a: Tensor, b: Tensor): Tensor {
  checkMatmul('bmm', a, b);
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1])
    throw new Error(`bmm: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} are not [B, M, K] and [B, K, N]`);
  const out = bmmRaw(a, b);
  if (needsGrad(a, b)) {
    record(out, 'bmm', [a, b], (g) => [
      a.requiresGrad ? bmm(g, transpose(b, 1, 2)) : null,
      b.requiresGrad ? bmm(transpose(a, 1, 2), g) : null,
    ], [a, b]);
  }
  return out;
}

/** Matrix product of two 2-D tensors. */
export function mm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2 || a.shape[1] !== b.shape[0])
    throw new Error(`mm: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied`);
  return reshape(bmm(unsqueeze(a, 0), unsqueeze(b, 0)), [a.shape[0]!, b.shape[1]!]);
}

/** torch.matmul semantics: dot, matrix-vector, matrix, and broadcast batched products. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkMatmul('matmul', a, b);
  if (a.ndim === 0 || b.ndim === 0) throw new Error('matmul: both arguments need at least one dimension');
  const K = a.shape[a.ndim - 1]!;
  const Kb = b.ndim === 1 ? b.shape[0]! : b.shape[b.ndim - 2]!;
  if (K !== Kb) throw new Error(`matmul: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${K} vs ${Kb})`);
  if (a.ndim === 1 && b.ndim === 1) return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), []);
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  if (b.ndim === 2) {
    // [..., M, K] @ [K, N]: fold the batch into M (one GEMM).
    const lead = a.shape.slice(0, -1);
    const out = mm(reshape(a, [lead.reduce((p, q) => p * q, 1), K]), b);
    return reshape(out, [...lead, b.shape[1]!]);
  }
  const ba = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const n = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < n; ++i) {
    const x = ba[ba.length - n + i] ?? 1, y = bb[bb.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`matmul: batch dims of ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be broadcast`);
    batch.push(x === 1 ? y : x);
  }
  const M = a.shape[a.ndim - 2]!, N = b.shape[b.ndim - 1]!;
  const B = batch.reduce((p, q) => p * q, 1);
  const a3 = reshape(expand(a, [...batch, M, K]), [B, M, K]);
  const b3 = reshape(expand(b, [...batch, K, N]), [B, K, N]);
  return reshape(bmm(a3, b3), [...batch, M, N]);
}

/** y = x·Wᵀ + b for x [..., in], W [out, in], b [out]; the bias is written into C before the GEMM. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkMatmul('linear', x, weight);
  if (weight.ndim !== 2 || x.ndim === 0 || x.shape[x.ndim - 1] !== weight.shape[1])
    throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(weight.shape)} ([out_features, in_features])`);
  const outF = weight.shape[0]!, inF = weight.shape[1]!;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias ${fmtShape(bias.shape)} must be [${outF}]`);
  if (bias) {
    bias.check('linear');
    checkSameDevice('linear', x, bias);
    if (bias.dtype !== x.dtype) throw new TypeError(`linear: bias dtype ${bias.dtype} differs from the input's ${x.dtype}`);
  }
  const lead = x.shape.slice(0, -1);
  const x2 = noGrad(() => reshape(x, [lead.reduce((p, q) => p * q, 1), inF]));
  const rows = x2.shape[0]!;
  const out = empty([rows, outF], x.dtype, x.device);
  const be = kernels;
  if (out.numel > 0) {
    if (bias) noGrad(() => copy_(out, bias));
    if (inF === 0) {
      if (!bias) be.fill(out, 0);
    } else {
      const p = productOperands(x2, weight, false);
      be.gemm(1, rows, outF, inF, operand(unsqueeze(p.a, 0)), operand(unsqueeze(transpose(p.b, 0, 1), 0)), { t: out, ld: outF, batchStride: 0 }, 1, bias ? 1 : 0);
      for (const t of p.temps) t.dispose();
    }
  }
  const y = noGrad(() => reshape(out, [...lead, outF]));
  if (needsGrad(x, weight, bias)) {
    record(y, 'linear', [x, weight, bias ?? null], (g) => {
      const g2 = reshape(g, [x2.shape[0]!, outF]);
      return [
        x.requiresGrad ? reshape(mm(g2, weight), x.shape) : null,
        weight.requiresGrad ? mm(transpose(g2, 0, 1), x2) : null,
        bias && bias.requiresGrad ? sumTo(sum(g2, 0), bias.shape) : null,
      ];
    }, [x2, weight]);
  }
  return y;
}

/** Plain triple-loop GEMM of two 2-D tensors (the reference kernel; tests and benchmarks). */
export function mmReference(a: Tensor, b: Tensor): Tensor {
  checkMatmul('mmReference', a, b);
  return reshape(bmmRaw(unsqueeze(a, 0), unsqueeze(b, 0), true), [a.shape[0]!, b.shape[1]!]);
}
