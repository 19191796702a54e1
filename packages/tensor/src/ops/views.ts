/**
 * Views that share storage with their input (no copy): reshape/view, permute, transpose,
 * narrow/slice/select, expand, squeeze/unsqueeze, flatten. Backward rules map the
 * gradient back through the same view.
 */
import { needsGrad, record } from '../autograd.js';
import { contiguousStrides, fmtShape, shapeNumel, type Shape, type Tensor } from '../tensor.js';
import { contiguous, copy_ } from './elementwise.js';
import { zeros } from './creation.js';
import { noGrad } from '../autograd.js';
import { sumTo } from './reduce.js';

function inferShape(x: Tensor, shape: Shape, op: string): number[] {
  const out = shape.slice();
  let neg = -1;
  let known = 1;
  for (let i = 0; i < out.length; ++i) {
    const s = out[i]!;
    if (s === -1) {
      if (neg >= 0) throw new Error(`${op}: only one dimension can be -1, got ${fmtShape(shape)}`);
      neg = i;
    } else if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: invalid size ${s} in ${fmtShape(shape)}`);
    else known *= s;
  }
  if (neg >= 0) {
    if (known === 0 || x.numel % known !== 0) throw new Error(`${op}: shape ${fmtShape(shape)} is invalid for a tensor of ${x.numel} elements ${fmtShape(x.shape)}`);
    out[neg] = x.numel / known;
  }
  if (shapeNumel(out) !== x.numel) throw new Error(`${op}: shape ${fmtShape(shape)} is invalid for a tensor of ${x.numel} elements ${fmtShape(x.shape)}`);
  return out;
}

/** Strides for viewing x as `shape` without a copy, or null (PyTorch's computeStride). */
function viewStrides(x: Tensor, shape: number[]): number[] | null {
  if (x.isContiguous()) return contiguousStrides(shape);
  const oldShape = x.shape, oldStrides = x.strides;
  const newStrides = new Array<number>(shape.length);
  if (x.numel === 0) return contiguousStrides(shape);
  let viewD = shape.length - 1;
  let chunkBase = oldStrides[oldStrides.length - 1]!;
  let tensorN = 1;
  let viewN = 1;
  for (let d = oldShape.length - 1; d >= 0; --d) {
    tensorN *= oldShape[d]!;
    if (d === 0 || (oldShape[d - 1] !== 1 && oldStrides[d - 1] !== tensorN * chunkBase)) {
      while (viewD >= 0 && (viewN < tensorN || shape[viewD] === 1)) {
        newStrides[viewD] = viewN * chunkBase;
        viewN *= shape[viewD]!;
        viewD--;
      }
      if (viewN !== tensorN) return null;
      if (d > 0) {
        chunkBase = oldStrides[d - 1]!;
        tensorN = 1;
        viewN = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return newStrides;
}

function reshapeBackward(x: Tensor) {
  const s = x.shape;
  return (g: Tensor) => [reshape(g, s)];
}

/** A view with a new shape; throws when the layout does not allow one (use reshape). */
export function view(x: Tensor, shape: Shape): Tensor {
  x.check('view');
  const s = inferShape(x, shape, 'view');
  const st = viewStrides(x, s);
  if (!st) throw new Error(`view: a tensor of shape ${fmtShape(x.shape)} with strides ${fmtShape(x.strides)} cannot be viewed as ${fmtShape(s)}; use reshape (copies)`);
  const out = x.viewAs(s, st, x.offset);
  if (needsGrad(x)) record(out, 'view', [x], reshapeBackward(x));
  return out;
}

/** A view when possible, else a contiguous copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  x.check('reshape');
  const s = inferShape(x, shape, 'reshape');
  const st = viewStrides(x, s);
  if (st) {
    const out = x.viewAs(s, st, x.offset);
    if (needsGrad(x)) record(out, 'reshape', [x], reshapeBackward(x));
    return out;
  }
  return view(contiguous(x), s);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const a = x.dim(startDim, 'flatten'), b = x.dim(endDim, 'flatten');
  if (a > b) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const shape = [...x.shape.slice(0, a), shapeNumel(x.shape.slice(a, b + 1)), ...x.shape.slice(b + 1)];
  return reshape(x, shape);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  x.check('permute');
  if (dims.length !== x.ndim) throw new Error(`permute: expected ${x.ndim} dims for shape ${fmtShape(x.shape)}, got [${dims.join(', ')}]`);
  const d = dims.map((v) => x.dim(v, 'permute'));
  if (new Set(d).size !== d.length) throw new Error(`permute: repeated dim in [${dims.join(', ')}]`);
  const out = x.viewAs(d.map((i) => x.shape[i]!), d.map((i) => x.strides[i]!), x.offset);
  if (needsGrad(x)) {
    const inv = new Array<number>(d.length);
    d.forEach((v, i) => (inv[v] = i));
    record(out, 'permute', [x], (g) => [permute(g, inv)]);
  }
  return out;
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = x.dim(d0, 'transpose'), b = x.dim(d1, 'transpose');
  const dims = x.shape.map((_, i) => i);
  dims[a] = b;
  dims[b] = a;
  return permute(x, dims);
}

/** Matrix transpose of a 2-D tensor (1-D and 0-D are returned as they are). */
export function t(x: Tensor): Tensor {
  x.check('t');
  if (x.ndim < 2) return x;
  if (x.ndim > 2) throw new Error(`t: expects a tensor of at most 2 dims, got shape ${fmtShape(x.shape)}`);
  return transpose(x, 0, 1);
}

/** Elements start, start+step, ... (< end) along dim, as a view. */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  x.check('slice');
  if (x.ndim === 0) throw new RangeError('slice: cannot slice a 0-d tensor');
  const d = x.dim(dim, 'slice');
  const n = x.shape[d]!;
  if (!Number.isInteger(step) || step <= 0) throw new Error(`slice: step must be a positive integer, got ${step}`);
  let s = start < 0 ? start + n : start;
  let e = end === undefined ? n : end < 0 ? end + n : end;
  s = Math.min(Math.max(s, 0), n);
  e = Math.min(Math.max(e, s), n);
  const len = Math.ceil((e - s) / step);
  const shape = x.shape.slice();
  shape[d] = len;
  const strides = x.strides.slice();
  strides[d] = x.strides[d]! * step;
  const out = x.viewAs(shape, strides, x.offset + s * x.strides[d]!);
  if (needsGrad(x)) {
    const xs = x.shape, xd = x.dtype, dev = x.device;
    record(out, 'slice', [x], (g) => {
      const gx = zeros(xs, { dtype: xd, device: dev });
      noGrad(() => copy_(slice(gx, d, s, e, step), g));
      return [gx];
    });
  }
  return out;
}

/** length elements from start along dim (a view). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  x.check('narrow');
  if (x.ndim === 0) throw new RangeError('narrow: cannot narrow a 0-d tensor');
  const d = x.dim(dim, 'narrow');
  const n = x.shape[d]!;
  const s = start < 0 ? start + n : start;
  if (s < 0 || length < 0 || s + length > n) throw new RangeError(`narrow: start ${start} + length ${length} exceeds dim ${dim} of size ${n} in ${fmtShape(x.shape)}`);
  return slice(x, d, s, s + length);
}

/** The index-th entry along dim, with that dim removed (a view). */
export function select(x: Tensor, dim: number, index: number): Tensor {
  x.check('select');
  if (x.ndim === 0) throw new RangeError('select: cannot select from a 0-d tensor');
  const d = x.dim(dim, 'select');
  const n = x.shape[d]!;
  const i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw new RangeError(`select: index ${index} is out of range for dim ${dim} of size ${n}`);
  return squeeze(slice(x, d, i, i + 1), d);
}

/** Broadcast to a larger shape as a stride-0 view (-1 keeps a size). */
export function expand(x: Tensor, shape: Shape): Tensor {
  x.check('expand');
  if (shape.length < x.ndim) throw new Error(`expand: target shape ${fmtShape(shape)} has fewer dims than ${fmtShape(x.shape)}`);
  const off = shape.length - x.ndim;
  const outShape = new Array<number>(shape.length);
  const strides = new Array<number>(shape.length);
  for (let i = 0; i < shape.length; ++i) {
    const xi = i - off;
    const want = shape[i]!;
    if (!Number.isInteger(want) || want < -1) throw new Error(`expand: invalid size ${want} in ${fmtShape(shape)}`);
    if (xi < 0) {
      if (want < 0) throw new Error(`expand: -1 is not allowed for a new leading dim (${fmtShape(shape)})`);
      outShape[i] = want;
      strides[i] = 0;
      continue;
    }
    const have = x.shape[xi]!;
    const size = want === -1 ? have : want;
    if (have !== size && have !== 1) throw new Error(`expand: cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)} (dim ${i}: ${have} to ${size})`);
    outShape[i] = size;
    strides[i] = have === size ? x.strides[xi]! : 0;
  }
  const out = x.viewAs(outShape, strides, x.offset);
  if (needsGrad(x)) {
    const xs = x.shape;
    record(out, 'expand', [x], (g) => [sumTo(g, xs)]);
  }
  return out;
}

/** Removes size-1 dims (all, or the given one). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  x.check('squeeze');
  let keep: number[];
  if (dim === undefined) keep = x.shape.map((_, i) => i).filter((i) => x.shape[i] !== 1);
  else {
    const d = x.dim(dim, 'squeeze');
    keep = x.shape.map((_, i) => i).filter((i) => i !== d || x.shape[i] !== 1);
  }
  const out = x.viewAs(keep.map((i) => x.shape[i]!), keep.map((i) => x.strides[i]!), x.offset);
  if (needsGrad(x)) record(out, 'squeeze', [x], reshapeBackward(x));
  return out;
}

/** Inserts a size-1 dim at `dim` (negative counts from the end of the result). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  x.check('unsqueeze');
  const d = x.dim(dim, 'unsqueeze', x.ndim + 1);
  const shape = x.shape.slice();
  const strides = x.strides.slice();
  const st = d < x.ndim ? x.strides[d]! * x.shape[d]! : 1;
  shape.splice(d, 0, 1);
  strides.splice(d, 0, st);
  const out = x.viewAs(shape, strides, x.offset);
  if (needsGrad(x)) record(out, 'unsqueeze', [x], reshapeBackward(x));
  return out;
}
