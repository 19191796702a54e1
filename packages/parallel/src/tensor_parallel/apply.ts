/**
 * Splits a built model over a tensor-parallel group, the way DeepSpeed's AutoTP injects
 * Megatron layers into a model written without them:
 *
 * - every `T.nn.MultiheadSelfAttention` becomes a `ParallelSelfAttention` (heads split);
 * - every `T.nn.FeedForward` becomes a `ParallelFeedForward` (column-parallel fc1, row-parallel
 *   fc2: one all-reduce);
 * - every `TensorParallelModule` splits what only it knows how to (the VLMo backbone's word
 *   embedding, the pretrainer's MLM decoder and loss: vocab-parallel; an MoE layer's experts
 *   by hidden units when it has `enableExpertTensorParallelism`);
 * - everything else (layer norms, position and type embeddings, small heads, the experts of
 *   other MoE layers) stays replicated: every rank of the group computes it on the same input.
 *
 * The split layers are cut from the built ones, so the model starts from the values it
 * would have in one process, and dropout inside a split region applies the slice of the mask
 * one process draws (T.dropoutSlice), so training stays the same on any layout.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { ParallelSelfAttention } from './attention.js';
import { ParallelFeedForward } from './feedforward.js';

/** A module that splits parts of itself over a tensor-parallel group (checked structurally). */
export interface TensorParallelModule {
  /** Splits what this module splits; `false`: nothing here is split (e.g. an option turned it off). */
  setTensorParallelGroup(group: ProcessGroup): boolean | void;
}

export function isTensorParallelModule(m: unknown): m is TensorParallelModule {
  return typeof (m as Partial<TensorParallelModule>).setTensorParallelGroup === 'function';
}

export interface TensorParallelReport {
  attention: number;
  feedForward: number;
  modules: number;
  /** Elements of split parameters on this rank, and of replicated ones. */
  splitElements: number;
  replicatedElements: number;
}

function disposeParams(m: T.nn.Module): void {
  for (const p of m.parameters()) p.dispose();
}

/** Splits `model` over `group` in place (see the file comment); a group of one changes nothing. */
export function applyTensorParallel(model: T.nn.Module, group: ProcessGroup): TensorParallelReport {
  const report: TensorParallelReport = { attention: 0, feedForward: 0, modules: 0, splitElements: 0, replicatedElements: 0 };
  if (group.size > 1) {
    const named = [...model.namedModules()];
    for (const [name, m] of named) {
      for (const [k, child] of [...m.namedChildren()]) {
        if (child instanceof T.nn.MultiheadSelfAttention) {
          (m as unknown as Record<string, unknown>)[k] = ParallelSelfAttention.fromDense(child, group);
          report.attention++;
        } else if (child instanceof T.nn.FeedForward) {
          (m as unknown as Record<string, unknown>)[k] = ParallelFeedForward.fromDense(child, group);
          report.feedForward++;
        } else continue;
        disposeParams(child);
      }
    }
    for (const [, m] of named) {
      if (isTensorParallelModule(m) && m.setTensorParallelGroup(group) !== false) report.modules++;
    }
  }
  for (const p of model.parameters()) {
    if (p.tags.tensorParallel) report.splitElements += p.numel;
    else report.replicatedElements += p.numel;
  }
  return report;
}
