/**
 * Gradient clipping by total norm (torch.nn.utils.clip_grad_norm_): the norm of all
 * gradients together, as if concatenated, and every gradient scaled in place by
 * maxNorm / (norm + 1e-6) when that is below 1. Parameters without a gradient are skipped.
 *
 * CPU float gradients are reduced and scaled by fused native multi-tensor kernels (one call
 * per dtype, accumulated in float64 in a fixed order, so the result does not depend on the
 * thread count); other gradients (CUDA) are read back to the host for the norm and scaled
 * with an elementwise op.
 */
import { noGrad } from '../autograd.js';
import { contiguous, mul_ } from '../ops/elementwise.js';
import type { Tensor } from '../tensor.js';
import { fusable, fusedKey, groupBy, multiTensorNorm, multiTensorScale } from './fused.js';

export interface ClipGradNormOptions {
  /**
   * Throw (leaving the gradients untouched) when the total norm is NaN or infinite. When
   * false (default) a non-finite norm is returned and the gradients are left as they are —
   * unlike PyTorch, which would scale them by 0 or NaN — so the caller can skip the step.
   */
  errorIfNonfinite?: boolean;
}

function normKind(normType: number): { kind: 0 | 1 | 2; p: number } {
  if (normType === Infinity) return { kind: 1, p: Infinity };
  if (normType === 2) return { kind: 0, p: 2 };
  return { kind: 2, p: normType };
}

/** The total p-norm of the tensors (float64 accumulation). normType may be Infinity. */
export function totalNorm(ts: readonly Tensor[], normType = 2): number {
  if (typeof normType !== 'number' || Number.isNaN(normType) || normType <= 0)
    throw new RangeError(`totalNorm: normType must be a positive number or Infinity, got ${normType}`);
  const { kind, p } = normKind(normType);
  let acc = 0;
  const combine = (r: number) => {
    acc = kind === 1 ? (r > acc || Number.isNaN(r) ? r : acc) : acc + r;
  };
  const native: Tensor[] = [];
  const temps: Tensor[] = [];
  try {
    for (const t of ts) {
      t.check('clipGradNorm');
      if (t.numel === 0) continue;
      if (fusable(t)) native.push(t);
      else if (t.dtype === 'float32' || t.dtype === 'float64') {
        const c = noGrad(() => contiguous(t));
        temps.push(c);
        native.push(c);
      } else {
        const d = t.dataSync();
        let r = 0;
        for (let i = 0; i < d.length; ++i) {
          const a = Math.abs(Number(d[i]));
          if (kind === 0) r += a * a;
          else if (kind === 1) r = a > r || Number.isNaN(a) ? a : r;
          else r += a ** p;
        }
        combine(r);
      }
    }
    for (const same of groupBy(native, fusedKey)) combine(multiTensorNorm(same, kind, p));
  } finally {
    for (const t of temps) t.dispose();
  }
  return kind === 0 ? Math.sqrt(acc) : kind === 1 ? acc : acc ** (1 / p);
}

/**
 * Clips the gradients of `params` (a tensor or an iterable of tensors) so that their total
 * `normType`-norm is at most `maxNorm`; returns the total norm before clipping (a number;
 * 0 when no parameter has a gradient).
 */
export function clipGradNorm(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2, opts: ClipGradNormOptions = {}): number {
  const list = (params as { _isTensor?: boolean })._isTensor ? [params as Tensor] : [...(params as Iterable<Tensor>)];
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new RangeError(`clipGradNorm: maxNorm must be a number, got ${maxNorm}`);
  const grads: Tensor[] = [];
  for (const p of new Set(list)) if (p.grad) grads.push(p.grad);
  if (grads.length === 0) return 0;
  const total = totalNorm(grads, normType);
  if (!Number.isFinite(total)) {
    if (opts.errorIfNonfinite)
      throw new Error(`clipGradNorm: the total norm of order ${normType} of the gradients is ${total}, so they cannot be clipped; ` +
        'set errorIfNonfinite to false to get the norm back with the gradients untouched');
    return total;
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef >= 1) return total;
  noGrad(() => {
    const native = grads.filter(fusable);
    for (const same of groupBy(native, fusedKey)) multiTensorScale(same, coef);
    for (const g of grads) if (!fusable(g)) mul_(g, coef);
  });
  return total;
}
