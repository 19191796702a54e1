/**
 * Model benchmark (issue 21): one VL-MoE pretraining step — ITC + ITM (3 fused passes with
 * hard negatives) + MLM, forward + backward + AdamW — of the `small` preset (d 192, 6 blocks,
 * image 64 px, vocabulary 8000, text 24) with 8 and 32 experts, top-1 and top-2, and the
 * dense twin (same active parameters per token), global batch 32, fp32, against a PyTorch
 * twin of the same model written the way a DeepSpeed user runs it (peers/torch_vlmoe.py:
 * unilm's VLMo modules, DeepSpeed's gating; its losses equal ours in float64 on the same
 * weights — test/model_twin.test.ts).
 *
 * Both sides: routing with DeepSpeed's position policy at capacity factor 1.25 (tokens past
 * capacity dropped), no stochastic depth (dropPath 0), the same random batch shapes. Each run
 * is its own process (its own peak RSS). Fair settings: the twin's thread setting and dispatch
 * (einsum or index) are chosen on the first model over every setting of torch.ts, then used
 * for the others; ours runs at its pool default and at 1 thread and keeps its best.
 *
 * Rows: ms/step ours vs twin (goal: ≥ 1.5x), tokens/s, peak RSS (goal: ≤ the twin's), the MoE
 * overhead inside our model (VL-MoE step / dense-twin step; goal ≤ 1.15 at top-1), and
 * achieved GFLOP/s (matrix-multiply FLOPs per step, counted by the kernels) as a fraction of
 * the GEMM peak measured in the same run; and where our step's time goes by op family
 * (attention, dense FFN and the vision/text split, experts, routing, permute, all-to-all, heads, embeddings, optimizer,
 * autograd engine, other), from one step under T.profile (forward and backward of a family
 * together). Data loading is not part of this step: `npm run bench -- data` measures it.
 */
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer, preset, type VLMoConfig } from '@vlmoe/moe';
import { gemmPeak, makeCase, ourThreadSettings, printTable, runChild, timeSteps, writeResults, type Case } from './report.js';
import { PEER_SETTINGS, peerName, runTorchBest, type PeerBest, type PeerSetting } from './torch.js';

export interface ModelBenchArgs {
  config: VLMoConfig;
  batch: number;
  warmup: number;
  steps: number;
  threads?: number | null;
  dispatch?: 'einsum' | 'index';
  lr?: number;
}

export interface StepResult {
  ms: number[];
  median_ms: number;
  peak_rss_mb: number;
  loss: number;
  /** Matrix-multiply FLOPs of one step (forward + backward), as the kernels count them. */
  flops?: number;
  /** One profiled step: milliseconds per op family (self times; they add up to profile_total_ms). */
  profile?: { family: string; ms: number }[];
  profile_total_ms?: number;
}

/** The models of the bench: [label, experts, k] (0 experts: the dense twin). */
export const MODEL_CASES: readonly [string, number, number][] = [
  ['VL-MoE E=8 top-1', 8, 1],
  ['VL-MoE E=32 top-1', 32, 1],
  ['VL-MoE E=8 top-2', 8, 2],
  ['VL-MoE E=32 top-2', 32, 2],
  ['dense twin', 0, 1],
];

/** The bench's model config: the preset, DeepSpeed's position drop policy at capacity factor 1.25, no stochastic depth. */
export function modelBenchConfig(name: 'tiny' | 'small', experts: number, k: number): VLMoConfig {
  const c = preset(name, { dropPath: 0 });
  if (experts > 0) c.moe = { numExperts: experts, k, capacityFactor: 1.25, evalCapacityFactor: 1.25, minCapacity: 4, dropPolicy: 'position' };
  return c;
}

/** A random pretraining batch: ids in [5, V), all real tokens, 15 % MLM-masked to id 3. */
export function randomPretrainBatch(config: VLMoConfig, B: number, gen: T.Generator) {
  const L = config.maxTextLen, V = config.vocabSize, S = config.imageSize;
  const ids = T.randint(5, V, [B, L], { generator: gen, dtype: 'int64' });
  const pick = T.lt(T.uniform([B, L], 0, 1, { generator: gen }), 0.15);
  return {
    image: T.randn([B, 3, S, S], { generator: gen }),
    ids,
    mask: T.ones([B, L], { dtype: 'int64' }),
    mlmIds: T.where(pick, T.full([B, L], 3, { dtype: 'int64' }), ids),
    mlmLabels: T.where(pick, ids, T.full([B, L], -100, { dtype: 'int64' })),
  };
}

/** Runs in the child process: timed steps of our VLMoPretrainer; prints one JSON line. */
export function modelChild(a: ModelBenchArgs): void {
  if (a.threads) T.setNumThreads(a.threads);
  const gen = new T.Generator(0);
  const model = new VLMoPretrainer(a.config, {}, { generator: gen });
  model.train();
  const opt = new T.optim.AdamW(model.parameters(), { lr: a.lr ?? 1e-4, weightDecay: 0.01 });
  const batch = T.scope(() => {
    const b = randomPretrainBatch(a.config, a.batch, gen);
    for (const t of Object.values(b)) t.keep();
    return b;
  });
  const { ms, medianMs: median, last: { loss, flops } } = timeSteps((i) => {
    const f0 = T.flopCount();
    const loss = T.scope(() => {
      opt.zeroGrad();
      const out = model.forward({ ...batch, generator: new T.Generator(1000 + i) });
      out.loss.backward();
      opt.step();
      return out.loss.item();
    });
    return { loss, flops: T.flopCount() - f0 };
  }, a.warmup, a.steps);
  const peakRss = process.resourceUsage().maxRSS / 1024;
  // one more step under the profiler (after the timed ones: its bookkeeping does not touch their times)
  const prof = T.profile(() => T.scope(() => {
    opt.zeroGrad();
    const out = model.forward({ ...batch, generator: new T.Generator(999) });
    T.recordFunction('backward', () => out.loss.backward());
    opt.step();
  }));
  const profile = T.profileByFamily(prof.rows, opFamily).map((r) => ({ family: r.name, ms: r.selfMs }));
  console.log(JSON.stringify({ ms, median_ms: median, peak_rss_mb: peakRss, loss, flops, profile, profile_total_ms: prof.totalMs } satisfies StepResult));
}

/** The op family a profiler range counts in (forward and backward together). */
export function opFamily(range: string): string {
  const base = range.replace(/ \(backward\)$/, '');
  const families: Record<string, string> = {
    attention: 'attention', ffn: 'FFN dense + modality split', 'moe.experts': 'FFN experts', 'moe.routing': 'routing', 'moe.permute': 'permute',
    'moe.all-to-all': 'all-to-all', heads: 'heads + losses', embeddings: 'embeddings', optimizer: 'optimizer', backward: 'autograd engine',
    '(unmarked)': 'other',
  };
  return families[base] ?? base;
}

function runOurs(args: ModelBenchArgs): StepResult {
  return runChild<StepResult>('model-child', args, { what: `model child (${args.config.moe?.numExperts ?? 0} experts, ${args.threads ?? 'default'} threads)` });
}

export function benchModel(): void {
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const presetName = quick ? 'tiny' : 'small';
  const batch = 32, warmup = quick ? 1 : 2, steps = quick ? 2 : 5;
  const info = T.nativeInfo();
  const peak = gemmPeak(quick);

  const results: { label: string; experts: number; k: number; ours: StepResult & { threads: number }; ourRuns: (StepResult & { threads: number })[]; twin: PeerBest | null; tokens: number }[] = [];
  let chosen: { setting: PeerSetting; dispatch: 'einsum' | 'index' } | null = null;
  for (const [label, experts, k] of MODEL_CASES) {
    const config = modelBenchConfig(presetName, experts, k);
    const ourRuns = ourThreadSettings().map((threads) => ({ threads, ...runOurs({ config, batch, warmup, steps, threads }) }));
    const ours = ourRuns.reduce((a, b) => (b.median_ms < a.median_ms ? b : a));
    // the twin: every setting × dispatch on the first model, then the winner for the rest
    let twin: PeerBest | null = null;
    const dispatches: ('einsum' | 'index')[] = experts > 0 ? (chosen ? [chosen.dispatch] : ['einsum', 'index']) : ['einsum'];
    for (const dispatch of dispatches) {
      const settings = chosen ? [chosen.setting] : PEER_SETTINGS;
      const t = runTorchBest('torch_vlmoe.py', { config, batch, warmup, steps, dispatch }, { settings, timed: (key) => key === 'median_ms' });
      if (t && (!twin || t.values.median_ms! < twin.values.median_ms!)) twin = t;
    }
    if (twin && !chosen && experts > 0) {
      const run = twin.runs[twin.from.median_ms!]!;
      chosen = { setting: run.setting, dispatch: run.out.dispatch as 'einsum' | 'index' };
    }
    const L = config.maxTextLen, P = (config.imageSize / config.patchSize) ** 2 + 1;
    // tokens through the backbone per step: image-only, text-only, 4 fused passes
    const tokens = batch * (P + L + 4 * (P + L));
    results.push({ label, experts, k, ours, ourRuns, twin, tokens });
  }

  const cases: Case[] = [];
  for (const r of results) {
    const tw = r.twin ? (r.twin.runs[r.twin.from.median_ms!]!.out as unknown as StepResult & { dispatch: string }) : null;
    const peer = r.twin ? `${peerName(r.twin, 'median_ms', 'twin')}${r.experts > 0 ? ` ${tw!.dispatch} dispatch` : ''}` : 'PyTorch (not installed)';
    const tag = `${r.label} [ours: ${r.ours.threads} thread${r.ours.threads > 1 ? 's' : ''}]`;
    cases.push(makeCase(`step, ${tag}`, 'ms/step', r.ours.median_ms, tw?.median_ms ?? null, peer, 'lower'));
    cases.push(makeCase(`tokens/s, ${r.label}`, 'tokens/s', (r.tokens / r.ours.median_ms) * 1e3, tw ? (r.tokens / tw.median_ms) * 1e3 : null, peer, 'higher'));
    cases.push(makeCase(`peak RSS, ${r.label}`, 'MB', r.ours.peak_rss_mb, tw?.peak_rss_mb ?? null, peer, 'lower'));
  }
  const dense = results.find((r) => r.experts === 0)!;
  for (const r of results.filter((x) => x.experts > 0)) cases.push(makeCase(`MoE overhead: ${r.label} step vs our dense twin's`, 'ms/step', r.ours.median_ms, dense.ours.median_ms, 'vlmoe dense twin (same active parameters at top-1)', 'lower'));
  printTable(`VL-MoE pretraining step, preset ${presetName}, batch ${batch}, fp32, median of ${steps} steps after ${warmup} warm-up, each side at its best setting (GEMM: ${info.blas})`, cases);

  console.log(`\nGEMM peak of this run (our matmul, best shape): ${peak.toFixed(0)} GFLOP/s`);
  for (const r of results) {
    const gflops = (r.ours.flops ?? 0) / (r.ours.median_ms / 1e3) / 1e9;
    console.log(`  ${r.label}: ${((r.ours.flops ?? 0) / 1e9).toFixed(1)} GFLOP per step (matmul kernels), ${gflops.toFixed(0)} GFLOP/s = ${((100 * gflops) / peak).toFixed(0)} % of the peak; ours per thread setting: ${r.ourRuns.map((o) => `${o.threads}: ${o.median_ms.toFixed(0)} ms`).join(', ')}`);
  }
  console.log('\nwhere our step goes (one profiled step at the best thread setting; forward + backward per op family, ms and % of the step):');
  for (const r of results) {
    const p = r.ours.profile ?? [];
    console.log(`  ${r.label} (${(r.ours.profile_total_ms ?? 0).toFixed(0)} ms): ${p.map((x) => `${x.family} ${x.ms.toFixed(0)} (${((100 * x.ms) / (r.ours.profile_total_ms ?? 1)).toFixed(0)} %)`).join(', ')}`);
  }
  if (chosen) console.log(`twin setting (chosen on ${MODEL_CASES[0]![0]} over ${PEER_SETTINGS.length} settings × einsum/index): ${results[0]!.twin!.setting.median_ms}, ${chosen.dispatch} dispatch`);
  console.log('\ngoals: step ≥ 1.5x the twin; peak RSS ≤ the twin; MoE overhead ≤ 1.15 at top-1 (ratio ≥ 0.87 above)');
  const file = writeResults('model', cases, {
    preset: presetName, batch, warmup, steps, gemmPeakGflops: peak,
    models: results.map((r) => ({ label: r.label, experts: r.experts, k: r.k, tokens: r.tokens, ours: r.ourRuns, twin: r.twin?.runs.map((x) => ({ setting: x.label, ...x.out, ms: undefined })) ?? null })),
  });
  console.log(`\nwrote ${file}`);
}
