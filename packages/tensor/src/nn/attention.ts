/**
 * Multi-head self-attention as in VLMo/BEiT: one qkv projection without bias plus
 * optional separate q and v biases (k's bias is 0), fused scaled-dot-product attention
 * with an optional mask (softmax in the input dtype: fp32 for fp32 models, never lower), attention and output dropout.
 */
import { defaultGenerator, type Generator } from '../generator.js';
import { zeros } from '../ops/creation.js';
import { dropout } from '../ops/dropout.js';
import { cat } from '../ops/join.js';
import { linear } from '../ops/matmul.js';
import { scaledDotProductAttention } from '../ops/attention.js';
import { permute, reshape } from '../ops/views.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { scope } from '../scope.js';
import { zeros_, type InitOptions } from './init.js';
import { Linear, type DeviceOptions } from './layers.js';
import { Module } from './module.js';
import { emptyParameter, Parameter, parameterFrom } from './parameter.js';

export interface AttentionOptions extends DeviceOptions, InitOptions {
  /** 'qv' (VLMo: separate q and v biases, k none), 'all' or 'none'. Default 'qv'. */
  qkvBias?: 'qv' | 'all' | 'none';
  attnDropout?: number;
  projDropout?: number;
}

export class MultiheadSelfAttention extends Module {
  /** Its forward applies qkv's weight with its own biases: ZeRO-3 gathers its whole subtree for it (a z3 leaf module). */
  static readonly zero3Leaf = true;
  qkv: Linear;
  qBias: Parameter | null = null;
  vBias: Parameter | null = null;
  proj: Linear;
  readonly headDim: number;
  private readonly _gen: Generator;

  constructor(readonly dim: number, readonly numHeads: number, readonly opts: AttentionOptions = {}) {
    super();
    if (dim % numHeads !== 0) throw new Error(`MultiheadSelfAttention: dim ${dim} is not divisible by numHeads ${numHeads}`);
    this.headDim = dim / numHeads;
    const mode = opts.qkvBias ?? 'qv';
    this.qkv = new Linear(dim, 3 * dim, { ...opts, bias: mode === 'all' });
    if (mode === 'qv') {
      this.qBias = zeros_(emptyParameter([dim], opts)) as Parameter;
      this.vBias = zeros_(emptyParameter([dim], opts)) as Parameter;
    }
    this.proj = new Linear(dim, dim, opts);
    this._gen = opts.generator ?? defaultGenerator;
  }

  /**
   * x [B, L, dim]; mask broadcastable to [B, heads, L, L]: bool (true = attend) or additive
   * float — e.g. a key-padding mask shaped [B, 1, 1, L].
   */
  forward(x: Tensor, mask?: Tensor): Tensor {
    // A scope frees what backward does not need (e.g. the raw scores) when forward ends.
    return scope(() => this.attend(x, mask));
  }

  private attend(x: Tensor, mask?: Tensor): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.dim) throw new Error(`MultiheadSelfAttention: expected [B, L, ${this.dim}], got ${fmtShape(x.shape)}`);
    const [B, L] = x.shape as [number, number];
    let bias: Tensor | null = this.qkv.bias;
    if (this.qBias && this.vBias) bias = cat([this.qBias, zeros([this.dim], { dtype: x.dtype, device: x.device }), this.vBias]);
    const qkv = linear(x, this.qkv.weight, bias); // [B, L, 3·dim]
    const heads = permute(reshape(qkv, [B, L, 3, this.numHeads, this.headDim]), [2, 0, 3, 1, 4]); // [3, B, H, L, Dh]
    const [q, k, v] = [heads.select(0, 0), heads.select(0, 1), heads.select(0, 2)];
    const ctx = scaledDotProductAttention(q, k, v, {
      attnMask: mask,
      dropoutP: this.opts.attnDropout ?? 0,
      training: this.training,
      generator: this._gen,
    }); // [B, H, L, Dh]
    const merged = reshape(permute(ctx, [0, 2, 1, 3]), [B, L, this.dim]);
    return dropout(this.proj.forward(merged), this.opts.projDropout ?? 0, this.training, this._gen);
  }
}
