/**
 * VL-MoE / VLMo through DeepSpeed's checkpoint layout: a DeepSpeed checkpoint of the
 * unilm-named model (main file `module` + one file per expert, deepspeed_moe.ts) ↔ our state
 * dict (the names: unilm_vlmo.ts). MoE layers are numbered as DeepSpeed numbers them, by
 * `named_modules()` order of the unilm-named model: block by block, `mlp_text` before
 * `mlp_imag` (the order unilm's Block registers them) — see `vlmoMoELayers`.
 */
import * as T from '@vlmoe/tensor';
import type { VLMoConfig } from '../models/config.js';
import { mergeDeepSpeedExperts, splitDeepSpeedExperts, type DeepSpeedCheckpoint } from './deepspeed_moe.js';
import { exportVlmoCheckpoint, importVlmoCheckpoint, vlmoMoELayers, type VlmoExportOptions, type VlmoImportOptions } from './unilm_vlmo.js';

/**
 * Our VLMo / VL-MoE state dict from a DeepSpeed checkpoint of the unilm-named model
 * (`module` + expert files): merged, then `importVlmoCheckpoint`.
 */
export function importDeepSpeedMoECheckpoint(ckpt: DeepSpeedCheckpoint, config: VLMoConfig, opts: VlmoImportOptions = {}): Record<string, T.Tensor> {
  return importVlmoCheckpoint(mergeDeepSpeedExperts(ckpt, vlmoMoELayers(config)), config, opts);
}

/**
 * A DeepSpeed checkpoint (module + expert files, unilm VLMo names) of our state dict, with
 * the main file's bookkeeping entries DeepSpeed's `load_checkpoint` reads (`num_experts` per
 * MoE layer, world sizes 1, step counters 0, no optimizer or scheduler state).
 */
export function exportDeepSpeedMoECheckpoint(sd: Record<string, T.Tensor>, config: VLMoConfig, opts: VlmoExportOptions = {}): DeepSpeedCheckpoint {
  const layers = vlmoMoELayers(config);
  const split = splitDeepSpeedExperts(exportVlmoCheckpoint(sd, config, opts), layers);
  const E = config.moe ? config.moe.numExperts * (config.moe.expertSizeRatio ?? 1) : 0; // fine-grained: numExperts·m
  return {
    ...split,
    extra: {
      buffer_names: [], optimizer: null, param_shapes: null, frozen_param_shapes: null, shared_params: null, frozen_param_fragments: null,
      lr_scheduler: null, data_sampler: null, random_ltd: null, sparse_tensor_module_names: new Set(), skipped_steps: 0, global_steps: 0,
      global_samples: 0, dp_world_size: 1, mp_world_size: 1, num_experts: layers.map(() => E), ds_config: {}, ds_version: 'vlmoe-export',
    },
  };
}

