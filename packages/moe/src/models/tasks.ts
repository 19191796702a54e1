/**
 * Fine-tuning models of VLMo / VL-MoE (REFERENCE §2), one per downstream task, each a VLMo
 * backbone plus a task head, with parameter names that line up with `VLMoPretrainer`
 * (`backbone.*`, `pooler.*`, `itc.*`) so a pretraining checkpoint loads into them directly:
 *
 * - `VQAModel`: one fused pass of (question, image); the pooled [T_CLS] → `VQAHead`; loss
 *   BCE on the soft scores × number of answers.
 * - `NLVRModel`: two fused passes, (statement, left image) with image token type 1 and
 *   (statement, right image) with type 2; pooled outputs concatenated → `NLVRHead`; CE.
 * - `RetrievalModel`: the dual encoder — image-only and text-only passes → `ITCHead`
 *   embeddings; symmetric contrastive loss over the batch.
 *
 * Every forward adds the weighted MoE losses of its passes to the task loss, and reports the
 * per-layer expert counts of its (first) fused or image pass for the run's metrics.
 */
import * as T from '@vlmoe/tensor';
import type { DataParallelModule, ProcessGroup } from '@vlmoe/parallel';
import { ITCHead, NLVRHead, Pooler, VQAHead, rankGather } from './heads.js';
import { VLMo, type VLMoOutput } from './vlmo.js';
import type { VLMoConfig } from './config.js';

export type TaskName = 'vqa' | 'nlvr' | 'retrieval';
export const TASKS: readonly TaskName[] = ['vqa', 'nlvr', 'retrieval'];

/** The typed arrays of a loader batch (structurally @vlmoe/data's `Batch`). */
export interface TaskArrays {
  size: number;
  images: Float32Array;
  imageShape: [number, number, number, number];
  images2?: Float32Array;
  textIds: Int32Array;
  textMask: Uint8Array;
  textShape: [number, number];
  vqaTargets?: Float32Array;
  labels?: Int32Array;
  globalRow?: Int32Array;
  globalSize?: number;
}

/** Tensors of one fine-tuning batch (what a task model's `forward` takes). */
export interface TaskBatch {
  /** [B, 3, H, W]; absent for text-only batches (retrieval text encoding). */
  image?: T.Tensor;
  /** NLVR: the right image. */
  image2?: T.Tensor;
  /** [B, L] int ids and attention mask (1 = real); absent for image-only batches. */
  ids?: T.Tensor;
  mask?: T.Tensor;
  /** VQA: [B, answers] soft scores. */
  targets?: T.Tensor;
  /** NLVR: [B] int, 1 = True. */
  labels?: T.Tensor;
  /** Where the rows sit in the global batch of a data-parallel step (stochastic depth by sample). */
  samples?: T.nn.SampleIndex;
}

export interface TaskOutput {
  loss: T.Tensor;
  parts: { task: number; moe: number };
  expertCounts: Record<string, T.Tensor>;
  /** Per MoE layer of the same pass: assignments dropped. */
  droppedBy: Record<string, number>;
  /** The router's mean per-token entropy (nats) per MoE layer. */
  entropyBy: Record<string, number>;
  dropped: number;
}

/** Converts a loader batch into tensors for `task` (checks that the task's fields are there). */
export function taskBatchFrom(task: TaskName, b: TaskArrays): TaskBatch {
  const n = b.size;
  const [, c, H, W] = b.imageShape;
  const out: TaskBatch = {};
  if (b.images.length) out.image = T.tensor(b.images.subarray(0, n * c * H * W), { shape: [n, c, H, W] });
  const L = b.textShape[1];
  if (L > 0 && b.textIds.length) {
    out.ids = T.tensor(b.textIds.subarray(0, n * L), { dtype: 'int64', shape: [n, L] });
    out.mask = T.tensor(b.textMask.subarray(0, n * L), { dtype: 'int64', shape: [n, L] });
  }
  if (b.globalRow && b.globalSize !== undefined) out.samples = { rows: b.globalRow.subarray(0, n), total: b.globalSize };
  if (task === 'vqa' && b.vqaTargets) {
    const A = b.vqaTargets.length / b.imageShape[0];
    out.targets = T.tensor(b.vqaTargets.subarray(0, n * A), { shape: [n, A] });
  }
  if (task === 'nlvr') {
    if (b.images2) out.image2 = T.tensor(b.images2.subarray(0, n * c * H * W), { shape: [n, c, H, W] });
    if (b.labels) out.labels = T.tensor(b.labels.subarray(0, n), { dtype: 'int64', shape: [n] });
  }
  return out;
}

type Opts = { generator?: T.Generator };

function need<K extends keyof TaskBatch>(x: TaskBatch, keys: K[], who: string): void {
  for (const k of keys) if (!x[k]) throw new Error(`${who}: the batch has no '${k}'`);
}

function moeSum(passes: VLMoOutput[], dtype: 'float32' | 'float64'): T.Tensor {
  return passes.reduce((a, o) => T.add(a, o.moeLoss), T.zeros([], { dtype, device: passes[0]?.hidden.device ?? 'cpu' }));
}

abstract class TaskModel extends T.nn.Module {
  abstract readonly task: TaskName;
  backbone: VLMo;
  constructor(config: VLMoConfig, g: T.Generator) {
    super();
    this.backbone = new VLMo(config, { generator: g });
  }
  abstract override forward(x: TaskBatch): TaskOutput;
  protected out(task: T.Tensor, passes: VLMoOutput[]): TaskOutput {
    const moe = moeSum(passes, this.backbone.config.dtype);
    return { loss: T.add(task, moe), parts: { task: task.item(), moe: moe.item() }, expertCounts: passes[0]!.expertCounts, droppedBy: passes[0]!.droppedBy, entropyBy: passes[0]!.entropyBy, dropped: passes.reduce((a, o) => a + o.dropped, 0) };
  }
}

export class VQAModel extends TaskModel {
  readonly task = 'vqa';
  pooler: Pooler;
  head: VQAHead;
  constructor(config: VLMoConfig, readonly numAnswers: number, opts: Opts = {}) {
    const g = opts.generator ?? new T.Generator(0);
    super(config, g);
    const d = this.backbone.config.dim, dtype = this.backbone.config.dtype;
    this.pooler = new Pooler(d, { generator: g, dtype });
    this.head = new VQAHead(d, numAnswers, { generator: g, dtype });
  }
  private pass(x: TaskBatch): VLMoOutput {
    need(x, ['image', 'ids'], 'VQAModel');
    return this.backbone.forward({ textIds: x.ids, textMask: x.mask, image: x.image, samples: x.samples });
  }
  /** Answer logits [B, answers]. */
  logits(x: TaskBatch): T.Tensor {
    return this.head.forward(this.pooler.forward(this.pass(x).hidden));
  }
  forward(x: TaskBatch): TaskOutput {
    need(x, ['targets'], 'VQAModel');
    const o = this.pass(x);
    return this.out(this.head.loss(this.pooler.forward(o.hidden), x.targets!), [o]);
  }
}

export class NLVRModel extends TaskModel {
  readonly task = 'nlvr';
  pooler: Pooler;
  head: NLVRHead;
  constructor(config: VLMoConfig, opts: Opts = {}) {
    const g = opts.generator ?? new T.Generator(0);
    super(config, g);
    const d = this.backbone.config.dim, dtype = this.backbone.config.dtype;
    this.pooler = new Pooler(d, { generator: g, dtype });
    this.head = new NLVRHead(d, { generator: g, dtype });
  }
  private passes(x: TaskBatch): [VLMoOutput, VLMoOutput] {
    need(x, ['image', 'image2', 'ids'], 'NLVRModel');
    return [
      this.backbone.forward({ textIds: x.ids, textMask: x.mask, image: x.image, imageTokenType: 1, samples: x.samples }),
      this.backbone.forward({ textIds: x.ids, textMask: x.mask, image: x.image2, imageTokenType: 2, samples: x.samples }),
    ];
  }
  /** Logits [B, 2] (False, True). */
  logits(x: TaskBatch): T.Tensor {
    const [a, b] = this.passes(x);
    return this.head.forward(this.pooler.forward(a.hidden), this.pooler.forward(b.hidden));
  }
  forward(x: TaskBatch): TaskOutput {
    need(x, ['labels'], 'NLVRModel');
    const [a, b] = this.passes(x);
    return this.out(this.head.loss(this.pooler.forward(a.hidden), this.pooler.forward(b.hidden), x.labels!), [a, b]);
  }
}

/**
 * A VLMo dual encoder: the backbone's image-only and text-only passes through an ITC head. A
 * fine-tuned RetrievalModel is one, and so is a VLMoPretrainer (zero-shot retrieval, as VLMo
 * evaluates its pretraining).
 */
export interface DualEncoder extends T.nn.Module {
  backbone: VLMo;
  itc: ITCHead;
}

/** L2-normalised image embeddings [B, e] of a dual encoder. */
export function encodeImages(m: DualEncoder, x: TaskBatch): T.Tensor {
  need(x, ['image'], 'encodeImages');
  return m.itc.embedImage(m.backbone.forward({ image: x.image }).hidden);
}

/** L2-normalised text embeddings [B, e] of a dual encoder. */
export function encodeTexts(m: DualEncoder, x: TaskBatch): T.Tensor {
  need(x, ['ids'], 'encodeTexts');
  return m.itc.embedText(m.backbone.forward({ textIds: x.ids, textMask: x.mask }).hidden);
}

export class RetrievalModel extends TaskModel implements DataParallelModule {
  readonly task = 'retrieval';
  itc: ITCHead;
  private _dp: ProcessGroup | null = null;
  constructor(config: VLMoConfig, opts: Opts = {}) {
    const g = opts.generator ?? new T.Generator(0);
    super(config, g);
    this.itc = new ITCHead(this.backbone.config.dim, { generator: g, dtype: this.backbone.config.dtype });
  }
  /** The contrastive negatives come from every rank of this data-parallel group (the engine hands it over). */
  setDataParallelGroup(group: ProcessGroup): void {
    this._dp = group;
  }
  /** L2-normalised image embeddings [B, e]. */
  encodeImages(x: TaskBatch): T.Tensor {
    return encodeImages(this, x);
  }
  /** L2-normalised text embeddings [B, e]. */
  encodeTexts(x: TaskBatch): T.Tensor {
    return encodeTexts(this, x);
  }
  forward(x: TaskBatch): TaskOutput {
    need(x, ['image', 'ids'], 'RetrievalModel');
    const img = this.backbone.forward({ image: x.image, samples: x.samples });
    const txt = this.backbone.forward({ textIds: x.ids, textMask: x.mask, samples: x.samples });
    const { img: ie, txt: te } = this.itc.forward(img.hidden, txt.hidden);
    return this.out(this.itc.loss(ie, te, rankGather(this._dp)), [img, txt]);
  }
}

export type AnyTaskModel = VQAModel | NLVRModel | RetrievalModel;

/** Builds the model of a task (VQA needs the number of answers). */
export function createTaskModel(task: TaskName, config: VLMoConfig, opts: Opts & { numAnswers?: number } = {}): AnyTaskModel {
  switch (task) {
    case 'vqa':
      if (!opts.numAnswers) throw new Error('createTaskModel: vqa needs numAnswers');
      return new VQAModel(config, opts.numAnswers, opts);
    case 'nlvr':
      return new NLVRModel(config, opts);
    case 'retrieval':
      return new RetrievalModel(config, opts);
    default:
      throw new Error(`createTaskModel: unknown task '${task as string}' (${TASKS.join(', ')})`);
  }
}
