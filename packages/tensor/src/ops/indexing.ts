/** Index-based ops: indexSelect / embedding, gather, scatterAdd, oneHot. */
import * as kernels from '../backend/kernels.js';
import { needsGrad, record } from '../autograd.js';
import { empty, fmtShape, shapeNumel, type Tensor } from '../tensor.js';
import { arange, zeros } from './creation.js';
import { cast, clone, contiguous, copy_, eq, ge, logicalOr, lt } from './elementwise.js';
import { max } from './reduce.js';
import { checkSameDevice, sameShape } from './util.js';
import { narrow, reshape, unsqueeze } from './views.js';
import { noGrad } from '../autograd.js';

/** 1 when any element of a bool tensor is true (a 0-dim int64). */
function any(b: Tensor): Tensor {
  return max(cast(b, 'int64'));
}

function checkIndex(idx: Tensor, op: string): void {
  idx.check(op);
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new TypeError(`${op}: indices must be int64 or int32, got ${idx.dtype}`);
}

/** Entries of x along dim at the positions in the 1-D index tensor. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  x.check('indexSelect');
  checkIndex(index, 'indexSelect');
  checkSameDevice('indexSelect', x, index);
  if (index.ndim > 1) throw new Error(`indexSelect: index must be 1-D, got shape ${fmtShape(index.shape)}`);
  const d = x.dim(dim, 'indexSelect');
  const xc = contiguous(x);
  const ic = contiguous(index);
  const outer = shapeNumel(x.shape.slice(0, d)), size = x.shape[d] ?? 1, inner = shapeNumel(x.shape.slice(d + 1));
  const shape = x.shape.slice();
  if (shape.length) shape[d] = ic.numel;
  const out = empty(shape, x.dtype, x.device);
  if (out.numel > 0 || ic.numel > 0) kernels.indexSelect(out, xc, ic, outer, size, inner);
  if (needsGrad(x)) {
    const xs = x.shape, xd = x.dtype, dev = x.device;
    record(out, 'indexSelect', [x], (g) => {
      const gx = zeros(xs, { dtype: xd, device: dev });
      kernels.indexAdd(gx, ic, contiguous(g), outer, size, inner);
      return [gx];
    }, [ic]);
  }
  return out;
}

/** Rows of `weight` [num, dim] for each index: output shape = indices.shape + [dim]. */
export function embedding(indices: Tensor, weight: Tensor): Tensor {
  checkIndex(indices, 'embedding');
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be 2-D [num_embeddings, dim], got ${fmtShape(weight.shape)}`);
  const flat = reshape(indices, [-1]);
  const rows = indexSelect(weight, 0, flat);
  return reshape(rows, [...indices.shape, weight.shape[1]!]);
}

/** out[i][j] = x[i][index[i][j]] along dim (index has x's ndim). */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  x.check('gather');
  checkIndex(index, 'gather');
  checkSameDevice('gather', x, index);
  const d = x.dim(dim, 'gather');
  if (index.ndim !== x.ndim) throw new Error(`gather: index ${fmtShape(index.shape)} must have as many dims as the input ${fmtShape(x.shape)}`);
  for (let i = 0; i < x.ndim; ++i)
    if (i !== d && index.shape[i]! > x.shape[i]!) throw new Error(`gather: index ${fmtShape(index.shape)} is larger than the input ${fmtShape(x.shape)} at dim ${i}`);
  const out = empty(index.shape, x.dtype, x.device);
  if (out.numel > 0) kernels.gather(out, x, d, index);
  if (needsGrad(x)) {
    const xs = x.shape, xd = x.dtype, dev = x.device;
    record(out, 'gather', [x], (g) => [scatterAdd(zeros(xs, { dtype: xd, device: dev }), d, index, g)], [index]);
  }
  return out;
}

/** A copy of x with src added at index along dim (duplicates accumulate). */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  x.check('scatterAdd');
  checkIndex(index, 'scatterAdd');
  checkSameDevice('scatterAdd', x, index, src);
  const d = x.dim(dim, 'scatterAdd');
  if (index.ndim !== x.ndim || src.ndim !== x.ndim) throw new Error(`scatterAdd: index ${fmtShape(index.shape)} and src ${fmtShape(src.shape)} must have the input's ${x.ndim} dims`);
  for (let i = 0; i < x.ndim; ++i) {
    if (index.shape[i]! > src.shape[i]!) throw new Error(`scatterAdd: index ${fmtShape(index.shape)} is larger than src ${fmtShape(src.shape)} at dim ${i}`);
    if (i !== d && index.shape[i]! > x.shape[i]!) throw new Error(`scatterAdd: index ${fmtShape(index.shape)} is larger than the input ${fmtShape(x.shape)} at dim ${i}`);
  }
  const out = clone(x);
  const s = src.dtype === x.dtype ? src : cast(src, x.dtype);
  if (index.numel > 0) kernels.scatterAdd(out, d, index, s);
  if (needsGrad(x, src)) {
    const ss = s.shape;
    record(out, 'scatterAdd', [x, s], (g) => {
      if (!s.requiresGrad) return [g, null];
      const gs = gather(g, d, index);
      if (sameShape(gs.shape, ss)) return [g, gs];
      // src entries beyond the index's extent were not used: their gradient is 0.
      const full = zeros(ss, { dtype: g.dtype, device: g.device });
      let region = full;
      for (let i = 0; i < ss.length; ++i) region = narrow(region, i, 0, index.shape[i]!);
      copy_(region, gs);
      return [g, full];
    }, [index]);
  }
  return out;
}

/** One-hot encoding of integer classes: shape = indices.shape + [numClasses], int64. */
export function oneHot(indices: Tensor, numClasses: number): Tensor {
  checkIndex(indices, 'oneHot');
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new RangeError(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  if (indices.numel > 0) {
    const bad = noGrad(() => logicalOr(lt(indices, 0), ge(indices, numClasses)));
    if (any(bad).item() !== 0) {
      // Error path only: find the first offending value on the host.
      const vals = indices.dataSync();
      for (let i = 0; i < vals.length; ++i) {
        const v = Number(vals[i]!);
        if (v < 0 || v >= numClasses)
          throw new RangeError(`oneHot: index ${v} at position ${i} is out of range for numClasses ${numClasses}`);
      }
    }
  }
  const cls = arange(0, numClasses, 1, { dtype: indices.dtype, device: indices.device });
  return cast(eq(unsqueeze(indices, -1), cls), 'int64');
}
