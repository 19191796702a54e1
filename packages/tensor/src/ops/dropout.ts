/** Inverted dropout with a seeded mask (the mask is kept for the backward). */
import * as kernels from '../backend/kernels.js';
import { needsGrad, record } from '../autograd.js';
import { isFloating } from '../dtype.js';
import { defaultGenerator, type Generator } from '../generator.js';
import { empty, type Tensor } from '../tensor.js';
import { cast, contiguous, mul } from './elementwise.js';

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
