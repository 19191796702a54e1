/**
 * DeepSpeed's JSON config keys (the ones the engine implements), checked with clear errors.
 * Batch sizes follow DeepSpeed: train_batch_size = micro batch × gradient accumulation ×
 * data-parallel world size; give any two (or all three, consistent).
 */
import type { LossScalerOptions } from './loss_scaler.js';

export interface DeepSpeedConfig {
  train_batch_size?: number;
  train_micro_batch_size_per_gpu?: number;
  gradient_accumulation_steps?: number;
  /** Max global gradient norm (0 / absent: no clipping). */
  gradient_clipping?: number;
  optimizer?: { type: 'Adam' | 'AdamW' | 'SGD'; params?: { lr?: number; betas?: [number, number]; eps?: number; weight_decay?: number; momentum?: number } };
  scheduler?: {
    type: 'WarmupLR' | 'WarmupDecayLR' | 'WarmupCosineLR';
    params?: { warmup_num_steps?: number; total_num_steps?: number; warmup_min_lr?: number; warmup_max_lr?: number; cos_min_ratio?: number };
  };
  zero_optimization?: { stage?: 0 | 1 | 2; reduce_bucket_size?: number; overlap_comm?: boolean };
  /** Size of the expert-parallel groups (DeepSpeed sets it per MoE layer as ep_size). Default 1. */
  expert_parallel_size?: number;
  /** Mixed precision: float32 matrix products in bfloat16 (T.autocast), float32 master weights. */
  bf16?: { enabled?: boolean };
  /** The same in float16, with loss scaling (DeepSpeed's keys; loss_scale 0 = dynamic). */
  fp16?: { enabled?: boolean; loss_scale?: number; initial_scale_power?: number; loss_scale_window?: number; hysteresis?: number; min_loss_scale?: number };
}

export interface ResolvedConfig {
  trainBatchSize: number;
  microBatch: number;
  gradAccum: number;
  clip: number;
  stage: 0 | 1 | 2;
  bucketElements: number;
  /** Reduce gradient buckets during backward as they fill (all-reduce in stages 0 and 1, reduce-scatter in stage 2). */
  overlapComm: boolean;
  expertParallel: number;
  optimizer: NonNullable<DeepSpeedConfig['optimizer']>;
  scheduler: DeepSpeedConfig['scheduler'] | null;
  /** bf16 / fp16: the dtype of the float32 products under autocast (null: full precision). */
  mixedPrecision: 'bfloat16' | 'float16' | null;
  /** fp16: the loss scaler's options. */
  lossScale: LossScalerOptions | null;
}

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

export function resolveConfig(c: DeepSpeedConfig, worldSize: number): ResolvedConfig {
  for (const k of ['train_batch_size', 'train_micro_batch_size_per_gpu', 'gradient_accumulation_steps', 'expert_parallel_size'] as const)
    if (c[k] !== undefined && !posInt(c[k])) throw new Error(`config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  let tb = c.train_batch_size, mb = c.train_micro_batch_size_per_gpu, ga = c.gradient_accumulation_steps;
  if (tb !== undefined && mb !== undefined && ga !== undefined) {
    if (tb !== mb * ga * worldSize)
      throw new Error(`config: train_batch_size ${tb} != train_micro_batch_size_per_gpu ${mb} × gradient_accumulation_steps ${ga} × world size ${worldSize}`);
  } else if (tb !== undefined && mb !== undefined) {
    ga = tb / (mb * worldSize);
    if (!posInt(ga)) throw new Error(`config: train_batch_size ${tb} is not divisible by micro batch ${mb} × world size ${worldSize}`);
  } else if (tb !== undefined && ga !== undefined) {
    mb = tb / (ga * worldSize);
    if (!posInt(mb)) throw new Error(`config: train_batch_size ${tb} is not divisible by gradient_accumulation_steps ${ga} × world size ${worldSize}`);
  } else if (mb !== undefined) {
    ga = ga ?? 1;
    tb = mb * ga * worldSize;
  } else if (tb !== undefined) {
    ga = 1;
    mb = tb / worldSize;
    if (!posInt(mb)) throw new Error(`config: train_batch_size ${tb} is not divisible by world size ${worldSize}`);
  } else throw new Error('config: give train_batch_size or train_micro_batch_size_per_gpu');
  tb = mb! * ga! * worldSize;
  const stage = c.zero_optimization?.stage ?? 0;
  if (![0, 1, 2].includes(stage)) throw new Error(`config: zero_optimization.stage ${stage} is not supported (0, 1 or 2; stage 3 comes later)`);
  if (c.bf16?.enabled && c.fp16?.enabled) throw new Error('config: bf16.enabled and fp16.enabled are both set; choose one');
  let lossScale: LossScalerOptions | null = null;
  if (c.fp16?.enabled) {
    const f = c.fp16;
    for (const k of ['loss_scale', 'initial_scale_power', 'loss_scale_window', 'hysteresis', 'min_loss_scale'] as const)
      if (f[k] !== undefined && !(typeof f[k] === 'number' && f[k]! >= 0)) throw new Error(`config: fp16.${k} must be a number ≥ 0, got ${JSON.stringify(f[k])}`);
    lossScale = { static: f.loss_scale ?? 0, initialScalePower: f.initial_scale_power ?? 16, window: f.loss_scale_window ?? 1000, hysteresis: f.hysteresis ?? 2, minScale: f.min_loss_scale ?? 1 };
  }
  const mixedPrecision = c.bf16?.enabled ? 'bfloat16' : c.fp16?.enabled ? 'float16' : null;
  const clip = c.gradient_clipping ?? 0;
  if (!(clip >= 0)) throw new Error(`config: gradient_clipping must be ≥ 0, got ${clip}`);
  const ep = c.expert_parallel_size ?? 1;
  if (worldSize % ep !== 0) throw new Error(`config: expert_parallel_size ${ep} does not divide the world size ${worldSize}`);
  const optimizer = c.optimizer ?? { type: 'AdamW', params: {} };
  if (!['Adam', 'AdamW', 'SGD'].includes(optimizer.type)) throw new Error(`config: optimizer.type '${optimizer.type}' is not one of Adam, AdamW, SGD`);
  if (c.scheduler && !['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR'].includes(c.scheduler.type)) throw new Error(`config: scheduler.type '${c.scheduler.type}' is not one of WarmupLR, WarmupDecayLR, WarmupCosineLR`);
  const bucket = c.zero_optimization?.reduce_bucket_size ?? 5e8;
  if (!(bucket >= 1)) throw new Error(`config: zero_optimization.reduce_bucket_size must be ≥ 1, got ${bucket}`);
  const overlap = c.zero_optimization?.overlap_comm ?? true;
  if (typeof overlap !== 'boolean') throw new Error(`config: zero_optimization.overlap_comm must be true or false, got ${JSON.stringify(overlap)}`);
  return {
    trainBatchSize: tb, microBatch: mb!, gradAccum: ga!, clip, stage: stage as 0 | 1 | 2, bucketElements: Math.floor(bucket), overlapComm: overlap, expertParallel: ep, optimizer,
    scheduler: c.scheduler ?? null, mixedPrecision, lossScale,
  };
}
