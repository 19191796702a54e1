// Run by the layout test (1 process, or N ranks under vlmoe-run): loads a `vlmoe pretrain`
// checkpoint into the engine at expert_parallel_size = WORLD_SIZE, checks that each rank holds
// 1/P of the experts, and writes the eval-mode outputs of a fixed batch (rank 0) to OUT.
//   node ep_reload.mjs <run dir> <out file>
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer } from '@vlmoe/moe';
import { initProcessGroup, initialize } from '@vlmoe/parallel';

const [runDir, out] = process.argv.slice(2);
const record = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
const pg = initProcessGroup();
const P = pg.size;
const model = new VLMoPretrainer(record.modelConfig, {}, { generator: new T.Generator(123) });
const total = (m) => m.parameters().filter((p) => p.tags.expert).reduce((a, p) => a + p.numel, 0);
const before = total(model);
const { engine } = initialize({ model, processGroup: pg, config: { train_batch_size: P, expert_parallel_size: P } });
const after = total(model);
if (after * P !== before) throw new Error(`rank ${pg.rank}: ${after} expert parameters after wiring, expected ${before} / ${P}`);
engine.loadCheckpoint(path.join(runDir, 'checkpoints'));
model.eval();
// a fixed batch, the same on every rank
const c = model.backbone.config, B = 3, L = 12;
const image = T.uniform([B, 3, c.imageSize, c.imageSize], -1, 1, { generator: new T.Generator(5) });
const ids = T.randint(5, c.vocabSize, [B, L], { dtype: 'int64', generator: new T.Generator(6) });
const mask = T.ones([B, L], { dtype: 'int64' });
const outputs = T.noGrad(() => [
  model.backbone.forward({ textIds: ids, textMask: mask, image }).hidden,
  model.backbone.forward({ image }).hidden,
  model.backbone.forward({ textIds: ids, textMask: mask }).hidden,
]);
if (pg.rank === 0) fs.writeFileSync(out, JSON.stringify({ P, expertParams: after, outputs: outputs.map((t) => Array.from(t.dataSync())) }));
pg.barrier();
engine.destroy();
pg.destroy();
console.log(`ep reload ok (P = ${P})`);
