/**
 * Pretrains VL-MoE-tiny (or its dense twin with --experts 0) on the synthetic shapes world
 * with VLMo's objectives: ITC (unimodal passes), ITM with hard negatives sampled from the ITC
 * similarities, and MLM on the fused pass, plus the MoE balance / z losses — through the
 * @vlmoe/parallel engine, so `npx vlmoe-run --nproc 2 node …/pretrain-tiny.js` trains the
 * same model data-parallel. Prints the loss parts as it goes; exits non-zero if the loss does
 * not fall. Options: --steps N --experts E --batch B --lr X --data DIR.
 *
 * A minimal loop; `vlmoe pretrain --config run.json` is the full recipe (run folder,
 * metrics, checkpoints, --resume).
 */
import * as T from '@vlmoe/tensor';
import { BertTokenizer, DataLoader, ensureDefaultDataset } from '@vlmoe/data';
import { VLMoPretrainer, pretrainBatchFrom, preset, type PretrainBatch, type PretrainLosses } from '@vlmoe/moe';
import { initProcessGroup, initialize } from '@vlmoe/parallel';
import { Progress } from './progress.js';

function arg(name: string, dflt: number | string): number | string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const raw = process.argv[i + 1];
  if (raw === undefined) throw new Error(`--${name} needs a value`);
  if (typeof dflt === 'number') {
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new Error(`--${name} expects a number, got '${raw}'`);
    return v;
  }
  return raw;
}

const steps = arg('steps', 60) as number, experts = arg('experts', 4) as number, batch = arg('batch', 16) as number;
const lr = arg('lr', 2e-3) as number, dataDir = arg('data', 'data/shapes') as string;

async function main(): Promise<void> {
  const pg = initProcessGroup();
  const ds = await ensureDefaultDataset(dataDir);
  const tokenizer = BertTokenizer.fromFile(ds.tokenizer);
  const model = new VLMoPretrainer(preset('tiny', { vocabSize: tokenizer.vocabSize, maxTextLen: 40, ...(experts ? { experts } : {}) }), {}, { generator: new T.Generator(0) });
  const { total, active } = model.backbone.parameterCount();
  const { engine } = initialize({
    model, processGroup: pg,
    config: { train_batch_size: batch, optimizer: { type: 'AdamW', params: { lr, betas: [0.9, 0.98], weight_decay: 0.01 } }, gradient_clipping: 1.0,
      scheduler: { type: 'WarmupDecayLR', params: { warmup_num_steps: Math.ceil(steps / 10), total_num_steps: steps } } },
  });
  const micro = batch / pg.size;
  const loader = await DataLoader.create({ files: ds.files.captions.train, batchSize: micro, tokenizer, image: { size: 32 }, mlm: { probability: 0.15 }, shuffle: true, seed: 0, rank: pg.rank, worldSize: pg.size, maxTextLen: 40 });
  if (pg.rank === 0) console.log(`VL-MoE-tiny pretraining: ${experts ? `${experts} experts (top-1)` : 'dense'}, ${(total / 1e6).toFixed(2)}M parameters (${(active / 1e6).toFixed(2)}M active), ${pg.size} rank(s), global batch ${batch}`);
  const progress = new Progress(steps, 'pretrain');
  const gen = new T.Generator(1 + pg.rank);
  const losses: number[] = [];
  let step = 0;
  for await (const b of loader) {
    if (step >= steps) break;
    const parts = T.scope(() => {
      const r = engine.forward<[PretrainBatch], PretrainLosses>(pretrainBatchFrom(b, gen));
      engine.backward(r.loss);
      engine.step();
      return { ...r.parts, loss: r.loss.item() };
    });
    losses.push(parts.loss);
    step++;
    progress.update(step, `loss ${parts.loss.toFixed(3)} (itc ${parts.itc.toFixed(2)} itm ${parts.itm.toFixed(2)} mlm ${parts.mlm.toFixed(2)} moe ${parts.moe.toFixed(3)})`);
  }
  await loader.close();
  const k = Math.max(1, Math.floor(losses.length / 5));
  const first = losses.slice(0, k).reduce((a, b) => a + b, 0) / k, last = losses.slice(-k).reduce((a, b) => a + b, 0) / k;
  if (pg.rank === 0) console.log(`loss ${first.toFixed(3)} → ${last.toFixed(3)} over ${losses.length} steps`);
  pg.destroy();
  if (!(last < first)) {
    console.error('pretraining did not reduce the loss');
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
