/**
 * Routing diagnostics from a training run's `metrics.jsonl` (the trainer logs, per step and MoE
 * layer, the assignments each expert got and the share dropped): per layer, a heatmap of each
 * expert's share of the layer's assignments over training, and a chart of the drop rate and
 * the imbalance (most-loaded expert / mean) and the router's entropy relative to ln E (1: every
 * token spread evenly over the experts, 0: every token sure of one), and for runs with the
 * aux-loss-free expert bias its values over training — the evidence for why an MoE model wins
 * or loses.
 */
import { heatmapSvg, lineChartSvg } from './svg.js';

export interface LayerRouting {
  /** The MoE layer's name (e.g. backbone.blocks.1.ffn.vision). */
  layer: string;
  /** The last step of each column. */
  steps: number[];
  /** shares[e][c]: expert e's share of the layer's assignments over the steps of column c. */
  shares: number[][];
  /** Per column: dropped assignments / assignments. */
  dropRate: number[];
  /** Per column: the most-loaded expert's count / the mean count. */
  imbalance: number[];
  /** Per column: the router's mean per-token entropy (nats) over the column's steps; null where the run did not log it. */
  entropy: (number | null)[];
  /** bias[e][c]: the aux-loss-free expert bias of expert e at the column's last step; null when the run had none. */
  bias: number[][] | null;
}

interface LoadEntry {
  counts?: number[];
  max?: number;
  mean?: number;
  dropRate?: number;
  entropy?: number;
  bias?: number[];
}

/** The routing of every MoE layer of a run, steps grouped into at most `columns` columns. */
export function routingFromJsonl(text: string, columns = 60, source = 'metrics.jsonl'): LayerRouting[] {
  const rows: { step: number; load: Record<string, LoadEntry> }[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let r: { step?: number; load?: Record<string, LoadEntry> };
    try {
      r = JSON.parse(line) as typeof r;
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
    if (typeof r.step === 'number' && r.load) rows.push({ step: r.step, load: r.load });
  }
  const layers = [...new Set(rows.flatMap((r) => Object.keys(r.load)))];
  const per = Math.max(1, Math.ceil(rows.length / columns));
  return layers.flatMap((layer) => {
    const withCounts = rows.filter((r) => r.load[layer]?.counts);
    if (withCounts.length === 0) return [];
    const E = withCounts[0]!.load[layer]!.counts!.length;
    const hasBias = withCounts.some((r) => Array.isArray(r.load[layer]!.bias));
    const out: LayerRouting = { layer, steps: [], shares: Array.from({ length: E }, () => []), dropRate: [], imbalance: [], entropy: [], bias: hasBias ? Array.from({ length: E }, () => []) : null };
    for (let c0 = 0; c0 < withCounts.length; c0 += per) {
      const group = withCounts.slice(c0, c0 + per);
      const sum = new Array<number>(E).fill(0);
      let dropped = 0;
      const entropies: number[] = [];
      for (const r of group) {
        const l = r.load[layer]!;
        l.counts!.forEach((n, e) => (sum[e] += n));
        dropped += (l.dropRate ?? 0) * l.counts!.reduce((a, b) => a + b, 0);
        if (typeof l.entropy === 'number') entropies.push(l.entropy);
      }
      const total = sum.reduce((a, b) => a + b, 0);
      out.steps.push(group[group.length - 1]!.step);
      sum.forEach((n, e) => out.shares[e]!.push(total ? n / total : 0));
      out.dropRate.push(total ? dropped / total : 0);
      out.imbalance.push(total ? Math.max(...sum) / (total / E) : 0);
      out.entropy.push(entropies.length ? entropies.reduce((a, b) => a + b, 0) / entropies.length : null);
      if (out.bias) {
        const last = group[group.length - 1]!.load[layer]!.bias;
        out.bias.forEach((b, e) => b.push(last?.[e] ?? NaN));
      }
    }
    return [out];
  });
}

/** One routing picture: its file name, what it shows, the layer (null: all layers), the data it plots ([step, value] per series; a heatmap's rows) and the SVG. */
export interface RoutingChart {
  file: string;
  kind: 'load' | 'bias' | 'balance';
  layer: LayerRouting | null;
  series: { name: string; points: [number, number][] }[];
  svg: string;
}

/** A run's routing pictures: per layer the load heatmap (and the expert bias when logged), and one chart of drop rate, imbalance and entropy. */
export function routingCharts(runName: string, layers: LayerRouting[]): RoutingChart[] {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');
  const out: RoutingChart[] = [];
  const byStep = (l: LayerRouting, v: readonly (number | null)[]) => l.steps.flatMap((s, i): [number, number][] => (v[i] === null ? [] : [[s, v[i]!]]));
  for (const l of layers) {
    out.push({ file: `routing_${safe(runName)}_${safe(l.layer)}.svg`, kind: 'load', layer: l, series: l.shares.map((sh, e) => ({ name: `expert ${e}`, points: byStep(l, sh) })), svg: heatmapSvg({
      title: `${runName}: ${l.layer}`,
      rows: l.shares.map((_, e) => `expert ${e}`),
      cols: l.steps.map(String),
      values: l.shares,
      xLabel: 'step',
      legend: `shade: the expert's share of the layer's assignments (darkest = ${(100 * Math.max(...l.shares.flat())).toFixed(0)} %; uniform = ${(100 / l.shares.length).toFixed(0)} %)`,
    }) });
  }
  for (const l of layers) {
    if (!l.bias) continue;
    const series = l.bias.map((b, e) => ({ name: `expert ${e}`, points: byStep(l, b) }));
    out.push({ file: `routing_${safe(runName)}_${safe(l.layer)}_bias.svg`, kind: 'bias', layer: l, series, svg: lineChartSvg({
      title: `${runName}: ${l.layer} expert bias (aux-loss-free balancing)`,
      series,
      xLabel: 'step',
      yLabel: 'bias',
    }) });
  }
  if (layers.length) {
    const series = layers.flatMap((l) => [
      { name: `${l.layer} drop rate`, points: byStep(l, l.dropRate) },
      { name: `${l.layer} max/mean load`, points: byStep(l, l.imbalance) },
      ...(l.entropy.some((h) => h !== null) ? [{ name: `${l.layer} entropy / ln E`, points: byStep(l, l.entropy.map((h) => (h === null ? null : h / Math.log(l.shares.length)))) }] : []),
    ]);
    out.push({ file: `routing_${safe(runName)}_balance.svg`, kind: 'balance', layer: null, series, svg: lineChartSvg({
      title: `${runName}: routing balance`,
      series,
      xLabel: 'step',
    }) });
  }
  return out;
}

/** SVG files (name → text) of a run's routing (routingCharts): what the study report embeds. */
export function routingSvgs(runName: string, layers: LayerRouting[]): Record<string, string> {
  return Object.fromEntries(routingCharts(runName, layers).map((c) => [c.file, c.svg]));
}
