import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../../parallel/dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/ep.mjs', import.meta.url));

describe('expert parallel MoE (shm process group)', () => {
  for (const n of [2, 4]) {
    test(`EP ${n}: outputs and gradients equal the single-process layer`, () => {
      const r = spawnSync(process.execPath, [launcher, '--nproc', String(n), worker], { encoding: 'utf8', timeout: 170_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(out.match(/expert parallel ok/g)?.length, out).toBe(n);
      expect(r.status, out).toBe(0);
    });
  }
});
