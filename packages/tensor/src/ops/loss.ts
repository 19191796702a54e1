/** Losses and similarity: crossEntropy (and its fused kernel), binaryCrossEntropyWithLogits, normalize, cosineSimilarity. */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { isFloating } from '../dtype.js';
import { abs, add, affine, cast, clamp, contiguous, div, exp, log, maximum, mul, ne, neg, sqrt, sub, where } from './elementwise.js';
import { broadcastShapes } from './util.js';
import { gather } from './indexing.js';
import { mean, sum } from './reduce.js';
import { logSoftmax } from './softmax.js';
import { reshape, squeeze, unsqueeze } from './views.js';

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
  const { ignore, eps, reduction } = crossEntropyArgs('crossEntropy', logits, target, opts);
  // On CUDA: the fused kernel (one pass per row, lse saved for the backward). On the CPU the
  // composed path below (its numbers are the reference the CPU runs are pinned to).
  if (logits.device !== 'cpu') return fusedCrossEntropy(logits, target, opts);
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

function crossEntropyArgs(name: string, logits: Tensor, target: Tensor, opts: CrossEntropyOptions): { ignore: number; eps: number; reduction: Reduction } {
  const ignore = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const reduction = opts.reduction ?? 'mean';
  if (eps < 0 || eps > 1) throw new RangeError(`${name}: labelSmoothing must be in [0, 1], got ${eps}`);
  if (target.dtype !== 'int64' && target.dtype !== 'int32') throw new TypeError(`${name}: targets must be int64 or int32 class indices, got ${target.dtype}`);
  if (logits.ndim !== target.ndim + 1 || target.shape.some((s, i) => s !== logits.shape[i]))
    throw new Error(`${name}: logits ${fmtShape(logits.shape)} and targets ${fmtShape(target.shape)} do not match (expected logits = targets + [C])`);
  return { ignore, eps, reduction };
}

/**
 * Cross entropy in one fused kernel per direction (`crossEntropy`'s semantics and options):
 * per row of logits [..., C], lse = log Σ exp(x) and loss = (1 − ε)·(lse − x_t) + ε·(lse −
 * mean x), 0 where the target is ignoreIndex; the backward writes (softmax(x) − (1 − ε)·onehot(t)
 * − ε/C)·g from the saved lse in one pass. `crossEntropy` uses it for CUDA logits; on the CPU
 * it is the same kernel's reference (float32 / float64). Logits may be bfloat16 / float16 on
 * CUDA (float32 math, float32 loss, gradient in the logits' dtype). A target outside [0, C)
 * that is not ignoreIndex raises an error naming it (on CUDA at the next read back).
 */
export function fusedCrossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const { ignore, eps, reduction } = crossEntropyArgs('fusedCrossEntropy', logits, target, opts);
  logits.check('fusedCrossEntropy');
  target.check('fusedCrossEntropy');
  if (!isFloating(logits.dtype)) throw new TypeError(`fusedCrossEntropy: expected floating logits, got ${logits.dtype}`);
  if (target.device !== logits.device) throw new Error(`fusedCrossEntropy: targets are on ${target.device}, the logits on ${logits.device}`);
  if (!Number.isSafeInteger(ignore)) throw new RangeError(`fusedCrossEntropy: ignoreIndex must be an integer, got ${ignore}`);
  const device = logits.device;
  const C = logits.shape[logits.ndim - 1]!;
  const N = target.numel;
  const rowDtype = logits.dtype === 'float64' ? 'float64' : 'float32';
  const xc = noGrad(() => reshape(contiguous(logits), [N, C]));
  const tc = noGrad(() => reshape(contiguous(target), [N]));
  const rows = empty([N], rowDtype, device);
  const lse = empty([N], rowDtype, device);
  if (N > 0) kernels.crossEntropy(rows, lse, xc, tc, N, C, ignore, eps);
  const loss = noGrad(() => reshape(rows, target.shape));
  if (needsGrad(logits)) {
    record(loss, 'fusedCrossEntropy', [logits], (g) => {
      const gc = reshape(contiguous(g), [N]);
      const dx = empty([N, C], logits.dtype, device);
      if (dx.numel > 0) kernels.crossEntropyBackward(dx, xc, tc, lse, gc, N, C, ignore, eps);
      return [reshape(dx, logits.shape)];
    }, [xc, tc, lse]);
  }
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  // mean over the rows whose target is not ignored (at least 1)
  return div(sum(loss), clamp(sum(cast(ne(target, ignore), loss.dtype)), 1));
}

/** Numerically stable BCE on logits: max(x,0) - x·y + log(1 + exp(-|x|)). */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, opts: { reduction?: Reduction; posWeight?: Tensor } = {}): Tensor {
  if (logits.ndim !== target.ndim || logits.shape.some((s, i) => s !== target.shape[i]))
    throw new Error(`binaryCrossEntropyWithLogits: logits ${fmtShape(logits.shape)} and targets ${fmtShape(target.shape)} differ`);
  if (!isFloating(logits.dtype)) throw new TypeError(`binaryCrossEntropyWithLogits: expected floating logits, got ${logits.dtype}`);
  const y = target.dtype === logits.dtype ? target : cast(target, logits.dtype);
  // softplus(-x) = log(1 + exp(-|x|)) + max(-x, 0). Both pieces have a kink at x = 0; `maximum`
  // splits its gradient 0.5/0.5 on the tie and |x|'s is 0 there, which together give the true
  // derivative (-1/2) of the smooth sum (relu's 0 would give a wrong gradient at x = 0).
  const softplusNeg = add(log(add(exp(neg(abs(logits))), 1)), maximum(neg(logits), 0));
  let loss: Tensor;
  if (opts.posWeight) {
    const pw = opts.posWeight.dtype === logits.dtype ? opts.posWeight : cast(opts.posWeight, logits.dtype);
    broadcastShapes(pw.shape, logits.shape, 'binaryCrossEntropyWithLogits (posWeight)');
    // (1 - y)·x + (1 + (pw - 1)·y)·softplus(-x)
    const lw = add(mul(sub(pw, 1), y), 1);
    loss = add(mul(affine(y, -1, 1), logits), mul(lw, softplusNeg));
  } else {
    // (1 - y)·x + softplus(-x)
    loss = add(mul(affine(y, -1, 1), logits), softplusNeg);
  }
  const r = opts.reduction ?? 'mean';
  return r === 'none' ? loss : r === 'sum' ? sum(loss) : mean(loss);
}

/** x / max(||x||_p, eps) along dim. */
export function normalize(x: Tensor, p = 2, dim = -1, eps = 1e-12): Tensor {
  let norm: Tensor;
  // max(||x||, eps) for p = 2 is sqrt(max(Σx², eps²)): a zero vector then gets a finite
  // gradient (1/eps) instead of the NaN of sqrt'(0)·0.
  if (p === 2) norm = sqrt(clamp(sum(mul(x, x), dim, true), eps * eps));
  else if (p === 1) norm = clamp(sum(abs(x), dim, true), eps);
  else throw new RangeError(`normalize: p must be 1 or 2, got ${p}`);
  return div(x, norm);
}

/** Cosine similarity along dim: a·b / max(||a||·||b||, eps). */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = -1, eps = 1e-8): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, 'cosineSimilarity');
  const d = dim < 0 ? dim + shape.length : dim;
  if (!(d >= 0 && d < shape.length)) throw new RangeError(`cosineSimilarity: dim ${dim} is out of range for shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const dd = d - shape.length; // as a negative dim, valid for both inputs
  const dot = sum(mul(a, b), dd);
  // max(||a||·||b||, eps) = sqrt(max(Σa²·Σb², eps²)), finite gradients for zero vectors.
  const den = sqrt(clamp(mul(sum(mul(a, a), dd), sum(mul(b, b), dd)), eps * eps));
  return div(dot, den);
}
