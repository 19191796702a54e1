/**
 * The real-data layout as the CLI README documents it: `prepare-real-data.sh` builds train / dev
 * / test splits from ../shared/data (the dev splits carved with `vlmoe-data split`), and
 * `vlmoe study` with tools/cli/recipes/real-data.json trains on train, draws its curves on the
 * dev splits and computes its table — and easy-VQA's accuracy per answer type — on the test
 * splits (here one seed, one model, 2 steps per stage).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArrowReader } from '@vlmoe/data';
import { afterAll, describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'tools/cli/dist/main.js');
const shared = resolve(root, '../shared/data');
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-real-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, VLMOE_PROGRESS: '0' };

async function rowsOf(file: string): Promise<number> {
  const r = await ArrowReader.open(file);
  let n = 0;
  for await (const b of r.batches()) n += b.numRows;
  await r.close();
  return n;
}

describe('real data: prepare-real-data.sh and real-data.json', () => {
  test('train / dev / test files from the shared datasets, then a study whose table is on the test splits', async () => {
    const data = join(dir, 'real');
    const prep = spawnSync('bash', ['tools/cli/recipes/prepare-real-data.sh', shared, data], { cwd: root, encoding: 'utf8', env, timeout: 600_000 });
    expect(prep.status, prep.stdout + prep.stderr).toBe(0);
    expect(readdirSync(data).filter((f) => !f.startsWith('.')).sort()).toEqual([
      'answers.json', 'captions_test.arrow', 'captions_train.arrow', 'captions_val.arrow', 'nlvr2_test.arrow', 'nlvr2_train.arrow', 'nlvr2_val.arrow', 'tokenizer.json',
      'vqa_test.arrow', 'vqa_test_annotations.json', 'vqa_test_answers.json', 'vqa_train.arrow', 'vqa_train_annotations.json', 'vqa_train_answers.json', 'vqa_val.arrow', 'vqa_val_annotations.json', 'vqa_val_answers.json',
    ]);
    expect(existsSync(join(data, '.all'))).toBe(false); // the whole training sets are only an intermediate
    const rows: Record<string, number> = {};
    for (const f of readdirSync(data).filter((f) => f.endsWith('.arrow'))) rows[f] = await rowsOf(join(data, f));
    // easy-VQA: 4000 training images, 10 % held out; NLVR1 test: 990 rows; Flickr8k-mini: 753 photos, 10 % held out
    expect(rows).toMatchObject({ 'vqa_train.arrow': 3600, 'vqa_val.arrow': 400, 'vqa_test.arrow': 1000, 'captions_train.arrow': 678, 'captions_val.arrow': 75, 'captions_test.arrow': 130, 'nlvr2_test.arrow': 985 });
    expect(rows).toMatchObject({ 'nlvr2_train.arrow': 805, 'nlvr2_val.arrow': 185 }); // 990 rows, 20 % of the statements held out

    // the documented config as a one-seed study, with 2 steps per stage and one model
    const cfg = JSON.parse(readFileSync(join(root, 'tools/cli/recipes/real-data.json'), 'utf8'));
    expect(cfg.split).toBe('test');
    const steps = { steps: 2, batch: 8, warmup: 1, checkpointEvery: 2, evalEvery: 1 };
    const small = {
      ...cfg, $schema: undefined, data, runs: join(dir, 'runs'), evalBatch: 128, models: [cfg.models[0]], seeds: [0],
      pretrain: { ...cfg.pretrain, ...steps },
      finetune: Object.fromEntries(Object.entries(cfg.finetune as Record<string, object>).map(([t, f]) => [t, { ...f, ...steps }])),
    };
    const file = join(dir, 'real-small.json');
    writeFileSync(file, JSON.stringify(small));
    const r = spawnSync(process.execPath, [cli, 'study', '--config', file], { cwd: root, encoding: 'utf8', env, timeout: 600_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| *VL-MoE-tiny \(8 experts, top-1\)/);
    const bench = readFileSync(join(dir, 'runs', `${cfg.name}-seed0`, 'report', 'report.md'), 'utf8');
    expect(bench).toContain(`vlmoe bench ${cfg.name}-seed0 (test split of real)`);
    for (const t of ['easy-VQA', 'NLVR1', 'COCO-mini']) expect(bench).toContain(t);
    // the fine-tuning runs validated as they trained (finetune evaluates the val split: the dev files), the table is on test
    const runs = join(dir, 'runs', `${cfg.name}-seed0`);
    const vqaRun = readdirSync(runs).find((d) => d.endsWith('-vqa'))!;
    expect(readFileSync(join(runs, vqaRun, 'val.jsonl'), 'utf8').trim().split('\n').length).toBe(2);
    // easy-VQA's answer types (from the converter's annotations) give the study's accuracy per type
    const ann = JSON.parse(readFileSync(join(data, 'vqa_test_annotations.json'), 'utf8')) as Record<string, { answerType: string }>;
    const counts: Record<string, number> = {};
    for (const a of Object.values(ann)) counts[a.answerType] = (counts[a.answerType] ?? 0) + 1;
    const studyDir = join(dir, 'runs', cfg.name, 'study');
    const sj = JSON.parse(readFileSync(join(studyDir, 'study.json'), 'utf8')) as { table: Record<string, Record<string, { mean: number }>>; vqaByType: { task: string; by: string; counts: Record<string, number>; table: Record<string, Record<string, { mean: number }>> }[] };
    expect(sj.vqaByType.map((x) => ({ task: x.task, by: x.by, counts: x.counts }))).toEqual([{ task: 'easy-VQA', by: 'answer type', counts }]);
    const label = cfg.models[0].label as string;
    const byType = sj.vqaByType[0]!.table[label]!;
    const weighted = Object.entries(counts).reduce((a, [t, n]) => a + byType[t]!.mean * n, 0) / Object.values(counts).reduce((a, n) => a + n, 0);
    expect(weighted).toBeCloseTo(sj.table[label]!['easy-VQA acc']!.mean, 1);
    const md = readFileSync(join(studyDir, 'report.md'), 'utf8');
    expect(md).toContain(`## easy-VQA by answer type`);
    expect(md).toContain(`| Answer type | Questions | ${label} |`);
    for (const t of ['color', 'shape', 'yes/no']) expect(md).toMatch(new RegExp(`\\| ${t} \\| ${counts[t]} \\| \\d+\\.\\d+ \\|`));
  }, 900_000);
});
