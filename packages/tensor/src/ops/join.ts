/** cat / stack and their inverses split / chunk. */
import { needsGrad, noGrad, record } from '../autograd.js';
import { promoteTypes } from '../dtype.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { cast, copy_ } from './elementwise.js';
import { checkSameDevice } from './util.js';
import { narrow, unsqueeze } from './views.js';

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  const first = tensors[0]!;
  for (const t of tensors) {
    t.check('cat');
    if (t.ndim === 0) throw new Error('cat: zero-dimensional tensors cannot be concatenated (use stack)');
  }
  checkSameDevice('cat', ...tensors);
  const d = first.dim(dim, 'cat');
  let total = 0;
  let dtype = first.dtype;
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i]))
      throw new Error(`cat: shapes ${tensors.map((x) => fmtShape(x.shape)).join(', ')} differ outside dim ${dim}`);
    total += t.shape[d]!;
    dtype = promoteTypes(dtype, t.dtype);
  }
  const shape = first.shape.slice();
  shape[d] = total;
  const out = empty(shape, dtype, first.device);
  noGrad(() => {
    let at = 0;
    for (const t of tensors) {
      const n = t.shape[d]!;
      if (n > 0) copy_(narrow(out, d, at, n), t.dtype === dtype ? t : cast(t, dtype));
      at += n;
    }
  });
  if (needsGrad(...tensors)) {
    const sizes = tensors.map((t) => t.shape[d]!);
    const dtypes = tensors.map((t) => t.dtype);
    record(out, 'cat', [...tensors], (g) => {
      let at = 0;
      return sizes.map((n, i) => {
        const s = narrow(g, d, at, n);
        at += n;
        return s.dtype === dtypes[i] ? s : cast(s, dtypes[i]!);
      });
    });
  }
  return out;
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: expected a non-empty list of tensors');
  const first = tensors[0]!;
  for (const t of tensors)
    if (t.ndim !== first.ndim || t.shape.some((s, i) => s !== first.shape[i])) throw new Error(`stack: all shapes must match, got ${tensors.map((x) => fmtShape(x.shape)).join(', ')}`);
  return cat(tensors.map((t) => unsqueeze(t, dim)), dim < 0 ? dim + first.ndim + 1 : dim);
}

/** Views of consecutive pieces along dim: of `size` each (last may be smaller) or of the given sizes. */
export function split(x: Tensor, sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
  const d = x.dim(dim, 'split');
  const n = x.shape[d]!;
  let sizes: number[];
  if (typeof sizeOrSections === 'number') {
    if (!Number.isInteger(sizeOrSections) || sizeOrSections <= 0) throw new RangeError(`split: size must be a positive integer, got ${sizeOrSections}`);
    sizes = [];
    for (let at = 0; at < n; at += sizeOrSections) sizes.push(Math.min(sizeOrSections, n - at));
    if (n === 0) sizes.push(0);
  } else {
    sizes = sizeOrSections.slice();
    const s = sizes.reduce((a, b) => a + b, 0);
    if (s !== n) throw new Error(`split: sizes [${sizes.join(', ')}] sum to ${s}, but dim ${dim} has size ${n}`);
  }
  let at = 0;
  return sizes.map((len) => {
    const v = narrow(x, d, at, len);
    at += len;
    return v;
  });
}

/** `chunks` nearly equal pieces along dim (as torch.chunk). */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks <= 0) throw new RangeError(`chunk: chunks must be a positive integer, got ${chunks}`);
  const n = x.shape[x.dim(dim, 'chunk')]!;
  return split(x, Math.max(1, Math.ceil(n / chunks)), dim);
}
