/**
 * Reductions over any dims with keepdim — sum, mean, var, max/min (values and indices),
 * argmax/argmin, logsumexp, prod — plus topk and cumsum, with their backward rules.
 */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { isFloating } from '../dtype.js';
import { empty, fmtShape, type Shape, type Tensor } from '../tensor.js';
import { add, cast, div, eq, exp, isfinite, log, mul, sub, where } from './elementwise.js';
import { zeros } from './creation.js';
import { normDims, sameShape } from './util.js';
import { expand, reshape, squeeze } from './views.js';
import { scatterAdd } from './indexing.js';

function keptShape(x: Tensor, dims: number[]): number[] {
  return x.shape.map((s, i) => (dims.includes(i) ? 1 : s));
}

function finalShape(x: Tensor, dims: number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(x, dims) : x.shape.filter((_, i) => !dims.includes(i));
}

/** Number of elements reduced into each output (a 0-d tensor's dim 0 counts as size 1). */
function reducedCount(x: Tensor, dims: number[]): number {
  let n = 1;
  for (const i of dims) n *= x.shape[i] ?? 1;
  return n;
}

/** Raw reduction into a keepdim-shaped output (no autograd). op: 0 sum, 1 max, 2 min, 3 prod. */
function reduceRaw(op: number, x: Tensor, dims: number[], index: boolean): [Tensor, Tensor | null] {
  const ks = keptShape(x, dims);
  const out = empty(ks, x.dtype, x.device);
  const idx = index ? empty(ks, 'int64', x.device) : null;
  kernels.reduce(op, out, x, idx ?? undefined);
  return [out, idx];
}

/** Sums g down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; ++i) {
    if (i < lead) dims.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) dims.push(i);
  }
  const s = dims.length ? sum(g, dims, true) : g;
  return reshape(s, shape);
}

/** Integer and bool inputs of sum / prod / cumsum accumulate in int64 (as PyTorch). */
function int64Unless(x: Tensor): Tensor {
  return isFloating(x.dtype) || x.dtype === 'int64' ? x : cast(x, 'int64');
}

export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  x.check('sum');
  const xin = int64Unless(x);
  const d = normDims(xin, dims, 'sum');
  const [r] = reduceRaw(0, xin, d, false);
  const out = keepdim ? r : reshape(r, finalShape(xin, d, false));
  if (needsGrad(xin)) {
    const ks = keptShape(xin, d), xs = xin.shape;
    record(out, 'sum', [xin], (g) => [expand(reshape(g, ks), xs)]);
  }
  return out;
}

export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  x.check('mean');
  const xin = isFloating(x.dtype) ? x : cast(x, 'float32');
  const d = normDims(xin, dims, 'mean');
  return mul(sum(xin, d, keepdim), 1 / reducedCount(xin, d));
}

/** Variance with Bessel's correction by default (correction = 1), like torch.var. */
export function variance(x: Tensor, dims?: number | readonly number[], opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
  x.check('var');
  const xin = isFloating(x.dtype) ? x : cast(x, 'float32');
  const d = normDims(xin, dims, 'var');
  const n = reducedCount(xin, d);
  const m = mean(xin, d, true);
  const diff = sub(xin, m);
  const ss = sum(mul(diff, diff), d, opts.keepdim ?? false);
  return div(ss, Math.max(0, n - (opts.correction ?? 1)));
}

export function prod(x: Tensor, dim?: number, keepdim = false): Tensor {
  x.check('prod');
  const xin = int64Unless(x);
  const d = normDims(xin, dim, 'prod');
  const [r] = reduceRaw(3, xin, d, false);
  const out = keepdim ? r : reshape(r, finalShape(xin, d, false));
  if (needsGrad(xin)) {
    // d prod / dx_i = product of the other entries: prod / x_i where the slice has no zero;
    // where it has one zero, the product of its non-zeros at the zero and 0 elsewhere;
    // with two or more zeros, 0 everywhere.
    const ks = keptShape(xin, d);
    record(out, 'prod', [xin], (g) => {
      const isZero = eq(xin, 0);
      const zeros = sum(isZero, d, true);
      const [nonZeroProd] = reduceRaw(3, where(isZero, 1, xin), d, false);
      const others = where(isZero, where(eq(zeros, 1), nonZeroProd, 0), where(eq(zeros, 0), div(r, xin), 0));
      return [mul(expand(reshape(g, ks), xin.shape), others)];
    }, [xin, r]);
  }
  return out;
}

export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

function extremeDim(op: 1 | 2, name: string, x: Tensor, dim: number, keepdim: boolean): ValuesIndices {
  x.check(name);
  const d = x.dim(dim, name);
  if (x.shape[d] === 0) throw new Error(`${name}: cannot reduce over dim ${dim} of size 0 in ${fmtShape(x.shape)}`);
  const [v, i] = reduceRaw(op, x, [d], true);
  const values = keepdim ? v : squeeze(v, d);
  const indices = keepdim ? i! : squeeze(i!, d);
  if (needsGrad(x)) {
    const xs = x.shape, xd = x.dtype, dev = x.device, ik = i!;
    record(values, name, [x], (g) => {
      const gk = keepdim ? g : reshape(g, keptShape(x, [d]));
      return [scatterAdd(zeros(xs, { dtype: xd, device: dev }), d, ik, gk)];
    }, [ik]);
  }
  return { values, indices };
}

function extremeAll(op: 1 | 2, name: string, x: Tensor): Tensor {
  x.check(name);
  if (x.numel === 0) throw new Error(`${name}: cannot reduce an empty tensor`);
  const d = x.shape.map((_, i) => i);
  const [v] = reduceRaw(op, x, d, false);
  const out = reshape(v, []);
  if (needsGrad(x)) {
    // Ties share the gradient evenly (as PyTorch).
    record(out, name, [x], (g) => {
      const m = cast(eq(x, v), x.dtype);
      return [mul(div(m, sum(m)), g)];
    }, [x, v]);
  }
  return out;
}

export function max(x: Tensor): Tensor;
export function max(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function max(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return dim === undefined ? extremeAll(1, 'max', x) : extremeDim(1, 'max', x, dim, keepdim);
}

export function min(x: Tensor): Tensor;
export function min(x: Tensor, dim: number, keepdim?: boolean): ValuesIndices;
export function min(x: Tensor, dim?: number, keepdim = false): Tensor | ValuesIndices {
  return dim === undefined ? extremeAll(2, 'min', x) : extremeDim(2, 'min', x, dim, keepdim);
}

export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  x.check('argmax');
  return noGrad(() => (dim === undefined ? extremeDim(1, 'argmax', reshape(x, [-1]), 0, false).indices : extremeDim(1, 'argmax', x, dim, keepdim).indices));
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  x.check('argmin');
  return noGrad(() => (dim === undefined ? extremeDim(2, 'argmin', reshape(x, [-1]), 0, false).indices : extremeDim(2, 'argmin', x, dim, keepdim).indices));
}

/** log(sum(exp(x))) over dims, stable (shifted by the max). */
export function logsumexp(x: Tensor, dims: number | readonly number[], keepdim = false): Tensor {
  x.check('logsumexp');
  const xin = isFloating(x.dtype) ? x : cast(x, 'float32');
  const d = normDims(xin, dims, 'logsumexp');
  // Shift by the max (0 where it is infinite, or over an empty dim: the result is -inf).
  const m = noGrad(() => {
    if (reducedCount(xin, d) === 0) return zeros(keptShape(xin, d), { dtype: xin.dtype, device: xin.device });
    const [r] = reduceRaw(1, xin, d, false);
    return where(isfinite(r), r, 0);
  });
  const s = log(sum(exp(sub(xin, m)), d, true));
  const out = add(s, m);
  return keepdim ? out : reshape(out, finalShape(xin, d, false));
}

/** The k largest (or smallest) entries along dim, sorted, with their indices. */
export function topk(x: Tensor, k: number, dim = -1, largest = true): ValuesIndices {
  x.check('topk');
  if (x.ndim === 0) {
    // A 0-d tensor is one row of one element.
    x.dim(dim, 'topk');
    const r = topk(reshape(x, [1]), k, 0, largest);
    if (k === 0) return r;
    return { values: reshape(r.values, []), indices: noGrad(() => reshape(r.indices, [])) };
  }
  const d = x.dim(dim, 'topk');
  const n = x.shape[d] ?? 1;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`topk: k = ${k} is out of range for dim ${dim} of size ${n} in ${fmtShape(x.shape)}`);
  const last = x.ndim === 0 ? 0 : x.ndim - 1;
  const moved = d === last ? x : transposeRaw(x, d, last);
  const src = noGrad(() => contiguousRaw(moved));
  const outShape = src.shape.slice();
  if (outShape.length) outShape[last] = k;
  const values = empty(outShape, x.dtype, x.device);
  const indices = empty(outShape, 'int64', x.device);
  kernels.topk(values, indices, src, k, largest);
  let v = values, i = indices;
  if (d !== last) {
    v = noGrad(() => transposeRaw(values, d, last));
    i = noGrad(() => transposeRaw(indices, d, last));
  }
  if (needsGrad(x)) {
    const xs = x.shape, xd = x.dtype, dev = x.device, ii = i;
    record(v, 'topk', [x], (g) => [scatterAdd(zeros(xs, { dtype: xd, device: dev }), d, ii, g)], [ii]);
  }
  return { values: v, indices: i };
}

/** Inclusive cumulative sum along dim. */
export function cumsum(x: Tensor, dim: number): Tensor {
  x.check('cumsum');
  const xin = int64Unless(x);
  const d = xin.dim(dim, 'cumsum');
  if (xin.ndim === 0) return reshape(cumsum(reshape(xin, [1]), 0), []);
  const out = empty(xin.shape, xin.dtype, xin.device);
  if (xin.numel > 0) kernels.cumsum(out, xin, d);
  if (needsGrad(xin)) {
    // dx_i = sum_{j >= i} g_j = total - cumsum(g)_i + g_i
    record(out, 'cumsum', [xin], (g) => [add(sub(sum(g, d, true), cumsum(g, d)), g)]);
  }
  return out;
}

// Local helpers avoiding import cycles with views during module init.
function transposeRaw(x: Tensor, a: number, b: number): Tensor {
  const shape = x.shape.slice(), strides = x.strides.slice();
  [shape[a], shape[b]] = [shape[b]!, shape[a]!];
  [strides[a], strides[b]] = [strides[b]!, strides[a]!];
  return x.viewAs(shape, strides, x.offset);
}

function contiguousRaw(x: Tensor): Tensor {
  if (x.isContiguous()) return x;
  const out = empty(x.shape, x.dtype, x.device);
  kernels.unary(kernels.OPS.unary.copy!, out, x);
  return out;
}
