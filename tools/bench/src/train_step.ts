/**
 * Training-step benchmark: a pre-LN transformer encoder (4 blocks, d 256, 4 heads, FFN
 * 1024, sequence 128, batch 16, fp32), forward + backward + AdamW step; median ms/step
 * over ≥ 20 steps after warm-up and peak RSS, against the same model in PyTorch
 * (peers/torch_train_step.py) with the same thread count. Each side runs in its own
 * process so peak RSS is its own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as T from '@vlmoe/tensor';
import { makeCase, printTable, writeResults, type Case } from './report.js';
import { runTorchScript } from './torch.js';

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
  const ms: number[] = [];
  let loss = 0;
  for (let i = 0; i < cfg.warmup + cfg.steps; ++i) {
    const t0 = process.hrtime.bigint();
    loss = T.scope(() => {
      opt.zeroGrad();
      const l = nn.mseLoss(model.forward(x), target);
      l.backward();
      opt.step();
      return l.item();
    });
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= cfg.warmup) ms.push(dt);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  console.log(JSON.stringify({ ms, median_ms: median, peak_rss_mb: process.resourceUsage().maxRSS / 1024, loss, live_bytes: T.memory().cpu.live }));
}

export function benchTrainStep(): void {
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const info = T.nativeInfo();
  const cfg: TrainStepConfig = { blocks: 4, d: 256, heads: 4, ffn: 1024, seq: 128, batch: 16, warmup: quick ? 1 : 3, steps: quick ? 3 : 20, threads: info.threads };
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawnSync(process.execPath, [main, 'train-step-child', JSON.stringify(cfg)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (child.status !== 0) throw new Error(`train-step child failed:\n${child.stderr}`);
  const ours = JSON.parse(child.stdout.trim().split('\n').pop()!) as { median_ms: number; peak_rss_mb: number; loss: number };
  const torch = runTorchScript('torch_train_step.py', cfg) as { median_ms: number; peak_rss_mb: number; loss: number; torch_version: string } | null;
  const peerName = torch ? `PyTorch ${torch.torch_version}` : 'PyTorch (not installed)';
  const cases: Case[] = [
    makeCase(`train step, ${cfg.blocks}x pre-LN block d${cfg.d} h${cfg.heads} ffn${cfg.ffn}, [${cfg.batch}x${cfg.seq}], AdamW (median of ${cfg.steps})`, 'ms/step', ours.median_ms, torch?.median_ms ?? null, peerName, 'lower'),
    makeCase('peak RSS of the process', 'MB', ours.peak_rss_mb, torch?.peak_rss_mb ?? null, peerName, 'lower'),
  ];
  printTable(`Training step, fp32, ${cfg.threads} threads (GEMM: ${info.blas}, kernels: ${info.simd})`, cases);
  const ratio = torch ? ours.median_ms / torch.median_ms : null;
  if (ratio !== null) console.log(`\ntime ratio ours/PyTorch = ${ratio.toFixed(2)} (bar ≤ 1.0, goal 0.7); losses after the run: ours ${ours.loss.toFixed(4)}, PyTorch ${torch!.loss.toFixed(4)}`);
  console.log(`wrote ${writeResults('train-step', cases, { config: cfg })}`);
}
