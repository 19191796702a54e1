/**
 * VLMo pretraining objectives on one batch (REFERENCE §2): ITC on the unimodal passes, ITM
 * on the fused pass with one hard negative image per text and one hard negative text per
 * image (sampled from the ITC similarities), MLM on the fused pass of the masked text, plus
 * the weighted MoE losses of every pass. Loss = wItc·ITC + wItm·ITM + wMlm·MLM + MoE.
 */
import * as T from '@vlmoe/tensor';
import { ITCHead, ITMHead, MLMHead, Pooler, sampleHardNegatives, type ITCGather } from './heads.js';
import { VLMo } from './vlmo.js';
import type { VLMoConfig } from './config.js';

export interface PretrainBatch {
  /** [B, 3, H, W] */
  image: T.Tensor;
  /** [B, L] int: ids, attention mask (1 real), MLM-masked ids and labels (−100 unmasked). */
  ids: T.Tensor;
  mask: T.Tensor;
  mlmIds: T.Tensor;
  mlmLabels: T.Tensor;
  /** Draws the hard negatives. */
  generator: T.Generator;
}

/** The typed-array batch a data loader yields (structurally @vlmoe/data's `Batch`). */
export interface PretrainArrays {
  images: Float32Array;
  imageShape: [number, number, number, number];
  textIds: Int32Array;
  textMask: Uint8Array;
  textShape: [number, number];
  mlmIds?: Int32Array;
  mlmLabels?: Int32Array;
}

/** Tensors of a loader batch (MLM ids and labels required). */
export function pretrainBatchFrom(b: PretrainArrays, generator: T.Generator): PretrainBatch {
  if (!b.mlmIds || !b.mlmLabels) throw new Error('pretrainBatchFrom: the batch has no MLM ids/labels (create the loader with mlm)');
  const [n, c, H, W] = b.imageShape;
  const L = b.textShape[1];
  const ints = (a: ArrayLike<number>) => T.tensor(a, { dtype: 'int64', shape: [n, L] });
  return { image: T.tensor(b.images, { shape: [n, c, H, W] }), ids: ints(b.textIds), mask: ints(b.textMask), mlmIds: ints(b.mlmIds), mlmLabels: ints(b.mlmLabels), generator };
}

export interface PretrainLosses {
  loss: T.Tensor;
  parts: { itc: number; itm: number; mlm: number; moe: number };
  /** Per MoE layer of every pass: expert counts, and the assignments dropped in total. */
  expertCounts: Record<string, T.Tensor>;
  /** Per MoE layer of that pass: assignments dropped. */
  droppedBy: Record<string, number>;
  dropped: number;
}

export class VLMoPretrainer extends T.nn.Module {
  backbone: VLMo;
  pooler: Pooler;
  itc: ITCHead;
  itm: ITMHead;
  mlm: MLMHead;
  /** Widens the ITC negatives over data-parallel ranks (see `ITCHead.loss`; e.g. `allGatherRows`). */
  gather?: ITCGather;
  constructor(config: VLMoConfig, readonly weights: { itc?: number; itm?: number; mlm?: number } = {}, opts: { generator?: T.Generator } = {}) {
    super();
    const g = opts.generator ?? new T.Generator(0);
    this.backbone = new VLMo(config, { generator: g });
    const d = this.backbone.config.dim;
    this.pooler = new Pooler(d, { generator: g, dtype: this.backbone.config.dtype });
    this.itc = new ITCHead(d, { generator: g, dtype: this.backbone.config.dtype });
    this.itm = new ITMHead(d, { generator: g, dtype: this.backbone.config.dtype });
    this.mlm = new MLMHead(d, this.backbone.config.vocabSize, { generator: g, dtype: this.backbone.config.dtype });
  }

  forward(x: PretrainBatch): PretrainLosses {
    const B = x.ids.shape[0]!;
    const bb = this.backbone;
    const img = bb.forward({ image: x.image });
    const txt = bb.forward({ textIds: x.ids, textMask: x.mask });
    const { img: ie, txt: te } = this.itc.forward(img.hidden, txt.hidden);
    const itc = this.itc.loss(ie, te, this.gather);
    const fusedMlm = bb.forward({ textIds: x.mlmIds, textMask: x.mask, image: x.image });
    const mlm = this.mlm.loss(fusedMlm.hidden.narrow(1, 0, fusedMlm.textLen), x.mlmLabels);
    const neg = sampleHardNegatives(T.noGrad(() => T.matmul(ie, te.t())), x.generator);
    const idx = (a: number[]) => T.tensor(a, { dtype: 'int64', device: x.ids.device });
    const pos = bb.forward({ textIds: x.ids, textMask: x.mask, image: x.image });
    const negImg = bb.forward({ textIds: x.ids, textMask: x.mask, image: T.indexSelect(x.image, 0, idx(neg.imageForText)) });
    const ti = idx(neg.textForImage);
    const negTxt = bb.forward({ textIds: T.indexSelect(x.ids, 0, ti), textMask: T.indexSelect(x.mask, 0, ti), image: x.image });
    const pooled = T.cat([pos, negImg, negTxt].map((o) => this.pooler.forward(o.hidden)), 0);
    const labels = T.tensor([...new Array<number>(B).fill(1), ...new Array<number>(2 * B).fill(0)], { dtype: 'int64', device: pooled.device });
    const itm = this.itm.loss(pooled, labels);
    const passes = [img, txt, fusedMlm, pos, negImg, negTxt];
    const moe = passes.reduce((a, o) => T.add(a, o.moeLoss), T.zeros([], { dtype: bb.config.dtype, device: pooled.device }));
    const w = { itc: this.weights.itc ?? 1, itm: this.weights.itm ?? 1, mlm: this.weights.mlm ?? 0.25 };
    const loss = T.add(T.add(T.add(T.mul(itc, w.itc), T.mul(itm, w.itm)), T.mul(mlm, w.mlm)), moe);
    // expert load: the fused pass of the real pairs (vision and text pools of every MoE block)
    return { loss, parts: { itc: itc.item(), itm: itm.item(), mlm: mlm.item(), moe: moe.item() }, expertCounts: pos.expertCounts, droppedBy: pos.droppedBy, dropped: passes.reduce((a, o) => a + o.dropped, 0) };
  }
}
