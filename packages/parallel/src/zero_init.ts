/**
 * `zeroInit`: builds a model with its parameters in scratch files instead of RAM, as
 * DeepSpeed's `zero.Init(remote_device="nvme")` keeps a model being built off the device, so
 * that no rank ever holds the whole model in memory before ZeRO-3 partitions it.
 *
 * Every Parameter created inside `build` is stored in a file-backed tensor under `nvmePath`
 * (`T.zerosFileBacked`: unlinked at once; the kernel pages it), and initialisers write their
 * values there; the values are those of an ordinary build at the same seed (the same code runs,
 * in the same order). The engine's ZeRO-3 then copies each rank's block of every parameter into
 * its partition one parameter at a time and frees the full tensors, so a rank's RAM holds one
 * parameter at a time while the model is built and partitioned (expert parallelism keeps its
 * share of the experts in RAM until the partitions are cut). Parameters kept whole (under
 * stage3_param_persistence_threshold) stay file-backed. The pretraining and fine-tuning recipes
 * build their model this way at ZeRO-3 with `offload_optimizer: {device: "nvme"}`.
 */
import * as T from '@vlmoe/tensor';
import { checkOffloadDirectory } from './config.js';

export function zeroInit<R>(o: { nvmePath: string }, build: () => R): R {
  checkOffloadDirectory(o.nvmePath, 'zeroInit');
  return T.nn.withParameterPlacement((like) => T.zerosFileBacked(like.shape, o.nvmePath, { dtype: like.dtype }), build);
}
