/**
 * Time to quality: how much training (wall-clock seconds and FLOPs) each model needs before its
 * validation metric first reaches a target — another model's final validation value — from the
 * learning curves its runs log (a fine-tuning run's `val.jsonl`, offset by the cost of the
 * pretraining run it started from). The evidence behind "the MoE reaches the 3× dense model's
 * quality for a third of the compute", and the curves (metric against seconds and against FLOPs)
 * as SVG.
 */
import { lineChartSvg } from './svg.js';

/** One validation of a run: the metric after `step`, with the training cost so far (pretraining included). */
export interface CurvePoint {
  step: number;
  seconds: number;
  flops: number;
  value: number;
}

/** A model's learning curve on one metric. */
export interface Curve {
  model: string;
  metric: string;
  points: CurvePoint[];
}

/** When a curve first reaches a target. */
export interface Reach {
  step: number;
  seconds: number;
  flops: number;
}

/** The first point of `points` whose value is at least `target` (within 1e-12), or null. */
export function firstReach(points: readonly CurvePoint[], target: number): Reach | null {
  for (const p of points) if (p.value >= target - 1e-12) return { step: p.step, seconds: p.seconds, flops: p.flops };
  return null;
}

/** The value of a curve's last point (its final validation), or null for an empty curve. */
export function finalValue(c: Curve): number | null {
  return c.points.length ? c.points[c.points.length - 1]!.value : null;
}

/**
 * A fine-tuning run's curve from its `val.jsonl` text (rows `{step, seconds, flops, metrics}`),
 * for one metric, offset by the pretraining run's cost (seconds and FLOPs at its end).
 */
export function curveFromValJsonl(text: string, o: { model: string; metric: string; offset?: { seconds: number; flops: number }; source?: string }): Curve {
  const points: CurvePoint[] = [];
  const off = o.offset ?? { seconds: 0, flops: 0 };
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let r: { step?: unknown; seconds?: unknown; flops?: unknown; metrics?: Record<string, unknown> };
    try {
      r = JSON.parse(line) as typeof r;
    } catch (e) {
      throw new Error(`${o.source ?? 'val.jsonl'}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
    const v = r.metrics?.[o.metric];
    if (typeof r.step !== 'number' || typeof r.seconds !== 'number' || typeof r.flops !== 'number' || typeof v !== 'number') {
      throw new Error(`${o.source ?? 'val.jsonl'}:${i + 1}: expected {step, seconds, flops, metrics: {${o.metric}: number}}`);
    }
    points.push({ step: r.step, seconds: off.seconds + r.seconds, flops: off.flops + r.flops, value: v });
  }
  return { model: o.model, metric: o.metric, points };
}

/** The cost of a training run at its end: the `seconds` and `flops` of the last row of its metrics.jsonl (zeros when it has none). */
export function runCost(metricsJsonl: string): { seconds: number; flops: number } {
  const lines = metricsJsonl.split('\n').filter((l) => l.trim());
  if (!lines.length) return { seconds: 0, flops: 0 };
  const last = JSON.parse(lines[lines.length - 1]!) as { seconds?: number; flops?: number };
  return { seconds: last.seconds ?? 0, flops: last.flops ?? 0 };
}

/**
 * SVG charts of one metric's curves for every model: against training seconds and against
 * training FLOPs (name → text). `scale` multiplies the values (100: percent).
 */
export function curveSvgs(metric: string, name: string, curves: readonly Curve[], scale = 100): Record<string, string> {
  const safe = metric.replace(/[^A-Za-z0-9_.-]+/g, '_');
  const series = (x: (p: CurvePoint) => number) => curves.map((c) => ({ name: c.model, points: c.points.map((p): [number, number] => [x(p), scale * p.value]) }));
  return {
    [`curve_${safe}_seconds.svg`]: lineChartSvg({ title: `${name} on the val split vs training time`, series: series((p) => p.seconds), xLabel: 'training wall-clock (s, pretraining included)', yLabel: name }),
    [`curve_${safe}_flops.svg`]: lineChartSvg({ title: `${name} on the val split vs training compute`, series: series((p) => p.flops / 1e12), xLabel: 'training TFLOPs (pretraining included)', yLabel: name }),
  };
}

/** When `model` first reaches `target`'s final validation value on `metric` (null: never). */
export interface TimeToQuality {
  metric: string;
  /** The model whose final value is the target. */
  target: string;
  targetValue: number;
  model: string;
  reach: Reach | null;
  /** When the target model itself first reached its final value (the yardstick for ratios). */
  targetReach: Reach;
}

/** For every metric, every target model and every model: when the model first reaches the target's final value. */
export function timeToQuality(curves: readonly Curve[], targets: readonly string[]): TimeToQuality[] {
  const out: TimeToQuality[] = [];
  const metrics = [...new Set(curves.map((c) => c.metric))];
  for (const metric of metrics) {
    const of = curves.filter((c) => c.metric === metric && c.points.length);
    for (const target of targets) {
      const t = of.find((c) => c.model === target);
      if (!t) continue;
      const targetValue = finalValue(t)!;
      const targetReach = firstReach(t.points, targetValue)!;
      for (const c of of) out.push({ metric, target, targetValue, model: c.model, reach: firstReach(c.points, targetValue), targetReach });
    }
  }
  return out;
}

/** "1.23 T" style FLOPs. */
export function formatFlops(f: number): string {
  for (const [d, u] of [[1e15, 'P'], [1e12, 'T'], [1e9, 'G']] as const) if (f >= d) return `${(f / d).toFixed(2)} ${u}`;
  return `${f.toFixed(0)}`;
}

/** A Markdown table of timeToQuality rows (one run): seconds, FLOPs and the ratio to the target model's own time. */
export function timeToQualityMarkdown(rows: readonly TimeToQuality[], metricNames: Record<string, string> = {}): string {
  const lines = ['| Metric | Target: final val of | Model | Step | Seconds | FLOPs | × target\'s time |', '| --- | --- | --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const name = metricNames[r.metric] ?? r.metric;
    const reach = r.reach;
    lines.push(`| ${name} | ${r.target} (${(100 * r.targetValue).toFixed(2)}) | ${r.model} | ${reach ? reach.step : 'not reached'} | ${reach ? reach.seconds.toFixed(1) : '–'} | ${reach ? formatFlops(reach.flops) : '–'} | ${reach ? (reach.seconds / r.targetReach.seconds).toFixed(2) : '–'} |`);
  }
  return lines.join('\n');
}
