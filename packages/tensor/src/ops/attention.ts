/**
 * Scaled dot-product attention: softmax(q·kᵀ·scale + mask)·v
 * (torch.nn.functional.scaled_dot_product_attention).
 *
 * On a CUDA device, with dropout off (dropoutP 0 or not training) and 4-D [B, H, L, D]
 * operands that flashAttention takes (head dims ≤ 128, a mask that needs no gradient), it runs
 * the fused flash kernel (ops/flash_attention.ts). Everywhere else — the CPU always, so CPU
 * numbers stay those of the composed path — it composes matmul, softmax (scale and mask fused
 * in one native pass), dropout and matmul.
 */
import { fmtShape, type Tensor } from '../tensor.js';
import { defaultGenerator, type Generator } from '../generator.js';
import { dropout, dropoutSlice, type SliceOf } from './dropout.js';
import { le } from './elementwise.js';
import { matmul } from './matmul.js';
import { softmax } from './softmax.js';
import { transpose, unsqueeze } from './views.js';
import { arange } from './creation.js';
import { broadcastShapes } from './util.js';
import { flashAttention, flashAttentionUnsupported } from './flash_attention.js';

export interface AttentionOptions {
  /** bool (true = attend) or additive float, broadcastable to [..., Lq, Lk]. */
  attnMask?: Tensor;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1/sqrt(head dim). */
  scale?: number;
  training?: boolean;
  generator?: Generator;
  /**
   * These attention weights are a slice of larger ones (a tensor-parallel rank's heads of the
   * one-process [..., H, Lq, Lk]): draw the dropout mask the whole would get (dropoutSlice).
   */
  dropoutOf?: SliceOf;
}

export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim < 2 || k.ndim < 2 || v.ndim < 2) throw new Error('scaledDotProductAttention: q, k, v need at least 2 dims [..., L, D]');
  const D = q.shape[q.ndim - 1]!;
  if (k.shape[k.ndim - 1] !== D || k.shape[k.ndim - 2] !== v.shape[v.ndim - 2])
    throw new Error(`scaledDotProductAttention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit [..., Lq, D], [..., Lk, D], [..., Lk, Dv]`);
  if (opts.isCausal && opts.attnMask) throw new Error('scaledDotProductAttention: pass either attnMask or isCausal, not both');
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  let mask = opts.attnMask;
  if (mask) {
    const batch = broadcastShapes(q.shape.slice(0, -2), k.shape.slice(0, -2), 'scaledDotProductAttention');
    const scoreShape = [...batch, q.shape[q.ndim - 2]!, k.shape[k.ndim - 2]!];
    const off = scoreShape.length - mask.ndim;
    if (off < 0 || mask.shape.some((m, i) => m !== 1 && m !== scoreShape[off + i]))
      throw new Error(`scaledDotProductAttention: attnMask ${fmtShape(mask.shape)} does not broadcast to the scores [..., Lq, Lk] = ${fmtShape(scoreShape)}`);
  }
  const dropoutOn = !!opts.dropoutP && (opts.training ?? true);
  if (q.device !== 'cpu' && !dropoutOn && q.ndim === 4 && !flashAttentionUnsupported(q, k, v, opts.attnMask) && Math.max(D, v.shape[3]!) <= 128)
    return flashAttention(q, k, v, { attnMask: opts.attnMask, isCausal: opts.isCausal, scale });
  if (opts.isCausal) {
    const Lq = q.shape[q.ndim - 2]!, Lk = k.shape[k.ndim - 2]!;
    const row = unsqueeze(arange(0, Lq, 1, { device: q.device }), 1);
    const col = unsqueeze(arange(0, Lk, 1, { device: q.device }), 0);
    mask = le(col, row);
  }
  const scores = matmul(q, transpose(k, -2, -1));
  let p = softmax(scores, -1, { scale, mask });
  if (dropoutOn) p = opts.dropoutOf ? dropoutSlice(p, opts.dropoutP!, true, opts.generator ?? defaultGenerator, opts.dropoutOf) : dropout(p, opts.dropoutP, true, opts.generator ?? defaultGenerator);
  return matmul(p, v);
}
