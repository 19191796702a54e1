import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, VLMOE_PROGRESS: '0' };

describe('vlmoe bench (the model comparison)', () => {
  test('pretrains, fine-tunes and evaluates every model, prints the Table-1 rows; a rerun reuses the finished runs', () => {
    const cfg = join(dir, 'bench.json');
    const steps = { steps: 2, batch: 8, warmup: 1, checkpointEvery: 2 };
    writeFileSync(cfg, JSON.stringify({
      name: 'mini', data: `shapes:${join(dir, 'shapes')}`, runs: join(dir, 'runs'), evalBatch: 128,
      // the third starts from the dense model's pretraining run: upcycled (initFrom)
      models: [{ id: 'moe', label: 'MoE-2E', experts: 2 }, { id: 'dense', label: 'Dense' }, { id: 'up', label: 'MoE-2E upcycled', experts: 2, initFrom: 'dense' }],
      pretrain: { ...steps, textLen: 24 },
      finetune: { vqa: { ...steps, textLen: 16, evalEvery: 2 }, nlvr: { ...steps, textLen: 24 }, retrieval: { ...steps, textLen: 24 } },
    }));
    const r = spawnSync(process.execPath, [cli, 'bench', '--config', cfg, '--jobs', '2'], { encoding: 'utf8', timeout: 600_000, env });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const table = r.stdout.split('\n').filter((l) => l.startsWith('|'));
    expect(table[0]).toBe('| Model | #Params per token | #Total params | VQA acc | NLVR acc | NLVR cons | Retrieval TR@1 | Retrieval IR@1 |');
    expect(table.slice(2).map((l) => l.split(' | ')[0])).toEqual(['| MoE-2E', '| Dense', '| MoE-2E upcycled']);
    // in the dense model's lane, after it; upcycled from its run
    expect(r.stdout).toMatch(/training 2 models at a time .*dense → up/);
    expect(r.stdout).toMatch(/upcycled from .*dense-pretrain\/checkpoints \(step2\): 4 MoE layers from dense FFNs/);
    for (const row of table.slice(2)) for (const v of row.split('|').slice(4, -1)) expect(Number(v)).toBeGreaterThanOrEqual(0);
    expect(r.stdout).toMatch(/wall-clock .*report: .*mini\/report\/report\.md/);
    const report = JSON.parse(readFileSync(join(dir, 'runs', 'mini', 'report', 'report.json'), 'utf8')) as { results: unknown[] };
    expect(report.results.length).toBe(3 * 3);
    // the upcycled model's time to quality counts the dense run it started from
    const curves = JSON.parse(readFileSync(join(dir, 'runs', 'mini', 'report', 'curves.json'), 'utf8')) as { curves: { model: string; metric: string; points: { seconds: number; flops: number }[] }[] };
    const first = (model: string) => curves.curves.find((c) => c.model === model && c.metric === 'vqa')!.points[0]!;
    // after 2 fine-tuning steps: the MoE's pretraining and the fine-tuning so far, + the dense model's pretraining for the upcycled one
    const densePretrain = (JSON.parse(readFileSync(join(dir, 'runs', 'mini', 'dense-pretrain', 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as { flops: number }).flops;
    expect(Math.abs(first('MoE-2E upcycled').flops - first('MoE-2E').flops - densePretrain) / densePretrain).toBeLessThan(0.1);
    for (const f of ['tasks.svg', 'report.md']) expect(existsSync(join(dir, 'runs', 'mini', 'report', f))).toBe(true);
    // rerun in this process (the first run trained in two lanes of child processes): nothing retrains, the same table
    const again = spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', timeout: 600_000, env });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/moe-pretrain: .*resuming at step 2/);
    expect(again.stdout.split('\n').filter((l) => l.startsWith('|'))).toEqual(table);
  });

  test('config errors are named', () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ models: [] }));
    expect(spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env }).stderr).toMatch(/'models' must be a list of at least 1 item/);
    writeFileSync(cfg, JSON.stringify({ models: [{ id: 'a' }, { id: 'a' }] }));
    expect(spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env }).stderr).toMatch(/models\[1\]\.id 'a' is used twice/);
    writeFileSync(cfg, JSON.stringify({ models: [{ id: 'a', initFrom: 'b' }, { id: 'b' }] }));
    expect(spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env }).stderr).toMatch(/models\[0\]\.initFrom 'b' must be the id of a model listed before it/);
    writeFileSync(cfg, JSON.stringify({ models: [{ id: 'a' }], split: 'train' }));
    expect(spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env }).stderr).toMatch(/'split' must be one of "val", "test", got "train"/);
    writeFileSync(cfg, JSON.stringify({ models: [{ id: 'a' }], finetune: { ocr: {} } }));
    expect(spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env }).stderr).toMatch(/unknown key 'finetune\.ocr'; known: vqa, nlvr, retrieval/);
    // every recipe the bench generates is checked before anything trains, and the error names the user's file
    const runs = join(dir, 'runs-bad');
    const whole = (o: object, re: RegExp) => {
      writeFileSync(cfg, JSON.stringify({ name: 'bad', data: `shapes:${join(dir, 'shapes')}`, runs, models: [{ id: 'm', experts: 2 }], ...o }));
      const r = spawnSync(process.execPath, [cli, 'bench', '--config', cfg], { encoding: 'utf8', env });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).not.toMatch(/pretrain m-pretrain/);
      expect(existsSync(join(runs, 'bad'))).toBe(false);
    };
    whole({ pretrain: { steps: 1, engine: { zero_optimisation: { stage: 1 } } } }, new RegExp(`config ${cfg} \\(pretrain of model 'm'\\): engine: unknown key 'zero_optimisation' \\(did you mean 'zero_optimization'\\?\\)`));
    whole({ pretrain: { steps: 1 }, finetune: { nlvr: { steps: 1, lr: 'fast' } } }, new RegExp(`config ${cfg}: 'finetune\\.nlvr\\.lr' must be a number, got "fast"`));
  });
});
