/**
 * Megatron-LM's vocab-parallel cross-entropy: the logits [N, V] are split by vocabulary over a
 * tensor-parallel group (rank r holds columns [r·V/P, (r+1)·V/P), the output of a column-
 * parallel decoder without gather), and no rank ever materialises the full row. Per row:
 *
 *   m   = max over ranks of the local max              (all-reduce max)
 *   z   = Σ over ranks of Σ_local exp(x − m)             (all-reduce sum)
 *   x_t = the target's logit, from the rank holding it (all-reduce sum of x_t or 0)
 *   loss = log z − (x_t − m)
 *
 * Backward (no communication): softmax − one-hot(target) on the local columns, times the
 * incoming gradient. Rows whose target is `ignoreIndex` give loss 0 and gradient 0; 'mean'
 * divides by the number of other rows (at least 1), as torch's cross_entropy does.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';

export interface VocabParallelCrossEntropyOptions {
  /** Default -100 (torch's). */
  ignoreIndex?: number;
  /** Default 'mean'. */
  reduction?: 'mean' | 'sum' | 'none';
  /**
   * The true vocabulary size when the slices are padded (a column-parallel decoder over a
   * vocabulary P does not divide: ⌈V/P⌉ columns per rank): logits of columns ≥ V are left out.
   * Default: P × the slice width (no padding).
   */
  vocabSize?: number;
}

/** `logits` [..., V/P] (this rank's vocabulary slice), `target` [...] int (global ids). */
export function vocabParallelCrossEntropy(pg: ProcessGroup, logits: T.Tensor, target: T.Tensor, opts: VocabParallelCrossEntropyOptions = {}): T.Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new RangeError(`vocabParallelCrossEntropy: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  if (logits.ndim !== target.ndim + 1 || target.shape.some((s, i) => s !== logits.shape[i]))
    throw new Error(`vocabParallelCrossEntropy: logits [${logits.shape.join(', ')}] and targets [${target.shape.join(', ')}] do not match (logits [..., vocab slice], targets [...])`);
  if (target.dtype !== 'int64' && target.dtype !== 'int32') throw new TypeError(`vocabParallelCrossEntropy: targets must be int64 or int32, got ${target.dtype}`);
  const Vp = logits.shape[logits.ndim - 1]!;
  const N = target.numel;
  const lo = pg.rank * Vp;
  const V = opts.vocabSize ?? pg.size * Vp;
  if (!(Number.isInteger(V) && V >= 1 && Math.ceil(V / pg.size) === Vp))
    throw new RangeError(`vocabParallelCrossEntropy: vocabSize ${opts.vocabSize} does not give ${pg.size} slices of ${Vp} columns (⌈V / P⌉ each)`);
  const valid = Math.max(0, Math.min(Vp, V - lo));
  const raw = T.reshape(logits, [N, Vp]);
  // padding columns (past the vocabulary) take no part: -inf logits, zero softmax, zero gradient
  const x = valid === Vp ? raw : T.where(T.lt(T.arange(0, Vp, 1, { dtype: 'int64', device: raw.device }), valid), raw, -Infinity);
  const t = T.reshape(target, [N]);
  // filled by forward (customOp records its node after forward runs)
  const saved: T.Tensor[] = [];
  const rowLoss = T.customOp('vocabParallelCrossEntropy', [x], () => {
    const m = T.contiguous(T.max(x, 1).values);
    pg.allReduce(m, 'max');
    const shifted = T.sub(x, T.unsqueeze(m, 1));
    const e = T.exp(shifted);
    const z = T.contiguous(T.sum(e, 1));
    pg.allReduce(z, 'sum');
    const here = T.logicalAnd(T.ge(t, lo), T.lt(t, lo + Vp));
    const local = T.where(here, T.sub(t, lo), 0);
    const picked = T.contiguous(T.where(here, T.squeeze(T.gather(shifted, 1, T.unsqueeze(local, 1)), 1), 0));
    pg.allReduce(picked, 'sum');
    const valid = T.ne(t, ignore);
    // saved for backward: softmax over the local columns, where the target sits, which rows count
    saved.push(T.div(e, T.unsqueeze(z, 1)), here, local, valid);
    return T.where(valid, T.sub(T.log(z), picked), 0);
  }, (g) => {
    const [soft, here, local, valid] = saved as [T.Tensor, T.Tensor, T.Tensor, T.Tensor];
    const oneHot = T.scatterAdd(T.zerosLike(soft), 1, T.unsqueeze(local, 1), T.unsqueeze(T.cast(here, soft.dtype), 1));
    const scale = T.where(valid, g, 0);
    return [T.mul(T.sub(soft, oneHot), T.unsqueeze(scale, 1))];
  }, saved);
  const loss = T.reshape(rowLoss, target.shape);
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return T.sum(loss);
  return T.div(T.sum(loss), T.clamp(T.sum(T.cast(T.ne(target, ignore), loss.dtype)), 1));
}
