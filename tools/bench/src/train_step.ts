/**
 * Training-step benchmark: a pre-LN transformer encoder (4 blocks, d 256, 4 heads, FFN
 * 1024, sequence 128, batch 16, fp32), forward + backward + AdamW step; median ms/step
 * over ≥ 20 steps after warm-up and peak RSS, against the same model in PyTorch
 * (peers/torch_train_step.py), each side at its best thread setting (ours: 1 or all cores;
 * PyTorch: torch.ts's settings). Each run is its own process, so peak RSS is its own.
 */
import * as T from '@vlmoe/tensor';
import { gemmPeak, makeCase, ourThreadSettings, printTable, runChild, timeSteps, writeResults, type Case } from './report.js';
import { peerName, runTorchBest, settingLines } from './torch.js';

const { nn } = T;

export interface TrainStepConfig {
  blocks: number;
  d: number;
  heads: number;
  ffn: number;
  seq: number;
  batch: number;
  warmup: number;
  steps: number;
  threads: number;
}

class Block extends nn.Module {
  ln1: T.nn.LayerNorm;
  attn: T.nn.MultiheadSelfAttention;
  ln2: T.nn.LayerNorm;
  mlp: T.nn.FeedForward;
  constructor(d: number, heads: number, ffn: number, gen: T.Generator) {
    super();
    this.ln1 = new nn.LayerNorm(d);
    this.attn = new nn.MultiheadSelfAttention(d, heads, { qkvBias: 'all', generator: gen });
    this.ln2 = new nn.LayerNorm(d);
    this.mlp = new nn.FeedForward(d, ffn, { generator: gen });
  }
  forward(x: T.Tensor): T.Tensor {
    const h = x.add(this.attn.forward(this.ln1.forward(x)));
    return h.add(this.mlp.forward(this.ln2.forward(h)));
  }
}

/** Runs in the child process: prints one JSON line. */
export function trainStepChild(cfg: TrainStepConfig): void {
  T.setNumThreads(cfg.threads);
  const gen = new T.Generator(0);
  const model = new nn.Sequential(...Array.from({ length: cfg.blocks }, () => new Block(cfg.d, cfg.heads, cfg.ffn, gen)));
  const opt = new T.optim.AdamW(model.parameters(), { lr: 1e-4, weightDecay: 0.01 });
  const x = T.randn([cfg.batch, cfg.seq, cfg.d], { generator: gen }).keep();
  const target = T.randn([cfg.batch, cfg.seq, cfg.d], { generator: gen }).keep();
  const { ms, medianMs: median, last: { loss, flops } } = timeSteps(() => {
    const f0 = T.flopCount();
    const loss = T.scope(() => {
      opt.zeroGrad();
      const l = nn.mseLoss(model.forward(x), target);
      l.backward();
      opt.step();
      return l.item();
    });
    return { loss, flops: T.flopCount() - f0 };
  }, cfg.warmup, cfg.steps);
  console.log(JSON.stringify({ ms, median_ms: median, peak_rss_mb: process.resourceUsage().maxRSS / 1024, loss, flops, live_bytes: T.memory().cpu.live }));
}

export function benchTrainStep(): void {
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const info = T.nativeInfo();
  const base = { blocks: 4, d: 256, heads: 4, ffn: 1024, seq: 128, batch: 16, warmup: quick ? 1 : 3, steps: quick ? 3 : 20 };
  // ours at each of its thread settings, each in its own child (its own peak RSS); the best counts
  type Run = { threads: number; median_ms: number; peak_rss_mb: number; loss: number; flops: number };
  const ourRuns: Run[] = ourThreadSettings().map((threads) => {
    const cfg: TrainStepConfig = { ...base, threads };
    return { threads, ...runChild<Omit<Run, 'threads'>>('train-step-child', cfg, { what: `train-step child (${threads} threads)` }) };
  });
  const ours = ourRuns.reduce((a, b) => (b.median_ms < a.median_ms ? b : a));
  const torch = runTorchBest('torch_train_step.py', base, { timed: (k) => k === 'median_ms' });
  const peer = torch ? (torch.runs[torch.from.median_ms!]!.out as { median_ms: number; peak_rss_mb: number; loss: number }) : null;
  const name = peerName(torch, 'median_ms');
  const oursTag = ` [ours: ${ours.threads} thread${ours.threads > 1 ? 's' : ''}]`;
  const cases: Case[] = [
    makeCase(`train step, ${base.blocks}x pre-LN block d${base.d} h${base.heads} ffn${base.ffn}, [${base.batch}x${base.seq}], AdamW (median of ${base.steps})${oursTag}`, 'ms/step', ours.median_ms, peer?.median_ms ?? null, name, 'lower'),
    makeCase(`peak RSS of the process (the runs above)`, 'MB', ours.peak_rss_mb, peer?.peak_rss_mb ?? null, name, 'lower'),
  ];
  printTable(`Training step, fp32, each side at its best thread setting (GEMM: ${info.blas}, kernels: ${info.simd})`, cases);
  console.log(`\nours per thread setting: ${ourRuns.map((r) => `${r.threads} thread(s) ${r.median_ms.toFixed(1)} ms`).join('; ')}`);
  // achieved rate against the GEMM peak measured in this run (matrix-multiply FLOPs counted by the kernels)
  const peak = gemmPeak(quick);
  const gflops = ours.flops / 1e9, rate = gflops / (ours.median_ms / 1e3);
  console.log(`${gflops.toFixed(1)} GFLOP per step (matmul kernels), ${rate.toFixed(0)} GFLOP/s = ${((100 * rate) / peak).toFixed(0)} % of the GEMM peak of this run (${peak.toFixed(0)} GFLOP/s; goal ≥ 60 %)`);
  if (torch) {
    console.log('PyTorch per setting (median ms/step):');
    for (const l of settingLines(torch, 'median_ms', (v) => v.toFixed(1))) console.log(l);
    console.log(`\ntime ratio ours/PyTorch = ${(ours.median_ms / peer!.median_ms).toFixed(2)} (bar ≤ 1.0, goal 0.7); losses after the run: ours ${ours.loss.toFixed(4)}, PyTorch ${peer!.loss.toFixed(4)}`);
  }
  console.log(`wrote ${writeResults('train-step', cases, { config: base, ours: ourRuns, peer: torch?.runs.map((r) => ({ setting: r.label, median_ms: r.out.median_ms, peak_rss_mb: r.out.peak_rss_mb })) ?? null })}`);
}
