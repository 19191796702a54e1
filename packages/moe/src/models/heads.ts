/**
 * Task heads and losses of VLMo / VL-MoE (REFERENCE §2):
 *
 * - `Pooler`: Linear(d, d) + tanh on the first token.
 * - `ITCHead`: bias-free projections of [I_CLS] (image-only pass) and [T_CLS] (text-only
 *   pass), L2-normalised, learned temperature (logit scale init log(1/0.07), clamped at
 *   log 100); symmetric cross-entropy over in-batch pairs. `gather` (e.g. an all-gather over
 *   data-parallel ranks) widens the negatives.
 * - `ITMHead`: Linear(d, 2) on the pooled fused [CLS]; `sampleHardNegatives` draws one
 *   negative image per text and one negative text per image from the softmax of the ITC
 *   similarities with the diagonal removed.
 * - `MLMHead`: BERT's transform (Linear, GELU, LayerNorm) and a vocabulary projection;
 *   cross-entropy on masked positions (label −100 elsewhere).
 * - `VQAHead`: Linear(d, 2d) → LayerNorm → GELU → Linear(2d, answers); BCE-with-logits on
 *   soft scores, scaled by the number of answers.
 * - `NLVRHead`: the pooled outputs of two fused passes concatenated (2d) → Linear(2d, 2d) →
 *   LayerNorm → GELU → Linear(2d, 2); cross-entropy.
 */
import * as T from '@vlmoe/tensor';
import { allGatherRows, ColumnParallelLinear, vocabParallelCrossEntropy, type ProcessGroup, type TensorParallelModule } from '@vlmoe/parallel';

type DT = { dtype?: 'float32' | 'float64'; generator?: T.Generator };

export class Pooler extends T.nn.Module {
  dense: T.nn.Linear;
  constructor(dim: number, o: DT = {}) {
    super();
    this.dense = new T.nn.Linear(dim, dim, o);
  }
  /** hidden [B, L, d] → [B, d] from position `at` (default 0: the first token). */
  forward(hidden: T.Tensor, at = 0): T.Tensor {
    return T.tanh(this.dense.forward(hidden.select(1, at)));
  }
}

/** How `ITCHead.loss` widens its negatives: an all-gather over ranks and where this rank's rows are. */
export interface ITCGather {
  fn: (t: T.Tensor) => T.Tensor;
  /** Row of this rank's first pair in the gathered batch (default `rank` · local batch). */
  offset?: number;
  rank?: number;
}

/** The gather of `ITCHead.loss` over a data-parallel group (undefined for none or a group of one). */
export function rankGather(dp: ProcessGroup | null): ITCGather | undefined {
  return dp && dp.size > 1 ? { fn: (t) => allGatherRows(dp, t), rank: dp.rank } : undefined;
}

export class ITCHead extends T.nn.Module {
  /** `logits` (called by `loss`) reads logitScale: ZeRO-3 gathers it there too. */
  static readonly zero3Entries = ['logits'];
  imageProj: T.nn.Linear;
  textProj: T.nn.Linear;
  logitScale: T.nn.Parameter;
  constructor(dim: number, o: DT & { embedDim?: number } = {}) {
    super();
    const e = o.embedDim ?? dim;
    this.imageProj = new T.nn.Linear(dim, e, { ...o, bias: false });
    this.textProj = new T.nn.Linear(dim, e, { ...o, bias: false });
    this.logitScale = T.nn.parameterFrom(T.full([], Math.log(1 / 0.07), { dtype: o.dtype ?? 'float32' }));
  }
  /** Both embeddings at once (image-only and text-only pass outputs). */
  forward(imageHidden: T.Tensor, textHidden: T.Tensor): { img: T.Tensor; txt: T.Tensor } {
    return { img: this.embedImage(imageHidden), txt: this.embedText(textHidden) };
  }
  /** L2-normalised embeddings from [I_CLS] of an image-only pass / [T_CLS] of a text-only pass. */
  embedImage(imageHidden: T.Tensor): T.Tensor {
    return T.normalize(this.imageProj.forward(imageHidden.select(1, 0)), 2, -1);
  }
  embedText(textHidden: T.Tensor): T.Tensor {
    return T.normalize(this.textProj.forward(textHidden.select(1, 0)), 2, -1);
  }
  /** Image-to-text similarity logits [B_img, B_txt·] (scaled) for paired embeddings. */
  logits(img: T.Tensor, txt: T.Tensor): T.Tensor {
    const scale = T.exp(T.clamp(this.logitScale, -Infinity, Math.log(100)));
    return T.mul(T.matmul(img, txt.t()), scale);
  }
  /**
   * Symmetric contrastive loss; pair i of the local batch is positive. `gather` maps a local
   * [B, e] to the global [W·B, e] (this rank's rows at `offset`, or at `rank`·B),
   * widening the negatives.
   */
  loss(img: T.Tensor, txt: T.Tensor, gather?: ITCGather): T.Tensor {
    const B = img.shape[0]!;
    const allTxt = gather ? gather.fn(txt) : txt, allImg = gather ? gather.fn(img) : img;
    const off = gather ? (gather.offset ?? (gather.rank ?? 0) * B) : 0;
    const target = T.arange(off, off + B, 1, { dtype: 'int64', device: img.device });
    const i2t = this.logits(img, allTxt), t2i = this.logits(txt, allImg);
    return T.mul(T.add(T.crossEntropy(i2t, target), T.crossEntropy(t2i, target)), 0.5);
  }
}

/**
 * One hard negative per row of `sim` [B, B] (image i vs text j): for each text, an image
 * drawn from softmax over its similarities with the matching one removed, and for each image
 * a text likewise. Returns indices (plain numbers; B ≥ 2).
 */
export function sampleHardNegatives(sim: T.Tensor, generator?: T.Generator): { imageForText: number[]; textForImage: number[] } {
  const B = sim.shape[0]!;
  if (sim.ndim !== 2 || sim.shape[1] !== B) throw new Error(`sampleHardNegatives: sim must be [B, B], got [${sim.shape.join(', ')}]`);
  if (B < 2) throw new Error('sampleHardNegatives: need at least 2 pairs');
  const s = Array.from(T.noGrad(() => T.cast(sim, 'float64')).dataSync() as Float64Array);
  const u = Array.from(T.uniform([2 * B], 0, 1, { dtype: 'float64', generator }).dataSync() as Float64Array);
  const draw = (row: (j: number) => number, self: number, r: number) => {
    let m = -Infinity;
    for (let j = 0; j < B; j++) if (j !== self) m = Math.max(m, row(j));
    const w = Array.from({ length: B }, (_, j) => (j === self ? 0 : Math.exp(row(j) - m)));
    const z = w.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (let j = 0; j < B; j++) {
      acc += w[j]! / z;
      if (r < acc && j !== self) return j;
    }
    return self === B - 1 ? B - 2 : B - 1;
  };
  const imageForText = Array.from({ length: B }, (_, t) => draw((i) => s[i * B + t]!, t, u[t]!));
  const textForImage = Array.from({ length: B }, (_, i) => draw((t) => s[i * B + t]!, i, u[B + i]!));
  return { imageForText, textForImage };
}

export class ITMHead extends T.nn.Module {
  fc: T.nn.Linear;
  constructor(dim: number, o: DT = {}) {
    super();
    this.fc = new T.nn.Linear(dim, 2, o);
  }
  /** pooled [B, d] → logits [B, 2] (1 = match). */
  forward(pooled: T.Tensor): T.Tensor {
    return this.fc.forward(pooled);
  }
  loss(pooled: T.Tensor, match: T.Tensor): T.Tensor {
    return T.crossEntropy(this.forward(pooled), match);
  }
}

/**
 * MLM head. Over a tensor-parallel group (`setTensorParallelGroup`, called by the engine) the
 * decoder is column-parallel and the loss vocab-parallel (Megatron's): each rank computes its
 * slice of the vocabulary and no rank materialises the full logits.
 */
export class MLMHead extends T.nn.Module implements TensorParallelModule {
  transform: T.nn.Linear;
  norm: T.nn.LayerNorm;
  decoder: T.nn.Linear | ColumnParallelLinear;
  private _tp: ProcessGroup | null = null;
  constructor(dim: number, vocabSize: number, o: DT = {}) {
    super();
    this.transform = new T.nn.Linear(dim, dim, o);
    this.norm = new T.nn.LayerNorm(dim, { eps: 1e-12, dtype: o.dtype });
    this.decoder = new T.nn.Linear(dim, vocabSize, o);
  }
  setTensorParallelGroup(group: ProcessGroup): void {
    if (group.size === 1 || this._tp) return;
    const dense = this.decoder as T.nn.Linear;
    this.decoder = ColumnParallelLinear.fromDense(dense, group);
    for (const p of dense.parameters()) p.dispose();
    this._tp = group;
  }
  /** text hidden [B, Lt, d] → vocabulary logits [B, Lt, V] (this rank's [B, Lt, V/P] slice when tensor-parallel). */
  forward(textHidden: T.Tensor): T.Tensor {
    return this.decoder.forward(this.norm.forward(T.gelu(this.transform.forward(textHidden))));
  }
  /** Cross-entropy of the logits `forward` gave against `labels` (−100 ignored). */
  crossEntropy(logits: T.Tensor, labels: T.Tensor, reduction: 'mean' | 'sum' = 'mean'): T.Tensor {
    const V = logits.shape[logits.ndim - 1]!;
    if (this._tp) return vocabParallelCrossEntropy(this._tp, logits.reshape(-1, V), labels.reshape(-1), { ignoreIndex: -100, reduction, vocabSize: (this.decoder as ColumnParallelLinear).outFeatures });
    return T.crossEntropy(logits.reshape(-1, V), labels.reshape(-1), { ignoreIndex: -100, reduction });
  }
  /** labels [B, Lt]: the original ids at masked positions, −100 elsewhere. */
  loss(textHidden: T.Tensor, labels: T.Tensor): T.Tensor {
    return this.crossEntropy(this.forward(textHidden), labels);
  }
}

class Classifier extends T.nn.Module {
  fc1: T.nn.Linear;
  norm: T.nn.LayerNorm;
  fc2: T.nn.Linear;
  constructor(inDim: number, hidden: number, out: number, o: DT) {
    super();
    this.fc1 = new T.nn.Linear(inDim, hidden, o);
    this.norm = new T.nn.LayerNorm(hidden, { dtype: o.dtype });
    this.fc2 = new T.nn.Linear(hidden, out, o);
  }
  forward(x: T.Tensor): T.Tensor {
    return this.fc2.forward(T.gelu(this.norm.forward(this.fc1.forward(x))));
  }
}

export class VQAHead extends T.nn.Module {
  mlp: Classifier;
  constructor(dim: number, readonly numAnswers: number, o: DT = {}) {
    super();
    this.mlp = new Classifier(dim, 2 * dim, numAnswers, o);
  }
  forward(pooled: T.Tensor): T.Tensor {
    return this.mlp.forward(pooled);
  }
  /** scores [B, answers] in [0, 1] (VQA soft scores); BCE × number of answers, as VLMo. */
  loss(pooled: T.Tensor, scores: T.Tensor): T.Tensor {
    return T.mul(T.binaryCrossEntropyWithLogits(this.forward(pooled), scores), this.numAnswers);
  }
}

export class NLVRHead extends T.nn.Module {
  mlp: Classifier;
  constructor(dim: number, o: DT = {}) {
    super();
    this.mlp = new Classifier(2 * dim, 2 * dim, 2, o);
  }
  /** pooled outputs of the (text, image 0) and (text, image 1) passes → logits [B, 2]. */
  forward(pooled0: T.Tensor, pooled1: T.Tensor): T.Tensor {
    return this.mlp.forward(T.cat([pooled0, pooled1], 1));
  }
  loss(pooled0: T.Tensor, pooled1: T.Tensor, label: T.Tensor): T.Tensor {
    return T.crossEntropy(this.forward(pooled0, pooled1), label);
  }
}
