/**
 * `vlmoe study` as a user runs it: two seeds of a tiny comparison, the mean ± s.d. table and
 * the claims with their bootstrap intervals; a study killed with SIGKILL part-way resumes and
 * ends with exactly the uninterrupted study's numbers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-study-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, VLMOE_PROGRESS: '0' };

function config(runs: string, extra: object = {}): string {
  const steps = { steps: 2, batch: 8, warmup: 1, checkpointEvery: 2 };
  const p = join(dir, `${runs}.json`);
  writeFileSync(p, JSON.stringify({
    name: 'st', data: `shapes:${join(dir, 'shapes')}`, runs: join(dir, runs), evalBatch: 128, seeds: [0, 1],
    models: [{ id: 'moe', label: 'MoE-2E', experts: 2 }, { id: 'dense', label: 'Dense' }],
    pretrain: { ...steps, textLen: 24, evalEvery: 1 },
    finetune: { vqa: { ...steps, textLen: 16, evalEvery: 1 }, nlvr: { ...steps, textLen: 24, evalEvery: 1 }, retrieval: { ...steps, textLen: 24, evalEvery: 1 } },
    ...extra,
  }));
  return p;
}
const studyJson = (runs: string) => JSON.parse(readFileSync(join(dir, runs, 'st', 'study', 'study.json'), 'utf8')) as { seeds: number[]; table: Record<string, Record<string, { mean: number; sd: number; n: number }>>; claims: { a: string; b: string; metric: string; text: string; interval: { low: number; high: number; estimate: number } }[];
  timeToQuality: { metric: string; target: string; model: string; reached: number; seeds: number; seconds: { mean: number } | null; flops: { mean: number } | null; ratio: { mean: number } | null }[];
  curves: { model: string; metric: string; points: { step: number; seconds: number; flops: number; value: number }[] }[] };

describe('vlmoe study', () => {
  test('two seeds: mean ± s.d. per model and metric, a verdict with its interval per claim, time to quality', async () => {
    const r = spawnSync(process.execPath, [cli, 'study', '--config', config('a')], { encoding: 'utf8', timeout: 600_000, env });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/== study st: seed 0 \(1 of 2\)/);
    expect(r.stdout).toMatch(/== study st: seed 1 \(2 of 2\)/);
    const lines = r.stdout.split('# vlmoe study st')[1]!.split('\n');
    const start = lines.findIndex((l) => l.startsWith('|'));
    const table = lines.slice(start, lines.findIndex((l, i) => i > start && !l.startsWith('|'))); // the first table: metrics
    expect(table[0]).toBe('| Model | VQA acc | NLVR acc | NLVR cons | Retrieval TR@1 | Retrieval IR@1 |');
    for (const row of table.slice(2)) for (const cell of row.split('|').slice(2, -1)) expect(cell.trim()).toMatch(/^\d+\.\d\d ± \d+\.\d\d$/);
    const s = studyJson('a');
    expect(s.seeds).toEqual([0, 1]);
    expect(s.table['MoE-2E']!['VQA acc']!.n).toBe(2);
    // the shapes world's annotations carry question and answer types: the VQA accuracy per type, over both seeds
    const byType = (JSON.parse(readFileSync(join(dir, 'a', 'st', 'study', 'study.json'), 'utf8')) as { vqaByType: { task: string; by: string; counts: Record<string, number>; table: Record<string, Record<string, { mean: number; n: number }>> }[] }).vqaByType;
    expect(byType.map((b) => [b.task, b.by])).toEqual([['VQA', 'answer type'], ['VQA', 'question type']]);
    const [answerTypes, questionTypes] = byType as [(typeof byType)[0], (typeof byType)[0]];
    expect(Object.keys(answerTypes.counts).sort()).toEqual(['number', 'other', 'yes/no']);
    for (const t of Object.keys(questionTypes.counts)) expect(['color', 'shape', 'size', 'position', 'count', 'exist', 'yesno']).toContain(t);
    const total = (c: Record<string, number>) => Object.values(c).reduce((a, n) => a + n, 0);
    expect(total(answerTypes.counts)).toBe(total(questionTypes.counts));
    expect(questionTypes.counts.count).toBe(answerTypes.counts.number);
    for (const b of byType) for (const t of Object.keys(b.counts)) expect(b.table['MoE-2E']![t]!.n).toBe(2);
    // each breakdown averages back to the overall accuracy (seed by seed, so also in the mean)
    for (const b of byType) {
      const weighted = Object.entries(b.counts).reduce((a, [t, n]) => a + b.table['Dense']![t]!.mean * n, 0) / total(b.counts);
      expect(weighted).toBeCloseTo(s.table['Dense']!['VQA acc']!.mean, 1);
    }
    expect(readFileSync(join(dir, 'a', 'st', 'study', 'report.md'), 'utf8')).toMatch(/## VQA by question type\n\n.*\n\n\| Question type \| Questions \| MoE-2E \| Dense \|/);
    // the default claims: every MoE model against every dense one, on VQA, NLVR, TR@1 and IR@1
    expect(s.claims.map((c) => [c.a, c.b, c.metric])).toEqual([['moe', 'dense', 'vqa'], ['moe', 'dense', 'nlvr'], ['moe', 'dense', 'tr1'], ['moe', 'dense', 'ir1']]);
    for (const c of s.claims) {
      expect(c.interval.low).toBeLessThanOrEqual(c.interval.estimate);
      expect(c.interval.high).toBeGreaterThanOrEqual(c.interval.estimate);
      expect(c.text).toMatch(/^MoE-2E > Dense on (VQA|NLVR|TR@1|IR@1): (yes|no|not shown), [+−]\d+\.\d\d \(95% interval [+−]\d+\.\d\d … [+−]\d+\.\d\d\)$/);
    }
    // learning curves: zero-shot retrieval after each of the 2 pretraining steps, then a validation after each of
    // the 2 fine-tuning steps, cost counted from the start of pretraining
    expect(s.curves.map((c) => `${c.model} ${c.metric}`).sort()).toEqual(['Dense ir1', 'Dense nlvr', 'Dense tr1', 'Dense vqa', 'Dense zs_ir1', 'Dense zs_tr1', 'MoE-2E ir1', 'MoE-2E nlvr', 'MoE-2E tr1', 'MoE-2E vqa', 'MoE-2E zs_ir1', 'MoE-2E zs_tr1']);
    for (const c of s.curves) {
      expect(c.points.map((p) => p.step)).toEqual([1, 2]);
      expect(c.points[1]!.flops).toBeGreaterThan(c.points[0]!.flops);
      expect(c.points[1]!.seconds).toBeGreaterThan(c.points[0]!.seconds);
    }
    for (const m of ['MoE-2E', 'Dense']) {
      const pre = s.curves.find((c) => c.model === m && c.metric === 'zs_tr1')!, ft = s.curves.find((c) => c.model === m && c.metric === 'vqa')!;
      expect(ft.points[0]!.flops).toBeGreaterThan(pre.points[1]!.flops); // fine-tuning starts where pretraining ended
    }
    // each seed's bench report holds its curves and the curve of a metric ends at the table's value
    const seed0 = JSON.parse(readFileSync(join(dir, 'a', 'st-seed0', 'report', 'curves.json'), 'utf8')) as { curves: { model: string; metric: string; points: { value: number; flops: number }[] }[] };
    const benchReport = JSON.parse(readFileSync(join(dir, 'a', 'st-seed0', 'report', 'report.json'), 'utf8')) as { results: { model: string; kind: string; headlines: { column: string; value: number }[] }[] };
    const vqaCurve = seed0.curves.find((c) => c.model === 'MoE-2E' && c.metric === 'vqa')!;
    const vqaRow = benchReport.results.find((r) => r.model === 'MoE-2E' && r.kind === 'vqa')!;
    expect(100 * vqaCurve.points[1]!.value).toBeCloseTo(vqaRow.headlines[0]!.value, 2);
    // the dense model reaches its own final value; every (metric, target = the dense model, model) row is there
    const ttq = s.timeToQuality;
    expect(ttq.filter((t) => t.target === 'Dense').length).toBe(12);
    for (const t of ttq.filter((x) => x.model === 'Dense')) {
      expect(t.reached).toBe(2);
      expect(t.ratio!.mean).toBeCloseTo(1, 12);
    }
    const md = readFileSync(join(dir, 'a', 'st', 'study', 'report.md'), 'utf8');
    expect(md).toMatch(/## Time to quality/);
    expect(md).toMatch(/- MoE-2E reaches Dense's final VQA acc (in \d+\.\d\d( ± \d+\.\d\d)? × its training time \([12]\/2 seeds\)|: no \(0\/2 seeds\))/);
    // every seed's bench report is copied in; the first seed's routing charts are in the study's report
    for (const seed of [0, 1]) expect(existsSync(join(dir, 'a', 'st', 'study', `seed${seed}`, 'report.md'))).toBe(true);
    expect(md).toContain('[bench report](seed1/report.md)');
    const routing = md.match(/!\[routing_[^\]]*\]\(seed0\/(routing_[^)]*\.svg)\)/g) ?? [];
    expect(routing.length).toBeGreaterThan(0);
    for (const link of routing) expect(existsSync(join(dir, 'a', 'st', 'study', link.slice(link.indexOf('(') + 1, -1)))).toBe(true);
    // the curve charts render (sharp)
    for (const f of ['curve_vqa_seconds.svg', 'curve_tr1_flops.svg', 'curve_zs_tr1_flops.svg']) {
      const meta = await sharp(readFileSync(join(dir, 'a', 'st', 'study', f))).metadata();
      expect(meta.width).toBe(720);
      expect(md).toContain(`![${f}](${f})`);
    }
  }, 900_000);

  test('killed with SIGKILL part-way, the study resumes and ends with the uninterrupted numbers', async () => {
    const cfg = config('b', { reference: join(dir, 'a', 'st', 'study', 'study.json') }); // study a's numbers printed beside b's
    const marker = join(dir, 'b', 'st-seed0', 'dense-pretrain', 'checkpoints', 'latest');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, 'study', '--config', cfg], { env, stdio: 'ignore' });
      const poll = setInterval(() => {
        if (existsSync(marker)) {
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }, 100);
      child.on('exit', (code, signal) => {
        clearInterval(poll);
        if (signal === 'SIGKILL') resolve();
        else reject(new Error(`the study ended (${code}) before it could be killed`));
      });
    });
    expect(existsSync(join(dir, 'b', 'st', 'study', 'study.json'))).toBe(false);
    const r = spawnSync(process.execPath, [cli, 'study', '--config', cfg], { encoding: 'utf8', timeout: 600_000, env });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/moe-pretrain: .*resuming at step 2/); // the finished runs of seed 0 are reused
    const [a, b] = [studyJson('a'), studyJson('b')];
    expect(b.table).toEqual(a.table);
    expect(b.claims).toEqual(a.claims);
    // the reference study's mean ± s.d. beside each cell; what ran, where and on which commit
    expect(r.stdout).toMatch(/In brackets: the reference study st \(2 seeds, mean ± s\.d\.;/);
    expect(r.stdout).toMatch(/\| MoE-2E \| (\d+\.\d\d ± \d+\.\d\d) \(st: \1\) \|/);
    const json = JSON.parse(readFileSync(join(dir, 'b', 'st', 'study', 'study.json'), 'utf8')) as { command: string; commit: string | null; machine: string; training: { seconds: number; flops: number } };
    // the training cost is summed from the runs' logs: the crash and the resume count the work once, as without them
    const jsonA = JSON.parse(readFileSync(join(dir, 'a', 'st', 'study', 'study.json'), 'utf8')) as { training: { flops: number } };
    expect(json.training.flops).toBe(jsonA.training.flops);
    expect(r.stdout).toMatch(/Training: \d+\.\d min and \d+\.\d\d [GTP]FLOPs over all runs/);
    expect(json.command).toMatch(/^vlmoe study --config .*b\.json$/);
    expect(json.commit).toMatch(/^[0-9a-f]{40}(\+changes)?$/);
    expect(json.machine).toMatch(/cores, \d+ GiB, .* Node v\d+/);
    // training FLOPs are counted across the crash exactly as without it
    expect(b.curves.map((c) => c.points.map((p) => p.flops))).toEqual(a.curves.map((c) => c.points.map((p) => p.flops)));
  }, 900_000);

  test('search: the same grid for every model (MoE keys for the MoE models), scored by the val loss; each model runs the study with its best trial on the test split', () => {
    const search = { pretrain: { lr: [1e-3, 3e-3] }, moe: { capacityFactor: [1, 2] }, steps: 2 };
    // the search chooses on val: a table on val is refused before anything trains
    let r = spawnSync(process.execPath, [cli, 'study', '--config', config('s-val', { search })], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/'search' chooses each model's settings on the val split, so the table must be computed on the test split: set "split": "test"/);
    // a misspelt key is named, with the trial and the file, before any trial trains
    r = spawnSync(process.execPath, [cli, 'study', '--config', config('s-typo', { split: 'test', search: { pretrain: { lrr: [1e-3] } } })], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/s-typo\.json \(search trial 0 of model 'moe': lrr 0\.001\).*unknown key 'lrr' \(did you mean 'lr'\?\)/s);
    expect(existsSync(join(dir, 's-typo', 'st-search'))).toBe(false);
    const cfg = config('s', { split: 'test', seeds: [0], search });
    r = spawnSync(process.execPath, [cli, 'study', '--config', cfg], { encoding: 'utf8', timeout: 600_000, env });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hyperparameter search, 6 trials of 2 pretraining steps at seed 0, scored by the validation loss on the val split \(moe 4, dense 2\)/);
    const s = JSON.parse(readFileSync(join(dir, 's', 'st', 'study', 'study.json'), 'utf8')) as { split: string; search: { models: { id: string; best: number; trials: { pretrain: { lr: number }; moe: { capacityFactor?: number }; loss: number; run: string }[] }[] } };
    expect(s.split).toBe('test');
    const [moe, dense] = s.search.models;
    expect(moe!.trials.map((t) => [t.pretrain.lr, t.moe.capacityFactor])).toEqual([[1e-3, 1], [1e-3, 2], [3e-3, 1], [3e-3, 2]]);
    expect(dense!.trials.map((t) => [t.pretrain.lr, t.moe.capacityFactor])).toEqual([[1e-3, undefined], [3e-3, undefined]]);
    for (const m of [moe!, dense!]) {
      // each trial's score is the val loss its run logged last; the best is the lowest
      for (const t of m.trials) {
        const rows = readFileSync(join(t.run, 'val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; metrics: { loss: number } });
        expect(rows[rows.length - 1]!.step).toBe(2);
        expect(t.loss).toBe(rows[rows.length - 1]!.metrics.loss);
      }
      expect(m.trials[m.best]!.loss).toBe(Math.min(...m.trials.map((t) => t.loss)));
      // the study's own pretraining run carries the chosen settings
      const recipe = JSON.parse(readFileSync(join(dir, 's', 'st-seed0', 'configs', `${m.id}-pretrain.json`), 'utf8')) as { lr: number; model: { moe?: { capacityFactor?: number } } };
      expect(recipe.lr).toBe(m.trials[m.best]!.pretrain.lr);
      expect(recipe.model.moe?.capacityFactor).toBe(m.trials[m.best]!.moe.capacityFactor);
    }
    const report = readFileSync(join(dir, 's', 'st', 'study', 'report.md'), 'utf8');
    expect(report).toMatch(/## Hyperparameter search/);
    expect(report).toMatch(/computed on the test split, which the search never saw/);
    expect(report).toMatch(/\| MoE-2E \| (\*\*)?lr 0\.001, moe\.capacityFactor 1(\*\*)? \| (\*\*)?\d+\.\d{4}/);
    // the effort each model's search took: its trials' training time, as their logs say
    const minutes = (m: { trials: { run: string }[] }) => m.trials.reduce((a, t) => a + (JSON.parse(readFileSync(join(t.run, 'val.jsonl'), 'utf8').trim().split('\n').pop()!) as { seconds: number }).seconds, 0) / 60;
    expect(report).toContain(`Search effort per model (the MoE models try each pretraining setting with every MoE setting): MoE-2E 4 trials, ${minutes(moe!).toFixed(1)} min, `);
    expect(report).toMatch(new RegExp(`; Dense 2 trials, ${minutes(dense!).toFixed(1)} min, [0-9.]+ ?[GTP]?FLOPs\\.`));
    // a rerun reuses the finished trials
    r = spawnSync(process.execPath, [cli, 'study', '--config', cfg], { encoding: 'utf8', timeout: 600_000, env });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pretrain moe-t0: .*resuming at step 2/);
    // a dataset without test files is refused before any trial trains
    const noTest = join(dir, 'no-test');
    mkdirSync(noTest, { recursive: true });
    for (const f of readdirSync(join(dir, 'shapes'))) if (!f.includes('_test')) symlinkSync(join(dir, 'shapes', f), join(noTest, f));
    r = spawnSync(process.execPath, [cli, 'study', '--config', config('s-notest', { split: 'test', search, data: noTest })], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no vqa_test\.arrow/);
    expect(existsSync(join(dir, 's-notest', 'st-search'))).toBe(false);
  }, 900_000);

  test('config mistakes are named before anything trains', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ models: [{ id: 'm', experts: 2 }, { id: 'd' }], seed: 3 }));
    let r = spawnSync(process.execPath, [cli, 'study', '--config', bad], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown key 'seed' \(did you mean 'seeds'\?\)/);
    writeFileSync(bad, JSON.stringify({ models: [{ id: 'm', experts: 2 }, { id: 'd' }], compare: [{ a: 'm', b: 'dd' }] }));
    r = spawnSync(process.execPath, [cli, 'study', '--config', bad], { encoding: 'utf8', env });
    expect(r.stderr).toMatch(/compare\[0\]\.b 'dd' is not a model id \(did you mean 'd'\?\)/);
    r = spawnSync(process.execPath, [cli, 'study', '--budget', 'full', '--config', bad], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--budget picks a built-in study; --config sets its own models, seeds and steps/);
    r = spawnSync(process.execPath, [cli, 'study', '--budget', 'ful'], { encoding: 'utf8', env });
    expect(r.stderr).toMatch(/--budget must be quick or full, got 'ful' \(did you mean 'full'\?\)/);
    r = spawnSync(process.execPath, [cli, 'study', '--seeds', '0,x'], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--seeds \(item 2\) must be an integer ≥ 0, got 'x'/);
  });
});
