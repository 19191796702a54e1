/**
 * `zeroInit`: builds a model without making its parameters, as DeepSpeed's `zero.Init`
 * partitions a model while it is built, so that no rank ever holds the whole model.
 *
 * The build runs under `T.nn.deferredInit`: every parameter records how its values are made (a
 * constant, or a range of the seeded Philox stream) and holds no memory. ZeRO-3 then writes
 * each rank's block of every parameter straight into its partition from that record
 * (`T.nn.materializeRange`): a rank makes 1/N of each parameter and never the rest, the values
 * are those of an ordinary build at the same seed (the same counters of the same streams), and
 * expert parallelism keeping its share of the experts cuts the record, not the weights. The
 * initial broadcast from rank 0 is replaced by a check that every rank holds the same records
 * (`broadcastInitial`). Parameters that are made whole after all (those under
 * stage3_param_persistence_threshold, or code that reads a parameter during the build) are made
 * on first use — in scratch files under `nvmePath` when given (unlinked at once; the kernel
 * pages them), in RAM otherwise. The pretraining and fine-tuning recipes build their model this
 * way at ZeRO-3.
 */
import * as T from '@vlmoe/tensor';
import { checkOffloadDirectory } from './config.js';
import type { ProcessGroup } from './process_group.js';

export function zeroInit<R>(o: { nvmePath?: string }, build: () => R): R {
  if (o.nvmePath !== undefined) checkOffloadDirectory(o.nvmePath, 'zeroInit');
  return T.nn.deferredInit(build, { fileDir: o.nvmePath });
}

/**
 * Makes every rank of `group` start from rank 0's values of `params` (collective: every rank
 * passes the same list). Deferred parameters whose records are equal on every rank are left
 * unmade — their values are equal by construction —; the others are broadcast from rank 0.
 * Returns how many were broadcast.
 */
export function broadcastInitial(group: ProcessGroup, params: T.Tensor[]): number {
  if (group.size === 1 || params.length === 0) return 0;
  const fps = params.map((p) => T.nn.deferredFingerprint(p));
  const width = Math.max(1, ...fps.map((f) => f?.length ?? 0));
  // rank 0's records to every rank; a parameter that is not deferred has none (NaN never equals)
  const rows = fps.flatMap((f) => Array.from({ length: width }, (_, j) => (f && j < f.length ? f[j]! : NaN)));
  let differs: boolean[] = [];
  T.scope(() => T.noGrad(() => {
    const ref = T.tensor(rows, { dtype: 'float64', shape: [params.length, width] });
    group.broadcast(ref, 0);
    const r0 = ref.dataSync() as Float64Array;
    const flags = T.tensor(params.map((_, i) => (rows.slice(i * width, (i + 1) * width).every((v, j) => v === r0[i * width + j]) ? 0 : 1)), { dtype: 'float64' });
    // one rank's difference is everyone's: they broadcast together
    group.allReduce(flags, 'max');
    differs = Array.from(flags.dataSync() as Float64Array, (v) => v > 0);
  }));
  let n = 0;
  T.noGrad(() => params.forEach((p, i) => {
    if (differs[i]) {
      group.broadcast(p, 0);
      n++;
    }
  }));
  return n;
}
