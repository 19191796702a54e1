import { describe, expect, test } from 'vitest';
import { exampleScores, formatMeanSd, meanSd, pairScores, pairedBootstrap, quantileSorted, verdict } from '../src/index.js';

/** Every bootstrap resample of tiny samples, enumerated: the exact distribution of the statistic. */
function exactDistribution(seeds: { a: number[]; b: number[] }[]): number[] {
  const perSeed = seeds.map(({ a, b }) => {
    const d = a.map((x, i) => x - b[i]!);
    const n = d.length;
    const means: number[] = [];
    const idx = new Array<number>(n).fill(0);
    for (;;) {
      means.push(idx.reduce((s, i) => s + d[i]!, 0) / n);
      let k = 0;
      while (k < n && ++idx[k]! === n) idx[k++] = 0;
      if (k === n) break;
    }
    return means;
  });
  let combos: number[] = [0];
  for (const means of perSeed) combos = combos.flatMap((c) => means.map((m) => c + m));
  return combos.map((c) => c / seeds.length).sort((x, y) => x - y);
}

describe('paired bootstrap', () => {
  const seeds = [
    { a: [1, 0, 1, 1], b: [0, 0, 1, 0] },
    { a: [0.3, 1, 0.6, 0], b: [0.3, 0, 1, 0] },
  ];

  test('matches the exact bootstrap distribution (every resample enumerated) within Monte Carlo error', () => {
    const exact = exactDistribution(seeds); // 4^4 × 4^4 = 65,536 equally likely resamples
    const r = pairedBootstrap(seeds, { resamples: 200_000, seed: 3 });
    expect(r.estimate).toBeCloseTo((0.5 + 0.15) / 2, 12);
    // each endpoint lies between the exact quantiles at level ± 0.005
    expect(r.low).toBeGreaterThanOrEqual(quantileSorted(exact, 0.02) - 1e-12);
    expect(r.low).toBeLessThanOrEqual(quantileSorted(exact, 0.03) + 1e-12);
    expect(r.high).toBeGreaterThanOrEqual(quantileSorted(exact, 0.97) - 1e-12);
    expect(r.high).toBeLessThanOrEqual(quantileSorted(exact, 0.98) + 1e-12);
    const mean = exact.reduce((x, y) => x + y, 0) / exact.length;
    const sd = Math.sqrt(exact.reduce((x, y) => x + (y - mean) ** 2, 0) / exact.length);
    expect(r.se).toBeCloseTo(sd, 2);
  });

  test('paired: a constant shift gives a zero-width interval; more seeds and examples narrow it; seeded', () => {
    const b = Array.from({ length: 50 }, (_, i) => (i * 37) % 11);
    const shifted = pairedBootstrap([{ a: b.map((x) => x + 0.25), b }], { resamples: 500 });
    expect([shifted.estimate, shifted.low, shifted.high]).toEqual([0.25, 0.25, 0.25].map((x) => expect.closeTo(x, 12)));
    const noisy = (n: number, s: number) => ({ a: Array.from({ length: n }, (_, i) => ((i * 7 + s) % 5) / 4), b: Array.from({ length: n }, (_, i) => ((i * 3 + s) % 5) / 4) });
    const one = pairedBootstrap([noisy(40, 0)], { resamples: 3000 });
    const three = pairedBootstrap([noisy(40, 0), noisy(40, 1), noisy(40, 2)], { resamples: 3000 });
    const bigger = pairedBootstrap([noisy(400, 0)], { resamples: 3000 });
    expect(three.high - three.low).toBeLessThan(one.high - one.low);
    expect(bigger.high - bigger.low).toBeLessThan((one.high - one.low) / 2);
    expect(pairedBootstrap(seeds, { seed: 9 })).toEqual(pairedBootstrap(seeds, { seed: 9 }));
  });

  test('large samples: the percentile interval ≈ estimate ± 1.96 standard errors', () => {
    const n = 2000;
    const a = Array.from({ length: n }, (_, i) => ((i * 2654435761) % 1000) / 1000);
    const b = Array.from({ length: n }, (_, i) => ((i * 40503 + 7) % 1000) / 1000);
    const d = a.map((x, i) => x - b[i]!);
    const mean = d.reduce((x, y) => x + y, 0) / n;
    const se = Math.sqrt(d.reduce((x, y) => x + (y - mean) ** 2, 0) / (n - 1) / n);
    const r = pairedBootstrap([{ a, b }], { resamples: 4000, seed: 1 });
    expect(r.low).toBeCloseTo(mean - 1.96 * se, 2);
    expect(r.high).toBeCloseTo(mean + 1.96 * se, 2);
  });

  test('bad input is named', () => {
    expect(() => pairedBootstrap([])).toThrow(/no seeds/);
    expect(() => pairedBootstrap([{ a: [1, 2], b: [1] }])).toThrow(/seed 0: 2 scores for A but 1 for B/);
    expect(() => pairedBootstrap([{ a: [1, Number.NaN], b: [1, 1] }])).toThrow(/seed 0, example 1: a score is not finite/);
    expect(() => pairedBootstrap(seeds, { level: 1.2 })).toThrow(/level must be in \(0, 1\)/);
  });

  test('type-7 quantiles and the verdict in plain words', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileSorted([5], 0.9)).toBe(5);
    const iv = { estimate: 0.021, low: 0.009, high: 0.033, level: 0.95, resamples: 1, se: 0 };
    expect(verdict('MoE > dense twin on VQA', iv, { scale: 100 })).toBe('MoE > dense twin on VQA: yes, +2.10 (95% interval +0.90 … +3.30)');
    expect(verdict('x', { ...iv, low: -0.01 }, { scale: 100 })).toMatch(/^x: not shown, \+2\.10 \(95% interval −1\.00 … \+3\.30\)$/);
    expect(verdict('x', { ...iv, estimate: -0.02, low: -0.03, high: -0.01 })).toMatch(/^x: no, /);
  });
});

describe('mean ± s.d. over seeds', () => {
  test('sample standard deviation (n − 1)', () => {
    expect(meanSd([38.5, 46.8, 42.1])).toEqual({ mean: expect.closeTo(42.4666667, 6), sd: expect.closeTo(4.162131, 6), n: 3 }); // Python's statistics.stdev gives 4.162130864513191
    expect(meanSd([38.5, 46.8, 42.1])).toMatchObject({ n: 3 });
    expect(meanSd([5])).toEqual({ mean: 5, sd: 0, n: 1 });
    expect(formatMeanSd(meanSd([1, 2, 3]))).toBe('2.00 ± 1.00');
    expect(formatMeanSd(meanSd([1.234]))).toBe('1.23');
    expect(() => meanSd([])).toThrow(/no values/);
  });
});

describe('per-example scores of task results', () => {
  test('VQA per question, NLVR per statement, TR@1 per image, IR@1 per caption; paired by key', () => {
    const vqa = exampleScores({ task: 'vqa', official: { perQuestion: new Map([[7, 1], [3, 0.3]]) } } as never, 'vqa');
    expect(vqa.keys).toEqual(['7', '3']);
    expect(Array.from(vqa.scores)).toEqual([1, 0.3]);
    const nlvr = (preds: boolean[]) => exampleScores({ task: 'nlvr', predictions: preds.map((p, i) => ({ identifier: `id${i}`, sentence: 's', prediction: p, label: i % 2 === 0 })) } as never, 'nlvr');
    expect(Array.from(nlvr([true, true, false]).scores)).toEqual([1, 0, 0]);
    const ret = { task: 'retrieval', ranks: { tr: Int32Array.from([0, 2, -1]), ir: Int32Array.from([1, 0, 0, 5]) } } as never;
    expect(exampleScores(ret, 'tr1')).toEqual({ metric: 'tr1', keys: ['0', '1'], scores: Float64Array.from([1, 0]) });
    expect(Array.from(exampleScores(ret, 'ir1').scores)).toEqual([0, 1, 1, 0]);
    // paired by key whatever the order
    const other = { metric: 'vqa' as const, keys: ['3', '7'], scores: Float64Array.from([0.6, 0]) };
    expect(pairScores(vqa, other)).toEqual({ a: Float64Array.from([1, 0.3]), b: Float64Array.from([0, 0.6]) });
    expect(() => pairScores(vqa, { ...other, keys: ['3', '8'] })).toThrow(/example '7' is scored for one model only/);
    expect(() => exampleScores(ret, 'vqa')).toThrow(/needs a VQA result/);
  });
});
