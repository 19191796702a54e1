/**
 * What the router takes and gives: the options of one routing call (the router's options plus
 * the per-call inputs) and its output, shared by the fused router (route.ts, route_fused.ts),
 * the slot assignment (assign.ts) and the MoE layer.
 */
import type * as T from '@vlmoe/tensor';
import type { RouterOptions } from './options.js';

export type RoutingPolicy = 'token-choice' | 'expert-choice';

export interface RouteOptions extends RouterOptions {
  /** Training mode: the train capacity factor and noise; false → `evalCapacityFactor`. Default true. */
  training?: boolean;
  /** Scores that pick the first expert (default: the logits); gates always come from the clean logits. */
  selectLogits?: T.Tensor | null;
  /** Scores that pick choices 2..k among the experts not yet taken (default: `selectLogits`); DeepSpeed's `top2_2nd_expert_sampling`. */
  secondSelectLogits?: T.Tensor | null;
  /** RTS: uniform priorities [S, k], higher kept (required with `useRts`; `TopKGate` draws them). */
  rtsPriorities?: T.Tensor | null;
  /** 'token-choice' (DeepSpeed, default) or 'expert-choice'. */
  policy?: RoutingPolicy;
  /** Aux-loss-free balancing: the per-expert bias [E] added to the selection scores (required with enableExpertBias; TopKGate holds it). */
  expertBias?: T.Tensor | null;
  /** Each token's sequence (any integer labels; required with loadBalancingType 'seq_aux_loss'). */
  sequenceIds?: ArrayLike<number> | null;
  /**
   * Dropless capacity across an expert-parallel group: given this rank's largest per-expert
   * count, returns the group's largest (DeepSpeed max-reduces it). Default: identity.
   */
  reduceCapacity?: (localMax: number) => number;
}

export interface GateOutput {
  numTokens: number;
  numExperts: number;
  /** Assignments per token: k for token choice, E for expert choice. */
  k: number;
  /** Slots per expert (C). */
  capacity: number;
  /** int64 [S, k]: the expert of each assignment. */
  expertIndex: T.Tensor;
  /** int64 [S, k]: the slot in that expert's buffer, −1 when dropped. */
  slot: T.Tensor;
  /** int64 [S, k]: the row in the compact expert-contiguous buffer (expert offset + slot), −1 when dropped. */
  row: T.Tensor;
  /** [S, k]: combine weights (0 when dropped); differentiable w.r.t. the logits. */
  combineWeight: T.Tensor;
  /** [S, E]: softmax of the logits (sigmoid scores: normalised to sum to 1 per token). */
  gates: T.Tensor;
  /** int64 [E]: assignments per expert before / after dropping. */
  countsBefore: T.Tensor;
  countsAfter: T.Tensor;
  /** int64 [E]: DeepSpeed's `exp_counts` (first choices before dropping; all choices for k > 2). */
  expCounts: T.Tensor;
  /** Token choice: dropped assignments. Expert choice: tokens no expert picked. */
  dropped: number;
  /** Balance loss (unscaled; 0 for expert choice) and router z-loss, scalar tensors. */
  auxLoss: T.Tensor;
  zLoss: T.Tensor;
}
