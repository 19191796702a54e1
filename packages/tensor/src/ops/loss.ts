/** Losses and similarity: crossEntropy, binaryCrossEntropyWithLogits, normalize, cosineSimilarity. */
import { fmtShape, type Tensor } from '../tensor.js';
import { abs, add, affine, cast, clamp, div, exp, log, mul, ne, neg, relu, sqrt, sub, where } from './elementwise.js';
import { gather } from './indexing.js';
import { mean, sum } from './reduce.js';
import { logSoftmax } from './softmax.js';
import { squeeze, unsqueeze } from './views.js';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (and not counted in the mean). Default -100. */
  ignoreIndex?: number;
  /** Mixes the one-hot target with the uniform distribution (0 = off). */
  labelSmoothing?: number;
  reduction?: Reduction;
}

/**
 * Cross entropy of logits [..., C] against integer class targets [...] (as
 * torch.nn.functional.cross_entropy with the class dim last).
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (eps < 0 || eps > 1) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  if (target.dtype !== 'int64' && target.dtype !== 'int32') throw new TypeError(`crossEntropy: targets must be int64 or int32 class indices, got ${target.dtype}`);
  if (logits.ndim !== target.ndim + 1 || target.shape.some((s, i) => s !== logits.shape[i]))
    throw new Error(`crossEntropy: logits ${fmtShape(logits.shape)} and targets ${fmtShape(target.shape)} do not match (expected logits = targets + [C])`);
  const lp = logSoftmax(logits, -1);
  const valid = ne(target, ignore);
  const safe = where(valid, target, 0);
  let loss = neg(squeeze(gather(lp, -1, unsqueeze(safe, -1)), -1));
  if (eps > 0) loss = add(mul(loss, 1 - eps), mul(neg(mean(lp, -1)), eps));
  const vf = cast(valid, loss.dtype);
  loss = mul(loss, vf);
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  return div(sum(loss), clamp(sum(vf), 1));
}

/** Numerically stable BCE on logits: max(x,0) - x·y + log(1 + exp(-|x|)). */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, opts: { reduction?: Reduction; posWeight?: Tensor } = {}): Tensor {
  if (logits.ndim !== target.ndim || logits.shape.some((s, i) => s !== target.shape[i]))
    throw new Error(`binaryCrossEntropyWithLogits: logits ${fmtShape(logits.shape)} and targets ${fmtShape(target.shape)} differ`);
  const y = target.dtype === logits.dtype ? target : cast(target, logits.dtype);
  const softplusNeg = log(add(exp(neg(abs(logits))), 1)); // log(1 + exp(-|x|))
  let loss: Tensor;
  if (opts.posWeight) {
    // (1 - y)·x + (1 + (pw - 1)·y)·(log(1 + exp(-|x|)) + max(-x, 0))
    const lw = add(mul(sub(opts.posWeight, 1), y), 1);
    loss = add(mul(affine(y, -1, 1), logits), mul(lw, add(softplusNeg, relu(neg(logits)))));
  } else {
    loss = add(sub(relu(logits), mul(logits, y)), softplusNeg);
  }
  const r = opts.reduction ?? 'mean';
  return r === 'none' ? loss : r === 'sum' ? sum(loss) : mean(loss);
}

/** x / max(||x||_p, eps) along dim. */
export function normalize(x: Tensor, p = 2, dim = -1, eps = 1e-12): Tensor {
  let norm: Tensor;
  if (p === 2) norm = sqrt(sum(mul(x, x), dim, true));
  else if (p === 1) norm = sum(abs(x), dim, true);
  else throw new RangeError(`normalize: p must be 1 or 2, got ${p}`);
  return div(x, clamp(norm, eps));
}

/** Cosine similarity along dim: a·b / max(||a||·||b||, eps). */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = -1, eps = 1e-8): Tensor {
  const dot = sum(mul(a, b), dim);
  const na = sqrt(sum(mul(a, a), dim));
  const nb = sqrt(sum(mul(b, b), dim));
  return div(dot, clamp(mul(na, nb), eps));
}
