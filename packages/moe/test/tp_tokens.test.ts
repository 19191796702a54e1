import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../../parallel/dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/tp_tokens.mjs', import.meta.url));

describe('MoE under tensor parallelism: tokens de-duplicated over the tensor-parallel group (shm)', () => {
  const layouts: [number, number, number][] = [[2, 2, 1], [4, 4, 1], [4, 2, 2]];
  for (const [n, tp, ep] of layouts) {
    test(`${n} ranks, TP ${tp} × EP ${ep}: each kept assignment routed once per group; outputs and gradients equal one process (whole and split experts)`, () => {
      const r = spawnSync(process.execPath, [launcher, '--nproc', String(n), worker, String(tp), String(ep)], { encoding: 'utf8', timeout: 170_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(out.match(/tp tokens ok/g)?.length, out).toBe(n);
      expect(r.status, out).toBe(0);
    });
  }
});
