/**
 * DeepSpeed's JSON config keys (the ones the engine implements), checked with clear errors.
 * Batch sizes follow DeepSpeed: train_batch_size = micro batch × gradient accumulation ×
 * data-parallel world size; give any two (or all three, consistent).
 *
 * Every key is checked: a key the engine implements must have its type; a key DeepSpeed
 * knows but this engine does not implement is an error naming it (never silently ignored);
 * any other key is an error naming it and the nearest known key ("did you mean …").
 */
import * as fs from 'node:fs';
import * as T from '@vlmoe/tensor';
import type { LossScalerOptions } from './loss_scaler.js';

const int = () => T.z.int();
const num = () => T.z.number();

/**
 * The DeepSpeed JSON config keys this engine implements: one definition of their names, types
 * and meaning, checked by `resolveConfig` and published as JSON Schema
 * (`tools/cli/schemas/deepspeed.schema.json`, written from it). Keys DeepSpeed has and this engine does not
 * implement are refused by name (DEEPSPEED_ONLY).
 */
export const DEEPSPEED_CONFIG_SCHEMA = T.z.strictObject({
  ...T.SCHEMA_KEY,
  train_batch_size: int().optional().describe('global batch = micro batch × gradient accumulation × data-parallel world size; give any two of the three'),
  train_micro_batch_size_per_gpu: int().optional().describe('samples per rank per forward/backward'),
  gradient_accumulation_steps: int().optional().describe('micro batches per optimiser step'),
  gradient_clipping: num().optional().describe('max global gradient norm (0 or absent: no clipping)'),
  optimizer: T.z
    .strictObject({
      type: T.z.string().describe("Adam, AdamW or SGD, in any case (as DeepSpeed matches it); 'Adam' decouples weight decay unless params.adam_w_mode is false"),
      params: T.z
        .strictObject({
          lr: num().optional(),
          betas: T.z.tuple([num(), num()]).optional(),
          eps: num().optional(),
          weight_decay: num().optional(),
          momentum: num().optional(),
          adam_w_mode: T.z.boolean().optional().describe('Adam only: decoupled weight decay (default true, as in DeepSpeed)'),
        })
        .optional(),
    })
    .optional(),
  scheduler: T.z
    .strictObject({
      type: T.z.enum(['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR']).describe('matched exactly, as DeepSpeed does'),
      params: T.z
        .strictObject({ warmup_num_steps: int().optional(), total_num_steps: int().optional(), warmup_min_lr: num().optional(), warmup_max_lr: num().optional(), cos_min_ratio: num().optional() })
        .optional(),
    })
    .optional(),
  zero_optimization: T.z
    .strictObject({
      stage: int().optional().describe('0, 1 (optimiser state partitioned), 2 (and gradients) or 3 (and parameters)'),
      stage3_param_persistence_threshold: num().optional().describe('stage 3: parameters with fewer elements stay whole on every rank (default 1e5, as DeepSpeed)'),
      stage3_prefetch_bucket_size: num().optional().describe('stage 3: elements gathered ahead of the layers that will run next (default 5e7, as DeepSpeed; 0: no prefetch)'),
      stage3_max_live_parameters: num().optional().describe('stage 3: elements of full parameters kept gathered during backward before the least recently used module is freed (re-gathered if its backward needs it again; default 1e9, as DeepSpeed)'),
      reduce_bucket_size: num().optional().describe('elements per gradient bucket (default 5e8)'),
      offload_optimizer: T.z
        .strictObject({
          device: T.z.enum(['none', 'cpu', 'nvme']).describe("'nvme': the fp32 master partition and the optimiser state live in scratch files under nvme_path, paged by the kernel (a model whose optimiser state exceeds RAM still trains); 'cpu': in host memory (where a CPU run keeps them anyway); 'none': no offload"),
          nvme_path: T.z.string().optional().describe("device 'nvme': a directory on a local disk for the scratch files (unlinked as soon as they are mapped: nothing is left behind)"),
        })
        .optional()
        .describe('ZeRO-Offload / ZeRO-Infinity: where the optimiser state lives (stage 1, 2 or 3)'),
      overlap_comm: T.z.boolean().optional().describe('reduce buckets during backward (default true)'),
    })
    .optional(),
  expert_parallel_size: int().optional().describe("ranks that share one set of experts (DeepSpeed's ep_size; default 1); divides the data-parallel size"),
  tensor_parallel_size: int().optional().describe("ranks that split each dense layer — attention heads, FFN hidden units, the vocabulary (Megatron's tensor_model_parallel_size; default 1); the data-parallel size is the world size / this"),
  bf16: T.z.strictObject({ enabled: T.z.boolean().optional() }).optional().describe('float32 matrix products in bfloat16 (autocast), float32 master weights'),
  fp16: T.z
    .strictObject({
      enabled: T.z.boolean().optional(),
      loss_scale: num().optional().describe('0: dynamic'),
      initial_scale_power: num().optional(),
      loss_scale_window: num().optional(),
      hysteresis: num().optional(),
      min_loss_scale: num().optional(),
    })
    .optional()
    .describe('float16 autocast with loss scaling'),
});

/** A DeepSpeed config object (the keys this engine implements). */
export type DeepSpeedConfig = T.Z.input<typeof DEEPSPEED_CONFIG_SCHEMA>;

export interface ResolvedConfig {
  trainBatchSize: number;
  microBatch: number;
  gradAccum: number;
  clip: number;
  stage: 0 | 1 | 2 | 3;
  /** Stage 3: parameters with fewer elements than this are kept whole on every rank. */
  persistenceThreshold: number;
  /** Stage 3: elements gathered ahead (0: no prefetch). */
  prefetchElements: number;
  /** Stage 3: elements of full parameters kept gathered in backward before the least recently used are freed. */
  maxLiveElements: number;
  bucketElements: number;
  /** Where the optimiser state lives (offload_optimizer): null in ordinary memory; 'nvme': file-backed under `path`; 'cpu': host memory. */
  offloadOptimizer: { device: 'cpu' } | { device: 'nvme'; path: string } | null;
  /** Reduce gradient buckets during backward as they fill (all-reduce in stages 0 and 1, reduce-scatter in stage 2). */
  overlapComm: boolean;
  expertParallel: number;
  tensorParallel: number;
  /** Ranks that see different samples: world size / tensor_parallel_size. */
  dataParallel: number;
  /** The optimiser, its type in the canonical case. */
  optimizer: { type: OptimizerType; params: NonNullable<NonNullable<DeepSpeedConfig['optimizer']>['params']> };
  scheduler: NonNullable<DeepSpeedConfig['scheduler']> | null;
  /** bf16 / fp16: the dtype of the float32 products under autocast (null: full precision). */
  mixedPrecision: 'bfloat16' | 'float16' | null;
  /** fp16: the loss scaler's options. */
  lossScale: LossScalerOptions | null;
}

export type OptimizerType = 'Adam' | 'AdamW' | 'SGD';
const OPTIMIZERS: readonly OptimizerType[] = ['Adam', 'AdamW', 'SGD'];
const SCHEDULERS = ['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR'];

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/** Keys DeepSpeed's config accepts that this engine does not implement, by object path ('' = top level). */
const DEEPSPEED_ONLY: Readonly<Record<string, readonly string[]>> = {
  '': ['amp', 'prescale_gradients', 'gradient_predivide_factor', 'sparse_gradients', 'zero_allow_untested_optimizer', 'zero_force_ds_cpu_optimizer', 'steps_per_print', 'wall_clock_breakdown',
    'dump_state', 'flops_profiler', 'activation_checkpointing', 'sparse_attention', 'tensorboard', 'wandb', 'csv_monitor', 'comet', 'elasticity', 'aio', 'autotuning', 'checkpoint',
    'data_efficiency', 'curriculum_learning', 'compression_training', 'communication_data_type', 'seq_parallel_communication_data_type', 'pipeline', 'data_types', 'comms_logger',
    'memory_breakdown', 'fp32_allreduce', 'disable_allgather', 'torch_autocast', 'graph_harvesting', 'monitor_config', 'nebula', 'weight_quantization', 'hybrid_engine', 'eigenvalue', 'progressive_layer_drop'],
  zero_optimization: ['allgather_partitions', 'allgather_bucket_size', 'reduce_scatter', 'contiguous_gradients', 'offload_param',
    'stage3_max_reuse_distance', 'stage3_gather_16bit_weights_on_model_save', 'stage3_gather_fp16_weights_on_model_save',
    'sub_group_size', 'round_robin_gradients', 'zero_hpz_partition_size', 'zero_quantized_weights', 'zero_quantized_gradients', 'mics_shard_size', 'mics_hierarchical_params_gather',
    'memory_efficient_linear', 'pipeline_loading_checkpoint', 'override_module_apply', 'ignore_unused_parameters', 'elastic_checkpoint', 'load_from_fp32_weights', 'cpu_offload',
    'legacy_stage1', 'use_multi_rank_bucket_allreduce', 'log_trace_cache_warnings'],
  'zero_optimization.offload_optimizer': ['pin_memory', 'buffer_count', 'fast_init', 'ratio', 'pipeline', 'pipeline_read', 'pipeline_write', 'super_offload', 'cpuadam_cores_perc'],
  fp16: ['auto_cast', 'consecutive_hysteresis', 'fp16_master_weights_and_grads'],
  bf16: ['immediate_grad_update', 'check_grad_overflow'],
  'optimizer.params': ['amsgrad', 'bias_correction', 'torch_adam', 'fused', 'max_grad_norm', 'freeze_step', 'cuda_aware', 'comm_backend_name', 'dampening', 'nesterov'],
  'scheduler.params': ['warmup_type', 'warmup_min_ratio', 'last_batch_iteration', 'cycle_min_lr', 'cycle_max_lr', 'decay_lr_rate', 'cycle_first_step_size', 'lr_range_test_min_lr', 'lr_range_test_step_size'],
};

/** Throws, naming `where`, unless `dir` is a directory (offload_optimizer.nvme_path). */
export function checkOffloadDirectory(dir: string, where: string): void {
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(dir);
  } catch {
    /* reported below */
  }
  if (!st?.isDirectory()) throw new Error(`${where}: zero_optimization.offload_optimizer.nvme_path '${dir}' is not a directory${st ? '' : ' (it does not exist)'}: give a directory on a local disk for the optimiser's scratch files`);
}

/** A DeepSpeed key this engine does not implement, refused by name. */
function unimplemented(at: readonly string[], key: string, known: readonly string[]): string | null {
  const path = at.join('.');
  if (!(DEEPSPEED_ONLY[path] ?? []).includes(key)) return null;
  const full = path ? `${path}.${key}` : key;
  return `'${full}' is a DeepSpeed key this engine does not implement; remove it (the engine implements: ${known.map((x) => (path ? `${path}.${x}` : x)).join(', ')})`;
}

/**
 * The engine's view of a DeepSpeed config for `worldSize` ranks. `where` names the config in
 * errors (e.g. the recipe file and its `engine` key). Batch sizes count data-parallel ranks:
 * the world size divided by tensor_parallel_size (the ranks of a tensor-parallel group share
 * their samples).
 */
export function resolveConfig(c: DeepSpeedConfig, worldSize: number, where = 'config'): ResolvedConfig {
  c = T.parseConfig(DEEPSPEED_CONFIG_SCHEMA, c, where, { unknownKey: unimplemented, alsoKnown: (at) => DEEPSPEED_ONLY[at.join('.')] ?? [] });
  for (const k of ['train_batch_size', 'train_micro_batch_size_per_gpu', 'gradient_accumulation_steps', 'expert_parallel_size', 'tensor_parallel_size'] as const)
    if (c[k] !== undefined && !posInt(c[k])) throw new Error(`${where}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  const tp = c.tensor_parallel_size ?? 1;
  if (worldSize % tp !== 0) throw new Error(`${where}: tensor_parallel_size ${tp} does not divide the world size ${worldSize}`);
  const dp = worldSize / tp;
  // batch sizes count data-parallel ranks; the messages say which
  const ranks = tp > 1 ? `data-parallel size ${dp} (world size ${worldSize} / tensor_parallel_size ${tp})` : `world size ${worldSize}`;
  let tb = c.train_batch_size, mb = c.train_micro_batch_size_per_gpu, ga = c.gradient_accumulation_steps;
  if (tb !== undefined && mb !== undefined && ga !== undefined) {
    if (tb !== mb * ga * dp)
      throw new Error(`${where}: train_batch_size ${tb} != train_micro_batch_size_per_gpu ${mb} × gradient_accumulation_steps ${ga} × ${ranks}`);
  } else if (tb !== undefined && mb !== undefined) {
    ga = tb / (mb * dp);
    if (!posInt(ga)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by micro batch ${mb} × ${ranks}`);
  } else if (tb !== undefined && ga !== undefined) {
    mb = tb / (ga * dp);
    if (!posInt(mb)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by gradient_accumulation_steps ${ga} × ${ranks}`);
  } else if (mb !== undefined) {
    ga = ga ?? 1;
    tb = mb * ga * dp;
  } else if (tb !== undefined) {
    ga = 1;
    mb = tb / dp;
    if (!posInt(mb)) throw new Error(`${where}: train_batch_size ${tb} is not divisible by ${ranks}`);
  } else throw new Error(`${where}: give train_batch_size or train_micro_batch_size_per_gpu`);
  tb = mb! * ga! * dp;
  const stage = c.zero_optimization?.stage ?? 0;
  if (![0, 1, 2, 3].includes(stage)) throw new Error(`${where}: zero_optimization.stage must be 0, 1, 2 or 3, got ${stage}`);
  const persistence = c.zero_optimization?.stage3_param_persistence_threshold ?? 1e5;
  if (!(persistence >= 0)) throw new Error(`${where}: zero_optimization.stage3_param_persistence_threshold must be ≥ 0, got ${persistence}`);
  const prefetch = c.zero_optimization?.stage3_prefetch_bucket_size ?? 5e7;
  if (!(prefetch >= 0)) throw new Error(`${where}: zero_optimization.stage3_prefetch_bucket_size must be ≥ 0, got ${prefetch}`);
  const maxLive = c.zero_optimization?.stage3_max_live_parameters ?? 1e9;
  if (!(maxLive >= 0)) throw new Error(`${where}: zero_optimization.stage3_max_live_parameters must be ≥ 0, got ${maxLive}`);
  const off = c.zero_optimization?.offload_optimizer;
  let offloadOptimizer: ResolvedConfig['offloadOptimizer'] = null;
  if (off && off.device !== 'none') {
    if (stage < 1) throw new Error(`${where}: zero_optimization.offload_optimizer needs zero_optimization.stage 1, 2 or 3 (the offloaded state is the partitioned optimiser state), got stage ${stage}`);
    if (off.device === 'nvme') {
      if (!off.nvme_path) throw new Error(`${where}: zero_optimization.offload_optimizer.device 'nvme' needs nvme_path (a directory on a local disk)`);
      checkOffloadDirectory(off.nvme_path, where);
      offloadOptimizer = { device: 'nvme', path: off.nvme_path };
    } else offloadOptimizer = { device: 'cpu' };
  }
  if (off?.nvme_path !== undefined && off.device !== 'nvme') throw new Error(`${where}: zero_optimization.offload_optimizer.nvme_path applies to device 'nvme' only (got device '${off.device}')`);
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
  if (dp % ep !== 0) throw new Error(`${where}: expert_parallel_size ${ep} does not divide the ${ranks}`);
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
    trainBatchSize: tb, microBatch: mb!, gradAccum: ga!, clip, stage: stage as 0 | 1 | 2 | 3, persistenceThreshold: persistence, prefetchElements: prefetch, maxLiveElements: maxLive, bucketElements: Math.floor(bucket), offloadOptimizer, overlapComm: overlap, expertParallel: ep, tensorParallel: tp, dataParallel: dp, optimizer,
    scheduler: c.scheduler ?? null, mixedPrecision, lossScale,
  };
}
