/**
 * VLMo pretraining objectives on one batch (REFERENCE §2): ITC on the unimodal passes, ITM
 * on the fused pass with one hard negative image per text and one hard negative text per
 * image (sampled from the ITC similarities), MLM on the fused pass of the masked text, plus
 * the weighted MoE losses of every pass. Loss = wItc·ITC + wItm·ITM + wMlm·MLM + MoE.
 */
import * as T from '@vlmoe/tensor';
import { allGatherRows, type DataParallelModule, type ProcessGroup } from '@vlmoe/parallel';
import { ITCHead, ITMHead, MLMHead, Pooler, rankGather, sampleHardNegatives } from './heads.js';
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
  /** Draws the hard negatives (seed it by the step, the same on every rank). */
  generator: T.Generator;
  /** Where the rows sit in the global batch (default: rows 0..B−1 of B, one process). */
  samples?: T.nn.SampleIndex;
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
  globalRow?: Int32Array;
  globalSize?: number;
}

/** Tensors of a loader batch (MLM ids and labels required). */
export function pretrainBatchFrom(b: PretrainArrays, generator: T.Generator): PretrainBatch {
  if (!b.mlmIds || !b.mlmLabels) throw new Error('pretrainBatchFrom: the batch has no MLM ids/labels (create the loader with mlm)');
  const [n, c, H, W] = b.imageShape;
  const L = b.textShape[1];
  const ints = (a: ArrayLike<number>) => T.tensor(a, { dtype: 'int64', shape: [n, L] });
  const samples = b.globalRow && b.globalSize !== undefined ? { rows: b.globalRow, total: b.globalSize } : undefined;
  return { image: T.tensor(b.images, { shape: [n, c, H, W] }), ids: ints(b.textIds), mask: ints(b.textMask), mlmIds: ints(b.mlmIds), mlmLabels: ints(b.mlmLabels), generator, samples };
}

export interface PretrainLosses {
  loss: T.Tensor;
  parts: { itc: number; itm: number; mlm: number; moe: number };
  /** Per MoE layer of every pass: expert counts, and the assignments dropped in total. */
  expertCounts: Record<string, T.Tensor>;
  /** Per MoE layer of that pass: assignments dropped. */
  droppedBy: Record<string, number>;
  /** The router's mean per-token entropy (nats) per MoE layer. */
  entropyBy: Record<string, number>;
  dropped: number;
}

/**
 * VLMo / VL-MoE pretraining. On N data-parallel ranks (the engine hands it the group, or call
 * `setDataParallelGroup`) every objective is computed over the global batch, so any layout
 * gives the loss of one process on the whole batch (DESIGN principle 7):
 * - ITC: negatives from every rank (VLMo's GatherLayer);
 * - ITM: hard negatives drawn from the global batch's similarities (images and texts of
 *   other ranks included, as VLMo gathers them), each sample's draw keyed by its global row;
 * - MLM: the cross-entropy summed and divided by the global count of masked tokens;
 * - stochastic depth by global row (`samples`).
 * The MoE balance loss stays per rank (as DeepSpeed's `l_aux`): it is not linear in the tokens.
 */
export class VLMoPretrainer extends T.nn.Module implements DataParallelModule {
  backbone: VLMo;
  pooler: Pooler;
  itc: ITCHead;
  itm: ITMHead;
  mlm: MLMHead;
  private _dp: ProcessGroup | null = null;
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

  /** The data-parallel group whose ranks' samples make up the global batch. */
  setDataParallelGroup(group: ProcessGroup): void {
    this._dp = group;
  }

  forward(x: PretrainBatch): PretrainLosses {
    return this.losses(x, this._dp && this._dp.size > 1 ? this._dp : null);
  }

  /** The objectives over the global batch of `dp`'s ranks, or over this process's batch (`dp` null). */
  private losses(x: PretrainBatch, dp: ProcessGroup | null): PretrainLosses {
    const B = x.ids.shape[0]!;
    const bb = this.backbone;
    const samples = x.samples ?? { rows: Array.from({ length: B }, (_, i) => i), total: B };
    const img = bb.forward({ image: x.image, samples });
    const txt = bb.forward({ textIds: x.ids, textMask: x.mask, samples });
    const { img: ie, txt: te } = T.recordFunction('heads', () => this.itc.forward(img.hidden, txt.hidden));
    const itc = T.recordFunction('heads', () => this.itc.loss(ie, te, rankGather(dp)));
    const fusedMlm = bb.forward({ textIds: x.mlmIds, textMask: x.mask, image: x.image, samples });
    const mlm = T.recordFunction('heads', () => this.mlmLoss(fusedMlm.hidden.narrow(1, 0, fusedMlm.textLen), x.mlmLabels, dp));
    const neg = T.recordFunction('heads', () => this.hardNegatives(ie, te, x, samples, dp));
    const pos = bb.forward({ textIds: x.ids, textMask: x.mask, image: x.image, samples });
    const negImg = bb.forward({ textIds: x.ids, textMask: x.mask, image: neg.image, samples });
    const negTxt = bb.forward({ textIds: neg.ids, textMask: neg.mask, image: x.image, samples });
    const itm = T.recordFunction('heads', () => {
      const pooled = T.cat([pos, negImg, negTxt].map((o) => this.pooler.forward(o.hidden)), 0);
      const labels = T.tensor([...new Array<number>(B).fill(1), ...new Array<number>(2 * B).fill(0)], { dtype: 'int64', device: pooled.device });
      return this.itm.loss(pooled, labels);
    });
    const passes = [img, txt, fusedMlm, pos, negImg, negTxt];
    const moe = passes.reduce((a, o) => T.add(a, o.moeLoss), T.zeros([], { dtype: bb.config.dtype, device: itm.device }));
    const w = this.lossWeights;
    const loss = T.add(T.add(T.add(T.mul(itc, w.itc), T.mul(itm, w.itm)), T.mul(mlm, w.mlm)), moe);
    // expert load: the fused pass of the real pairs (vision and text pools of every MoE block)
    return { loss, parts: { itc: itc.item(), itm: itm.item(), mlm: mlm.item(), moe: moe.item() }, expertCounts: pos.expertCounts, droppedBy: pos.droppedBy, entropyBy: pos.entropyBy, dropped: passes.reduce((a, o) => a + o.dropped, 0) };
  }

  /**
   * The objectives on one batch without gradients or collectives — this process's batch alone,
   * whatever data-parallel group the engine set — for validation (call with the model in eval
   * mode; `vlmoe pretrain` logs their mean over fixed val batches as the validation loss).
   */
  validationLosses(x: PretrainBatch): { itc: number; itm: number; mlm: number } {
    return T.scope(() => T.noGrad(() => {
      const { itc, itm, mlm } = this.losses(x, null).parts;
      return { itc, itm, mlm };
    }));
  }

  /** The objectives' weights in the loss (defaults: ITC 1, ITM 1, MLM 0.25). */
  get lossWeights(): { itc: number; itm: number; mlm: number } {
    return { itc: this.weights.itc ?? 1, itm: this.weights.itm ?? 1, mlm: this.weights.mlm ?? 0.25 };
  }

  /**
   * MLM cross-entropy over the masked tokens of the global batch: this rank's sum divided by
   * the global count, times the world size (the engine averages gradients over the ranks).
   */
  private mlmLoss(textHidden: T.Tensor, labels: T.Tensor, dp: ProcessGroup | null): T.Tensor {
    if (!dp) return this.mlm.loss(textHidden, labels);
    const sum = this.mlm.crossEntropy(this.mlm.forward(textHidden), labels, 'sum');
    const count = T.noGrad(() => T.cast(T.sum(T.cast(T.ne(labels, -100), 'int64')), 'float64').reshape(1));
    dp.allReduce(count, 'sum');
    return T.mul(sum, dp.size / Math.max(1, count.item()));
  }

  /**
   * One hard negative image per text and one text per image (VLMo), drawn from the ITC
   * similarities of the global batch: rows are put in global-row order, so every layout
   * draws the same negatives. Returns this rank's rows' negative inputs.
   */
  private hardNegatives(ie: T.Tensor, te: T.Tensor, x: PretrainBatch, samples: T.nn.SampleIndex, dp: ProcessGroup | null): { image: T.Tensor; ids: T.Tensor; mask: T.Tensor } {
    return T.noGrad(() => {
      const B = ie.shape[0]!, rank = dp?.rank ?? 0;
      // every rank's rows, rank after rank (no gradient: this runs under noGrad)
      const everyRank = (t: T.Tensor) => (dp ? allGatherRows(dp, t) : t);
      const rows = everyRank(T.tensor(Array.from(samples.rows), { dtype: 'int64', device: ie.device }));
      const all = Array.from(rows.dataSync() as BigInt64Array, Number); // gathered index → global row
      const order = all.map((_, i) => i).sort((a, b) => all[a]! - all[b]!); // global-row order → gathered index
      const orderT = T.tensor(order, { dtype: 'int64', device: ie.device });
      const sim = T.matmul(T.indexSelect(everyRank(ie.detach()), 0, orderT), T.indexSelect(everyRank(te.detach()), 0, orderT).t());
      const neg = sampleHardNegatives(sim, x.generator);
      const at = new Array<number>(order.length);
      order.forEach((g, c) => (at[g] = c));
      const mine = Array.from({ length: B }, (_, j) => at[rank * B + j]!);
      const pick = (t: T.Tensor, list: number[]) => T.indexSelect(everyRank(t), 0, T.tensor(mine.map((c) => order[list[c]!]!), { dtype: 'int64', device: t.device }));
      return { image: pick(x.image, neg.imageForText), ids: pick(x.ids, neg.textForImage), mask: pick(x.mask, neg.textForImage) };
    });
  }
}
