/**
 * Plain float64 JavaScript references for the nn / matmul / loss tests (no library calls),
 * plus a seeded PRNG and comparison helpers.
 */
import { expect } from 'vitest';

export { Rng } from './rng.js';
export { numel, stridesOf } from './ref.js';
import { numel, stridesOf } from './ref.js';


/** Flat row-major values of anything array-like (bigints become numbers). */
export function flat(x: ArrayLike<number | bigint> | { dataSync(): ArrayLike<number | bigint> }): number[] {
  const a = 'dataSync' in x ? x.dataSync() : x;
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; ++i) out[i] = Number(a[i]);
  return out;
}

/** Asserts |a - e| <= atol + rtol·|e| elementwise (NaN matches NaN, ±Inf must match exactly). */
export function expectClose(actual: ArrayLike<number | bigint>, expected: ArrayLike<number>, atol = 1e-10, rtol = 1e-8, what = ''): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < expected.length; ++i) {
    const a = Number(actual[i]), e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) { worst = i; worstErr = Infinity; break; }
      continue;
    }
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (err > 0 && (worst < 0 || err > worstErr)) { worst = i; worstErr = err; }
  }
  if (worst >= 0) expect.fail(`${what} mismatch at ${worst}: got ${Number(actual[worst])}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
}

// ---- matmul ------------------------------------------------------------------------------------

/** C[M,N] = A[M,K] · B[K,N] on flat row-major arrays. */
export function refMm(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): number[] {
  const c = new Array<number>(M * N).fill(0);
  for (let i = 0; i < M; ++i)
    for (let k = 0; k < K; ++k) {
      const av = a[i * K + k]!;
      if (av === 0) continue;
      for (let j = 0; j < N; ++j) c[i * N + j] += av * b[k * N + j]!;
    }
  return c;
}

/** Row-major transpose of an [R, C] matrix. */
export function refTranspose(a: ArrayLike<number>, R: number, C: number): number[] {
  const out = new Array<number>(R * C);
  for (let i = 0; i < R; ++i) for (let j = 0; j < C; ++j) out[j * R + i] = a[i * C + j]!;
  return out;
}

/** Broadcast two batch shapes (NumPy rules). */
export function refBroadcast(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; ++i) {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error('not broadcastable');
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Flat offset in a row-major tensor of `shape` for a (broadcast) multi-index of the output batch. */
function bcastOffset(idx: readonly number[], shape: readonly number[]): number {
  const st = stridesOf(shape);
  const off = idx.length - shape.length;
  let o = 0;
  for (let d = 0; d < shape.length; ++d) o += (shape[d] === 1 ? 0 : idx[d + off]!) * st[d]!;
  return o;
}

/** torch.matmul on flat row-major data; returns [values, shape]. */
export function refMatmul(a: ArrayLike<number>, as: readonly number[], b: ArrayLike<number>, bs: readonly number[]): [number[], number[]] {
  if (as.length === 1 && bs.length === 1) {
    let s = 0;
    for (let i = 0; i < as[0]!; ++i) s += a[i]! * b[i]!;
    return [[s], []];
  }
  const a2 = as.length === 1 ? [1, as[0]!] : as.slice();
  const b2 = bs.length === 1 ? [bs[0]!, 1] : bs.slice();
  const M = a2[a2.length - 2]!, K = a2[a2.length - 1]!, N = b2[b2.length - 1]!;
  const batch = refBroadcast(a2.slice(0, -2), b2.slice(0, -2));
  const B = numel(batch);
  const out: number[] = [];
  const bst = stridesOf(batch);
  for (let q = 0; q < B; ++q) {
    const idx = batch.map((_, d) => Math.floor(q / bst[d]!) % batch[d]!);
    const ao = bcastOffset(idx, a2.slice(0, -2)) * M * K;
    const bo = bcastOffset(idx, b2.slice(0, -2)) * K * N;
    const c = refMm(Array.prototype.slice.call(a, ao, ao + M * K) as number[], Array.prototype.slice.call(b, bo, bo + K * N) as number[], M, K, N);
    out.push(...c);
  }
  let shape = [...batch, M, N];
  if (as.length === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (bs.length === 1) shape = shape.slice(0, -1);
  return [out, shape];
}

// ---- softmax / layer norm -------------------------------------------------------------------------

/**
 * Softmax over the last dim of flat [rows, cols] data with scale and an optional per-element
 * mask (bool keep or additive), fully masked rows give 0 (log: -Infinity).
 */
export function refSoftmaxRows(x: ArrayLike<number>, rows: number, cols: number, opts: { log?: boolean; scale?: number; keep?: ArrayLike<boolean | number>; add?: ArrayLike<number> } = {}): number[] {
  const out = new Array<number>(rows * cols);
  const scale = opts.scale ?? 1;
  for (let r = 0; r < rows; ++r) {
    const s: number[] = [];
    for (let j = 0; j < cols; ++j) {
      const i = r * cols + j;
      let v = x[i]! * scale;
      if (opts.keep && !opts.keep[i]) v = -Infinity;
      if (opts.add) v += opts.add[i]!;
      s.push(v);
    }
    const mx = Math.max(...s);
    if (mx === -Infinity) {
      for (let j = 0; j < cols; ++j) out[r * cols + j] = opts.log ? -Infinity : 0;
      continue;
    }
    let sum = 0;
    for (const v of s) sum += Math.exp(v - mx);
    for (let j = 0; j < cols; ++j) out[r * cols + j] = opts.log ? s[j]! - mx - Math.log(sum) : Math.exp(s[j]! - mx) / sum;
  }
  return out;
}

/** Moves `dim` of a row-major tensor last: returns [data, rows, cols, inverse mapper]. */
export function refMoveLast(x: ArrayLike<number>, shape: readonly number[], dim: number): { data: number[]; back: (y: ArrayLike<number>) => number[] } {
  const nd = shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const perm = [...shape.keys()].filter((i) => i !== d).concat([d]);
  const pshape = perm.map((i) => shape[i]!);
  const st = stridesOf(shape);
  const n = numel(shape);
  const pst = stridesOf(pshape);
  const map = new Array<number>(n); // permuted flat index -> source flat index
  for (let q = 0; q < n; ++q) {
    let src = 0;
    for (let k = 0; k < nd; ++k) src += (Math.floor(q / pst[k]!) % pshape[k]!) * st[perm[k]!]!;
    map[q] = src;
  }
  const data = map.map((s) => x[s]!);
  return {
    data,
    back: (y) => {
      const out = new Array<number>(n);
      for (let q = 0; q < n; ++q) out[map[q]!] = y[q]!;
      return out;
    },
  };
}

/** Softmax of a row-major tensor over any dim (mask given per element, already broadcast). */
export function refSoftmax(x: ArrayLike<number>, shape: readonly number[], dim: number, opts: { log?: boolean; scale?: number; keep?: ArrayLike<boolean | number>; add?: ArrayLike<number> } = {}): number[] {
  const nd = shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const cols = shape[d]!;
  const rows = cols === 0 ? 0 : numel(shape) / cols;
  const mv = refMoveLast(x, shape, d);
  const keep = opts.keep ? refMoveLast(Array.from(opts.keep, Number), shape, d).data : undefined;
  const add = opts.add ? refMoveLast(opts.add, shape, d).data : undefined;
  return mv.back(refSoftmaxRows(mv.data, rows, cols, { log: opts.log, scale: opts.scale, keep, add }));
}

/** Broadcasts flat data of `from` (row-major) to `to`. */
export function refExpand<X>(x: ArrayLike<X>, from: readonly number[], to: readonly number[]): X[] {
  const n = numel(to);
  const tst = stridesOf(to);
  const out = new Array<X>(n);
  for (let q = 0; q < n; ++q) {
    const idx = to.map((_, d) => Math.floor(q / tst[d]!) % to[d]!);
    out[q] = x[bcastOffset(idx, from)]!;
  }
  return out;
}

/** Layer norm over the trailing `cols` elements of each row (biased variance). */
export function refLayerNorm(x: ArrayLike<number>, rows: number, cols: number, w?: ArrayLike<number> | null, b?: ArrayLike<number> | null, eps = 1e-5): number[] {
  const out = new Array<number>(rows * cols);
  for (let r = 0; r < rows; ++r) {
    let mu = 0;
    for (let j = 0; j < cols; ++j) mu += x[r * cols + j]!;
    mu /= cols;
    let v = 0;
    for (let j = 0; j < cols; ++j) v += (x[r * cols + j]! - mu) ** 2;
    v /= cols;
    const rs = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < cols; ++j) out[r * cols + j] = (x[r * cols + j]! - mu) * rs * (w ? w[j]! : 1) + (b ? b[j]! : 0);
  }
  return out;
}

// ---- activations / losses -----------------------------------------------------------------------

/** erf by Abramowitz–Stegun 7.1.26 is too coarse; this uses a series / continued fraction (1e-15). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series
    let sum = 0, term = ax, n = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum) || n < 3) {
      sum += term / (2 * n + 1);
      n++;
      term *= (-ax * ax) / n;
      if (n > 200) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz)
  const z = ax;
  let f = z, C = z, D = 0;
  for (let i = 1; i < 200; ++i) {
    const an = i / 2;
    D = z + an * D;
    D = 1 / D;
    C = z + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

export const refGelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const refGeluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Cross entropy per row of logits [N, C] against class targets (torch semantics); returns per-row losses and the count of valid rows. */
export function refCrossEntropyRows(logits: ArrayLike<number>, N: number, C: number, target: ArrayLike<number>, ignoreIndex = -100, smoothing = 0): { losses: number[]; valid: number } {
  const lp = refSoftmaxRows(logits, N, C, { log: true });
  const losses: number[] = [];
  let valid = 0;
  for (let i = 0; i < N; ++i) {
    const t = target[i]!;
    if (t === ignoreIndex) {
      losses.push(0);
      continue;
    }
    valid++;
    let mean = 0;
    for (let j = 0; j < C; ++j) mean += lp[i * C + j]!;
    mean /= C;
    losses.push((1 - smoothing) * -lp[i * C + t]! + smoothing * -mean);
  }
  return { losses, valid };
}

/** BCE with logits, per element (pos weight per element, already broadcast). */
export function refBceWithLogits(x: ArrayLike<number>, y: ArrayLike<number>, pw?: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; ++i) {
    const xi = x[i]!, yi = y[i]!, p = pw ? pw[i]! : 1;
    const sig = 1 / (1 + Math.exp(-xi));
    out.push(-(p * yi * Math.log(sig) + (1 - yi) * Math.log(1 - sig)));
  }
  return out;
}
