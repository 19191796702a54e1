/** Layer norm over trailing dims with a fused native forward and backward. */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { empty, fmtShape, shapeNumel, type Tensor } from '../tensor.js';
import { contiguous } from './elementwise.js';
import { reshape } from './views.js';

export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  x.check('layerNorm');
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
  if (ns.length === 0) throw new Error('layerNorm: normalizedShape must name at least one dim');
  const tail = x.shape.slice(x.ndim - ns.length);
  if (ns.length > x.ndim || tail.some((s, i) => s !== ns[i])) throw new Error(`layerNorm: normalizedShape ${fmtShape(ns)} does not match the input's trailing dims ${fmtShape(x.shape)}`);
  const cols = shapeNumel(ns);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const)
    if (p && p.numel !== cols) throw new Error(`layerNorm: ${name} ${fmtShape(p.shape)} does not match normalizedShape ${fmtShape(ns)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`layerNorm: expected a floating tensor, got ${x.dtype}`);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (!p) continue;
    p.check('layerNorm');
    if (p.dtype !== x.dtype) throw new TypeError(`layerNorm: ${name} dtype ${p.dtype} differs from the input's ${x.dtype}`);
    if (p.device !== x.device) throw new Error(`layerNorm: ${name} is on ${p.device}, the input on ${x.device}`);
  }
  if (!(eps >= 0)) throw new RangeError(`layerNorm: eps must be non-negative, got ${eps}`);
  const rows = cols === 0 ? 0 : x.numel / cols;
  // The kernel works on [rows, cols] (cols = all normalized dims together).
  const xc = noGrad(() => reshape(contiguous(x), [rows, cols]));
  const wc = weight ? noGrad(() => reshape(contiguous(weight), [cols])) : null;
  const bc = bias ? noGrad(() => reshape(contiguous(bias), [cols])) : null;
  const y2 = empty([rows, cols], x.dtype, x.device);
  const mean = empty([rows], x.dtype, x.device);
  const rstd = empty([rows], x.dtype, x.device);
  if (y2.numel > 0) kernels.layerNorm(y2, mean, rstd, xc, wc, bc, eps);
  const y = noGrad(() => reshape(y2, x.shape));
  if (needsGrad(x, weight, bias)) {
    record(y, 'layerNorm', [x, weight ?? null, bias ?? null], (g) => {
      const gc = reshape(contiguous(g), [rows, cols]);
      const dx = x.requiresGrad ? empty([rows, cols], x.dtype, x.device) : null;
      const dw = weight && weight.requiresGrad ? empty([cols], x.dtype, x.device) : null;
      const db = bias && bias.requiresGrad ? empty([cols], x.dtype, x.device) : null;
      if (rows > 0 && cols > 0) kernels.layerNormBackward(xc, wc, mean, rstd, gc, dx, dw, db);
      else for (const t of [dw, db]) if (t && t.numel > 0) kernels.fill(t, 0);
      return [dx && reshape(dx, x.shape), dw && reshape(dw, weight!.shape), db && reshape(db, bias!.shape)];
    }, [xc, mean, rstd, ...(wc ? [wc] : [])]);
  }
  return y;
}
