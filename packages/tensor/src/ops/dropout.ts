/**
 * Inverted dropout with a seeded mask (the mask is kept for the backward). The mask is a
 * function of the generator's seed and offset and of each element's index, so
 * `dropoutSlice` can give a slice of a tensor exactly the mask the whole tensor would get
 * (tensor parallelism: a rank holding some heads or hidden units draws what one process draws).
 */
import * as kernels from '../backend/kernels.js';
import { needsGrad, record } from '../autograd.js';
import { isFloating } from '../dtype.js';
import { defaultGenerator, type Generator } from '../generator.js';
import { empty, type Tensor } from '../tensor.js';
import { cast, contiguous, mul } from './elementwise.js';
import { ones } from './creation.js';
import { noGrad } from '../autograd.js';

export function dropout(x: Tensor, p = 0.5, training = true, generator: Generator = defaultGenerator): Tensor {
  x.check('dropout');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  if (!isFloating(x.dtype)) throw new TypeError(`dropout: expected a floating tensor, got ${x.dtype}`);
  const xc = contiguous(x);
  const y = empty(x.shape, x.dtype, x.device);
  const mask = empty(x.shape, 'uint8', x.device);
  if (x.numel > 0) kernels.dropout(y, mask, xc, p, generator.seed, generator.take(x.numel));
  if (needsGrad(x)) {
    const scale = p < 1 ? 1 / (1 - p) : 0;
    record(y, 'dropout', [x], (g) => [mul(mul(g, cast(mask, g.dtype)), scale)], [mask]);
  }
  return y;
}

/** Where a tensor sits in a larger one: `x` is `whole`'s slice [start, start + x.shape[dim]) along `dim`. */
export interface SliceOf {
  whole: readonly number[];
  dim: number;
  start: number;
}

/**
 * Dropout of `x` with the mask that `dropout` would draw for the whole tensor `of.whole` at
 * this point of the generator, restricted to x's slice: the generator advances by the whole
 * tensor's elements, as it would in one process. Draws the whole mask (its size in memory).
 */
export function dropoutSlice(x: Tensor, p: number, training: boolean, generator: Generator, of: SliceOf): Tensor {
  x.check('dropoutSlice');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropoutSlice: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const d = of.dim < 0 ? of.dim + of.whole.length : of.dim;
  const n = x.shape[d];
  if (x.ndim !== of.whole.length || n === undefined || of.start < 0 || of.start + n > of.whole[d]! || x.shape.some((s, i) => i !== d && s !== of.whole[i]))
    throw new Error(`dropoutSlice: [${x.shape.join(', ')}] is not a slice of [${of.whole.join(', ')}] at ${of.start} along dim ${of.dim}`);
  // the whole tensor's scaled mask (0 or 1/(1-p)), drawn as dropout draws it
  const scaled = noGrad(() => {
    const full = dropout(ones(of.whole, { dtype: x.dtype, device: x.device }), p, true, generator);
    return contiguous(full.narrow(d, of.start, n));
  });
  return mul(x, scaled);
}
