/**
 * ZeRO benchmark (issue 23): per-rank memory of one VL-MoE-small pretraining step with 16
 * experts (top-1, fp32, AdamW, global batch 16; the tiny preset with VLMOE_BENCH_QUICK=1) at
 * ZeRO stages 0, 1, 2 and 3 on 2 and 4 ranks (shm, 1 thread a rank, experts replicated over the
 * ranks so that ZeRO alone partitions them), each a fresh job, in the same run:
 *
 * - model states per rank between steps: the live bytes of the parameters this rank holds in
 *   full, its optimiser state and its partitions (what ZeRO divides: stage 3 must approach 1/N
 *   of ZeRO-0's), and the ratio against ZeRO-0 at the same world size;
 * - peak live bytes per rank during a step (T.resetPeakMemory before it: activations, gathered
 *   parameters and gradients included);
 * - step time (median of the timed steps), and ZeRO-3's with prefetch (DeepSpeed's default
 *   stage3_prefetch_bucket_size, 5e7 elements) against without. ZeRO-3 gathers every
 *   partitioned parameter again for each use, so its time is the cost of that traffic.
 *
 * - ZeRO-2 and ZeRO-3 with the optimiser offloaded to scratch files (offload_optimizer nvme, in
 *   the OS temporary directory): step time against the same stage without offload (the cost of
 *   paging the master weights and Adam moments through the page cache) and the model states
 *   left in ordinary memory.
 *
 * Every rank builds the whole model before the engine partitions it (no zero.Init yet), so the
 * process's peak since start is not the figure: the step's is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer } from '@vlmoe/moe';
import { initProcessGroup, initialize } from '@vlmoe/parallel';
import { modelBenchConfig } from './model.js';
import { enginePretrainStep, localPretrainBatch, runRanks } from './ranks.js';
import { makeCase, median, printTable, writeResults, type Case } from './report.js';

export interface ZeroChildArgs {
  stage: 0 | 1 | 2 | 3;
  /** Stage 3: stage3_prefetch_bucket_size (elements gathered ahead; 0: none). */
  prefetch: number;
  /** offload_optimizer nvme into this directory (null: none). */
  offloadDir: string | null;
  preset: 'tiny' | 'small';
  experts: number;
  globalBatch: number;
  warmup: number;
  steps: number;
}

interface ZeroResult {
  stage: number;
  prefetch: number;
  offload: boolean;
  world: number;
  /** Bytes of file-backed storages (the offloaded partitions and optimiser state). */
  fileBytes: number;
  ms: number[];
  /** Between steps: parameters held in full + optimiser state + partitions, bytes. */
  modelStateBytes: number;
  /** The largest step's peak live bytes (after T.resetPeakMemory before it). */
  stepPeakBytes: number;
  /** All live bytes between steps. */
  liveBytes: number;
  loss: number;
}

/** Runs on every rank: timed steps and memory; rank 0 prints one JSON line. */
export function zeroChild(a: ZeroChildArgs): void {
  T.setNumThreads(1);
  const world = initProcessGroup();
  const config = modelBenchConfig(a.preset, a.experts, 1);
  const model = new VLMoPretrainer(config, {}, { generator: new T.Generator(0) });
  model.train();
  const { engine } = initialize({
    model, processGroup: world,
    config: { train_batch_size: a.globalBatch, optimizer: { type: 'AdamW', params: { lr: 1e-4, weight_decay: 0.01 } }, zero_optimization: { stage: a.stage, stage3_param_persistence_threshold: 0, stage3_prefetch_bucket_size: a.prefetch, ...(a.offloadDir ? { offload_optimizer: { device: 'nvme' as const, nvme_path: a.offloadDir } } : {}) } },
  });
  const batch = localPretrainBatch(config, a.globalBatch, world.rank, world.size);
  const ms: number[] = [];
  let loss = 0, stepPeak = 0;
  for (let i = 0; i < a.warmup + a.steps; i++) {
    world.barrier();
    T.resetPeakMemory();
    const t0 = process.hrtime.bigint();
    loss = enginePretrainStep(engine, batch, i);
    if (i >= a.warmup) {
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      stepPeak = Math.max(stepPeak, T.memory().cpu.peak);
    }
  }
  // model states between steps in ordinary memory: full parameters held, optimiser state, partitions (not the offloaded ones)
  let held = 0;
  for (const p of model.parameters()) if (!p.storage.dataReleased) held += p.numel * T.dtypeSize[p.dtype];
  const fileBytes = T.memory().cpu.file;
  const states = held + engine.optimizerStateBytes() + engine.zero.partitionBytes() - fileBytes;
  const res: ZeroResult = { stage: a.stage, prefetch: a.prefetch, offload: a.offloadDir !== null, world: world.size, ms: ms, modelStateBytes: states, fileBytes, stepPeakBytes: stepPeak, liveBytes: T.memory().cpu.live, loss };
  if (world.rank === 0) console.log(JSON.stringify(res));
  engine.destroy();
  world.destroy();
}

function runJob(nproc: number, a: ZeroChildArgs): ZeroResult {
  return runRanks<ZeroResult>(nproc, 'zero-child', a, `zero bench (ZeRO-${a.stage}, ${nproc} ranks)`);
}

export function benchZero(): void {
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const base = { preset: quick ? ('tiny' as const) : ('small' as const), experts: 16, globalBatch: 16, warmup: 1, steps: quick ? 1 : 2 };
  const mib = (b: number) => b / 2 ** 20;
  const cases: Case[] = [];
  const runs: ZeroResult[] = [];
  const prefetch = 5e7; // DeepSpeed's default stage3_prefetch_bucket_size
  for (const world of [2, 4]) {
    const byStage = ([0, 1, 2, 3] as const).map((stage) => runJob(world, { ...base, stage, prefetch, offloadDir: null }));
    const noPrefetch = runJob(world, { ...base, stage: 3, prefetch: 0, offloadDir: null });
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-bench-offload-'));
    const offloaded = ([2, 3] as const).map((stage) => runJob(world, { ...base, stage, prefetch, offloadDir: scratch }));
    fs.rmSync(scratch, { recursive: true, force: true });
    runs.push(...byStage, noPrefetch, ...offloaded);
    const z0 = byStage[0]!;
    for (const r of byStage.slice(1)) {
      cases.push(makeCase(`model states per rank, ZeRO-${r.stage} vs ZeRO-0, ${world} ranks${r.stage === 3 ? ` (1/${world} = ${(1 / world).toFixed(2)})` : ''}`, 'MiB', mib(r.modelStateBytes), mib(z0.modelStateBytes), 'ZeRO-0', 'lower'));
      cases.push(makeCase(`peak live bytes in a step per rank, ZeRO-${r.stage} vs ZeRO-0, ${world} ranks`, 'MiB', mib(r.stepPeakBytes), mib(z0.stepPeakBytes), 'ZeRO-0', 'lower'));
      cases.push(makeCase(`step, ZeRO-${r.stage} vs ZeRO-0, ${world} ranks`, 'ms/step', median(r.ms), median(z0.ms), 'ZeRO-0', 'lower'));
    }
    cases.push(makeCase(`step, ZeRO-3 with prefetch vs without, ${world} ranks`, 'ms/step', median(byStage[3]!.ms), median(noPrefetch.ms), 'ZeRO-3 without prefetch', 'lower'));
    cases.push(makeCase(`peak live bytes in a step per rank, ZeRO-3 without prefetch vs ZeRO-0, ${world} ranks`, 'MiB', mib(noPrefetch.stepPeakBytes), mib(z0.stepPeakBytes), 'ZeRO-0', 'lower'));
    for (const r of offloaded) {
      const same = byStage[r.stage]!;
      cases.push(makeCase(`step, ZeRO-${r.stage} with offload_optimizer nvme vs without, ${world} ranks`, 'ms/step', median(r.ms), median(same.ms), `ZeRO-${r.stage}`, 'lower'));
      cases.push(makeCase(`model states in RAM per rank, ZeRO-${r.stage} with offload_optimizer nvme vs without (${mib(r.fileBytes).toFixed(1)} MiB in files), ${world} ranks`, 'MiB', mib(r.modelStateBytes), mib(same.modelStateBytes), `ZeRO-${r.stage}`, 'lower'));
    }
  }
  printTable(`ZeRO, VL-MoE ${base.preset} E ${base.experts} top-1, fp32 AdamW, global batch ${base.globalBatch}, 1 thread a rank (shm), experts replicated`, cases);
  for (const r of runs) console.log(`  ${r.world} ranks ZeRO-${r.stage}${r.stage === 3 ? (r.prefetch ? ' (prefetch)' : ' (no prefetch)') : ''}${r.offload ? ' + offload nvme' : ''}: model states ${mib(r.modelStateBytes).toFixed(1)} MiB, step peak ${mib(r.stepPeakBytes).toFixed(1)} MiB, ${median(r.ms).toFixed(0)} ms/step, loss ${r.loss.toFixed(5)}`);
  console.log(`\nwrote ${writeResults('zero', cases, { preset: base.preset, runs })}`);
}
