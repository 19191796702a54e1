import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/gather.mjs', import.meta.url));

describe('allGatherRows (differentiable all-gather for contrastive negatives)', () => {
  for (const n of [1, 2, 4]) {
    test(`${n} rank(s): gathered shape and each rank's gradient equal the one-process gradient of the summed loss`, () => {
      const r = spawnSync(process.execPath, [launcher, '--nproc', String(n), worker], { encoding: 'utf8', timeout: 120_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out).toBe(0);
      const rows = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { rank: number; diff: number; gathered: number[] });
      expect(rows.length, out).toBe(n);
      for (const row of rows) {
        expect(row.gathered).toEqual([3 * n, 5]);
        expect(row.diff, JSON.stringify(row)).toBeLessThan(1e-12);
      }
    });
  }
});
