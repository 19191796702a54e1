/**
 * Broadcasting elementwise ops with their backward rules: arithmetic, unary math and
 * activations, comparisons, logical ops, where / maskedFill, casts and in-place updates.
 */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { OPS } from '../backend/kernels.js';
import { isFloating, promoteTypes, type DType } from '../dtype.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { broadcastShapes, checkSameDevice } from './util.js';
import { sumTo } from './reduce.js';
import { fullNow as full, scalarLike } from './creation.js';
import { deferredSlice } from '../deferred.js';

const U = OPS.unary;
const B = OPS.binary;
const C = OPS.compare;
const P = OPS.pred;

export type Scalar = number;
export type TensorOrScalar = Tensor | number;

// ---- casts --------------------------------------------------------------------------------

/** Converts to another dtype (a copy; gradients flow between floating types). */
export function cast(x: Tensor, dtype: DType): Tensor {
  x.check('cast');
  if (x.dtype === dtype) return x;
  const out = empty(x.shape, dtype, x.device);
  kernels.unary(U.copy!, out, x);
  if (isFloating(dtype) && isFloating(x.dtype) && needsGrad(x)) {
    const src = x.dtype;
    record(out, 'cast', [x], (g) => [cast(g, src)]);
  }
  return out;
}

/** A contiguous copy (or x itself when already contiguous). */
export function contiguous(x: Tensor): Tensor {
  x.check('contiguous');
  if (x.isContiguous()) return x;
  return clone(x);
}

/** A contiguous copy that stays in the graph. */
export function clone(x: Tensor): Tensor {
  x.check('clone');
  // a contiguous piece of a tensor not made yet (deferredInit) stays unmade
  const out = deferredSlice(x) ?? empty(x.shape, x.dtype, x.device);
  if (!out.storage.pending) kernels.unary(U.copy!, out, x);
  if (needsGrad(x)) record(out, 'clone', [x], (g) => [g]);
  return out;
}

// ---- unary ----------------------------------------------------------------------------------

type UnaryBackward = (g: Tensor, x: Tensor, out: Tensor) => Tensor | null;

function floatInput(x: Tensor): Tensor {
  return isFloating(x.dtype) ? x : cast(x, 'float32');
}

function unaryOp(name: string, x: Tensor, op: number, s0: number, s1: number, bwd: UnaryBackward | null, float: boolean): Tensor {
  x.check(name);
  const xin = float ? floatInput(x) : x;
  const out = empty(xin.shape, xin.dtype, xin.device);
  kernels.unary(op, out, xin, s0, s1);
  if (bwd && needsGrad(xin)) record(out, name, [xin], (g) => [bwd(g, xin, out)], [xin, out]);
  return out;
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x, U.neg!, 0, 0, (g) => neg(g), false);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, U.exp!, 0, 0, (g, _x, y) => mul(g, y), true);
export const log = (x: Tensor): Tensor => unaryOp('log', x, U.log!, 0, 0, (g, x0) => div(g, x0), true);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x, U.sqrt!, 0, 0, (g, _x, y) => div(mul(g, 0.5), y), true);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x, U.rsqrt!, 0, 0, (g, _x, y) => mul(mul(g, -0.5), mul(y, mul(y, y))), true);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x, U.abs!, 0, 0, (g, x0) => mul(g, sign(x0)), false);
export const sign = (x: Tensor): Tensor => unaryOp('sign', x, U.sign!, 0, 0, null, false);
export const square = (x: Tensor): Tensor => unaryOp('square', x, U.square!, 0, 0, (g, x0) => mul(g, mul(x0, 2)), false);
export const reciprocal = (x: Tensor): Tensor => unaryOp('reciprocal', x, U.reciprocal!, 0, 0, (g, _x, y) => neg(mul(g, mul(y, y))), true);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, U.tanh!, 0, 0, (g, _x, y) => binaryRaw(B.tanh_backward!, g, y), true);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, U.sigmoid!, 0, 0, (g, _x, y) => binaryRaw(B.sigmoid_backward!, g, y), true);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x, U.relu!, 0, 0, (g, x0) => binaryRaw(B.relu_backward!, g, x0), false);
export const floor = (x: Tensor): Tensor => unaryOp('floor', x, U.floor!, 0, 0, null, true);
export const ceil = (x: Tensor): Tensor => unaryOp('ceil', x, U.ceil!, 0, 0, null, true);
export const round = (x: Tensor): Tensor => unaryOp('round', x, U.round!, 0, 0, null, true);

/** GELU; approximate 'none' uses erf, 'tanh' the tanh formula (as torch.nn.functional.gelu). */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate === 'tanh') return unaryOp('gelu', x, U.gelu_tanh!, 0, 0, (g, x0) => binaryRaw(B.gelu_tanh_backward!, g, x0), true);
  return unaryOp('gelu', x, U.gelu!, 0, 0, (g, x0) => binaryRaw(B.gelu_backward!, g, x0), true);
}

/** Clamps into [min, max] (either bound may be omitted). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  x.check('clamp');
  if (min > max) throw new RangeError(`clamp: min ${min} is greater than max ${max}`);
  // Integer tensors with fractional bounds clamp in float32 (PyTorch's result type); the
  // kernel compares integers in double, so infinite (open) bounds need no sentinel.
  const fractional = (v: number) => Number.isFinite(v) && !Number.isInteger(v);
  const xin = !isFloating(x.dtype) && (fractional(min) || fractional(max)) ? cast(x, 'float32') : x.dtype === 'bool' ? cast(x, 'int64') : x;
  return unaryOp('clamp', xin, U.clamp!, min, max, (g, x0) => mul(g, cast(logicalAnd(ge(x0, min), le(x0, max)), g.dtype)), false);
}

/** a * x + b in one pass (scalar a, b). */
export function affine(x: Tensor, a: number, b: number): Tensor {
  x.check('affine');
  // Integers stay integers for integer a, b; bool counts as 0/1 (int64), like PyTorch.
  const xin = !isFloating(x.dtype) && (!Number.isInteger(a) || !Number.isInteger(b)) ? cast(x, 'float32') : x.dtype === 'bool' ? cast(x, 'int64') : x;
  return unaryOp('affine', xin, U.affine!, a, b, (g) => mul(g, a), false);
}

/** x ** p for a scalar exponent. */
function powScalar(x: Tensor, p: number): Tensor {
  if (p === 1) return affine(x, 1, 0);
  if (p === 2) return square(x);
  // d/dx x^0 is 0 everywhere (also at x = 0, where x^-1 * 0 would be NaN).
  if (p === 0) return unaryOp('pow', x, U.pow_scalar!, p, 0, (g) => mul(g, 0), true);
  return unaryOp('pow', x, U.pow_scalar!, p, 0, (g, x0) => mul(g, mul(powScalar(x0, p - 1), p)), true);
}

// ---- binary ---------------------------------------------------------------------------------

/** Binary kernel on two tensors of one dtype, no autograd (used by backward rules). */
function binaryRaw(op: number, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, 'binary');
  const out = empty(shape, a.dtype, a.device);
  kernels.binary(op, out, a, b);
  return out;
}

type BinaryBackward = (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null];

function toTensor(v: TensorOrScalar, like: Tensor): Tensor {
  return typeof v === 'number' ? scalarLike(v, like) : v;
}

function binaryOp(name: string, a: Tensor, b: Tensor, op: number, s0: number, bwd: BinaryBackward | null, float: boolean): Tensor {
  a.check(name);
  b.check(name);
  if (a.device !== b.device) checkSameDevice(name, a, b);
  let dt = a.dtype === b.dtype ? a.dtype : promoteTypes(a.dtype, b.dtype);
  if (float && !isFloating(dt)) dt = 'float32';
  if (dt === 'bool' && op !== B.logical_and && op !== B.logical_or && op !== B.logical_xor) dt = 'int64';
  const ac = a.dtype === dt ? a : cast(a, dt);
  const bc = b.dtype === dt ? b : cast(b, dt);
  const shape = broadcastShapes(ac.shape, bc.shape, name);
  const out = empty(shape, dt, a.device);
  kernels.binary(op, out, ac, bc, s0);
  if (bwd && needsGrad(ac, bc)) {
    record(out, name, [ac, bc], (g) => {
      const [ga, gb] = bwd(g, ac, bc, out);
      return [ga && ac.requiresGrad ? sumTo(ga, ac.shape) : null, gb && bc.requiresGrad ? sumTo(gb, bc.shape) : null];
    }, [ac, bc, out]);
  }
  return out;
}

/** a + alpha * b. */
export function add(a: Tensor, b: TensorOrScalar, alpha = 1): Tensor {
  if (typeof b === 'number') return affine(a, 1, b * alpha);
  if (alpha !== 1) return binaryOp('add', a, b, B.add_scaled!, alpha, (g) => [g, mul(g, alpha)], false);
  return binaryOp('add', a, b, B.add!, 0, (g) => [g, g], false);
}

/**
 * gelu(x + bias) in one pass (bias broadcast against x, e.g. [N] over [..., N]): the FFN's
 * bias + activation without writing x + bias first. Backward: d(x + bias) = g · gelu'(x + bias),
 * reduced to bias's shape for its gradient.
 */
export function biasGelu(x: Tensor, bias: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  const op = approximate === 'tanh' ? B.bias_gelu_tanh! : B.bias_gelu!;
  const back = approximate === 'tanh' ? B.gelu_tanh_backward! : B.gelu_backward!;
  return binaryOp('biasGelu', x, bias, op, 0, (g, a, b) => {
    const dz = binaryRaw(back, g, noGrad(() => add(a, b)));
    return [dz, dz]; // binaryOp reduces each to its operand's shape
  }, true);
}

export function sub(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  return binaryOp('sub', a, b, B.sub!, 0, (g) => [g, neg(g)], false);
}

export function mul(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return affine(a, b, 0);
  return binaryOp('mul', a, b, B.mul!, 0, (g, x, y) => [x.requiresGrad || y.requiresGrad ? mul(g, y) : null, mul(g, x)], false);
}

export function div(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') {
    const af = isFloating(a.dtype) ? a : cast(a, 'float32');
    return binaryOp('div', af, scalarLike(b, af), B.div!, 0, (g, _x, y) => [div(g, y), null], true);
  }
  return binaryOp('div', a, b, B.div!, 0, (g, _x, y, out) => [div(g, y), neg(div(mul(g, out), y))], true);
}

export function pow(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return powScalar(floatInput(a), b);
  return binaryOp('pow', a, b, B.pow!, 0, (g, x, y, out) => [
    // at y = 0 the base gradient is 0 (y * x^(y-1) would be 0 * inf at x = 0)
    x.requiresGrad ? where(eq(y, 0), 0, mul(g, mul(y, pow(x, sub(y, 1))))) : null,
    // at x = 0 with y >= 0, x^y is flat in y (PyTorch's convention; out * log x would be 0 * -inf)
    y.requiresGrad ? where(logicalAnd(eq(x, 0), ge(y, 0)), 0, mul(g, mul(out, log(x)))) : null,
  ], true);
}

function tieMask(x: Tensor, y: Tensor, gt: boolean): Tensor {
  // 1 where x wins, 0.5 on ties, 0 where y wins.
  const win = cast(gt ? (compareOp('gt', x, y)) : compareOp('lt', x, y), x.dtype);
  const tie = cast(compareOp('eq', x, y), x.dtype);
  return add(win, tie, 0.5);
}

export function maximum(a: Tensor, b: TensorOrScalar): Tensor {
  const bt = toTensor(b, a);
  return binaryOp('maximum', a, bt, B.maximum!, 0, (g, x, y) => [mul(g, tieMask(x, y, true)), mul(g, tieMask(y, x, true))], false);
}

export function minimum(a: Tensor, b: TensorOrScalar): Tensor {
  const bt = toTensor(b, a);
  return binaryOp('minimum', a, bt, B.minimum!, 0, (g, x, y) => [mul(g, tieMask(x, y, false)), mul(g, tieMask(y, x, false))], false);
}

// ---- comparisons and logic (no gradients) -------------------------------------------------------

function compareOp(name: keyof typeof C & string, a: Tensor, b: TensorOrScalar): Tensor {
  a.check(name);
  const bt = toTensor(b, a);
  bt.check(name);
  checkSameDevice(name, a, bt);
  const dt = promoteTypes(a.dtype, bt.dtype);
  const ac = a.dtype === dt ? a : cast(a, dt);
  const bc = bt.dtype === dt ? bt : cast(bt, dt);
  const out = empty(broadcastShapes(ac.shape, bc.shape, name), 'bool', a.device);
  kernels.compare(C[name]!, out, ac, bc);
  return out;
}

export const eq = (a: Tensor, b: TensorOrScalar) => compareOp('eq', a, b);
export const ne = (a: Tensor, b: TensorOrScalar) => compareOp('ne', a, b);
export const lt = (a: Tensor, b: TensorOrScalar) => compareOp('lt', a, b);
export const le = (a: Tensor, b: TensorOrScalar) => compareOp('le', a, b);
export const gt = (a: Tensor, b: TensorOrScalar) => compareOp('gt', a, b);
export const ge = (a: Tensor, b: TensorOrScalar) => compareOp('ge', a, b);

function asBool(x: Tensor, op: string): Tensor {
  x.check(op);
  return x.dtype === 'bool' ? x : ne(x, 0);
}

function logicalOp(name: string, op: number, a: Tensor, b: Tensor): Tensor {
  const ab = asBool(a, name), bb = asBool(b, name);
  checkSameDevice(name, ab, bb);
  const out = empty(broadcastShapes(ab.shape, bb.shape, name), 'bool', a.device);
  kernels.binary(op, out, ab, bb);
  return out;
}

export const logicalAnd = (a: Tensor, b: Tensor) => logicalOp('logicalAnd', B.logical_and!, a, b);
export const logicalOr = (a: Tensor, b: Tensor) => logicalOp('logicalOr', B.logical_or!, a, b);
export const logicalXor = (a: Tensor, b: Tensor) => logicalOp('logicalXor', B.logical_xor!, a, b);
export function logicalNot(a: Tensor): Tensor {
  const ab = asBool(a, 'logicalNot');
  const out = empty(ab.shape, 'bool', a.device);
  kernels.unary(U.logical_not!, out, ab);
  return out;
}

function predOp(name: string, op: number, x: Tensor): Tensor {
  x.check(name);
  if (!isFloating(x.dtype)) return full(x.shape, name === 'isfinite' ? 1 : 0, { dtype: 'bool', device: x.device });
  const out = empty(x.shape, 'bool', x.device);
  kernels.pred(op, out, x);
  return out;
}
export const isnan = (x: Tensor) => predOp('isnan', P.isnan!, x);
export const isfinite = (x: Tensor) => predOp('isfinite', P.isfinite!, x);

// ---- selection ------------------------------------------------------------------------------

/** cond ? a : b, broadcasting all three. */
export function where(cond: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  cond.check('where');
  if (typeof a !== 'number') a.check('where');
  if (typeof b !== 'number') b.check('where');
  const like = typeof a !== 'number' ? a : typeof b !== 'number' ? b : null;
  const at = typeof a === 'number' ? (like ? scalarLike(a, like) : full([], a, { device: cond.device })) : a;
  const bt = typeof b === 'number' ? scalarLike(b, at) : b;
  const dt = promoteTypes(at.dtype, bt.dtype);
  const ac = at.dtype === dt ? at : cast(at, dt);
  const bc = bt.dtype === dt ? bt : cast(bt, dt);
  const c = asBool(cond, 'where');
  checkSameDevice('where', c, ac, bc);
  const shape = broadcastShapes(broadcastShapes(c.shape, ac.shape, 'where'), bc.shape, 'where');
  const out = empty(shape, dt, cond.device);
  kernels.where(out, c, ac, bc);
  if (needsGrad(ac, bc)) {
    record(out, 'where', [ac, bc], (g) => {
      const zero = scalarLike(0, g);
      return [ac.requiresGrad ? sumTo(where(c, g, zero), ac.shape) : null, bc.requiresGrad ? sumTo(where(c, zero, g), bc.shape) : null];
    }, [c]);
  }
  return out;
}

/** x with `value` where mask is true (mask broadcasts to x). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  x.check('maskedFill');
  const m = asBool(mask, 'maskedFill');
  const s = broadcastShapes(x.shape, m.shape, 'maskedFill');
  if (s.length !== x.shape.length || s.some((v, i) => v !== x.shape[i]))
    throw new Error(`maskedFill: mask of shape ${fmtShape(mask.shape)} does not broadcast to the tensor's shape ${fmtShape(x.shape)}`);
  // The fill value takes x's dtype (as torch.masked_fill): 0.5 into an int tensor is 0.
  return where(m, full([], value, { dtype: x.dtype, device: x.device }), x);
}

// ---- in-place (for optimisers and accumulation; refuse on tensors the graph needs) ------------

function checkInPlace(x: Tensor, op: string, overlapOk = false): void {
  x.check(op);
  if (x.requiresGrad && needsGrad(x)) {
    if (x.isLeaf) throw new Error(`${op}: in-place update of a leaf that requires grad; wrap it in noGrad()`);
    // In-place ops record no graph node: on a tensor that is part of a graph (a result, or a
    // view of a leaf) the gradients would silently be wrong.
    throw new Error(`${op}: in-place update of a tensor that is part of an autograd graph (shape ${fmtShape(x.shape)}, made by '${x.gradFn!.name}'); use the out-of-place op, or detach() first`);
  }
  // Saved-for-backward checks compare this version (see Node.savedVersions).
  x.storage.version++;
  // An expanded (stride-0) destination has several elements in one memory location: the
  // result would depend on the order of the writes (as PyTorch, refuse; clone() first).
  if (!overlapOk && x.numel > 1 && x.shape.some((s, d) => s > 1 && x.strides[d] === 0))
    throw new Error(`${op}: the destination of shape ${fmtShape(x.shape)} with strides ${fmtShape(x.strides)} has elements sharing memory (an expanded view); clone() it first`);
}

/** x += alpha * y (y broadcasts to x). Returns x. */
export function add_(x: Tensor, y: TensorOrScalar, alpha = 1): Tensor {
  checkInPlace(x, 'add_');
  const be = kernels;
  if (typeof y === 'number') be.unary(U.affine!, x, x, 1, y * alpha);
  else {
    y.check('add_');
    checkSameDevice('add_', x, y);
    const yc = unaliased(y.dtype === x.dtype ? y : noGrad(() => cast(y, x.dtype)), x);
    broadcastTo(yc, x, 'add_');
    be.binary(alpha === 1 ? B.add! : B.add_scaled!, x, x, yc, alpha);
  }
  return x;
}

export function sub_(x: Tensor, y: TensorOrScalar): Tensor {
  return add_(x, y, -1);
}

/** x *= y. */
export function mul_(x: Tensor, y: TensorOrScalar): Tensor {
  checkInPlace(x, 'mul_');
  const be = kernels;
  if (typeof y === 'number') be.unary(U.affine!, x, x, y, 0);
  else {
    y.check('mul_');
    checkSameDevice('mul_', x, y);
    broadcastTo(y, x, 'mul_');
    be.binary(B.mul!, x, x, unaliased(y.dtype === x.dtype ? y : noGrad(() => cast(y, x.dtype)), x));
  }
  return x;
}

/** Copies src (broadcast, cast) into x. */
export function copy_(x: Tensor, src: Tensor): Tensor {
  checkInPlace(x, 'copy_');
  src.check('copy_');
  checkSameDevice('copy_', x, src);
  broadcastTo(src, x, 'copy_');
  kernels.unary(U.copy!, x, unaliased(src, x));
  return x;
}

/** Fills x with a value (any layout). */
export function fill_(x: Tensor, value: number): Tensor {
  checkInPlace(x, 'fill_', true);
  if (x.isContiguous()) kernels.fill(x, value);
  else {
    // Not 0 * x + value: that keeps NaN/inf and does not exist for bool.
    const v = full([], value, { dtype: x.dtype, device: x.device });
    kernels.unary(U.copy!, x, v);
    v.dispose();
  }
  return x;
}

export const zero_ = (x: Tensor) => fill_(x, 0);

/** Applies clamp in place. */
export function clamp_(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  checkInPlace(x, 'clamp_');
  kernels.unary(U.clamp!, x, x, min, max);
  return x;
}

/** src as it was before writing into dst: a copy when the two overlap in memory differently. */
function unaliased(src: Tensor, dst: Tensor): Tensor {
  if (src.storage !== dst.storage) return src;
  const same = src.offset === dst.offset && src.shape.length === dst.shape.length &&
    src.shape.every((v, i) => v === dst.shape[i] && (v === 1 || src.strides[i] === dst.strides[i]));
  return same ? src : noGrad(() => clone(src));
}

function broadcastTo(src: Tensor, dst: Tensor, op: string): void {
  const s = broadcastShapes(src.shape, dst.shape, op);
  if (s.length !== dst.shape.length || s.some((v, i) => v !== dst.shape[i]))
    throw new Error(`${op}: source of shape ${fmtShape(src.shape)} does not broadcast to the destination's shape ${fmtShape(dst.shape)}`);
}
