/** Mean and sample standard deviation (n − 1) of per-seed results, as the study's tables print them. */
export interface MeanSd {
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator); 0 for a single value. */
  sd: number;
  n: number;
}

export function meanSd(values: readonly number[]): MeanSd {
  const n = values.length;
  if (n === 0) throw new RangeError('meanSd: no values');
  for (const [i, v] of values.entries()) if (!Number.isFinite(v)) throw new RangeError(`meanSd: value ${i} is ${v}`);
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** "46.35 ± 1.20" (or "46.35" for one value), with `digits` decimals. */
export function formatMeanSd(m: MeanSd, digits = 2): string {
  return m.n > 1 ? `${m.mean.toFixed(digits)} ± ${m.sd.toFixed(digits)}` : m.mean.toFixed(digits);
}
