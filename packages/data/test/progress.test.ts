import { afterEach, describe, expect, test, vi } from 'vitest';
import { Progress } from '../src/index.js';

/** The lines a bar writes in line mode (VLMOE_PROGRESS=1), with Date.now under the test's control. */
function capture(): { lines: string[]; at(ms: number): void } {
  let now = 1_000_000;
  vi.spyOn(Date, 'now').mockImplementation(() => now);
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (lines.push(String(s).trimEnd()), true));
  vi.stubEnv('VLMOE_PROGRESS', '1');
  return { lines, at: (ms) => (now = 1_000_000 + ms) };
}

describe('Progress', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  test('line mode: one line per 10%, rate and ETA from the elapsed time, a final line', () => {
    const c = capture();
    const bar = new Progress('job', 100);
    c.at(10_000);
    bar.tick(25, 'loss 1.0');
    expect(c.lines).toEqual(['job [######..................] 25/100 25% 2.5/s eta 30s loss 1.0']);
    bar.tick(1); // still in the same decile: no line
    expect(c.lines).toHaveLength(1);
    c.at(40_000);
    bar.tick(74);
    bar.finish();
    expect(c.lines.at(-1)).toBe('job: 100/100 in 40.0s');
  });

  test('resumeAt: the steps done before count in the total, not in the rate (a resumed run)', () => {
    const c = capture();
    const bar = new Progress('pretrain', 400);
    bar.resumeAt(100);
    expect(c.lines).toEqual([]); // nothing drawn for work done earlier
    c.at(10_000);
    bar.tick(40); // 140/400: 40 steps in 10 s
    expect(c.lines).toEqual(['pretrain [########................] 140/400 35% 4.0/s eta 65s']);
  });

  test('VLMOE_PROGRESS=0 silences every line', () => {
    const c = capture();
    vi.stubEnv('VLMOE_PROGRESS', '0');
    const bar = new Progress('quiet', 10);
    bar.tick(10);
    bar.note('hello');
    bar.finish();
    expect(c.lines).toEqual([]);
  });
});
