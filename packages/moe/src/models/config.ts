/**
 * VLMo / VL-MoE model configurations, presets, and their parameter arithmetic.
 *
 * Facts (REFERENCE §1–2): base = 12 blocks, d 768, 12 heads; large = 24, 1024, 16; VL-FFN in
 * the top F blocks (2 for base, 3 for large); patch 16, 224 px; BERT vocab 30522; text padded
 * to 40. Our choices: absolute position embeddings (VLMo-base uses relative position bias),
 * and the MoE blocks of VL-MoE are every other block counted from the second
 * (1, 3, 5, …) — 6 of 12 for base, which gives the paper's 1.9B total parameters with 32
 * experts (only the blocks below the VL-FFN blocks would give 1.6B); in the top blocks the
 * MoE layers serve the image-only and text-only passes.
 */
import * as T from '@vlmoe/tensor';
import { expertLayout, MOE_LAYER_CONFIG_SHAPE, resolveMoELayerConfig, type MoELayerConfig, type ResolvedMoELayerConfig } from '../layers/moe_layer.js';

/**
 * The MoE block of a model config: every option of an MoE layer (`MoELayerConfig`: the
 * router's and the layer's, with their defaults defined there) plus where the layers go and
 * how their losses are weighted.
 */
export interface MoEConfig extends MoELayerConfig {
  /** Which blocks get MoE FFNs (default: every other block, 1, 3, 5, …). */
  blocks?: number[];
  /** Weights of the summed auxiliary losses (default 0.01 balance, 0.001 z). */
  auxLossWeight?: number;
  zLossWeight?: number;
}

/** What the model adds to the layer options, with its defaults. */
const MOE_MODEL_DEFAULTS = { auxLossWeight: 0.01, zLossWeight: 0.001 } as const;

/**
 * The routing our presets use for VL-MoE (a choice: the paper fixes only top-1): capacity
 * factor 1.25 in training and 2.0 in eval, over-full experts keep their most confident
 * tokens (batch priority routing, V-MoE). A config written without a preset gets the
 * router's defaults (DeepSpeed's).
 */
export const VLMOE_ROUTING: Readonly<Omit<MoELayerConfig, 'numExperts'>> = { capacityFactor: 1.25, evalCapacityFactor: 2, dropPolicy: 'probs' };

export interface VLMoConfig {
  dim: number;
  depth: number;
  heads: number;
  /** FFN hidden = mlpRatio · dim (default 4). */
  mlpRatio?: number;
  /** Blocks at the top with a VL-FFN for fused passes (default 2). */
  vlBlocks?: number;
  imageSize: number;
  patchSize: number;
  vocabSize: number;
  maxTextLen: number;
  /** Layer-scale init (default 0.1); null: no layer scale. */
  layerScale?: number | null;
  /** Stochastic depth rate at the last block, rising linearly (default 0.1). */
  dropPath?: number;
  /** VL-MoE: MoE FFNs in chosen blocks (absent: dense VLMo). */
  moe?: MoEConfig | null;
  dtype?: 'float32' | 'float64';
}

/** The JSON schema of a model config's `moe` block (zod; the compiler keeps it complete). */
export const MOE_CONFIG_SCHEMA = T.z.strictObject({
  ...MOE_LAYER_CONFIG_SHAPE,
  blocks: T.z.array(T.z.int()).optional().describe('which blocks get MoE FFNs (default every other block: 1, 3, 5, …)'),
  auxLossWeight: T.z.number().optional().describe('weight of the balance loss (default 0.01)'),
  zLossWeight: T.z.number().optional().describe('weight of the router z-loss (default 0.001)'),
} satisfies { readonly [K in keyof Required<MoEConfig>]: T.Z.ZodType });

/** The JSON schema of a model config (zod; the compiler keeps it complete). */
export const VLMO_CONFIG_SCHEMA = T.z.strictObject({
  dim: T.z.int().describe('hidden size'),
  depth: T.z.int().describe('blocks'),
  heads: T.z.int().describe('attention heads'),
  mlpRatio: T.z.number().optional().describe('FFN hidden = mlpRatio · dim (default 4)'),
  vlBlocks: T.z.int().optional().describe('top blocks with a VL-FFN for fused passes (default 2)'),
  imageSize: T.z.int(),
  patchSize: T.z.int(),
  vocabSize: T.z.int(),
  maxTextLen: T.z.int(),
  layerScale: T.z.number().nullable().optional().describe('layer-scale init (default 0.1); null: none'),
  dropPath: T.z.number().optional().describe('stochastic depth rate at the last block (default 0.1)'),
  moe: MOE_CONFIG_SCHEMA.nullable().optional().describe('VL-MoE: MoE FFNs in chosen blocks (absent: dense VLMo)'),
  dtype: T.z.enum(['float32', 'float64']).optional(),
} satisfies { readonly [K in keyof Required<VLMoConfig>]: T.Z.ZodType });

/**
 * DeepSpeed's MoE argument names (deepspeed.moe.layer.MoE), accepted in a model config's `moe`
 * block as aliases of ours. `ep_size` is not a model option here: the engine's
 * `expert_parallel_size` sets it (a recipe moves it there).
 */
export const DEEPSPEED_MOE_ALIASES: Readonly<Record<string, keyof MoEConfig>> = {
  num_experts: 'numExperts', capacity_factor: 'capacityFactor', eval_capacity_factor: 'evalCapacityFactor', min_capacity: 'minCapacity',
  drop_tokens: 'dropTokens', use_rts: 'useRts', noisy_gate_policy: 'noisyGatePolicy', use_residual: 'useResidual',
  top2_2nd_expert_sampling: 'top2SecondExpertSampling', enable_expert_tensor_parallelism: 'enableExpertTensorParallelism',
};

/** A `moe` block with DeepSpeed's names replaced by ours (both given: an error naming the two). */
export function canonicalMoE(moe: Record<string, unknown>, where: string, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(moe)) {
    const ours = DEEPSPEED_MOE_ALIASES[k];
    if (ours === undefined) {
      out[k] = v;
      continue;
    }
    if (ours in moe) throw new Error(`${where}: '${prefix}${k}' and '${prefix}${ours}' are the same option (DeepSpeed's name and ours); give one`);
    out[ours] = v;
  }
  return out;
}

/**
 * A model config from JSON (a recipe's, a run's config.json): every key checked — an unknown
 * key is an error naming it, `where` and the nearest known key — then resolved, so a bad
 * value is an error before any weight is built. `prefix` is how the config's keys are named
 * in `where` (e.g. 'model.'). DeepSpeed's MoE names (`capacity_factor`, …) are accepted in `moe`
 * and renamed to ours. Returns the config (unresolved).
 */
export function parseVLMoConfig(json: unknown, where: string, prefix = ''): VLMoConfig {
  const o = T.asObject(json, `${where}: ${prefix ? prefix.slice(0, -1) : 'the model config'}`);
  let given = o;
  if (o.moe && typeof o.moe === 'object' && !Array.isArray(o.moe)) {
    const moe = canonicalMoE(o.moe as Record<string, unknown>, where, `${prefix}moe.`);
    if ('ep_size' in moe) throw new Error(`${where}: '${prefix}moe.ep_size' is set by the engine's expert_parallel_size (DeepSpeed's ep_size), not by the model`);
    given = { ...o, moe };
  }
  const c = T.parseConfig(VLMO_CONFIG_SCHEMA, given, where, { prefix }) as VLMoConfig;
  try {
    resolveVLMoConfig(c);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  return c;
}

export type PresetName = 'tiny' | 'small' | 'base' | 'large';

const PRESETS: Record<PresetName, VLMoConfig> = {
  tiny: { dim: 64, depth: 4, heads: 4, vlBlocks: 1, imageSize: 32, patchSize: 8, vocabSize: 1000, maxTextLen: 16 },
  small: { dim: 192, depth: 6, heads: 6, vlBlocks: 2, imageSize: 64, patchSize: 8, vocabSize: 8000, maxTextLen: 24 },
  base: { dim: 768, depth: 12, heads: 12, vlBlocks: 2, imageSize: 224, patchSize: 16, vocabSize: 30522, maxTextLen: 40 },
  large: { dim: 1024, depth: 24, heads: 16, vlBlocks: 3, imageSize: 224, patchSize: 16, vocabSize: 30522, maxTextLen: 40 },
};

/**
 * A preset, dense or with `experts` experts per MoE layer (top-1 unless `k`, VLMOE_ROUTING
 * unless `moe` overrides it).
 */
export function preset(name: PresetName, opts: { experts?: number; k?: number } & Partial<VLMoConfig> = {}): VLMoConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset '${name}' (tiny, small, base, large)`);
  const { experts, k, ...rest } = opts;
  const c: VLMoConfig = { ...p, ...rest };
  if (experts) c.moe = { ...VLMOE_ROUTING, numExperts: experts, k: k ?? 1, ...(rest.moe ?? {}) };
  return c;
}

export interface ResolvedMoEConfig extends ResolvedMoELayerConfig {
  blocks: number[];
  auxLossWeight: number;
  zLossWeight: number;
}

export interface ResolvedVLMoConfig extends Required<Omit<VLMoConfig, 'moe' | 'layerScale'>> {
  layerScale: number | null;
  moe: ResolvedMoEConfig | null;
  numPatches: number;
  ffnHidden: number;
}

export function resolveVLMoConfig(c: VLMoConfig): ResolvedVLMoConfig {
  for (const k of ['dim', 'depth', 'heads', 'imageSize', 'patchSize', 'vocabSize', 'maxTextLen'] as const)
    if (!(Number.isInteger(c[k]) && c[k] >= 1)) throw new Error(`VLMo config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  if (c.dim % c.heads !== 0) throw new Error(`VLMo config: dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0) throw new Error(`VLMo config: imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  const vlBlocks = c.vlBlocks ?? 2;
  if (!(Number.isInteger(vlBlocks) && vlBlocks >= 0 && vlBlocks <= c.depth)) throw new Error(`VLMo config: vlBlocks must be in [0, depth = ${c.depth}], got ${vlBlocks}`);
  let moe: ResolvedVLMoConfig['moe'] = null;
  if (c.moe) {
    const m = c.moe;
    if (!(Number.isInteger(m.numExperts) && m.numExperts >= 1)) throw new Error(`VLMo config: moe.numExperts must be a positive integer, got ${m.numExperts}`);
    const blocks = m.blocks ?? Array.from({ length: c.depth }, (_, i) => i).filter((i) => i % 2 === 1);
    for (const b of blocks) if (!(Number.isInteger(b) && b >= 0 && b < c.depth)) throw new Error(`VLMo config: moe.blocks has ${b}, outside [0, ${c.depth})`);
    const { blocks: _b, auxLossWeight, zLossWeight, ...layer } = m;
    moe = {
      ...resolveMoELayerConfig(layer), blocks: [...new Set(blocks)].sort((a, b) => a - b),
      auxLossWeight: auxLossWeight ?? MOE_MODEL_DEFAULTS.auxLossWeight, zLossWeight: zLossWeight ?? MOE_MODEL_DEFAULTS.zLossWeight,
    };
    for (const f of ['auxLossWeight', 'zLossWeight'] as const) if (!(moe[f] >= 0)) throw new Error(`VLMo config: moe.${f} must be ≥ 0, got ${moe[f]}`);
  }
  const mlpRatio = c.mlpRatio ?? 4;
  return {
    dim: c.dim, depth: c.depth, heads: c.heads, mlpRatio, vlBlocks, imageSize: c.imageSize, patchSize: c.patchSize, vocabSize: c.vocabSize,
    maxTextLen: c.maxTextLen, layerScale: c.layerScale === undefined ? 0.1 : c.layerScale, dropPath: c.dropPath ?? 0.1, moe, dtype: c.dtype ?? 'float32',
    numPatches: (c.imageSize / c.patchSize) ** 2, ffnHidden: Math.round(mlpRatio * c.dim),
  };
}

/**
 * Parameters of the model a config builds, without building it: `total`, and `active` (per
 * token: every parameter except the experts a token is not routed to, i.e. total minus
 * (E − k) experts of every MoE layer). Equals the module's own count (tested).
 */
export function parameterCount(c: VLMoConfig): { total: number; active: number; perExpert: number } {
  const r = resolveVLMoConfig(c);
  const d = r.dim, h = r.ffnHidden;
  const ln = 2 * d;
  const ffn = d * h + h + h * d + d;
  const embeddings = r.vocabSize * d + r.maxTextLen * d + 3 * d /* token types */ + (3 * r.patchSize * r.patchSize * d + d) /* patch conv */ + d /* [I_CLS] */ + (1 + r.numPatches) * d;
  const attn = 3 * d * d + 2 * d /* q, v biases */ + d * d + d;
  const scale = r.layerScale === null ? 0 : 2 * d;
  let total = embeddings + ln /* final norm */, inactive = 0;
  for (let b = 0; b < r.depth; b++) {
    total += ln + attn + scale;
    const moeHere = r.moe && r.moe.blocks.includes(b);
    for (let side = 0; side < 2; side++) {
      total += ln;
      if (moeHere) {
        // fine-grained experts: numExperts·m of hidden h/m, k·m per token; shared experts: one dense FFN of n·h/m
        const lay = expertLayout(r.moe!, h), he = lay.ffnHiddenSize;
        const expert = d * he + he + he * d + d;
        total += lay.numExperts * d /* router */ + lay.numExperts * expert;
        if (r.moe!.useResidual) total += ffn + 2 * d + 2; /* residual MLP and its mixing coefficient */
        if (lay.sharedHiddenSize) total += 2 * d * lay.sharedHiddenSize + lay.sharedHiddenSize + d;
        inactive += (lay.numExperts - lay.k) * expert;
      } else total += ffn;
    }
    if (b >= r.depth - r.vlBlocks) total += ln + ffn;
  }
  const he = r.moe ? expertLayout(r.moe, h).ffnHiddenSize : h;
  return { total, active: total - inactive, perExpert: 2 * d * he + he + d };
}
