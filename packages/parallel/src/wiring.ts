/**
 * How the engine wires the parallel layout of its config into the model it wraps, as
 * `deepspeed.initialize` hands the expert-parallel group to every MoE layer: a model states
 * what it can take by implementing these hooks (checked structurally, so @vlmoe/parallel
 * needs no import of the layers).
 *
 * - `ExpertParallelLayer` (@vlmoe/moe's `MoE`): gets the expert-parallel group and keeps its
 *   share of the experts. With `expert_parallel_size` P > 1 every layer gets it; the number
 *   of experts of every layer must divide by P, and every expert parameter (tag `expert`)
 *   must belong to such a layer — else the engine refuses before the first step.
 * - Tensor parallelism (`tensor_parallel_size` > 1): attention, dense FFNs and what a
 *   `TensorParallelModule` splits itself are split over the tensor-parallel group
 *   (tensor_parallel/apply.ts).
 * - `DataParallelModule` (the pretrainer, the retrieval model): gets the data-parallel group,
 *   so objectives that look across the global batch (contrastive negatives, hard negatives,
 *   loss normalisers) see every rank's samples and compute the same loss on any layout.
 */
import type * as T from '@vlmoe/tensor';
import { ExpertParallelGroup } from './expert_parallel.js';
import type { ParallelGroups } from './groups.js';
import type { ProcessGroup } from './process_group.js';
import { applyTensorParallel, type TensorParallelReport } from './tensor_parallel/apply.js';

/** A layer whose experts can be spread over an expert-parallel group. */
export interface ExpertParallelLayer {
  /** Experts in the layer (global count). */
  readonly numExperts: number;
  /** The group the layer already dispatches through, if it was built with one. */
  readonly expertGroup?: { readonly size: number } | null;
  setExpertParallelGroup(group: ExpertParallelGroup): void;
}

/** A module whose objective looks across the data-parallel ranks' samples. */
export interface DataParallelModule {
  setDataParallelGroup(group: ProcessGroup): void;
}

export function isExpertParallelLayer(m: unknown): m is ExpertParallelLayer {
  return typeof (m as Partial<ExpertParallelLayer>).setExpertParallelGroup === 'function' && typeof (m as Partial<ExpertParallelLayer>).numExperts === 'number';
}

export function isDataParallelModule(m: unknown): m is DataParallelModule {
  return typeof (m as Partial<DataParallelModule>).setDataParallelGroup === 'function';
}

/**
 * A module with state that follows the optimizer steps without being trained (a router's
 * aux-loss-free expert bias): the engine calls `afterOptimizerStep` on every rank after each
 * optimizer step (also one skipped on fp16 overflow), in module order (collective inside is fine).
 */
export interface OptimizerStepModule {
  afterOptimizerStep(groups: ParallelGroups): void;
}

export function isOptimizerStepModule(m: unknown): m is OptimizerStepModule {
  return typeof (m as Partial<OptimizerStepModule>).afterOptimizerStep === 'function';
}

/**
 * Hands the groups to the model's layers (see the file comment); throws before changing
 * anything when the expert layout cannot be honoured. Tensor parallelism goes first (it
 * replaces layers), then experts, then the data-parallel group. Returns what tensor
 * parallelism split.
 */
export function wireModel(model: T.nn.Module, groups: ParallelGroups): TensorParallelReport {
  const P = groups.expertParallelSize;
  const named = [...model.namedModules()];
  const layers = named.filter(([, m]) => isExpertParallelLayer(m)) as [string, T.nn.Module & ExpertParallelLayer][];
  for (const [name, l] of layers)
    if (l.expertGroup && l.expertGroup.size !== P) throw new Error(`initialize: MoE layer '${name || '(the model)'}' was built with an expert-parallel group of ${l.expertGroup.size} ranks, but expert_parallel_size is ${P}`);
  if (P > 1) {
    if (!layers.length)
      throw new Error(`initialize: expert_parallel_size is ${P}, but the model has no MoE layer that takes an expert-parallel group (a layer with setExpertParallelGroup, as @vlmoe/moe's MoE)${[...model.parameters()].some((p) => p.tags.expert) ? ': its expert parameters cannot be spread over the ranks' : ''}`);
    for (const [name, l] of layers)
      if (l.numExperts % P !== 0) throw new Error(`initialize: expert_parallel_size ${P} does not divide the ${l.numExperts} experts of MoE layer '${name || '(the model)'}'`);
    const owned = new Set<T.nn.Parameter>();
    for (const [, l] of layers) for (const p of l.parameters()) owned.add(p);
    for (const [name, p] of model.namedParameters())
      if (p.tags.expert && !owned.has(p)) throw new Error(`initialize: expert parameter '${name}' belongs to no MoE layer that takes an expert-parallel group, so it cannot be spread over expert_parallel_size ${P}`);
  }
  const report = applyTensorParallel(model, groups.tensorParallel);
  if (P > 1) {
    const group = new ExpertParallelGroup(groups.expertParallel);
    for (const [, l] of layers) l.setExpertParallelGroup(group);
  }
  for (const [, m] of model.namedModules()) if (isDataParallelModule(m)) m.setDataParallelGroup(groups.dataParallel);
  return report;
}
