/**
 * flashAttention: fused scaled-dot-product attention, softmax(q·kᵀ·scale + mask)·v, in one
 * native pass per direction that never stores the [Lq, Lk] score matrix (FlashAttention-2:
 * online softmax forward, the per-row logsumexp saved for a backward that recomputes the
 * probabilities). CPU kernel: packages/native-cuda/src/cpu/attention.cpp (float32 / float64,
 * float64 sums); CUDA kernel: src/cuda/attention.cu (float32, float64, bfloat16 and float16
 * storage with float32 accumulation; head dims up to 128).
 *
 * Rows whose keys are all masked give 0 and pass no gradient (softmax's rule). The mask gets
 * no gradient: an additive mask that requires grad is refused (scaledDotProductAttention
 * then takes its composed path).
 */
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { isFloating } from '../dtype.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { cast, contiguous } from './elementwise.js';

export interface FlashAttentionOptions {
  /** bool (true = attend) or additive float, broadcastable to [B, H, Lq, Lk]. */
  attnMask?: Tensor;
  /** Query i attends keys j ≤ i (top-left aligned, like PyTorch); combines with attnMask. */
  isCausal?: boolean;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
}

/** Why flashAttention cannot take these operands, or null when it can. */
export function flashAttentionUnsupported(q: Tensor, k: Tensor, v: Tensor, attnMask?: Tensor): string | null {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) return `q, k, v must be 4-D [B, H, L, D], got q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  const [B, H, , D] = q.shape as [number, number, number, number];
  const [kB, kH, Lk, kD] = k.shape as [number, number, number, number];
  const [vB, vH, vL] = v.shape as [number, number, number, number];
  if (kB !== B || vB !== B || kH !== H || vH !== H || kD !== D || vL !== Lk)
    return `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit [B, H, Lq, D], [B, H, Lk, D], [B, H, Lk, Dv]`;
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) return `q, k, v must share one dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}`;
  if (!isFloating(q.dtype)) return `expected a floating dtype, got ${q.dtype}`;
  if (k.device !== q.device || v.device !== q.device) return `q, k, v must be on one device, got ${q.device}, ${k.device}, ${v.device}`;
  if (attnMask) {
    const scores = [B, H, q.shape[2]!, Lk];
    const off = 4 - attnMask.ndim;
    if (off < 0 || attnMask.shape.some((m, i) => m !== 1 && m !== scores[off + i]))
      return `attnMask ${fmtShape(attnMask.shape)} does not broadcast to the scores [B, H, Lq, Lk] = ${fmtShape(scores)}`;
    if (attnMask.dtype !== 'bool' && !isFloating(attnMask.dtype)) return `attnMask must be bool (true = attend) or floating (additive), got ${attnMask.dtype}`;
    if (attnMask.device !== q.device) return `attnMask is on ${attnMask.device}, q on ${q.device}`;
    if (attnMask.requiresGrad) return 'attnMask requires grad, and the fused kernel gives the mask no gradient';
  }
  return null;
}

export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: FlashAttentionOptions = {}): Tensor {
  for (const t of [q, k, v, opts.attnMask]) t?.check('flashAttention');
  const why = flashAttentionUnsupported(q, k, v, opts.attnMask);
  if (why) throw new Error(`flashAttention: ${why}`);
  const [B, H, Lq, D] = q.shape as [number, number, number, number];
  const Dv = v.shape[3]!;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new RangeError(`flashAttention: scale must be finite, got ${scale}`);
  const causal = opts.isCausal ?? false;
  let mask: Tensor | null = opts.attnMask ?? null;
  if (mask && mask.dtype !== 'bool' && mask.dtype !== q.dtype) mask = cast(mask, q.dtype);
  const [qc, kc, vc] = noGrad(() => [contiguous(q), contiguous(k), contiguous(v)]) as [Tensor, Tensor, Tensor];
  const lseDtype = q.dtype === 'float64' ? 'float64' : 'float32';
  const out = empty([B, H, Lq, Dv], q.dtype, q.device);
  const lse = empty([B, H, Lq], lseDtype, q.device);
  const be = kernels;
  if (B * H * Lq > 0) be.attention(out, lse, qc, kc, vc, scale, mask, causal);
  if (needsGrad(q, k, v)) {
    record(out, 'flashAttention', [q, k, v], (g) => {
      const gc = contiguous(g);
      const dq = empty(qc.shape, q.dtype, q.device);
      const dk = empty(kc.shape, q.dtype, q.device);
      const dv = empty(vc.shape, q.dtype, q.device);
      if (B * H > 0) be.attentionBackward(dq, dk, dv, qc, kc, vc, out, lse, gc, scale, mask, causal);
      for (const [x, dx] of [[q, dq], [k, dk], [v, dv]] as const) if (!x.requiresGrad) dx.dispose();
      return [q.requiresGrad ? dq : null, k.requiresGrad ? dk : null, v.requiresGrad ? dv : null];
    }, [qc, kc, vc, out, lse, ...(mask ? [mask] : [])]);
  }
  return out;
}
