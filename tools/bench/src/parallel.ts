/**
 * Tensor-parallel benchmark (issue 22): one VL-MoE-small pretraining step (the `model` bench's
 * E 8 top-1 configuration, global batch 32, fp32, AdamW; the tiny preset with VLMOE_BENCH_QUICK=1) on 2 ranks at TP 2 against DP 2 on
 * the same global batch, both in the same run, each a fresh 2-rank job (shm; each rank 1
 * thread, so the two ranks use the machine's 2 cores):
 *
 * - step time (median of the timed steps; on 2 cores TP is not expected to win on time: it
 *   does the same FLOPs plus the all-reduces, and the replicated parts twice), also with the
 *   experts split (the MoE option enableExpertTensorParallelism);
 * - per-rank parameter memory: the split layers (attention, dense FFNs, word embedding, MLM
 *   decoder) must cost 1/TP of their one-process bytes per rank (the figure that must hold);
 *   with the experts split too, the whole model's memory per rank;
 * - tensor-parallel communication per step, counted on the tensor-parallel group (every
 *   all-reduce and all-gather, bytes per rank), against the analytic count: per backbone pass
 *   of T tokens, 2 all-reduces of [T, d] (one forward, one backward) per attention and per
 *   dense FFN the pass goes through, per MoE layer call with R kept assignments 2 all-gathers
 *   of ⌈R / TP⌉ rows of d (the tokens are de-duplicated over the group: each rank runs its block
 *   of the rows through the experts, which are replicated, and the outputs are all-gathered
 *   forward, the input gradients backward), the word embedding's forward all-reduce per text
 *   pass, and the MLM head's backward all-reduce of [N, d] plus its loss's 3 all-reduces of N
 *   floats (N = the MLM pass's text positions), and the engine's one float64 for the split
 *   parameters' share of the global gradient norm;
 * - data-parallel gradient all-reduce bytes per step.
 */
import * as T from '@vlmoe/tensor';
import { MoE, VLMoPretrainer, type VLMoConfig } from '@vlmoe/moe';
import { createParallelGroups, initProcessGroup, initialize, type ProcessGroup } from '@vlmoe/parallel';
import { modelBenchConfig } from './model.js';
import { enginePretrainStep, localPretrainBatch, runRanks } from './ranks.js';
import { makeCase, median, printTable, writeResults, type Case } from './report.js';

export interface ParallelChildArgs {
  tp: number;
  /** Split the experts too (enableExpertTensorParallelism). */
  etp: boolean;
  preset: 'tiny' | 'small';
  globalBatch: number;
  warmup: number;
  steps: number;
}

interface ChildResult {
  rank: number;
  tp: number;
  dp: number;
  ms: number[];
  paramBytes: number;
  splitBytes: number;
  replicatedBytes: number;
  /** Bytes of the one-process model's parameters that tensor parallelism splits (the same layers, unsplit). */
  fullSplitBytes: number;
  tpBytesPerStep: number;
  tpCallsPerStep: number;
  analyticTpBytesPerStep: number;
  dpBytesPerStep: number;
  loss: number;
}

/** A process group whose all-reduces and all-gathers count their bytes (everything else passes through). */
function counting(pg: ProcessGroup, tally: { bytes: number; calls: number }): ProcessGroup {
  const bytesOf = (t: T.Tensor) => t.numel * T.dtypeSize[t.dtype];
  if (pg.size === 1) return pg; // a group of one moves nothing
  return new Proxy(pg, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'allReduce' || prop === 'allGatherIntoTensor' || prop === 'allGather' || prop === 'reduceScatterTensor' || prop === 'reduceScatter') {
        return (...a: unknown[]) => {
          if (prop === 'reduceScatter') for (const t of a[1] as T.Tensor[]) tally.bytes += bytesOf(t);
          else tally.bytes += bytesOf((prop === 'allGatherIntoTensor' || prop === 'reduceScatterTensor' ? a[1] : a[0]) as T.Tensor);
          tally.calls++;
          return (v as (...x: unknown[]) => unknown).apply(target, a);
        };
      }
      return (v as (...x: unknown[]) => unknown).bind(target);
    },
  });
}

/** The analytic tensor-parallel bytes of one step, from the backbone passes it ran (see the file comment). */
function analyticBytes(c: VLMoConfig & { depth: number; dim: number; vlBlocks: number }, moeBlocks: readonly number[], passes: { pass: string; B: number; textLen: number; imageLen: number }[], mlmRows: number, moeRows: readonly number[], tp: number): number {
  const d = c.dim, f = 4;
  let bytes = 0;
  for (const R of moeRows) bytes += 2 * Math.ceil(R / tp) * d * f; // MoE: outputs forward, input gradients backward
  for (const p of passes) {
    const tokens = p.B * (p.textLen + p.imageLen);
    for (let i = 0; i < c.depth; i++) {
      bytes += 2 * tokens * d * f; // attention: forward all-reduce after the projection, backward in copyTo
      const vl = p.pass === 'fused' && i >= c.depth - c.vlBlocks;
      if (vl || !moeBlocks.includes(i)) bytes += 2 * tokens * d * f; // a dense FFN (VL, or the V/L FFNs splitting the tokens)
    }
    if (p.textLen > 0) bytes += p.B * p.textLen * d * f; // vocab-parallel word embedding, forward
  }
  bytes += mlmRows * d * f + 3 * mlmRows * 4; // MLM decoder input gradient; loss max / sum / target logit
  return bytes + 8; // the split parameters' part of the global gradient norm (one float64)
}

/** Runs on every rank of a 2-rank job: timed steps, memory, communication; rank 0 prints one JSON line. */
export async function parallelChild(a: ParallelChildArgs): Promise<void> {
  T.setNumThreads(1);
  const world = initProcessGroup();
  const groups = createParallelGroups(world, { tensor: a.tp });
  const tpTally = { bytes: 0, calls: 0 }, dpTally = { bytes: 0, calls: 0 };
  groups.tensorParallel = counting(groups.tensorParallel, tpTally);
  groups.dataParallel = counting(groups.dataParallel, dpTally);
  const config = modelBenchConfig(a.preset, 8, 1);
  if (a.etp) config.moe = { ...config.moe!, enableExpertTensorParallelism: true };
  const gen = new T.Generator(0);
  const model = new VLMoPretrainer(config, {}, { generator: gen });
  model.train();
  const r = model.backbone.config;
  const moeBlocks = r.moe?.blocks ?? [];
  // what the split layers cost in one process: the parameters tensor parallelism will cut
  const splitNames = /(attn\.(qkv|qBias|vBias|proj\.weight)|ffn\.fc[12]\.weight|ffn\.fc1\.bias|textEmbed\.weight|mlm\.decoder\.)/;
  let fullSplitBytes = 0;
  for (const [name, p] of model.namedParameters()) if (splitNames.test(name) && !p.tags.expert) fullSplitBytes += p.numel * 4;
  const { engine } = initialize({ model, processGroup: world, groups, config: { train_batch_size: a.globalBatch, tensor_parallel_size: a.tp, optimizer: { type: 'AdamW', params: { lr: 1e-4, weight_decay: 0.01 } } } });
  const dp = engine.groups.dataParallel;
  const batch = localPretrainBatch(config, a.globalBatch, dp.rank, dp.size);
  // the backbone passes of a step (for the analytic count)
  const passes: { pass: string; B: number; textLen: number; imageLen: number }[] = [];
  const bb = model.backbone;
  const forward = bb.forward.bind(bb);
  bb.forward = ((x: Parameters<typeof forward>[0]) => {
    const o = forward(x);
    passes.push({ pass: o.pass, B: o.hidden.shape[0]!, textLen: o.textLen, imageLen: o.imageLen });
    return o;
  }) as typeof bb.forward;
  // the kept assignments of every MoE layer call (for the analytic count)
  const moeRows: number[] = [];
  for (const m of model.modules()) {
    if (!(m instanceof MoE)) continue;
    const f = m.forward.bind(m);
    m.forward = (x: T.Tensor) => {
      const o = f(x);
      moeRows.push(Number(T.scope(() => T.sum(o.expertCounts).item())) - o.dropped);
      return o;
    };
  }
  const ms: number[] = [];
  let loss = 0, analytic = 0, tpBytes = 0, tpCalls = 0, dpBytes = 0;
  for (let i = 0; i < a.warmup + a.steps; i++) {
    passes.length = 0;
    moeRows.length = 0;
    tpTally.bytes = tpTally.calls = dpTally.bytes = dpTally.calls = 0;
    world.barrier();
    const t0 = process.hrtime.bigint();
    loss = enginePretrainStep(engine, batch, i);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const mlmPass = passes[2]!; // image, text, then the masked-text fused pass (VLMoPretrainer.losses)
    analytic = a.tp > 1 && !a.etp ? analyticBytes(r as never, moeBlocks, passes, mlmPass.B * mlmPass.textLen, moeRows, a.tp) : 0;
    tpBytes = tpTally.bytes;
    tpCalls = tpTally.calls;
    dpBytes = dpTally.bytes;
  }
  const rep = engine.tensorParallelReport;
  const paramBytes = (rep.splitElements + rep.replicatedElements) * 4;
  const res: ChildResult = {
    rank: world.rank, tp: a.tp, dp: dp.size, ms: ms.slice(a.warmup), paramBytes, splitBytes: rep.splitElements * 4, replicatedBytes: rep.replicatedElements * 4, fullSplitBytes,
    tpBytesPerStep: tpBytes, tpCallsPerStep: tpCalls, analyticTpBytesPerStep: analytic, dpBytesPerStep: dpBytes, loss,
  };
  if (world.rank === 0) console.log(JSON.stringify(res));
  engine.destroy();
  world.destroy();
}

function runJob(a: ParallelChildArgs): ChildResult {
  return runRanks<ChildResult>(2, 'parallel-child', a, `parallel bench (TP ${a.tp})`);
}

export function benchParallel(): void {
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const args = { preset: quick ? ('tiny' as const) : ('small' as const), globalBatch: 32, warmup: 1, steps: quick ? 1 : 3 };
  // alternate the layouts over rounds; each keeps its best median (the machine is shared)
  const rounds = quick ? 1 : 2;
  const layouts = { tp2: { tp: 2, etp: false }, etp2: { tp: 2, etp: true }, dp2: { tp: 1, etp: false } } as const;
  const runs: Record<keyof typeof layouts, ChildResult[]> = { tp2: [], etp2: [], dp2: [] };
  for (let i = 0; i < rounds; i++) for (const k of ['tp2', 'etp2', 'dp2'] as const) runs[k].push(runJob({ ...layouts[k], ...args }));
  const best = (k: keyof typeof layouts) => runs[k].reduce((a, b) => (median(b.ms) < median(a.ms) ? b : a));
  const tp2 = best('tp2'), etp2 = best('etp2'), dp2 = best('dp2');
  const mib = (b: number) => b / 2 ** 20;
  const cases: Case[] = [
    makeCase('step, TP 2 vs DP 2 (2 ranks, global batch 32)', 'ms/step', median(tp2.ms), median(dp2.ms), 'DP 2 (same model, same global batch)', 'lower'),
    makeCase('step, TP 2 with expert tensor parallelism vs DP 2', 'ms/step', median(etp2.ms), median(dp2.ms), 'DP 2 (same model, same global batch)', 'lower'),
    makeCase('parameters per rank, TP 2 vs DP 2', 'MiB', mib(tp2.paramBytes), mib(dp2.paramBytes), 'DP 2 (every rank holds the whole model)', 'lower'),
    makeCase('parameters per rank, TP 2 with expert tensor parallelism vs DP 2', 'MiB', mib(etp2.paramBytes), mib(dp2.paramBytes), 'DP 2 (every rank holds the whole model)', 'lower'),
    makeCase('split layers per rank at TP 2 vs one process (goal 1/2)', 'MiB', mib(tp2.splitBytes), mib(tp2.fullSplitBytes), 'the same layers unsplit', 'lower'),
    makeCase('tensor-parallel all-reduce bytes per step per rank, measured vs analytic', 'MiB', mib(tp2.tpBytesPerStep), mib(tp2.analyticTpBytesPerStep), 'analytic count (file comment)', 'lower'),
    makeCase('data-parallel bytes per step per rank (gradients, ITC/ITM gathers), TP 2 vs DP 2', 'MiB', mib(tp2.dpBytesPerStep), mib(dp2.dpBytesPerStep), 'DP 2', 'lower'),
  ];
  printTable(`Tensor parallelism, VL-MoE ${args.preset} E 8 top-1, fp32, 2 ranks × 1 thread (shm), best of ${rounds} alternating round${rounds > 1 ? 's' : ''}`, cases);
  console.log(`  TP 2: ${tp2.tpCallsPerStep} collectives on the tensor-parallel group per step; split ${mib(tp2.splitBytes).toFixed(1)} MiB + replicated ${mib(tp2.replicatedBytes).toFixed(1)} MiB per rank (experts, layer norms, small heads stay replicated)`);
  console.log(`  TP 2 with expert tensor parallelism: split ${mib(etp2.splitBytes).toFixed(1)} MiB + replicated ${mib(etp2.replicatedBytes).toFixed(1)} MiB per rank; ${mib(etp2.tpBytesPerStep).toFixed(0)} MiB moved on the tensor-parallel group per step (collective inputs; the experts' rows gathered and their partial outputs reduce-scattered added)`);
  console.log(`  losses after the last step: TP 2 ${tp2.loss.toFixed(5)}, DP 2 ${dp2.loss.toFixed(5)} (the same global batch and seeds; they differ by what stays per data-parallel rank: expert capacity and the balance loss)`);
  console.log(`\nwrote ${writeResults('parallel', cases, { preset: args.preset, runs })}`);
}
