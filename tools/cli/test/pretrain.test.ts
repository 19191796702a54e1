import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { BertTokenizer } from '@vlmoe/data';
import { VLMoPretrainer } from '@vlmoe/moe';
import { loadCheckpointWeights } from '@vlmoe/parallel';
import { pretrainValidationLoss } from '../src/index.js';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const launcher = fileURLToPath(new URL('../../../packages/parallel/dist/launcher.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-pretrain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, extra: object = {}): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({ name, preset: 'tiny', experts: 2, data: `shapes:${join(dir, 'shapes')}`, runs: join(dir, 'runs'), steps: 20, batch: 8, imageSize: 32, textLen: 24, warmup: 2, checkpointEvery: 5, ...extra }));
  return p;
}
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'pretrain', ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, VLMOE_PROGRESS: '0' } });
const losses = (name: string) => readFileSync(join(dir, 'runs', name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; lr: number; load: Record<string, { max: number; mean: number; dropRate: number }> });

describe('vlmoe pretrain', () => {
  test('20 steps straight = 12 steps, SIGKILL, resume from the step-10 checkpoint: identical losses and lrs', () => {
    const a = run('--config', config('straight'));
    expect(a.status, a.stdout + a.stderr).toBe(0);
    const straight = losses('straight');
    expect(straight.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(Object.keys(straight[0]!.load).length).toBeGreaterThan(0);
    for (const m of straight) for (const l of Object.values(m.load)) expect(l.dropRate >= 0 && l.dropRate <= 1 && l.max >= l.mean).toBe(true);
    const killed = run('--config', config('crash'), '--stop-after', '12');
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    expect(losses('crash').length).toBe(12);
    const resumed = run('--config', config('crash'), '--resume');
    expect(resumed.status, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming at step 10/);
    const after = losses('crash');
    expect(after.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(after.map((m) => m.loss)).toEqual(straight.map((m) => m.loss));
    expect(after.map((m) => m.lr)).toEqual(straight.map((m) => m.lr));
  });

  test('evalEvery: zero-shot retrieval and the pretraining loss on fixed val batches in val.jsonl with the cost so far; training unchanged; the last row is the final report', async () => {
    const r = run('--config', config('zs', { evalEvery: 10 }));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const rows = readFileSync(join(dir, 'runs', 'zs', 'val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; seconds: number; flops: number; metrics: Record<string, number> });
    expect(rows.map((v) => v.step)).toEqual([10, 20]);
    expect(Object.keys(rows[0]!.metrics).sort()).toEqual(['loss', 'loss_itc', 'loss_itm', 'loss_mlm', 'zs_ir1', 'zs_tr1']);
    for (const { metrics: v } of rows) {
      // the weighted sum of the objectives (ITC 1, ITM 1, MLM 0.25), each a mean over fixed val batches
      expect(v.loss).toBeCloseTo(v.loss_itc! + v.loss_itm! + 0.25 * v.loss_mlm!, 10);
      expect(v.loss_itc).toBeGreaterThan(0.5); // batch 8: ln 8 = 2.08 at chance, after 10-20 steps not far below
      expect(v.loss_itc).toBeLessThan(3);
      expect(v.loss_itm).toBeGreaterThan(0.2);
      expect(v.loss_mlm).toBeGreaterThan(0.5);
    }
    const m = losses('zs') as unknown as { step: number; flops: number; seconds: number; loss: number }[];
    expect(rows[1]!.flops).toBe(m[19]!.flops);
    expect(rows[0]!.flops).toBe(m[9]!.flops);
    // evaluation draws nothing from the training's RNG streams: the losses of the run without it
    if (!existsSync(join(dir, 'runs', 'straight', 'metrics.jsonl'))) expect(run('--config', config('straight')).status).toBe(0); // when run alone (-t)
    expect(m.map((x) => x.loss)).toEqual(losses('straight').map((x) => x.loss));
    // the final zero-shot report (eval/val/result.json) evaluates the same weights on the same split
    const final = JSON.parse(readFileSync(join(dir, 'runs', 'zs', 'eval', 'val', 'result.json'), 'utf8')) as { tr: Record<string, number>; ir: Record<string, number> };
    expect([rows[1]!.metrics.zs_tr1, rows[1]!.metrics.zs_ir1]).toEqual([final.tr['1'], final.ir['1']]);
    // the logged loss is the final weights' loss on the fixed val batches: recomputed here from the checkpoint
    const rec = JSON.parse(readFileSync(join(dir, 'runs', 'zs', 'config.json'), 'utf8')) as { modelConfig: never };
    const model = new VLMoPretrainer(rec.modelConfig);
    model.loadStateDict(loadCheckpointWeights(join(dir, 'runs', 'zs', 'checkpoints')).weights);
    model.eval();
    const again = await pretrainValidationLoss(model, { file: join(dir, 'shapes', 'captions_val.arrow'), tokenizer: BertTokenizer.fromFile(join(dir, 'shapes', 'tokenizer.json')), imageSize: 32, textLen: 24, batch: 8, batches: 8 });
    for (const [k, v] of Object.entries(again)) expect(v, k).toBeCloseTo(rows[1]!.metrics[k]!, 5);
    // rank 0 evaluates alone: refused with expert parallelism
    expect(run('--config', config('zs-ep', { evalEvery: 10, engine: { expert_parallel_size: 2 } })).stderr).toMatch(/'evalEvery' needs expert_parallel_size 1/);
  }, 300_000);

  test('the validation loss does not depend on the layout: 2 ranks log the 1-process values; valBatches 0 logs none', () => {
    // dense, so 2 ranks train the very model of 1 process (an MoE's balance loss is per rank)
    for (const [name, nproc] of [['val1', 1], ['val2', 2]] as const) {
      const args = [cli, 'pretrain', '--config', config(name, { experts: 0, evalEvery: 10, evalSplit: 'none' })];
      const r = spawnSync(process.execPath, nproc === 1 ? args : [launcher, '--nproc', '2', ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, VLMOE_PROGRESS: '0' } });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    const val = (name: string) => readFileSync(join(dir, 'runs', name, 'val.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { metrics: Record<string, number> }).metrics);
    const [one, two] = [val('val1'), val('val2')];
    expect(two.length).toBe(2);
    for (const [i, row] of one.entries()) for (const k of ['loss', 'loss_itc', 'loss_itm', 'loss_mlm']) expect(two[i]![k], `${k} at row ${i}`).toBeCloseTo(row[k]!, 4);
    expect(run('--config', config('val0', { experts: 0, steps: 10, evalEvery: 10, valBatches: 0, evalSplit: 'none' })).status).toBe(0);
    expect(Object.keys(val('val0')[0]!).sort()).toEqual(['zs_ir1', 'zs_tr1']);
  }, 300_000);

  test("--deepspeed_config: a DeepSpeed JSON as the engine part (optimizer type in any case); DeepSpeed's MoE names in model.moe, ep_size moved to the engine", () => {
    const ds = join(dir, 'deepspeed.json');
    writeFileSync(ds, JSON.stringify({ train_batch_size: 8, gradient_accumulation_steps: 2, zero_optimization: { stage: 1 }, optimizer: { type: 'adamw', params: { lr: 1e-3 } } }));
    const p = config('ds', { steps: 2, evalSplit: 'none', model: { moe: { capacity_factor: 2, drop_tokens: false, ep_size: 1 } } });
    const r = run('--config', p, '--deepspeed_config', ds);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(dir, 'runs', 'ds', 'config.json'), 'utf8'));
    expect(rec.resolvedEngine).toMatchObject({ stage: 1, gradAccum: 2, microBatch: 4, expertParallel: 1, optimizer: { type: 'AdamW', params: { lr: 1e-3 } } });
    expect(rec.modelConfig.moe).toMatchObject({ capacityFactor: 2, dropTokens: false });
    expect(losses('ds')).toHaveLength(2);
    expect(r.stdout).toMatch(/global batch 8\b/); // the DeepSpeed file's train_batch_size, not the recipe's
    // both an engine block and --deepspeed_config: refused, as DeepSpeed refuses two configs
    const both = run('--config', config('both', { engine: { zero_optimization: { stage: 2 } } }), '--deepspeed_config', ds);
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/has an 'engine' block and --deepspeed_config .*deepspeed\.json was given/);
    // errors in the DeepSpeed file name that file
    writeFileSync(ds, JSON.stringify({ train_batch_size: 8, zero_optimisation: { stage: 1 } }));
    const bad = run('--config', config('dsbad', { steps: 1 }), '--deepspeed_config', ds);
    expect(bad.stderr).toMatch(/deepspeed config .*deepspeed\.json: unknown key 'zero_optimisation' \(did you mean 'zero_optimization'\?\)/);
  });

  test('config errors name the key and the file', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ name: 'x', stepz: 3 }));
    expect(run('--config', bad).stderr).toMatch(/unknown key 'stepz'/);
    writeFileSync(bad, JSON.stringify({ name: 'x', steps: 'many' }));
    expect(run('--config', bad).stderr).toMatch(/'steps' must be an integer, got "many"/);
    writeFileSync(bad, JSON.stringify({ steps: 3 }));
    expect(run('--config', bad).stderr).toMatch(/'name' is required/);
    expect(run('--config', join(dir, 'nope.json')).stderr).toMatch(/nope\.json does not exist/);
    // a data folder that does not exist is an error (it used to generate the shapes world there)
    writeFileSync(bad, JSON.stringify({ name: 'x', data: join(dir, 'no-such-data'), runs: join(dir, 'runs'), steps: 1 }));
    const r = run('--config', bad);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/data '.*no-such-data' does not exist .*"shapes:<folder>"/);
    expect(existsSync(join(dir, 'no-such-data'))).toBe(false);
  });

  test('a misspelt key anywhere — recipe, weights, model, model.moe, engine — exits non-zero naming the key, the file and the nearest valid key', () => {
    const bad = join(dir, 'bad.json');
    const fails = (o: object, re: RegExp) => {
      writeFileSync(bad, JSON.stringify({ name: 'x', data: `shapes:${join(dir, 'shapes')}`, runs: join(dir, 'runs'), steps: 1, ...o }));
      const r = run('--config', bad);
      expect(r.status, r.stdout + r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).toContain(bad);
      expect(r.stdout).not.toMatch(/loss/);
    };
    fails({ stepz: 3 }, /unknown key 'stepz' \(did you mean 'steps'\?\)/);
    fails({ weights: { itm: 1, mlmm: 0.5 } }, /unknown key 'weights\.mlmm' \(did you mean 'mlm'\?\)/);
    fails({ model: { dim: 64, dropPth: 0 } }, /unknown key 'model\.dropPth' \(did you mean 'dropPath'\?\)/);
    fails({ model: { moe: { capacityFactr: 2 } } }, /unknown key 'model\.moe\.capacityFactr' \(did you mean 'capacityFactor'\?\)/);
    fails({ model: { moe: { dropPolicy: 'biggest' } } }, /'model\.moe\.dropPolicy' must be one of "position", "probs", got "biggest"/);
    fails({ model: { moe: { useResidual: 'yes' } } }, /'model\.moe\.useResidual' must be a boolean, got "yes"/);
    fails({ model: { imageSize: 64 } }, /'model\.imageSize' is set by the recipe/);
    // a misspelt ZeRO key used to train silently at stage 0
    fails({ engine: { zero_optimisation: { stage: 2 } } }, /engine: unknown key 'zero_optimisation' \(did you mean 'zero_optimization'\?\)/);
    fails({ engine: { zero_optimization: { stage: 1, offload_param: { device: 'cpu' } } } }, /engine: 'zero_optimization\.offload_param' is a DeepSpeed key this engine does not implement/);
    fails({ engine: { zero_optimization: { stage: 1, offload_optimizer: { device: 'nvme', nvme_path: '/no/such/dir' } } } }, /offload_optimizer\.nvme_path '\/no\/such\/dir' is not a directory \(it does not exist\)/);
    fails({ engine: { expert_parallel_size: 3 } }, /engine: expert_parallel_size 3 does not divide the world size 1/);
  });
});
