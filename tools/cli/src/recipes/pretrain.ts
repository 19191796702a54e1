/**
 * `vlmoe pretrain --config run.json [--resume]`: VLMo / VL-MoE pretraining (ITC + ITM + MLM +
 * MoE losses, see VLMoPretrainer) on a captions Arrow dataset (default: the synthetic shapes
 * world, generated on first use) through the @vlmoe/parallel engine — one process, or N
 * under `vlmoe-run` / `mpirun`.
 *
 * The run folder `<runs>/<name>/` holds the resolved config, `metrics.jsonl` (one line per
 * step: loss parts, lr, grad norm, samples/s, per MoE layer the expert load (max / mean
 * count) and the drop rate) and `checkpoints/` (every `checkpointEvery` steps and at the
 * end, with the data-loader position and the RNG states). `--resume` continues from the
 * newest checkpoint and reproduces the uninterrupted run's losses exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { BertTokenizer, DataLoader, ensureDefaultDataset } from '@vlmoe/data';
import { VLMoPretrainer, pretrainBatchFrom, preset, type PresetName, type PretrainBatch, type PretrainLosses } from '@vlmoe/moe';
import { initProcessGroup, initialize } from '@vlmoe/parallel';
import { checkConfig, readConfig } from './config.js';

export interface PretrainConfig {
  name: string;
  preset: string;
  experts: number;
  k: number;
  /** Captions Arrow file(s) and tokenizer; default: the shapes world in `data`. */
  data: string;
  runs: string;
  steps: number;
  batch: number;
  imageSize: number;
  lr: number;
  warmup: number;
  weights: { itc?: number; itm?: number; mlm?: number };
  checkpointEvery: number;
  seed: number;
  /** DeepSpeed engine keys merged over the recipe's (e.g. zero_optimization, expert_parallel_size). */
  engine: Record<string, unknown>;
}

const SCHEMA = {
  name: ['string', undefined], preset: ['string', 'tiny'], experts: ['integer', 4], k: ['integer', 1], data: ['string', 'data/shapes'],
  runs: ['string', 'runs'], steps: ['integer', 100], batch: ['integer', 16], imageSize: ['integer', 32], lr: ['number', 2e-3],
  warmup: ['integer', 10], weights: ['object', {}], checkpointEvery: ['integer', 50], seed: ['integer', 0], engine: ['object', {}],
} as const;

export const PRETRAIN_USAGE = `usage: vlmoe pretrain --config run.json [--resume]

config keys (JSON): ${Object.entries(SCHEMA).map(([k, [t, d]]) => `${k} (${t}${d === undefined ? ', required' : `, default ${JSON.stringify(d)}`})`).join(', ')}`;

function progressLine(step: number, total: number, note: string): void {
  const width = 30, filled = Math.round((step / total) * width);
  const line = `pretrain [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${total} ${note}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line}${step === total ? '\n' : ''}`);
  else if (step === total || step % Math.max(1, Math.floor(total / 10)) === 0) process.stderr.write(`${line}\n`);
}

export async function pretrain(configPath: string, opts: { resume?: boolean; stopAfter?: number } = {}): Promise<{ runDir: string; losses: number[] }> {
  const cfg = checkConfig<PretrainConfig>(readConfig(configPath), SCHEMA as unknown as Record<string, ['string', unknown]>, configPath);
  if (!/^[A-Za-z0-9_.-]+$/.test(cfg.name)) throw new Error(`config ${configPath}: 'name' may only hold letters, digits, '_', '.', '-' (it names the run folder)`);
  const pg = initProcessGroup();
  const runDir = path.join(cfg.runs, cfg.name), ckptDir = path.join(runDir, 'checkpoints');
  const ds = await ensureDefaultDataset(cfg.data);
  const tokenizer = BertTokenizer.fromFile(ds.tokenizer);
  const modelGen = new T.Generator(cfg.seed);
  const model = new VLMoPretrainer(preset(cfg.preset as PresetName, { vocabSize: tokenizer.vocabSize, maxTextLen: 40, imageSize: cfg.imageSize, ...(cfg.experts ? { experts: cfg.experts, k: cfg.k } : {}) }), cfg.weights, { generator: modelGen });
  const { engine } = initialize({
    model, processGroup: pg,
    config: {
      train_batch_size: cfg.batch, gradient_clipping: 1.0,
      optimizer: { type: 'AdamW', params: { lr: cfg.lr, betas: [0.9, 0.98], eps: 1e-8, weight_decay: 0.01 } },
      scheduler: { type: 'WarmupDecayLR', params: { warmup_num_steps: cfg.warmup, total_num_steps: cfg.steps } },
      ...cfg.engine,
    },
  });
  const loader = await DataLoader.create({ files: ds.files.captions.train, batchSize: engine.config.microBatch, tokenizer, image: { size: cfg.imageSize }, mlm: { probability: 0.15 },
    shuffle: true, seed: cfg.seed, rank: pg.rank, worldSize: pg.size, maxTextLen: 40 });
  let step = 0;
  if (opts.resume && fs.existsSync(path.join(ckptDir, 'latest'))) {
    const st = engine.loadCheckpoint(ckptDir) as { step: number; loader: Parameters<DataLoader['loadStateDict']>[0]; modelGen: { seed: number; offset: number } };
    step = st.step;
    loader.loadStateDict(st.loader);
    modelGen.setState(st.modelGen);
  }
  if (pg.rank === 0) {
    fs.mkdirSync(runDir, { recursive: true });
    fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ ...cfg, resolvedEngine: engine.config, world: pg.size }, null, 2));
    // metrics of steps after the checkpoint were never checkpointed: drop them on resume
    const mPath = path.join(runDir, 'metrics.jsonl');
    const kept = fs.existsSync(mPath) && step > 0 ? fs.readFileSync(mPath, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= step) : [];
    fs.writeFileSync(mPath, kept.map((l) => `${l}\n`).join(''));
    const { total, active } = model.backbone.parameterCount();
    console.log(`pretrain ${cfg.name}: ${cfg.preset}${cfg.experts ? `/${cfg.experts}E top-${cfg.k}` : ' dense'}, ${(total / 1e6).toFixed(2)}M parameters (${(active / 1e6).toFixed(2)}M active), ${pg.size} rank(s)${step ? `, resuming at step ${step}` : ''}`);
  }
  const losses: number[] = [];
  const save = () => engine.saveCheckpoint(ckptDir, `step${step}`, { step, loader: loader.stateDict(), modelGen: modelGen.getState() });
  let t0 = performance.now();
  for await (const b of loader) {
    if (step >= cfg.steps) break;
    const row = T.scope(() => {
      const r = engine.forward<[PretrainBatch], PretrainLosses>(pretrainBatchFrom(b, new T.Generator(cfg.seed * 1_000_003 + step * 97 + pg.rank)));
      const lr = engine.getLr()[0]!;
      const loss = r.loss.item();
      engine.backward(r.loss);
      const gradNorm = engine.step();
      const load: Record<string, { max: number; mean: number }> = {};
      for (const [k, c] of Object.entries(r.expertCounts)) {
        const v = Array.from(c.dataSync() as BigInt64Array, Number);
        load[k] = { max: Math.max(...v), mean: v.reduce((a, x) => a + x, 0) / v.length };
      }
      return { loss, ...r.parts, lr, gradNorm, dropped: r.dropped, load };
    });
    step++;
    const dt = (performance.now() - t0) / 1000;
    t0 = performance.now();
    losses.push(row.loss);
    if (pg.rank === 0) {
      fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), `${JSON.stringify({ step, ...row, samplesPerSec: cfg.batch / dt })}\n`);
      progressLine(step, cfg.steps, `loss ${row.loss.toFixed(3)} (itc ${row.itc.toFixed(2)} itm ${row.itm.toFixed(2)} mlm ${row.mlm.toFixed(2)} moe ${row.moe.toFixed(3)})`);
    }
    if (step % cfg.checkpointEvery === 0 || step === cfg.steps) save();
    if (opts.stopAfter !== undefined && step >= opts.stopAfter) process.kill(process.pid, 'SIGKILL'); // a crash, for the resume test
  }
  await loader.close();
  pg.destroy();
  return { runDir, losses };
}
