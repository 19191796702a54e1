/**
 * The examples, run as the READMEs show them (from the repository root, after the build):
 * the MLP learns its spiral; the pretraining example goes through @vlmoe/cli's trainer, its
 * loss falls, and on 2 ranks with expert parallelism it computes the losses of 1 process.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const sh = (cmd: string) => spawnSync('bash', ['-c', cmd], { cwd: root, encoding: 'utf8', env, timeout: 280_000 });
const run = join(root, 'runs', 'pretrain-tiny');
const losses = () => readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
afterAll(() => rmSync(run, { recursive: true, force: true }));

describe('examples', () => {
  test('node tools/examples/dist/mlp_classifier.js learns the spiral with flat memory', () => {
    const r = sh('node tools/examples/dist/mlp_classifier.js');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/train accuracy (9\d|100)\.\d%/);
  });

  test('pretrain-tiny: the recipe trainer from a program; 2 ranks with EP 2 track the losses of 1 process (capacity routing: close, not equal)', () => {
    const one = sh('node tools/examples/dist/pretrain_tiny.js --steps 12');
    expect(one.status, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toMatch(/loss \d\.\d+ → \d\.\d+ over 12 steps \(run folder runs\/pretrain-tiny\)/);
    const ref = losses();
    expect(ref.length).toBe(12);
    const two = sh('npx vlmoe-run --nproc 2 tools/examples/dist/pretrain_tiny.js --steps 12 --ep 2');
    expect(two.status, two.stdout + two.stderr).toBe(0);
    const l = losses();
    // the default routing has capacity (tokens may be dropped per rank) and a balance loss: close, not equal
    l.forEach((v, i) => expect(Math.abs(v - ref[i]!) / ref[i]!, `step ${i + 1}`).toBeLessThan(0.05));
    expect(l[0]).toBeCloseTo(ref[0]!, 2);
  });
});
