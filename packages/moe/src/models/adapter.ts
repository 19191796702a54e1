/**
 * The evaluation adapter: fine-tuned task models behind `@vlmoe/eval`'s `ModelAdapter`
 * interface (structurally — this package does not depend on @vlmoe/eval). One adapter can
 * hold one model per task (VQA, NLVR, retrieval), as a row of VL-MoE's Table 1 does: the
 * same pretrained backbone fine-tuned three times. Inference runs in eval mode (no stochastic
 * depth, the MoE's eval capacity factor) without autograd, and returns plain Float32Arrays.
 */
import * as T from '@vlmoe/tensor';
import { encodeImages, encodeTexts, taskBatchFrom, type DualEncoder, type NLVRModel, type TaskArrays, type TaskName, type VQAModel } from './tasks.js';

export interface TaskModels {
  vqa?: VQAModel;
  nlvr?: NLVRModel;
  /** A fine-tuned RetrievalModel, or a VLMoPretrainer for zero-shot retrieval with its ITC head. */
  retrieval?: DualEncoder;
}

/** What @vlmoe/eval's harnesses call (its `ModelAdapter`). */
export interface VLMoEvalAdapter {
  name: string;
  params?: { total: number; activePerToken: number };
  vqaLogits?(batch: TaskArrays): Float32Array;
  nlvrLogits?(batch: TaskArrays): Float32Array;
  encodeImages?(batch: TaskArrays): Float32Array;
  encodeTexts?(batch: TaskArrays): Float32Array;
}

function infer(task: TaskName, model: T.nn.Module, fn: (x: ReturnType<typeof taskBatchFrom>) => T.Tensor, batch: TaskArrays): Float32Array {
  if (model.training) model.eval();
  return T.scope(() => T.noGrad(() => {
    const out = fn(taskBatchFrom(task, batch));
    return Float32Array.from(T.cast(out, 'float32').dataSync() as Float32Array);
  }));
}

/** An adapter over the given task models; `params` defaults to the first model's backbone count. */
export function evalAdapter(name: string, models: TaskModels, params?: { total: number; activePerToken: number }): VLMoEvalAdapter {
  const first = models.vqa ?? models.nlvr ?? models.retrieval;
  if (!first) throw new Error(`evalAdapter '${name}': no task models`);
  const pc = first.backbone.parameterCount();
  const a: VLMoEvalAdapter = { name, params: params ?? { total: pc.total, activePerToken: pc.active } };
  const { vqa, nlvr, retrieval } = models;
  if (vqa) a.vqaLogits = (b) => infer('vqa', vqa, (x) => vqa.logits(x), b);
  if (nlvr) a.nlvrLogits = (b) => infer('nlvr', nlvr, (x) => nlvr.logits(x), b);
  if (retrieval) {
    a.encodeImages = (b) => infer('retrieval', retrieval, (x) => encodeImages(retrieval, x), b);
    a.encodeTexts = (b) => infer('retrieval', retrieval, (x) => encodeTexts(retrieval, x), b);
  }
  return a;
}
