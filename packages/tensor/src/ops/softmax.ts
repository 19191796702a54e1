/** softmax / logSoftmax over one dim (stable; fused scale and mask), with backward. */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { isFloating } from '../dtype.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { cast, contiguous, mul } from './elementwise.js';
import { sumTo } from './reduce.js';
import { broadcastShapes } from './util.js';
import { reshape, transpose } from './views.js';

export interface SoftmaxOptions {
  /** Multiplies the input first (fused). */
  scale?: number;
  /**
   * Broadcastable to the input: bool (true = keep) or additive float (gradients flow to a
   * float mask that requires grad). Rows fully masked give 0 (logSoftmax: -Infinity).
   */
  mask?: Tensor;
}

function softmaxImpl(name: string, x: Tensor, dim: number, log: boolean, opts: SoftmaxOptions): Tensor {
  x.check(name);
  const xin = isFloating(x.dtype) ? x : cast(x, 'float32');
  const d = xin.dim(dim, name);
  const last = Math.max(xin.ndim - 1, 0);
  const scale = opts.scale ?? 1;
  if (!Number.isFinite(scale)) throw new RangeError(`${name}: scale must be finite, got ${scale}`);
  let mask = opts.mask;
  if (mask) {
    mask.check(name);
    const s = broadcastShapes(mask.shape, xin.shape, name);
    if (s.length !== xin.ndim || s.some((v, i) => v !== xin.shape[i])) throw new Error(`${name}: mask ${fmtShape(mask.shape)} does not broadcast to ${fmtShape(xin.shape)}`);
    if (mask.dtype !== 'bool' && !isFloating(mask.dtype))
      throw new TypeError(`${name}: mask must be bool (true = keep) or floating (additive), got ${mask.dtype}`);
    if (mask.dtype !== 'bool' && mask.dtype !== xin.dtype) mask = cast(mask, xin.dtype);
    // Give the mask the input's ndim (leading size-1 dims) so it can follow a transpose.
    if (mask.ndim < xin.ndim) mask = reshape(mask, [...new Array<number>(xin.ndim - mask.ndim).fill(1), ...mask.shape]);
  }
  if (d !== last) {
    // Move dim last, run on rows, move back.
    const mt = mask ? transpose(mask, d, last) : mask;
    return transpose(softmaxImpl(name, transpose(xin, d, last), -1, log, { scale, mask: mt }), d, last);
  }
  const xc = noGrad(() => contiguous(xin));
  const y = empty(xc.shape, xc.dtype, xc.device);
  const m = mask && mask.dtype !== 'bool' ? mask : null;
  if (y.numel > 0) kernels.softmax(y, xc, log, scale, mask);
  if (needsGrad(xin, m)) {
    record(y, name, [xin, m], (g) => {
      const gc = contiguous(g);
      const dx = empty(y.shape, y.dtype, y.device);
      if (dx.numel > 0) kernels.softmaxBackward(dx, y, gc, log);
      return [
        xin.requiresGrad ? (scale === 1 ? dx : mul(dx, scale)) : null,
        m && m.requiresGrad ? sumTo(dx, m.shape) : null,
      ];
    }, [y]);
  }
  return y;
}

export function softmax(x: Tensor, dim = -1, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl('softmax', x, dim, false, opts);
}

export function logSoftmax(x: Tensor, dim = -1, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl('logSoftmax', x, dim, true, opts);
}
