/**
 * DeepSpeed's JSON config keys (the ones the engine implements), checked with clear errors.
 * Batch sizes follow DeepSpeed: train_batch_size = micro batch × gradient accumulation ×
 * data-parallel world size; give any two (or all three, consistent).
 *
 * Every key is checked: a key the engine implements must have its type; a key DeepSpeed
 * knows but this engine does not implement is an error naming it (never silently ignored);
 * any other key is an error naming it and the nearest known key ("did you mean …").
 */
import * as T from '@vlmoe/tensor';
import type { LossScalerOptions } from './loss_scaler.js';

export interface DeepSpeedConfig {
  train_batch_size?: number;
  train_micro_batch_size_per_gpu?: number;
  gradient_accumulation_steps?: number;
  /** Max global gradient norm (0 / absent: no clipping). */
  gradient_clipping?: number;
  /**
   * `type` is matched without regard to case, as DeepSpeed does ('adamw' = 'AdamW'). As in
   * DeepSpeed, 'Adam' decouples weight decay (AdamW's update) unless `params.adam_w_mode` is false.
   */
  optimizer?: { type: string; params?: { lr?: number; betas?: [number, number]; eps?: number; weight_decay?: number; momentum?: number; adam_w_mode?: boolean } };
  /** `type` is matched exactly, as DeepSpeed does (a near miss gets a did-you-mean). */
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
  /** The optimiser, its type in the canonical case. */
  optimizer: { type: OptimizerType; params: NonNullable<NonNullable<DeepSpeedConfig['optimizer']>['params']> };
  scheduler: DeepSpeedConfig['scheduler'] | null;
  /** bf16 / fp16: the dtype of the float32 products under autocast (null: full precision). */
  mixedPrecision: 'bfloat16' | 'float16' | null;
  /** fp16: the loss scaler's options. */
  lossScale: LossScalerOptions | null;
}

export type OptimizerType = 'Adam' | 'AdamW' | 'SGD';
const OPTIMIZERS: readonly OptimizerType[] = ['Adam', 'AdamW', 'SGD'];
const SCHEDULERS = ['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR'];

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/** The keys the engine implements: a field type, or the keys of a nested object. */
type KeySpec = T.FieldType | { readonly [k: string]: KeySpec };

const IMPLEMENTED: { readonly [k: string]: KeySpec } = {
  train_batch_size: 'integer', train_micro_batch_size_per_gpu: 'integer', gradient_accumulation_steps: 'integer', gradient_clipping: 'number',
  optimizer: { type: 'string', params: { lr: 'number', betas: 'array', eps: 'number', weight_decay: 'number', momentum: 'number', adam_w_mode: 'boolean' } },
  scheduler: { type: 'string', params: { warmup_num_steps: 'integer', total_num_steps: 'integer', warmup_min_lr: 'number', warmup_max_lr: 'number', cos_min_ratio: 'number' } },
  zero_optimization: { stage: 'integer', reduce_bucket_size: 'number', overlap_comm: 'boolean' },
  expert_parallel_size: 'integer',
  bf16: { enabled: 'boolean' },
  fp16: { enabled: 'boolean', loss_scale: 'number', initial_scale_power: 'number', loss_scale_window: 'number', hysteresis: 'number', min_loss_scale: 'number' },
};

/** Keys DeepSpeed's config accepts that this engine does not implement, by object path ('' = top level). */
const DEEPSPEED_ONLY: Readonly<Record<string, readonly string[]>> = {
  '': ['amp', 'prescale_gradients', 'gradient_predivide_factor', 'sparse_gradients', 'zero_allow_untested_optimizer', 'zero_force_ds_cpu_optimizer', 'steps_per_print', 'wall_clock_breakdown',
    'dump_state', 'flops_profiler', 'activation_checkpointing', 'sparse_attention', 'tensorboard', 'wandb', 'csv_monitor', 'comet', 'elasticity', 'aio', 'autotuning', 'checkpoint',
    'data_efficiency', 'curriculum_learning', 'compression_training', 'communication_data_type', 'seq_parallel_communication_data_type', 'pipeline', 'data_types', 'comms_logger',
    'memory_breakdown', 'fp32_allreduce', 'disable_allgather', 'torch_autocast', 'graph_harvesting', 'monitor_config', 'nebula', 'weight_quantization', 'hybrid_engine', 'eigenvalue', 'progressive_layer_drop'],
  zero_optimization: ['allgather_partitions', 'allgather_bucket_size', 'reduce_scatter', 'contiguous_gradients', 'offload_param', 'offload_optimizer', 'stage3_max_live_parameters',
    'stage3_max_reuse_distance', 'stage3_prefetch_bucket_size', 'stage3_param_persistence_threshold', 'stage3_gather_16bit_weights_on_model_save', 'stage3_gather_fp16_weights_on_model_save',
    'sub_group_size', 'round_robin_gradients', 'zero_hpz_partition_size', 'zero_quantized_weights', 'zero_quantized_gradients', 'mics_shard_size', 'mics_hierarchical_params_gather',
    'memory_efficient_linear', 'pipeline_loading_checkpoint', 'override_module_apply', 'ignore_unused_parameters', 'elastic_checkpoint', 'load_from_fp32_weights', 'cpu_offload',
    'legacy_stage1', 'use_multi_rank_bucket_allreduce', 'log_trace_cache_warnings'],
  fp16: ['auto_cast', 'consecutive_hysteresis', 'fp16_master_weights_and_grads'],
  bf16: ['immediate_grad_update', 'check_grad_overflow'],
  'optimizer.params': ['amsgrad', 'bias_correction', 'torch_adam', 'fused', 'max_grad_norm', 'freeze_step', 'cuda_aware', 'comm_backend_name', 'dampening', 'nesterov'],
  'scheduler.params': ['warmup_type', 'warmup_min_ratio', 'last_batch_iteration', 'cycle_min_lr', 'cycle_max_lr', 'decay_lr_rate', 'cycle_first_step_size', 'lr_range_test_min_lr', 'lr_range_test_step_size'],
};

/** Every key of a DeepSpeed config object against the implemented keys and DeepSpeed's own. */
function checkKeys(o: unknown, spec: { readonly [k: string]: KeySpec }, at: string, where: string): void {
  const obj = T.asObject(o, `${where}: ${at || 'the DeepSpeed config'}`);
  const known = Object.keys(spec);
  const unimplemented = DEEPSPEED_ONLY[at] ?? [];
  for (const [k, v] of Object.entries(obj)) {
    const key = at ? `${at}.${k}` : k;
    const s = spec[k];
    if (s === undefined) {
      if (unimplemented.includes(k)) throw new Error(`${where}: '${key}' is a DeepSpeed key this engine does not implement; remove it (the engine implements: ${known.map((x) => (at ? `${at}.${x}` : x)).join(', ')})`);
      throw new Error(`${where}: unknown key '${key}'${T.didYouMean(k, [...known, ...unimplemented])}; known: ${known.join(', ')}`);
    }
    if (typeof s === 'string') {
      if (v !== undefined && !T.hasFieldType(v, s)) throw T.typeError(key, s, v, where);
    } else checkKeys(v, s, key, where);
  }
}

/**
 * The engine's view of a DeepSpeed config for `worldSize` ranks. `where` names the config in
 * errors (e.g. the recipe file and its `engine` key).
 */
export function resolveConfig(c: DeepSpeedConfig, worldSize: number, where = 'config'): ResolvedConfig {
  checkKeys(c, IMPLEMENTED, '', where);
  for (const k of ['train_batch_size', 'train_micro_batch_size_per_gpu', 'gradient_accumulation_steps', 'expert_parallel_size'] as const)
    if (c[k] !== undefined && !posInt(c[k])) throw new Error(`${where}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  let tb = c.train_batch_size, mb = c.train_micro_batch_size_per_gpu, ga = c.gradient_accumulation_steps;
  if (tb !== undefined && mb !== undefined && ga !== undefined) {
    if (tb !== mb * ga * worldSize)
      throw new Error(`${where}: train_batch_size ${tb} != train_micro_batch_size_per_gpu ${mb} × gradient_accumulation_steps ${ga} × world size ${worldSize}`);
  } else if (tb !== undefined && mb !== undefined) {
    ga = tb / (mb * worldSize);
    if (!posInt(ga)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by micro batch ${mb} × world size ${worldSize}`);
  } else if (tb !== undefined && ga !== undefined) {
    mb = tb / (ga * worldSize);
    if (!posInt(mb)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by gradient_accumulation_steps ${ga} × world size ${worldSize}`);
  } else if (mb !== undefined) {
    ga = ga ?? 1;
    tb = mb * ga * worldSize;
  } else if (tb !== undefined) {
    ga = 1;
    mb = tb / worldSize;
    if (!posInt(mb)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by world size ${worldSize}`);
  } else throw new Error(`${where}: give train_batch_size or train_micro_batch_size_per_gpu`);
  tb = mb! * ga! * worldSize;
  const stage = c.zero_optimization?.stage ?? 0;
  if (![0, 1, 2].includes(stage)) throw new Error(`${where}: zero_optimization.stage ${stage} is not supported (0, 1 or 2; stage 3 comes later)`);
  if (c.bf16?.enabled && c.fp16?.enabled) throw new Error(`${where}: bf16.enabled and fp16.enabled are both set; choose one`);
  let lossScale: LossScalerOptions | null = null;
  if (c.fp16?.enabled) {
    const f = c.fp16;
    for (const k of ['loss_scale', 'initial_scale_power', 'loss_scale_window', 'hysteresis', 'min_loss_scale'] as const)
      if (f[k] !== undefined && !(typeof f[k] === 'number' && f[k]! >= 0)) throw new Error(`${where}: fp16.${k} must be a number ≥ 0, got ${JSON.stringify(f[k])}`);
    lossScale = { static: f.loss_scale ?? 0, initialScalePower: f.initial_scale_power ?? 16, window: f.loss_scale_window ?? 1000, hysteresis: f.hysteresis ?? 2, minScale: f.min_loss_scale ?? 1 };
  }
  const mixedPrecision = c.bf16?.enabled ? 'bfloat16' : c.fp16?.enabled ? 'float16' : null;
  const clip = c.gradient_clipping ?? 0;
  if (!(clip >= 0)) throw new Error(`${where}: gradient_clipping must be ≥ 0, got ${clip}`);
  const ep = c.expert_parallel_size ?? 1;
  if (worldSize % ep !== 0) throw new Error(`${where}: expert_parallel_size ${ep} does not divide the world size ${worldSize}`);
  const given = c.optimizer ?? { type: 'AdamW' };
  if (typeof given.type !== 'string') throw new Error(`${where}: optimizer.type is required (one of ${OPTIMIZERS.join(', ')}; any case)`);
  const type = OPTIMIZERS.find((o) => o.toLowerCase() === given.type.toLowerCase());
  if (!type) throw new Error(`${where}: optimizer.type '${given.type}' is not one of ${OPTIMIZERS.join(', ')} (any case)${T.didYouMean(given.type, OPTIMIZERS)}`);
  if (given.params?.adam_w_mode !== undefined && type !== 'Adam') throw new Error(`${where}: optimizer.params.adam_w_mode applies to type Adam only (got type ${given.type})`);
  const optimizer = { type, params: { ...given.params } };
  if (c.scheduler) {
    if (typeof c.scheduler.type !== 'string') throw new Error(`${where}: scheduler.type is required (one of ${SCHEDULERS.join(', ')})`);
    if (!SCHEDULERS.includes(c.scheduler.type)) throw new Error(`${where}: scheduler.type '${c.scheduler.type}' is not one of ${SCHEDULERS.join(', ')}${T.didYouMean(c.scheduler.type, SCHEDULERS)}`);
  }
  if (c.scheduler && c.scheduler.type !== 'WarmupLR' && !posInt(c.scheduler.params?.total_num_steps)) throw new Error(`${where}: scheduler ${c.scheduler.type} needs params.total_num_steps (a positive integer)`);
  const bucket = c.zero_optimization?.reduce_bucket_size ?? 5e8;
  if (!(bucket >= 1)) throw new Error(`${where}: zero_optimization.reduce_bucket_size must be ≥ 1, got ${bucket}`);
  const overlap = c.zero_optimization?.overlap_comm ?? true;
  if (typeof overlap !== 'boolean') throw new Error(`${where}: zero_optimization.overlap_comm must be true or false, got ${JSON.stringify(overlap)}`);
  return {
    trainBatchSize: tb, microBatch: mb!, gradAccum: ga!, clip, stage: stage as 0 | 1 | 2, bucketElements: Math.floor(bucket), overlapComm: overlap, expertParallel: ep, optimizer,
    scheduler: c.scheduler ?? null, mixedPrecision, lossScale,
  };
}
