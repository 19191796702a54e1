/**
 * Self-attention with its heads split over a tensor-parallel group (Megatron-LM's
 * ParallelAttention), made from a `T.nn.MultiheadSelfAttention`: rank r keeps heads
 * [r·H/P, (r+1)·H/P) —
 *
 *   q·k·v: column-parallel with stride 3 (its heads' rows of q, of k and of v; VLMo's separate
 *          q and v biases split the same way),
 *   attention over its local heads (no communication),
 *   output projection: row-parallel (partial products all-reduced, bias added once).
 *
 * One all-reduce forward (after the projection) and one backward (the input gradient, in
 * `copyToTensorParallelRegion`). Attention dropout falls inside the split region: each rank
 * applies to its heads the slice of the mask one process draws for all heads (T.dropoutSlice;
 * the generator advances as in one process), so results stay the same on any layout (DESIGN
 * principle 7). The projection dropout is outside it and draws the same mask on every rank.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { ColumnParallelLinear, RowParallelLinear, tensorParallelParameter } from './linear.js';
import { copyToTensorParallelRegion } from './mappings.js';

export class ParallelSelfAttention extends T.nn.Module {
  /** Its forward applies qkv's weight with its own biases: ZeRO-3 gathers its whole subtree for it. */
  static readonly zero3Leaf = true;
  qkv: ColumnParallelLinear;
  qBias: T.nn.Parameter | null = null;
  vBias: T.nn.Parameter | null = null;
  proj: RowParallelLinear;
  readonly dim: number;
  readonly numHeads: number;
  readonly headDim: number;
  /** Heads on this rank. */
  readonly localHeads: number;
  private readonly _attnDropout: number;
  private readonly _projDropout: number;
  private readonly _gen: T.Generator;

  constructor(readonly group: ProcessGroup, attn: T.nn.MultiheadSelfAttention) {
    super();
    const P = group.size;
    if (attn.numHeads % P !== 0) throw new Error(`ParallelSelfAttention: ${attn.numHeads} heads do not split over ${P} tensor-parallel ranks`);
    this.dim = attn.dim;
    this.numHeads = attn.numHeads;
    this.headDim = attn.headDim;
    this.localHeads = attn.numHeads / P;
    this.qkv = ColumnParallelLinear.fromDense(attn.qkv, group, { stride: 3 });
    if (attn.qBias && attn.vBias) {
      this.qBias = tensorParallelParameter(attn.qBias, group, { dim: 0, stride: 1 }, attn.qBias.tags);
      this.vBias = tensorParallelParameter(attn.vBias, group, { dim: 0, stride: 1 }, attn.vBias.tags);
    }
    this.proj = RowParallelLinear.fromDense(attn.proj, group);
    this._attnDropout = attn.opts.attnDropout ?? 0;
    this._projDropout = attn.opts.projDropout ?? 0;
    this._gen = attn.opts.generator ?? T.defaultGenerator;
    this.training = attn.training;
  }

  static fromDense(attn: T.nn.MultiheadSelfAttention, group: ProcessGroup): ParallelSelfAttention {
    return new ParallelSelfAttention(group, attn);
  }

  /** x [B, L, dim] (replicated over the group); mask as MultiheadSelfAttention's. Returns [B, L, dim]. */
  forward(x: T.Tensor, mask?: T.Tensor): T.Tensor {
    return T.scope(() => this.attend(x, mask));
  }

  private attend(x: T.Tensor, mask?: T.Tensor): T.Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.dim) throw new Error(`ParallelSelfAttention: expected [B, L, ${this.dim}], got [${x.shape.join(', ')}]`);
    const [B, L] = x.shape as [number, number];
    const dl = this.localHeads * this.headDim;
    let bias: T.Tensor | null = this.qkv.bias;
    if (this.qBias && this.vBias) bias = T.cat([this.qBias, T.zeros([dl], { dtype: x.dtype, device: x.device }), this.vBias]);
    const qkv = T.linear(copyToTensorParallelRegion(this.group, x), this.qkv.weight, bias); // [B, L, 3·dim/P]
    const heads = T.permute(T.reshape(qkv, [B, L, 3, this.localHeads, this.headDim]), [2, 0, 3, 1, 4]);
    // attention dropout: this rank's heads get the mask one process draws for all of them
    const dropoutOf = this.group.size > 1 ? { whole: [B, this.numHeads, L, L], dim: 1, start: this.group.rank * this.localHeads } : undefined;
    const ctx = T.scaledDotProductAttention(heads.select(0, 0), heads.select(0, 1), heads.select(0, 2), { attnMask: mask, dropoutP: this._attnDropout, training: this.training, generator: this._gen, dropoutOf });
    const merged = T.reshape(T.permute(ctx, [0, 2, 1, 3]), [B, L, dl]);
    return T.dropout(this.proj.forward(merged), this._projDropout, this.training, this._gen);
  }
}
