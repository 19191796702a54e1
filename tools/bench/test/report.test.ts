/**
 * The helpers every benchmark shares (src/report.ts): the median, the timed-step loop, our
 * thread settings, and running a child process and reading the JSON it printed last.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '@vlmoe/tensor';
import { bestOverOurThreads, childEnv, forEachOurThreadSetting, lastJsonLine, median, ourThreadSettings, runChild, timeSteps } from '../src/report.js';
import { findPython, torchPython } from '../src/torch.js';

describe('median and the timed-step loop', () => {
  it('median: the middle value, the mean of the middle two for an even count, any order', () => {
    expect(median([5])).toBe(5);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([1e9, -1, 0, 0, 7])).toBe(0);
    const v = [9, 2, 7];
    median(v);
    expect(v).toEqual([9, 2, 7]); // the input is not sorted in place
    expect(() => median([])).toThrow(/empty/);
  });

  it('timeSteps: warm-up calls are run but not timed; the last return value comes back', () => {
    const calls: number[] = [];
    const r = timeSteps((i) => {
      calls.push(i);
      return i * 10;
    }, 2, 3);
    expect(calls).toEqual([0, 1, 2, 3, 4]);
    expect(r.ms).toHaveLength(3);
    for (const m of r.ms) expect(m).toBeGreaterThanOrEqual(0);
    expect(r.medianMs).toBe(median(r.ms));
    expect(r.last).toBe(40);
  });
});

describe('our thread settings', () => {
  it('runs the body at each setting with the pool set to it, and restores the default even when the body throws', () => {
    const seen: number[] = [];
    forEachOurThreadSetting((t) => seen.push(T.nativeInfo().threads === t ? t : -1));
    expect(seen).toEqual(ourThreadSettings());
    expect(() => forEachOurThreadSetting((t) => {
      if (t === 1) throw new Error('boom');
    })).toThrow('boom');
    expect(T.nativeInfo().threads).toBe(ourThreadSettings()[0]);
  });

  it('bestOverOurThreads keeps the fastest setting', () => {
    // 1 is always one of our settings: make it the fast one
    expect(bestOverOurThreads(() => (T.nativeInfo().threads === 1 ? 1 : 2))).toEqual({ seconds: 1, threads: 1 });
  });
});

describe('child processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlmoe-bench-child-'));
  const script = join(dir, 'child.mjs');
  writeFileSync(script, [
    "const [mode, args] = [process.argv[2], JSON.parse(process.argv[3])];",
    "if (mode === 'fail') { console.error('child says no'); process.exit(3); }",
    "if (mode === 'garbage') { console.log('not json'); process.exit(0); }",
    "console.log('progress line');",
    "console.log(JSON.stringify({ mode, args, env: process.env.VLMOE_TEST_VAR ?? null, removed: process.env.VLMOE_TEST_GONE ?? null }));",
  ].join('\n'));

  it('runChild passes the mode, the JSON arguments and the environment, and returns the last JSON line', () => {
    process.env.VLMOE_TEST_GONE = 'here';
    try {
      const out = runChild<{ mode: string; args: unknown; env: string | null; removed: string | null }>('echo', { a: [1, 2], b: 'x' }, { script, env: { VLMOE_TEST_VAR: 'set', VLMOE_TEST_GONE: undefined } });
      expect(out).toEqual({ mode: 'echo', args: { a: [1, 2], b: 'x' }, env: 'set', removed: null });
    } finally {
      delete process.env.VLMOE_TEST_GONE;
    }
  });

  it('a failing child and a child without a JSON result give errors naming it', () => {
    expect(() => runChild('fail', {}, { script, what: 'the test child' })).toThrow(/the test child failed \(exit 3\):\nchild says no/);
    expect(() => runChild('garbage', {}, { script })).toThrow(/garbage child: its last line of output is not JSON: "not json"/);
    expect(() => lastJsonLine('', 'nothing')).toThrow(/nothing/);
  });

  it('childEnv applies changes without touching this process', () => {
    const env = childEnv({ VLMOE_TEST_A: '1', PATH: undefined });
    expect(env.VLMOE_TEST_A).toBe('1');
    expect('PATH' in env).toBe(false);
    expect(process.env.PATH).toBeDefined();
    expect(process.env.VLMOE_TEST_A).toBeUndefined();
  });

  it('findPython: an interpreter that imports the modules, or null for a module nobody has', () => {
    expect(findPython(['vlmoe_no_such_module_xyz'])).toBeNull();
    expect(torchPython()).toBe(findPython(['torch']));
  });
});
