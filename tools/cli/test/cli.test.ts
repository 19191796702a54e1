import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('vlmoe info', () => {
  test('base with 32 experts: ≈ 1.9B total, ≈ 180M active (the seed paper\'s numbers)', () => {
    const r = run('info', '--preset', 'base', '--experts', '32', '--json');
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.totalParameters).toBeGreaterThan(1.85e9);
    expect(s.totalParameters).toBeLessThan(1.95e9);
    expect(s.activeParameters).toBeGreaterThan(175e6);
    expect(s.activeParameters).toBeLessThan(185e6);
    expect(s.moeBlocks).toEqual([1, 3, 5, 7, 9, 11]);
    const human = run('info', '--preset', 'base', '--experts', '32');
    expect(human.stdout).toMatch(/total parameters\s+1\.93B/);
    expect(human.stdout).toMatch(/active per token\s+175\.7M/);
    const dense = JSON.parse(run('info', '--preset=base', '--json').stdout);
    expect(dense.totalParameters).toBeGreaterThan(175e6);
    expect(dense.totalParameters).toBeLessThan(180e6);
  });

  test('bad options are named, with the usage', () => {
    const r = run('info', '--preset', 'base', '--expert', '4');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --expert/);
    expect(run('info', '--preset', 'huge').stderr).toMatch(/unknown preset 'huge'/);
    expect(run('info', '--experts', '0').stderr).toMatch(/--experts must be a positive integer/);
    expect(run('frobnicate').stderr).toMatch(/unknown command 'frobnicate'/);
    expect(run('--help').stdout).toMatch(/usage: vlmoe <command>/);
  });
});

test('vlmoe data forwards to the @vlmoe/data tool', () => {
  const r = run('data', '--help');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/usage: vlmoe-data/);
});
