import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../../parallel/dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/ckpt.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Report { steps: number; probe: number[]; params: Record<string, number[]>; splitExperts: number }

function run(world: number, ep: number, stage: number, mode: 'save' | 'load', tp = 1, where = dir, etp = false): Report {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(world), worker], {
    encoding: 'utf8', env: { ...process.env, EP: String(ep), STAGE: String(stage), TP: String(tp), ETP: etp ? '1' : '0', MODE: mode, DIR: where }, timeout: 170_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  const line = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).find((l) => l.startsWith('{'));
  expect(line, out).toBeDefined();
  return JSON.parse(line!) as Report;
}

function expectClose(a: number[], b: number[], what: string): void {
  expect(a.length, what).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i]!), `${what}[${i}]: ${v} vs ${b[i]}`).toBeLessThan(1e-5 * (1 + Math.abs(b[i]!))));
}

describe('checkpoints load at another layout', () => {
  test('saved at (world 4, EP 4, ZeRO-2); loaded at (world 2, EP 2, ZeRO-1) and (world 1): same outputs, same next step', () => {
    const saved = run(4, 4, 2, 'save');
    expect(saved.steps).toBe(4);
    const tag = readFileSync(join(dir, 'latest'), 'utf8');
    expect(tag).toBe('global_step3');
    const files = readdirSync(join(dir, tag)).sort();
    expect(files).toEqual(['checkpoint.json', 'model-00001-of-00001.safetensors', 'optim-00001-of-00001.safetensors']);
    const index = JSON.parse(readFileSync(join(dir, tag, 'checkpoint.json'), 'utf8'));
    expect(index.layout).toEqual({ world: 4, expertParallel: 4, tensorParallel: 1, stage: 2 });
    for (const [world, ep, stage] of [[2, 2, 1], [1, 1, 0]] as const) {
      const loaded = run(world, ep, stage, 'load');
      expect(loaded.steps).toBe(4);
      expectClose(loaded.probe, saved.probe, `probe outputs at world ${world}`);
      expect(Object.keys(loaded.params).sort()).toEqual(Object.keys(saved.params).sort());
      for (const name of Object.keys(saved.params)) expectClose(loaded.params[name]!, saved.params[name]!, `${name} after the next step at world ${world}`);
    }
  });

  for (const etp of [false, true])
  test(`saved at (TP 2, EP 2, DP 2, ZeRO-2)${etp ? ' with expert tensor parallelism' : ''} on 4 ranks; loaded at (TP 1, EP 1), (TP 1, EP 4) and (TP 4, EP 1): same outputs, same next step`, () => {
    const tpDir = join(dir, etp ? 'etp' : 'tp');
    const saved = run(4, 2, 2, 'save', 2, tpDir, etp);
    expect(saved.steps).toBe(4);
    expect(saved.splitExperts, 'w1, b1 and w2 split by hidden units').toBe(etp ? 3 : 0);
    const index = JSON.parse(readFileSync(join(tpDir, readFileSync(join(tpDir, 'latest'), 'utf8'), 'checkpoint.json'), 'utf8'));
    expect(index.layout).toEqual({ world: 4, expertParallel: 2, tensorParallel: 2, stage: 2 });
    for (const [world, ep, tp] of [[1, 1, 1], [4, 4, 1], [4, 1, 4]] as const) {
      const loaded = run(world, ep, 0, 'load', tp, tpDir, etp);
      const at = `world ${world}, TP ${tp}, EP ${ep}`;
      expect(loaded.steps).toBe(4);
      expect(loaded.splitExperts).toBe(etp && tp > 1 ? 3 : 0);
      expectClose(loaded.probe, saved.probe, `probe outputs at ${at}`);
      expect(Object.keys(loaded.params).sort()).toEqual(Object.keys(saved.params).sort());
      for (const name of Object.keys(saved.params)) expectClose(loaded.params[name]!, saved.params[name]!, `${name} after the next step at ${at}`);
    }
  });
});
