import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/resume.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Out { losses: number[]; lr: number[]; steps: number; params: number[][] }
function run(mode: string, stage: number, nproc = 2, ckpt = `s${stage}`): Out {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), worker], {
    encoding: 'utf8', env: { ...process.env, MODE: mode, STEPS: '10', SPLIT: '5', STAGE: String(stage), DIR: join(dir, ckpt) }, timeout: 170_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  return JSON.parse(out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).find((l) => l.startsWith('{'))!) as Out;
}

describe('resume from a checkpoint', () => {
  for (const stage of [0, 2, 3]) {
    test(`2 ranks, ZeRO-${stage}: 10 steps straight = 5 steps, stop, resume for 5 (losses, lr, parameters bit for bit)`, () => {
      const straight = run('straight', stage);
      const first = run('first', stage);
      const second = run('second', stage);
      expect([...first.losses, ...second.losses]).toEqual(straight.losses);
      expect(second.steps).toBe(10);
      expect(second.lr).toEqual(straight.lr);
      expect(second.params).toEqual(straight.params);
    });
  }

  // the checkpoint's global layout: written at one stage and world size, resumed at another
  const close = (a: number[], b: number[], what: string) => a.forEach((v, i) => expect(Math.abs(v - b[i]!), `${what}[${i}]`).toBeLessThan(1e-6 * (1 + Math.abs(b[i]!))));
  for (const [from, to, nproc] of [[3, 0, 2], [0, 3, 2], [3, 1, 4], [2, 3, 4]] as const) {
    test(`written at ZeRO-${from} on 2 ranks, resumed at ZeRO-${to} on ${nproc}: the same losses and parameters as 10 steps straight`, () => {
      const straight = run('straight', from);
      const ckpt = `x${from}-${to}-${nproc}`;
      run('first', from, 2, ckpt);
      const second = run('second', to, nproc, ckpt);
      expect(second.steps).toBe(10);
      close(second.losses, straight.losses.slice(5), 'loss');
      second.params.forEach((p, i) => close(p, straight.params[i]!, `parameter ${i}`));
    });
  }
});
