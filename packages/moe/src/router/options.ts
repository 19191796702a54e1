/** Router options with DeepSpeed's names (camelCase), their defaults (defined here, once) and their checks. */
import { z, type Z } from '@vlmoe/tensor';

export type DropPolicy = 'position' | 'probs';
export type NoisyGatePolicy = 'Jitter' | 'RSample' | null;

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
  };
  if (!(Number.isInteger(r.numExperts) && r.numExperts >= 1)) throw new RangeError(`router: numExperts must be an integer ≥ 1, got ${o.numExperts}`);
  if (!(Number.isInteger(r.k) && r.k >= 1 && r.k <= r.numExperts)) throw new RangeError(`router: k must be an integer in [1, numExperts = ${r.numExperts}], got ${o.k}`);
  for (const f of ['capacityFactor', 'evalCapacityFactor'] as const) if (!(r[f] > 0)) throw new RangeError(`router: ${f} must be > 0, got ${r[f]}`);
  if (!(Number.isInteger(r.minCapacity) && r.minCapacity >= 0)) throw new RangeError(`router: minCapacity must be an integer ≥ 0, got ${o.minCapacity}`);
  if (r.dropPolicy !== 'position' && r.dropPolicy !== 'probs') throw new RangeError(`router: dropPolicy must be 'position' or 'probs', got '${String(o.dropPolicy)}'`);
  if (r.noisyGatePolicy !== null && r.noisyGatePolicy !== 'Jitter' && r.noisyGatePolicy !== 'RSample') throw new RangeError(`router: noisyGatePolicy must be 'Jitter', 'RSample' or null, got '${String(o.noisyGatePolicy)}'`);
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
