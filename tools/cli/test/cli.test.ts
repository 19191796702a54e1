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

  test('bad options are named, with the usage; --experts 0 is the dense model, k > experts is refused', () => {
    const r = run('info', '--preset', 'base', '--expert', '4');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --expert \(did you mean '--experts'\?\)/);
    expect(r.stderr).toMatch(/usage: vlmoe info/);
    const bad = (args: string[], re: RegExp) => {
      const x = run(...args);
      expect([x.status, x.stdout], args.join(' ')).toEqual([2, '']);
      expect(x.stderr).toMatch(re);
    };
    bad(['info', '--preset', 'huge'], /--preset must be one of tiny, small, base, large, got 'huge'/);
    bad(['info', '--experts=-1'], /--experts must be an integer ≥ 0, got '-1'/);
    bad(['info', '--experts', '2', '--k', '4'], /--k 4 is more than --experts 2/);
    bad(['info', '--k', '2'], /--k 2 needs --experts ≥ 1/);
    bad(['info', '--json=yes'], /option --json takes no value/);
    bad(['info', 'base'], /unexpected argument 'base'/);
    bad(['frobnicate'], /unknown command 'frobnicate'/);
    bad(['pretrain'], /--config <file\.json> is required/);
    bad(['pretrain', '--config'], /option --config needs a value/);
    bad(['eval', '--run', 'x', '--split', 'tset'], /--split must be val or test, got 'tset' \(did you mean 'test'\?\)/);
    bad(['bench', '--jobz', '2'], /unknown option --jobz \(did you mean '--jobs'\?\)/);
    bad([], /usage: vlmoe <command>/);
    const dense = JSON.parse(run('info', '--preset', 'small', '--experts', '0', '--json').stdout);
    expect(dense.experts).toBe(0);
    expect(dense.totalParameters).toBe(dense.activeParameters);
    expect(dense).toEqual(JSON.parse(run('info', '--preset', 'small', '--json').stdout));
  });

  test('--help and -h on every command print its usage and exit 0; --version', () => {
    for (const cmd of [[], ['pretrain'], ['finetune'], ['eval'], ['bench'], ['info']]) {
      for (const h of ['--help', '-h']) {
        const r = run(...cmd, h);
        expect(r.status, [...cmd, h].join(' ')).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^usage: vlmoe ${cmd[0] ?? '<command>'}`));
      }
    }
    const v = run('--version');
    expect([v.status, v.stdout]).toEqual([0, 'vlmoe 0.1.0\n']);
  });
});

test('vlmoe data forwards to the @vlmoe/data tool', () => {
  const r = run('data', '--help');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/usage: vlmoe-data/);
});

describe('the installed commands (node_modules/.bin, as npx runs them)', () => {
  const bin = (name: string) => fileURLToPath(new URL(`../../../node_modules/.bin/${name}`, import.meta.url));
  const runBin = (name: string, ...args: string[]) => spawnSync(bin(name), args, { encoding: 'utf8' });
  for (const name of ['vlmoe', 'vlmoe-data', 'vlmoe-run', 'vlmoe-bench']) {
    test(`${name}: --help and -h exit 0 with the usage, --version prints the version, an unknown option exits 2`, () => {
      for (const h of ['--help', '-h']) {
        const r = runBin(name, h);
        expect(r.status, `${name} ${h}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(/^usage: /);
      }
      const v = runBin(name, '--version');
      expect([v.status, v.stdout.trim()]).toEqual([0, `${name} 0.1.0`]);
      const bad = runBin(name, '--frobnicate');
      expect(bad.status, bad.stdout + bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(/--frobnicate/);
      expect(bad.stdout).toBe('');
    });
  }
});
