import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = (name: string) => fileURLToPath(new URL(`./workers/${name}`, import.meta.url));

function launch(nproc: number, script: string, env: Record<string, string> = {}, extra: string[] = []) {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), ...extra, worker(script)], {
    encoding: 'utf8', env: { ...process.env, VLMOE_SHM_SLOT_BYTES: String(64 << 10), ...env }, timeout: 170_000,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const shmSegments = () => readdirSync('/dev/shm').filter((f) => f.startsWith('vlmoe-'));

describe('shm process group', () => {
  for (const n of [1, 2, 4]) {
    test(`every collective on ${n} rank(s), world and subgroups, matches the local reference`, () => {
      const before = shmSegments().length;
      const r = launch(n, 'collectives.mjs');
      expect(r.out.match(/collectives ok/g)?.length, r.out).toBe(n);
      expect(r.status, r.out).toBe(0);
      if (n > 1) expect(r.out).toMatch(/^\[rank 1\] collectives ok$/m);
      expect(shmSegments().length, 'segments are unlinked once every rank attached').toBe(before);
    });
  }

  test('a rank that dies makes every other rank fail within the timeout, naming it; the launcher exits non-zero', () => {
    const r = launch(3, 'die.mjs', { VICTIM: '1' }, ['--timeout-ms', '20000']);
    expect(r.status, r.out).not.toBe(0);
    const failures = r.out.match(/failed after (\d+) ms: .*rank 1 \(pid \d+\) has exited/g) ?? [];
    expect(failures.length, r.out).toBe(2);
    for (const f of failures) expect(Number(/after (\d+) ms/.exec(f)![1])).toBeLessThan(20_000);
    expect(r.out).toMatch(/vlmoe-run: rank 1 exited with status 7/);
  });

  test('the launcher rejects bad arguments with its usage', () => {
    const r = spawnSync(process.execPath, [launcher, '--nproc', '0', 'x.js'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--nproc must be an integer in \[1, 64\]/);
    const r2 = spawnSync(process.execPath, [launcher, '--nproc', '2'], { encoding: 'utf8' });
    expect(r2.stderr).toMatch(/no script given/);
  });
});
