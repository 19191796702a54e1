/**
 * `npm run bench -- parallel` from its command (VLMOE_BENCH_QUICK=1: the tiny preset): the
 * figures that must hold whatever the machine's speed — the split layers cost 1/2 per rank at
 * TP 2, the tensor-parallel traffic equals the analytic count, TP 2 × DP 1 moves no gradients.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../results/parallel.json', import.meta.url));

describe('bench parallel', () => {
  it('runs from its command and its measured figures match the analytic ones', () => {
    const r = spawnSync(process.execPath, [MAIN, 'parallel'], { encoding: 'utf8', env: { ...process.env, VLMOE_BENCH_QUICK: '1' }, maxBuffer: 1 << 24, timeout: 600_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const res = JSON.parse(readFileSync(RESULTS, 'utf8')) as { preset: string; runs: Record<string, { tp: number; splitBytes: number; fullSplitBytes: number; tpBytesPerStep: number; analyticTpBytesPerStep: number; dpBytesPerStep: number; paramBytes: number }[]> };
    expect(res.preset).toBe('tiny');
    const tp2 = res.runs.tp2![0]!, dp2 = res.runs.dp2![0]!, etp2 = res.runs.etp2![0]!;
    expect(tp2.tp).toBe(2);
    // the word embedding and MLM decoder of a vocabulary 2 does not divide carry one padding row per rank at most
    expect(2 * tp2.splitBytes).toBeGreaterThanOrEqual(tp2.fullSplitBytes);
    expect(2 * tp2.splitBytes - tp2.fullSplitBytes).toBeLessThanOrEqual(2 * 4 * 1024);
    expect(tp2.tpBytesPerStep).toBe(tp2.analyticTpBytesPerStep);
    expect(tp2.tpBytesPerStep).toBeGreaterThan(0);
    expect(tp2.dpBytesPerStep).toBe(0);
    expect(dp2.tpBytesPerStep).toBe(0);
    expect(dp2.dpBytesPerStep).toBeGreaterThan(0);
    expect(tp2.paramBytes).toBeLessThan(dp2.paramBytes);
    // with the experts split as well, the experts' w1, b1 and w2 move from replicated to split
    expect(etp2.paramBytes).toBeLessThan(tp2.paramBytes);
    expect(etp2.splitBytes).toBeGreaterThan(tp2.splitBytes);
  }, 600_000);
});
