/** Layer norm over trailing dims with a fused native forward and backward. */
import { needsGrad, noGrad, record } from '../autograd.js';
import { backendOf } from '../backend/registry.js';
import { empty, fmtShape, shapeNumel, type Tensor } from '../tensor.js';
import { contiguous } from './elementwise.js';
import { reshape } from './views.js';

export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  x.check('layerNorm');
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
  const tail = x.shape.slice(x.ndim - ns.length);
  if (ns.length > x.ndim || tail.some((s, i) => s !== ns[i])) throw new Error(`layerNorm: normalizedShape ${fmtShape(ns)} does not match the input's trailing dims ${fmtShape(x.shape)}`);
  const cols = shapeNumel(ns);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const)
    if (p && p.numel !== cols) throw new Error(`layerNorm: ${name} ${fmtShape(p.shape)} does not match normalizedShape ${fmtShape(ns)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`layerNorm: expected a floating tensor, got ${x.dtype}`);
  const xc = noGrad(() => contiguous(x));
  const rows = cols === 0 ? 0 : x.numel / cols;
  const wc = weight ? noGrad(() => contiguous(weight)) : null;
  const bc = bias ? noGrad(() => contiguous(bias)) : null;
  const y = empty(x.shape, x.dtype, x.device);
  const mean = empty([rows], x.dtype, x.device);
  const rstd = empty([rows], x.dtype, x.device);
  backendOf(x.device).layerNorm(y, mean, rstd, xc, wc, bc, eps);
  if (needsGrad(x, weight, bias)) {
    record(y, 'layerNorm', [x, weight ?? null, bias ?? null], (g) => {
      const gc = contiguous(g);
      const dx = x.requiresGrad ? empty(x.shape, x.dtype, x.device) : null;
      const dw = weight && weight.requiresGrad ? empty([cols], x.dtype, x.device) : null;
      const db = bias && bias.requiresGrad ? empty([cols], x.dtype, x.device) : null;
      backendOf(x.device).layerNormBackward(xc, wc, mean, rstd, gc, dx, dw, db);
      return [dx, dw && reshape(dw, weight!.shape), db && reshape(db, bias!.shape)];
    }, [xc, mean, rstd, ...(wc ? [wc] : [])]);
  }
  return y;
}
