/**
 * The paired bootstrap interval of a difference between two models, over evaluation examples
 * and combined over seeds (Efron & Tibshirani ch. 13; the paired design of Koehn 2004 and of
 * Dror et al. 2018 for comparing NLP systems).
 *
 * For each seed s, `a[s][i]` and `b[s][i]` are the two models' scores on the same example i
 * (VQA: the official accuracy of question i; NLVR: 1 if statement i is right; retrieval: 1 if
 * query i's match is ranked first; …). The statistic is the mean over seeds of the per-seed
 * mean difference, mean_s mean_i (a − b). Each resample draws, for every seed independently,
 * n_s examples with replacement — the same examples for both models (paired) — and recomputes
 * the statistic; the interval is the percentile interval of the resamples (quantiles with
 * linear interpolation, R's type 7). Seeded: the same inputs and seed give the same interval.
 */
import { Rng } from '@vlmoe/data';

export interface PairedScores {
  /** Model A's score per example. */
  a: ArrayLike<number>;
  /** Model B's score on the same examples, in the same order. */
  b: ArrayLike<number>;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
}

export interface Interval {
  /** The statistic on the data: mean over seeds of mean(a − b). */
  estimate: number;
  low: number;
  high: number;
  level: number;
  resamples: number;
  /** Standard deviation of the resampled statistic (the bootstrap standard error). */
  se: number;
}

/** The q-quantile (0 ≤ q ≤ 1) of sorted values, linear interpolation between order statistics (type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantileSorted: no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantileSorted: q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

function differences(p: PairedScores, s: number): Float64Array {
  const n = p.a.length;
  if (n === 0) throw new RangeError(`pairedBootstrap: seed ${s} has no examples`);
  if (p.b.length !== n) throw new RangeError(`pairedBootstrap: seed ${s}: ${n} scores for A but ${p.b.length} for B (the same examples are needed)`);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = p.a[i]! - p.b[i]!;
    if (!Number.isFinite(d[i]!)) throw new RangeError(`pairedBootstrap: seed ${s}, example ${i}: a score is not finite (${p.a[i]}, ${p.b[i]})`);
  }
  return d;
}

export function pairedBootstrap(seeds: readonly PairedScores[], o: BootstrapOptions = {}): Interval {
  if (seeds.length === 0) throw new RangeError('pairedBootstrap: no seeds');
  const resamples = o.resamples ?? 2000;
  const level = o.level ?? 0.95;
  if (!(Number.isInteger(resamples) && resamples >= 1)) throw new RangeError(`pairedBootstrap: resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`pairedBootstrap: level must be in (0, 1), got ${level}`);
  const diffs = seeds.map(differences);
  const mean = (d: Float64Array) => d.reduce((x, y) => x + y, 0) / d.length;
  const estimate = diffs.reduce((acc, d) => acc + mean(d), 0) / diffs.length;
  const rng = new Rng(o.seed ?? 0);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (const d of diffs) {
      const n = d.length;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += d[rng.int(0, n)]!;
      total += sum / n;
    }
    stats[r] = total / diffs.length;
  }
  stats.sort();
  const m = stats.reduce((x, y) => x + y, 0) / resamples;
  const se = Math.sqrt(stats.reduce((x, y) => x + (y - m) ** 2, 0) / Math.max(1, resamples - 1));
  const tail = (1 - level) / 2;
  return { estimate, low: quantileSorted(stats, tail), high: quantileSorted(stats, 1 - tail), level, resamples, se };
}

/**
 * A claim in plain words: "<label>: yes, +2.10 (95% interval +0.90 … +3.30)" when the whole
 * interval is above 0, "no" when it is below, "not shown" when it contains 0. `scale`
 * multiplies the numbers (100 for percentage points).
 */
export function verdict(label: string, i: Interval, o: { scale?: number; digits?: number } = {}): string {
  const scale = o.scale ?? 1;
  const digits = o.digits ?? 2;
  const f = (x: number) => `${x * scale >= 0 ? '+' : '−'}${Math.abs(x * scale).toFixed(digits)}`;
  const word = i.low > 0 ? 'yes' : i.high < 0 ? 'no' : 'not shown';
  return `${label}: ${word}, ${f(i.estimate)} (${Math.round(i.level * 100)}% interval ${f(i.low)} … ${f(i.high)})`;
}
