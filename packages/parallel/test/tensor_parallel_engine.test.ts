import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/train_tp.mjs', import.meta.url));

interface Row { rank: number; start: number; tp: number; dp: number; maxDiff: number; lossDiff: number; normDiff: number; steps: number; params: number; refParams: number; attention: number; feedForward: number; modules: number; splitElements: number; replicatedElements: number }

function run(nproc: number, config: object, env: Record<string, string> = {}): Row[] {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), worker], {
    encoding: 'utf8', env: { ...process.env, CONFIG: JSON.stringify(config), ...env }, timeout: 170_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  const rows = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row);
  expect(rows.length, out).toBe(nproc);
  return rows;
}

const adam = { type: 'AdamW', params: { lr: 0.01, weight_decay: 0.01 } };
// the tiny LM's parameters: 3960 elements split (embedding, q·k·v and q/v biases, output
// projection weight, FFN, head), 96 replicated (two layer norms, the row-parallel biases)
const SPLIT = 3960, REPLICATED = 96;

function expectMatches(rows: Row[], tp: number, dp: number, steps = 4): void {
  for (const r of rows) {
    const what = JSON.stringify(r);
    expect(r.tp, what).toBe(tp);
    expect(r.dp, what).toBe(dp);
    expect(r.steps, what).toBe(steps);
    expect(r.params, what).toBe(r.refParams);
    expect(r.lossDiff, what).toBeLessThan(1e-5);
    expect(r.normDiff, what).toBeLessThan(1e-5);
    expect(r.maxDiff, what).toBeLessThan(2e-5);
    if (tp > 1) expect([r.attention, r.feedForward, r.modules], what).toEqual([1, 1, 1]);
    expect(r.splitElements, what).toBe(tp > 1 ? SPLIT / tp : 0);
    expect(r.replicatedElements, what).toBe(tp > 1 ? REPLICATED : SPLIT + REPLICATED);
  }
}

describe('engine with tensor_parallel_size: a transformer LM (attention, FFN, vocab-parallel embedding and loss) equals one process on the global batch', () => {
  test('TP 2 on 2 ranks, gradient clipping by the true global norm', () => {
    expectMatches(run(2, { train_batch_size: 8, tensor_parallel_size: 2, gradient_clipping: 0.5, optimizer: adam }), 2, 1);
  });
  test('TP 4 on 4 ranks', () => {
    expectMatches(run(4, { train_batch_size: 8, tensor_parallel_size: 4, gradient_clipping: 0.5, optimizer: adam }), 4, 1);
  });
  test('TP 2 × DP 2 with ZeRO-2 (partitions span tensor-parallel shards)', () => {
    expectMatches(run(4, { train_batch_size: 8, tensor_parallel_size: 2, zero_optimization: { stage: 2 }, gradient_clipping: 0.5, optimizer: adam }), 2, 2);
  });
  test('TP 2 × DP 2 with ZeRO-1 and 2 accumulation steps', () => {
    expectMatches(run(4, { train_batch_size: 8, tensor_parallel_size: 2, gradient_accumulation_steps: 2, zero_optimization: { stage: 1 }, gradient_clipping: 0.5, optimizer: adam }), 2, 2);
  });
  test('a tensor_parallel_size that does not divide the world, or heads that do not split, is refused with the reason', () => {
    const r = spawnSync(process.execPath, [launcher, '--nproc', '2', worker], {
      encoding: 'utf8', env: { ...process.env, CONFIG: JSON.stringify({ train_batch_size: 8, tensor_parallel_size: 3, optimizer: adam }) }, timeout: 60_000,
    });
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/tensor_parallel_size 3 does not divide the world size 2/);
  });
});

describe('checkpoints in the global layout load across tensor-parallel sizes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlmoe-tp-ckpt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test('written at TP 2 after 2 steps; resumed at TP 1, TP 4 and TP 2 × DP 2 (ZeRO-2), the next steps equal an uninterrupted one-process run', () => {
    const rows = run(2, { train_batch_size: 8, tensor_parallel_size: 2, optimizer: adam }, { STEPS: '2', SAVE_DIR: dir });
    expectMatches(rows, 2, 1, 2);
    for (const [n, tp, extra] of [[1, 1, {}], [4, 4, {}], [4, 2, { zero_optimization: { stage: 2 } }]] as const) {
      const resumed = run(n, { train_batch_size: 8, tensor_parallel_size: tp, optimizer: adam, ...extra }, { STEPS: '4', LOAD_DIR: dir });
      for (const r of resumed) expect(r.start).toBe(2);
      expectMatches(resumed, tp, n / tp);
    }
  });
});
