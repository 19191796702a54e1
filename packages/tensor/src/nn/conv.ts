/**
 * Conv2d for patch embedding (kernel = stride, no padding), computed as unfold + one GEMM:
 * [B, C, H, W] → patches [B·nH·nW, C·k·k] → linear → [B, out, nH, nW]. The weight is kept
 * in PyTorch's layout [out, C, k, k] so state dicts are interchangeable.
 */
import { linear } from '../ops/matmul.js';
import { permute, reshape } from '../ops/views.js';
import { fmtShape, type Tensor } from '../tensor.js';
import { uniform_, kaimingUniform_, type InitOptions } from './init.js';
import { type DeviceOptions } from './layers.js';
import { Module } from './module.js';
import { emptyParameter, Parameter } from './parameter.js';

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null = null;
  readonly kernelSize: number;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number, opts: DeviceOptions & InitOptions & { stride?: number; padding?: number; bias?: boolean } = {}) {
    super();
    this.kernelSize = kernelSize;
    const stride = opts.stride ?? kernelSize;
    if (stride !== kernelSize || (opts.padding ?? 0) !== 0)
      throw new Error(`Conv2d: only kernel = stride without padding (patch embedding) is implemented; got kernel ${kernelSize}, stride ${stride}, padding ${opts.padding ?? 0}`);
    this.weight = emptyParameter([outChannels, inChannels, kernelSize, kernelSize], opts);
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: opts.generator });
    if (opts.bias ?? true) {
      this.bias = emptyParameter([outChannels], opts);
      const bound = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
      uniform_(this.bias, -bound, bound, opts);
    }
  }

  forward(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const k = this.kernelSize;
    if (x.ndim !== 4 || C !== this.inChannels) throw new Error(`Conv2d: expected input [B, ${this.inChannels}, H, W], got ${fmtShape(x.shape)}`);
    if (H % k !== 0 || W % k !== 0) throw new Error(`Conv2d: image size ${H}x${W} is not a multiple of the patch size ${k}`);
    const nH = H / k, nW = W / k;
    // unfold: [B, C, nH, k, nW, k] → [B, nH, nW, C, k, k] → [B·nH·nW, C·k·k]
    const patches = reshape(permute(reshape(x, [B, C, nH, k, nW, k]), [0, 2, 4, 1, 3, 5]), [B * nH * nW, C * k * k]);
    const y = linear(patches, reshape(this.weight, [this.outChannels, C * k * k]), this.bias);
    return permute(reshape(y, [B, nH, nW, this.outChannels]), [0, 3, 1, 2]);
  }
}

/** Image → sequence of patch embeddings [B, nH·nW, dim] (ViT/VLMo patch embedding). */
export class PatchEmbedding extends Module {
  proj: Conv2d;
  constructor(inChannels: number, dim: number, readonly patchSize: number, opts: DeviceOptions & InitOptions = {}) {
    super();
    this.proj = new Conv2d(inChannels, dim, patchSize, opts);
  }
  forward(x: Tensor): Tensor {
    const y = this.proj.forward(x); // [B, D, nH, nW]
    const [B, D, nH, nW] = y.shape as [number, number, number, number];
    return permute(reshape(y, [B, D, nH * nW]), [0, 2, 1]);
  }
}
