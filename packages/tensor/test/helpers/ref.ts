/**
 * Plain-JS float64 references for the creation / elementwise / reduction / view tests.
 * A `Ref` is a row-major flat array plus a shape; every function here is ordinary index
 * math (broadcasting, strided gathers, reductions) and never calls the library, so the
 * library is checked against something independent of itself.
 *
 * The only library calls are in the bridging helpers at the bottom (building tensors from
 * a Ref, in several memory layouts, and reading a tensor's values back for comparison).
 */
import { expect } from 'vitest';
import * as T from '../../src/index.js';

export interface Ref {
  shape: number[];
  data: number[];
}

// ---- PRNG ------------------------------------------------------------------------------------

export { Rng } from './rng.js';
import { Rng } from './rng.js';

// ---- shape math --------------------------------------------------------------------------------

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= shape[d]!;
  }
  return st;
}

/** Multi-index of linear index i in `shape`. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; --d) {
    const s = shape[d]!;
    idx[d] = i % s;
    i = Math.floor(i / s);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; ++d) i = i * shape[d]! + idx[d]!;
  return i;
}

/** NumPy broadcasting of shapes; throws on a mismatch. */
export function bshape(...shapes: (readonly number[])[]): number[] {
  const n = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; ++i) {
      const d = n - s.length + i;
      const v = s[i]!;
      if (out[d] === 1) out[d] = v;
      else if (v !== 1 && v !== out[d]) throw new Error(`ref: cannot broadcast ${JSON.stringify(shapes)}`);
    }
  }
  return out;
}

/** Value of `a` at a multi-index of a broadcast shape (trailing alignment, size-1 dims repeat). */
export function bget(a: Ref, idx: readonly number[]): number {
  const off = idx.length - a.shape.length;
  let i = 0;
  for (let d = 0; d < a.shape.length; ++d) {
    const s = a.shape[d]!;
    i = i * s + (s === 1 ? 0 : idx[d + off]!);
  }
  return a.data[i]!;
}

// ---- construction ------------------------------------------------------------------------------

export function ref(shape: readonly number[], data: readonly number[]): Ref {
  if (numel(shape) !== data.length) throw new Error('ref: data does not fill shape');
  return { shape: shape.slice(), data: data.slice() };
}

/** Uniform values in [lo, hi); `f32` rounds them to float32 so both sides start equal. */
export function randRef(rng: Rng, shape: readonly number[], lo = -2, hi = 2, f32 = true): Ref {
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const v = rng.uniform(lo, hi);
    data[i] = f32 ? Math.fround(v) : v;
  }
  return { shape: shape.slice(), data };
}

/** Small integers in [lo, hi) (ties are frequent: good for comparisons, max/min, topk). */
export function randIntRef(rng: Rng, shape: readonly number[], lo = -3, hi = 4): Ref {
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) data[i] = rng.int(lo, hi);
  return { shape: shape.slice(), data };
}

export function nested(a: Ref): unknown {
  if (a.shape.length === 0) return a.data[0];
  let pos = 0;
  const build = (d: number): unknown[] => {
    const out: unknown[] = [];
    for (let i = 0; i < a.shape[d]!; ++i) out.push(d === a.shape.length - 1 ? a.data[pos++] : build(d + 1));
    return out;
  };
  return build(0);
}

// ---- elementwise -------------------------------------------------------------------------------

export function map(a: Ref, f: (x: number) => number): Ref {
  return { shape: a.shape.slice(), data: a.data.map(f) };
}

export function zip(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const shape = bshape(a.shape, b.shape);
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const idx = unravel(i, shape);
    data[i] = f(bget(a, idx), bget(b, idx));
  }
  return { shape, data };
}

export function zip3(a: Ref, b: Ref, c: Ref, f: (x: number, y: number, z: number) => number): Ref {
  const shape = bshape(a.shape, b.shape, c.shape);
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const idx = unravel(i, shape);
    data[i] = f(bget(a, idx), bget(b, idx), bget(c, idx));
  }
  return { shape, data };
}

/** erf in float64: Taylor series for |x| < 3, continued fraction of erfc beyond. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a < 3) {
    let term = a, sum = a;
    const x2 = a * a;
    for (let n = 1; n < 200; ++n) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  const r = 1 - erfcPos(a);
  return x < 0 ? -r : r;
}

/** erfc(x) for x >= 3 (continued fraction, evaluated backwards). */
function erfcPos(x: number): number {
  if (x === Infinity) return 0;
  let f = x;
  for (let n = 80; n >= 1; --n) f = x + n / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/** erfc for any x, accurate in the tails. */
export function erfc(x: number): number {
  if (x >= 3) return erfcPos(x);
  if (x <= -3) return 2 - erfcPos(-x);
  return 1 - erf(x);
}

export const refOps = {
  gelu: (x: number) => 0.5 * x * erfc(-x / Math.SQRT2),
  geluTanh: (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
  sigmoid: (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  sign: (x: number) => (Number.isNaN(x) ? NaN : x > 0 ? 1 : x < 0 ? -1 : 0),
  relu: (x: number) => (x < 0 ? 0 : x),
  /** torch.maximum: NaN propagates. */
  maximum: (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
};

// ---- reductions --------------------------------------------------------------------------------

export function normDims(ndim: number, dims: number | readonly number[] | undefined): number[] {
  if (dims === undefined) return [...Array(ndim).keys()];
  const list = typeof dims === 'number' ? [dims] : dims;
  // a 0-d tensor accepts dim 0 / -1 (as PyTorch) and has nothing to reduce
  return [...new Set(list.map((d) => (d < 0 ? d + Math.max(ndim, 1) : d)))].filter((d) => d < ndim).sort((x, y) => x - y);
}

/**
 * Generic reduction: for each output element, f receives the values along the reduced dims
 * (in row-major order of those dims).
 */
export function reduce(a: Ref, dims: number | readonly number[] | undefined, keepdim: boolean, f: (vals: number[]) => number): Ref {
  const rd = normDims(a.shape.length, dims);
  const kept = a.shape.map((s, d) => (rd.includes(d) ? 1 : s));
  const outShape = keepdim ? kept : a.shape.filter((_, d) => !rd.includes(d));
  const redShape = rd.map((d) => a.shape[d]!);
  const nOut = numel(kept), nRed = numel(redShape);
  const data = new Array<number>(nOut);
  const st = stridesOf(a.shape);
  for (let o = 0; o < nOut; ++o) {
    const oi = unravel(o, kept);
    const vals = new Array<number>(nRed);
    for (let r = 0; r < nRed; ++r) {
      const ri = unravel(r, redShape);
      let off = 0;
      for (let d = 0; d < a.shape.length; ++d) {
        const k = rd.indexOf(d);
        off += (k >= 0 ? ri[k]! : oi[d]!) * st[d]!;
      }
      vals[r] = a.data[off]!;
    }
    data[o] = f(vals);
  }
  return { shape: outShape, data };
}

export const reducers = {
  sum: (v: number[]) => v.reduce((s, x) => s + x, 0),
  prod: (v: number[]) => v.reduce((s, x) => s * x, 1),
  mean: (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length,
  variance: (correction: number) => (v: number[]) => {
    const m = v.reduce((s, x) => s + x, 0) / v.length;
    return v.reduce((s, x) => s + (x - m) * (x - m), 0) / Math.max(0, v.length - correction);
  },
  /** First index of the max (NaN wins, first NaN). */
  argmax: (v: number[]) => {
    let bi = 0;
    for (let i = 1; i < v.length; ++i) {
      if (Number.isNaN(v[bi]!)) break;
      if (Number.isNaN(v[i]!) || v[i]! > v[bi]!) bi = i;
    }
    return bi;
  },
  argmin: (v: number[]) => {
    let bi = 0;
    for (let i = 1; i < v.length; ++i) {
      if (Number.isNaN(v[bi]!)) break;
      if (Number.isNaN(v[i]!) || v[i]! < v[bi]!) bi = i;
    }
    return bi;
  },
  max: (v: number[]) => v[reducers.argmax(v)]!,
  min: (v: number[]) => v[reducers.argmin(v)]!,
  logsumexp: (v: number[]) => {
    const m = Math.max(...v);
    if (!Number.isFinite(m)) return Math.log(v.reduce((s, x) => s + Math.exp(x), 0));
    return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  },
};

/** Values along `dim` for every other index: returns [outer-major list of lines, the line shape]. */
export function lines(a: Ref, dim: number): { lines: number[][]; others: number[] } {
  const d = dim < 0 ? dim + a.shape.length : dim;
  const others = a.shape.filter((_, i) => i !== d);
  const n = a.shape[d]!;
  const st = stridesOf(a.shape);
  const out: number[][] = [];
  for (let o = 0; o < numel(others); ++o) {
    const oi = unravel(o, others);
    const line: number[] = [];
    for (let j = 0; j < n; ++j) {
      let off = 0, k = 0;
      for (let q = 0; q < a.shape.length; ++q) off += (q === d ? j : oi[k++]!) * st[q]!;
      line.push(a.data[off]!);
    }
    out.push(line);
  }
  return { lines: out, others };
}

/** Inverse of `lines`: builds a Ref whose dim `dim` holds each line. */
export function fromLines(ls: number[][], others: readonly number[], dim: number, len: number): Ref {
  const shape = others.slice();
  shape.splice(dim, 0, len);
  const data = new Array<number>(numel(shape));
  const st = stridesOf(shape);
  ls.forEach((line, o) => {
    const oi = unravel(o, others);
    for (let j = 0; j < len; ++j) {
      let off = 0, k = 0;
      for (let q = 0; q < shape.length; ++q) off += (q === dim ? j : oi[k++]!) * st[q]!;
      data[off] = line[j]!;
    }
  });
  return { shape, data };
}

// ---- views -------------------------------------------------------------------------------------

/** A view described by strides over a Ref's flat data (materialised). */
export function strided(a: Ref, shape: readonly number[], strides: readonly number[], offset: number): Ref {
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const idx = unravel(i, shape);
    let off = offset;
    for (let d = 0; d < shape.length; ++d) off += idx[d]! * strides[d]!;
    data[i] = a.data[off]!;
  }
  return { shape: shape.slice(), data };
}

export function permute(a: Ref, dims: readonly number[]): Ref {
  const st = stridesOf(a.shape);
  return strided(a, dims.map((d) => a.shape[d]!), dims.map((d) => st[d]!), 0);
}

export function transpose(a: Ref, d0: number, d1: number): Ref {
  const nd = a.shape.length;
  const x = d0 < 0 ? d0 + nd : d0, y = d1 < 0 ? d1 + nd : d1;
  const dims = [...Array(nd).keys()];
  dims[x] = y;
  dims[y] = x;
  return permute(a, dims);
}

/** Python-style a[..., start:end:step, ...] along dim (step > 0). */
export function slice(a: Ref, dim: number, start = 0, end?: number, step = 1): Ref {
  const nd = a.shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const n = a.shape[d]!;
  let s = start < 0 ? start + n : start;
  let e = end === undefined ? n : end < 0 ? end + n : end;
  s = Math.min(Math.max(s, 0), n);
  e = Math.min(Math.max(e, s), n);
  const len = Math.ceil((e - s) / step);
  const st = stridesOf(a.shape);
  const shape = a.shape.slice();
  shape[d] = len;
  const strides = st.slice();
  strides[d] = st[d]! * step;
  return strided(a, shape, strides, s * st[d]!);
}

export function select(a: Ref, dim: number, index: number): Ref {
  const nd = a.shape.length;
  const d = dim < 0 ? dim + nd : dim;
  const i = index < 0 ? index + a.shape[d]! : index;
  const s = slice(a, d, i, i + 1);
  return { shape: s.shape.filter((_, q) => q !== d), data: s.data };
}

export function expand(a: Ref, shape: readonly number[]): Ref {
  const n = numel(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; ++i) data[i] = bget(a, unravel(i, shape));
  return { shape: shape.slice(), data };
}

export function reshape(a: Ref, shape: readonly number[]): Ref {
  return { shape: shape.slice(), data: a.data.slice() };
}

// ---- bridging to tensors (the only library calls) ---------------------------------------------

export type Layout = 'contiguous' | 'transposed' | 'strided' | 'offset-permuted';
export const LAYOUTS: readonly Layout[] = ['contiguous', 'transposed', 'strided', 'offset-permuted'];

const GARBAGE = 12345;

/** A contiguous tensor holding a Ref. */
export function toTensor(a: Ref, dtype: T.DType = 'float32', requiresGrad = false): T.Tensor {
  const t = dtype === 'bool' ? T.tensor(a.data.map((v) => v !== 0), { dtype, shape: a.shape }) : T.tensor(a.data, { dtype, shape: a.shape });
  if (requiresGrad) t.requiresGrad_(true);
  return t;
}

/**
 * A tensor with a Ref's values in a given memory layout:
 *  - contiguous;
 *  - transposed: built as the last two dims swapped, then transposed back (a column-major view);
 *  - strided: every other element of a larger buffer along the last dim, starting at 1;
 *  - offset-permuted: a reversed-dims buffer with a leading garbage block, permuted back.
 * The tensor reads as exactly `a` whatever the layout.
 */
export function layoutTensor(a: Ref, layout: Layout, dtype: T.DType = 'float32'): T.Tensor {
  const nd = a.shape.length;
  if (layout === 'contiguous' || nd === 0) return toTensor(a, dtype);
  if (layout === 'transposed') {
    if (nd < 2) return layoutTensor(a, 'strided', dtype);
    return toTensor(transpose(a, -1, -2), dtype).transpose(-1, -2);
  }
  if (layout === 'strided') {
    const n = a.shape[nd - 1]!;
    const big = a.shape.slice();
    big[nd - 1] = 2 * n + 1;
    const data = new Array<number>(numel(big)).fill(GARBAGE);
    for (let i = 0; i < a.data.length; ++i) {
      const idx = unravel(i, a.shape);
      idx[nd - 1] = 1 + 2 * idx[nd - 1]!;
      data[ravel(idx, big)] = a.data[i]!;
    }
    return toTensor({ shape: big, data }, dtype).slice(-1, 1, undefined, 2);
  }
  // offset-permuted
  const rev = [...Array(nd).keys()].reverse();
  const p = permute(a, rev);
  const pad = 7;
  const buf = toTensor({ shape: [pad + p.data.length], data: [...new Array(pad).fill(GARBAGE), ...p.data] }, dtype);
  return buf.narrow(0, pad, p.data.length).reshape(p.shape).permute(rev);
}

/** Values of a tensor as plain numbers (bool -> 0/1, int64 -> number). */
export function values(t: T.Tensor): number[] {
  const d = t.dataSync();
  const out = new Array<number>(d.length);
  for (let i = 0; i < d.length; ++i) out[i] = Number(d[i]!);
  return out;
}

export interface Tol {
  rtol?: number;
  atol?: number;
}

/** Tolerances for float32 results of (near-)correctly-rounded ops. */
export const F32: Tol = { rtol: 1e-5, atol: 1e-6 };
export const F64: Tol = { rtol: 1e-12, atol: 1e-12 };
export const EXACT: Tol = { rtol: 0, atol: 0 };

function fmtNum(v: number): string {
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/** Asserts a tensor matches a Ref: same shape, values within atol + rtol*|expected| (NaN = NaN, inf = inf). */
export function expectClose(t: T.Tensor, e: Ref, tol: Tol = F32, what = ''): void {
  const rtol = tol.rtol ?? 1e-5, atol = tol.atol ?? 1e-6;
  expect(t.shape, `${what} shape`).toEqual(e.shape);
  const got = values(t);
  expect(got.length, `${what} numel`).toBe(e.data.length);
  for (let i = 0; i < got.length; ++i) {
    const g = got[i]!, x = e.data[i]!;
    if (Number.isNaN(x) || Number.isNaN(g) || !Number.isFinite(x) || !Number.isFinite(g)) {
      if (!Object.is(g, x) && !(g === x)) expect.fail(`${what} [${unravel(i, e.shape).join(', ')}]: got ${fmtNum(g)}, expected ${fmtNum(x)}`);
      continue;
    }
    const err = Math.abs(g - x);
    if (!(err <= atol + rtol * Math.abs(x)))
      expect.fail(`${what} [${unravel(i, e.shape).join(', ')}]: got ${g}, expected ${x} (|err| ${err.toExponential(3)} > ${atol} + ${rtol}*|x|)`);
  }
}

/** A Ref from a float64 tensor (for comparing library outputs with each other in view tests). */
export function refOf(t: T.Tensor): Ref {
  return { shape: t.shape.slice(), data: values(t) };
}
