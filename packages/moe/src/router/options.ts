/** Router options with DeepSpeed's names (camelCase), their defaults (defined here, once) and their checks. */
import { z, type Z } from '@vlmoe/tensor';

export type DropPolicy = 'position' | 'probs';
export type NoisyGatePolicy = 'Jitter' | 'RSample' | null;
export type ScoreFunction = 'softmax' | 'sigmoid';
export type LoadBalancingType = 'aux_loss' | 'seq_aux_loss';

/** How fast the aux-loss-free expert bias moves per step (DeepSeek-V3's γ; Megatron `moe_router_bias_update_rate`). */
export const DEFAULT_BIAS_UPDATE_RATE = 1e-3;

export interface RouterOptions {
  numExperts: number;
  /** Experts per token (DeepSpeed `k`): 1, 2 or more. */
  k?: number;
  /** Capacity factor in training (default 1.0). */
  capacityFactor?: number;
  /** Capacity factor in eval (default 1.0). */
  evalCapacityFactor?: number;
  /** Lower bound on the capacity (default 4). */
  minCapacity?: number;
  /** false → dropless: capacity = the largest per-expert count. Default true. */
  dropTokens?: boolean;
  /** Random token selection: an over-full expert keeps a uniformly random subset (default false here; DeepSpeed's default is true for k = 1). */
  useRts?: boolean;
  /** Which tokens an over-full expert keeps: the first by position (DeepSpeed default) or the most confident ('probs', batch priority routing). */
  dropPolicy?: DropPolicy;
  noisyGatePolicy?: NoisyGatePolicy;
  /**
   * Router scores (Megatron `moe_router_score_function`): 'softmax' over the experts (default,
   * DeepSpeed) or an independent 'sigmoid' per expert (DeepSeek-V3), whose chosen scores are
   * normalised to sum to 1 per token for k > 1.
   */
  scoreFunction?: ScoreFunction;
  /**
   * Softmax scores only (Megatron `moe_router_pre_softmax`): true — the chosen experts' softmax
   * values over all experts, never renormalised; false — the softmax over the k chosen logits
   * (weights sum to 1 over the chosen; k = 1 gives 1). Unset: DeepSpeed's — the gate value for
   * k = 1, renormalised over the kept choices for k ≥ 2 (null: the same).
   */
  preSoftmax?: boolean | null;
  /**
   * Auxiliary-loss-free balancing (DeepSeek-V3; Megatron `moe_router_enable_expert_bias`): a
   * per-expert bias added to the scores that choose the experts only (never to the combine
   * weights), moved after each optimizer step by biasUpdateRate · sign(mean load − load), the
   * loads summed over the data-parallel ranks. Token choice only. Default false.
   */
  enableExpertBias?: boolean;
  /** Step of the expert bias update (default 1e-3). */
  biasUpdateRate?: number;
  /**
   * Group-limited routing (DeepSeek-V3's node-limited routing; Megatron
   * `moe_router_num_groups`): the experts form this many equal groups (consecutive experts:
   * set it to expert_parallel_size and a group is a rank's experts), each token first picks
   * `groupTopK` groups by the sum of its ⌊k / groupTopK⌋ best scores in each, then its k
   * experts among those groups only — so its assignments reach at most groupTopK ranks. Token
   * choice only. Unset: no limit.
   */
  numGroups?: number | null;
  /** Groups each token may route to (Megatron `moe_router_group_topk`), 1 ≤ groupTopK ≤ min(numGroups, k). */
  groupTopK?: number | null;
  /**
   * The balance loss (Megatron `moe_router_load_balancing_type`): 'aux_loss' — DeepSpeed's
   * over all the tokens of the call (default) — or 'seq_aux_loss' — DeepSeek-V3's
   * sequence-wise loss: E/k · Σₑ fₑ·Pₑ per sequence (fₑ its share of assignments to e, all k
   * choices before dropping, Pₑ its mean gate of e), averaged over the sequences; the caller
   * passes each token's sequence (the VL-MoE model does). Token choice only.
   */
  loadBalancingType?: LoadBalancingType;
}

/**
 * The JSON schema of every router option (zod; a config parser checks keys and types with it,
 * and the published JSON Schema comes from it; the compiler keeps it complete). Values are
 * checked further by resolveRouterOptions.
 */
export const ROUTER_OPTIONS_SHAPE = {
  numExperts: z.int().describe('experts per MoE layer'),
  k: z.int().optional().describe('experts per token (default 1)'),
  capacityFactor: z.number().optional().describe('capacity factor in training (default 1.0)'),
  evalCapacityFactor: z.number().optional().describe('capacity factor in eval (default 1.0)'),
  minCapacity: z.int().optional().describe('lower bound on the capacity (default 4)'),
  dropTokens: z.boolean().optional().describe('false: dropless (capacity = the largest count); default true'),
  useRts: z.boolean().optional().describe('random token selection (default false)'),
  dropPolicy: z.enum(['position', 'probs']).optional().describe("which tokens an over-full expert keeps: the first ('position', DeepSpeed) or the most confident ('probs')"),
  noisyGatePolicy: z.enum(['Jitter', 'RSample']).nullable().optional().describe('router noise in training (default none)'),
  scoreFunction: z.enum(['softmax', 'sigmoid']).optional().describe("router scores: 'softmax' over the experts (default) or a 'sigmoid' per expert (DeepSeek-V3), chosen scores normalised for k > 1"),
  preSoftmax: z.boolean().nullable().optional().describe("softmax scores: true = softmax over all experts, chosen values kept as they are; false = softmax over the k chosen logits; unset = DeepSpeed's (k = 1 the gate value, k ≥ 2 renormalised over the kept)"),
  enableExpertBias: z.boolean().optional().describe('aux-loss-free balancing: a per-expert bias on the selection scores, moved after each step by biasUpdateRate · sign(mean load − load) (default false)'),
  biasUpdateRate: z.number().optional().describe('step of the expert bias update (default 1e-3)'),
  numGroups: z.int().nullable().optional().describe('group-limited routing: the experts form this many equal groups (e.g. expert_parallel_size); each token picks groupTopK groups first (default none)'),
  groupTopK: z.int().nullable().optional().describe('group-limited routing: the groups each token may route to'),
  loadBalancingType: z.enum(['aux_loss', 'seq_aux_loss']).optional().describe("balance loss: DeepSpeed's over the whole batch ('aux_loss', default) or DeepSeek-V3's per sequence ('seq_aux_loss')"),
} satisfies { readonly [K in keyof Required<RouterOptions>]: Z.ZodType };

export interface ResolvedRouterOptions {
  numExperts: number;
  k: number;
  capacityFactor: number;
  evalCapacityFactor: number;
  minCapacity: number;
  dropTokens: boolean;
  useRts: boolean;
  dropPolicy: DropPolicy;
  noisyGatePolicy: NoisyGatePolicy;
  scoreFunction: ScoreFunction;
  preSoftmax: boolean | null;
  enableExpertBias: boolean;
  biasUpdateRate: number;
  numGroups: number | null;
  groupTopK: number | null;
  loadBalancingType: LoadBalancingType;
}

export function resolveRouterOptions(o: RouterOptions): ResolvedRouterOptions {
  const r: ResolvedRouterOptions = {
    numExperts: o.numExperts,
    k: o.k ?? 1,
    capacityFactor: o.capacityFactor ?? 1,
    evalCapacityFactor: o.evalCapacityFactor ?? 1,
    minCapacity: o.minCapacity ?? 4,
    dropTokens: o.dropTokens ?? true,
    useRts: o.useRts ?? false,
    dropPolicy: o.dropPolicy ?? 'position',
    noisyGatePolicy: o.noisyGatePolicy ?? null,
    scoreFunction: o.scoreFunction ?? 'softmax',
    preSoftmax: o.preSoftmax ?? null,
    enableExpertBias: o.enableExpertBias ?? false,
    biasUpdateRate: o.biasUpdateRate ?? DEFAULT_BIAS_UPDATE_RATE,
    numGroups: o.numGroups ?? null,
    groupTopK: o.groupTopK ?? null,
    loadBalancingType: o.loadBalancingType ?? 'aux_loss',
  };
  if (r.loadBalancingType !== 'aux_loss' && r.loadBalancingType !== 'seq_aux_loss') throw new RangeError(`router: loadBalancingType must be 'aux_loss' or 'seq_aux_loss', got '${String(o.loadBalancingType)}'`);
  if (!(Number.isInteger(r.numExperts) && r.numExperts >= 1)) throw new RangeError(`router: numExperts must be an integer ≥ 1, got ${o.numExperts}`);
  if (!(Number.isInteger(r.k) && r.k >= 1 && r.k <= r.numExperts)) throw new RangeError(`router: k must be an integer in [1, numExperts = ${r.numExperts}], got ${o.k}`);
  for (const f of ['capacityFactor', 'evalCapacityFactor'] as const) if (!(r[f] > 0)) throw new RangeError(`router: ${f} must be > 0, got ${r[f]}`);
  if (!(Number.isInteger(r.minCapacity) && r.minCapacity >= 0)) throw new RangeError(`router: minCapacity must be an integer ≥ 0, got ${o.minCapacity}`);
  if (r.dropPolicy !== 'position' && r.dropPolicy !== 'probs') throw new RangeError(`router: dropPolicy must be 'position' or 'probs', got '${String(o.dropPolicy)}'`);
  if (r.noisyGatePolicy !== null && r.noisyGatePolicy !== 'Jitter' && r.noisyGatePolicy !== 'RSample') throw new RangeError(`router: noisyGatePolicy must be 'Jitter', 'RSample' or null, got '${String(o.noisyGatePolicy)}'`);
  if (r.scoreFunction !== 'softmax' && r.scoreFunction !== 'sigmoid') throw new RangeError(`router: scoreFunction must be 'softmax' or 'sigmoid', got '${String(o.scoreFunction)}'`);
  if (r.preSoftmax !== null && r.scoreFunction !== 'softmax') throw new RangeError("router: preSoftmax chooses where the softmax goes; it does not apply to scoreFunction 'sigmoid'");
  if ((r.numGroups === null) !== (r.groupTopK === null)) throw new RangeError('router: group-limited routing needs both numGroups and groupTopK');
  if (r.numGroups !== null) {
    if (!(Number.isInteger(r.numGroups) && r.numGroups >= 1 && r.numExperts % r.numGroups === 0)) throw new RangeError(`router: numGroups must be an integer ≥ 1 dividing numExperts = ${r.numExperts}, got ${o.numGroups}`);
    if (!(Number.isInteger(r.groupTopK) && r.groupTopK! >= 1 && r.groupTopK! <= Math.min(r.numGroups, r.k))) throw new RangeError(`router: groupTopK must be an integer in [1, min(numGroups = ${r.numGroups}, k = ${r.k})], got ${o.groupTopK}`);
    if (r.groupTopK! * (r.numExperts / r.numGroups) < r.k) throw new RangeError(`router: groupTopK = ${r.groupTopK} groups of ${r.numExperts / r.numGroups} experts cannot hold k = ${r.k} choices`);
  }
  if (!(Number.isFinite(r.biasUpdateRate) && r.biasUpdateRate >= 0)) throw new RangeError(`router: biasUpdateRate must be a finite number ≥ 0, got ${o.biasUpdateRate}`);
  if (r.useRts && r.dropPolicy === 'probs') throw new RangeError("router: useRts and dropPolicy 'probs' are two different drop policies; pick one");
  return r;
}

/** DeepSpeed's capacity: max(ceil(S / E · cf · k), minCapacity). */
export function capacity(numTokens: number, numExperts: number, capacityFactor: number, k: number, minCapacity: number): number {
  return Math.max(Math.ceil((numTokens / numExperts) * capacityFactor * k), minCapacity);
}

/** Largest representable relative step of the gates' dtype (DeepSpeed clamps the top-k denominator to it). */
export function gateEps(dtype: string): number {
  return dtype === 'float64' ? Number.EPSILON : 1.1920928955078125e-7;
}

/** Expert choice routes by softmax gates and has no expert bias: the token-choice options of today's systems are refused by name. */
export function checkExpertChoiceOptions(o: ResolvedRouterOptions, who: string): void {
  const given = [o.scoreFunction !== 'softmax' && `scoreFunction '${o.scoreFunction}'`, o.preSoftmax !== null && 'preSoftmax', o.enableExpertBias && 'enableExpertBias', o.numGroups !== null && 'numGroups', o.loadBalancingType !== 'aux_loss' && `loadBalancingType '${o.loadBalancingType}'`].filter(Boolean);
  if (given.length) throw new RangeError(`${who}: ${given.join(', ')} apply to token-choice routing, not expert choice`);
}
