/** Basic layers: Linear, LayerNorm, Embedding, Dropout, GELU, Identity, LayerScale, DropPath. */
import { type Generator } from '../generator.js';
import { dropout } from '../ops/dropout.js';
import { rand, tensor } from '../ops/creation.js';
import { cast, div, gelu, lt, mul } from '../ops/elementwise.js';
import { embedding, indexSelect } from '../ops/indexing.js';
import { layerNorm } from '../ops/layernorm.js';
import { linear } from '../ops/matmul.js';
import { defaultGenerator } from '../generator.js';
import type { Tensor } from '../tensor.js';
import { constant_, kaimingUniform_, normal_, ones_, uniform_, zeros_, type InitOptions } from './init.js';
import { Module } from './module.js';
import { emptyParameter, Parameter } from './parameter.js';

export interface DeviceOptions {
  device?: string;
  dtype?: 'float32' | 'float64';
}

const newParam = (shape: number[], opts: DeviceOptions): Parameter => emptyParameter(shape, opts);

/** y = x·Wᵀ + b; W [out, in], initialised like torch.nn.Linear (kaiming uniform, a = √5). */
export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: DeviceOptions & InitOptions & { bias?: boolean } = {}) {
    super();
    this.weight = newParam([outFeatures, inFeatures], opts);
    kaimingUniform_(this.weight, { a: Math.sqrt(5), generator: opts.generator });
    this.bias = null;
    if (opts.bias ?? true) {
      this.bias = newParam([outFeatures], opts);
      const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
      uniform_(this.bias, -bound, bound, opts);
    }
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class LayerNorm extends Module {
  weight: Parameter | null = null;
  bias: Parameter | null = null;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly opts: DeviceOptions & { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape.slice();
    if (opts.elementwiseAffine ?? true) {
      this.weight = ones_(newParam(this.normalizedShape, opts)) as Parameter;
      if (opts.bias ?? true) this.bias = zeros_(newParam(this.normalizedShape, opts)) as Parameter;
    }
  }
  get eps(): number {
    return this.opts.eps ?? 1e-5;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  weight: Parameter;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: DeviceOptions & InitOptions & { paddingIdx?: number } = {}) {
    super();
    this.weight = normal_(newParam([numEmbeddings, embeddingDim], opts), 0, 1, opts) as Parameter;
    if (opts.paddingIdx !== undefined) constant_(this.weight.select(0, opts.paddingIdx), 0);
  }
  forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly generator: Generator = defaultGenerator) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Per-channel scale γ·x (CaiT / VLMo layer scale), γ initialised to `init` (0.1 in VLMo). */
export class LayerScale extends Module {
  gamma: Parameter;
  constructor(dim: number, init = 0.1, opts: DeviceOptions = {}) {
    super();
    this.gamma = constant_(newParam([dim], opts), init) as Parameter;
  }
  forward(x: Tensor): Tensor {
    return mul(x, this.gamma);
  }
}

/**
 * Where the rows of a local batch sit in the global batch of a data-parallel step: row i is
 * sample `rows[i]` of `total`. A per-sample random draw made over the whole global batch
 * and then picked by `rows` is the same whatever the number of ranks (DESIGN principle 7).
 */
export interface SampleIndex {
  rows: ArrayLike<number>;
  total: number;
}

/**
 * Stochastic depth: in training, zeroes the whole residual branch of a sample with
 * probability p and scales the kept ones by 1/(1-p); identity in eval. With `samples` the
 * draws are made for the whole global batch and picked by row, so a sample is dropped the
 * same way on any number of ranks (without it: one draw per local row, rows in order).
 */
export class DropPath extends Module {
  constructor(readonly p = 0, readonly generator: Generator = defaultGenerator) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`DropPath: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor, samples?: SampleIndex): Tensor {
    if (!this.training || this.p === 0) return x;
    const B = x.shape[0]!;
    const shape = [B, ...x.shape.slice(1).map(() => 1)];
    const opts = { generator: this.generator, device: x.device, dtype: x.dtype as 'float32' };
    let u: Tensor;
    if (samples) {
      if (samples.rows.length !== B) throw new Error(`DropPath: samples.rows has ${samples.rows.length} entries for a batch of ${B}`);
      for (let i = 0; i < B; i++) {
        const r = samples.rows[i]!;
        if (!(Number.isInteger(r) && r >= 0 && r < samples.total)) throw new RangeError(`DropPath: samples.rows[${i}] = ${r} is outside [0, total = ${samples.total})`);
      }
      u = indexSelect(rand([samples.total], opts), 0, tensor(Array.from(samples.rows), { dtype: 'int64', device: x.device })).reshape(...shape);
    } else u = rand(shape, opts);
    const keep = cast(lt(u, 1 - this.p), x.dtype);
    return mul(x, div(keep, 1 - this.p));
  }
}
