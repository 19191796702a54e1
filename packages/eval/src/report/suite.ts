/**
 * The benchmark suite: models × tasks → one report folder with `report.md` (a table shaped
 * like VL-MoE's Table 1: params per token, total params, each task's headline metric),
 * `report.json` (every number), per-model prediction files, and SVG charts (task metrics per
 * model; training curves from runs' `metrics.jsonl`).
 */
import { routingFromJsonl, routingSvgs } from './routing.js';
import { exampleScores, type ExampleMetric, type ExampleScores } from '../stats/per_example.js';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '@vlmoe/util';
import type { ModelAdapter } from '../adapter.js';
import { evaluateVqa, type VqaEvalOptions, type VqaEvalResult } from '../harness/vqa.js';
import { evaluateNlvr, type NlvrEvalOptions, type NlvrEvalResult } from '../harness/nlvr.js';
import { evaluateRetrieval, type RetrievalEvalOptions, type RetrievalEvalResult } from '../harness/retrieval.js';
import { barChartSvg, curvesFromJsonl, lineChartSvg } from './svg.js';

export type TaskSpec =
  | { kind: 'vqa'; name: string; options: Omit<VqaEvalOptions, 'outDir'> }
  | { kind: 'nlvr'; name: string; options: Omit<NlvrEvalOptions, 'outDir'> }
  | { kind: 'retrieval'; name: string; options: Omit<RetrievalEvalOptions, 'outDir'> };

export interface SuiteOptions {
  title?: string;
  models: ModelAdapter[];
  tasks: TaskSpec[];
  outDir: string;
  /** Training runs whose `metrics.jsonl` curves go into the report (and, for MoE runs, their routing diagnostics). */
  trainingRuns?: { name: string; metricsJsonl: string; keys: string[] }[];
}

/** One headline number of a task, in percent. */
export interface Headline {
  column: string;
  value: number | null;
}

export interface TaskResult {
  model: string;
  task: string;
  kind: TaskSpec['kind'];
  headlines: Headline[];
  detail: Record<string, unknown>;
  files: string[];
  /**
   * Per-example scores of the task's headline metrics (VQA per question, NLVR per statement,
   * TR@1 per image, IR@1 per caption), for paired comparisons between models; not written to
   * report.json.
   */
  examples: Partial<Record<ExampleMetric, ExampleScores>>;
}

export interface SuiteReport {
  title: string;
  createdAt: string;
  models: { name: string; params: ModelAdapter['params'] | null }[];
  tasks: { name: string; kind: string; file: string }[];
  results: TaskResult[];
  files: string[];
  markdown: string;
}

const pct = (v: number | null) => (v === null ? null : Math.round(v * 10000) / 100);

export function headlines(task: TaskSpec, r: VqaEvalResult | NlvrEvalResult | RetrievalEvalResult): Headline[] {
  switch (r.task) {
    case 'vqa':
      return [{ column: `${task.name} ${r.accuracy === null ? 'VQA score' : 'acc'}`, value: pct(r.accuracy ?? r.softScore) }];
    case 'nlvr':
      return [
        { column: `${task.name} acc`, value: pct(r.accuracy) },
        { column: `${task.name} cons`, value: pct(r.consistency) },
      ];
    case 'retrieval':
      return [
        { column: `${task.name} TR@1`, value: pct(r.tr[1] ?? null) },
        { column: `${task.name} IR@1`, value: pct(r.ir[1] ?? null) },
      ];
  }
}

export function formatCount(n: number | undefined): string {
  if (n === undefined) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function markdownTable(report: Pick<SuiteReport, 'title' | 'models' | 'results'>): string {
  const columns: string[] = [];
  for (const r of report.results) for (const h of r.headlines) if (!columns.includes(h.column)) columns.push(h.column);
  const head = ['Model', '#Params per token', '#Total params', ...columns];
  const rows = report.models.map((m) => {
    const vals = columns.map((c) => {
      const h = report.results.find((r) => r.model === m.name && r.headlines.some((x) => x.column === c))?.headlines.find((x) => x.column === c);
      return h?.value === null || h === undefined ? '—' : h.value.toFixed(2);
    });
    return [m.name, formatCount(m.params?.activePerToken), formatCount(m.params?.total), ...vals];
  });
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(head), line(head.map((h, i) => (i < 3 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

export async function runBenchmarkSuite(o: SuiteOptions): Promise<SuiteReport> {
  if (o.models.length === 0) throw new Error('runBenchmarkSuite: no models');
  if (o.tasks.length === 0) throw new Error('runBenchmarkSuite: no tasks');
  mkdirSync(o.outDir, { recursive: true });
  const results: TaskResult[] = [];
  for (const model of o.models) {
    for (const task of o.tasks) {
      const dir = join(o.outDir, safe(model.name), safe(task.name));
      mkdirSync(dir, { recursive: true });
      let r: VqaEvalResult | NlvrEvalResult | RetrievalEvalResult;
      if (task.kind === 'vqa') r = await evaluateVqa(model, { ...task.options, outDir: dir });
      else if (task.kind === 'nlvr') r = await evaluateNlvr(model, { ...task.options, outDir: dir });
      else r = await evaluateRetrieval(model, { ...task.options, outDir: dir });
      const files = r.files;
      const d: Record<string, unknown> = { ...(r as unknown as Record<string, unknown>) };
      delete d.predictions;
      delete d.files;
      delete d.ranks;
      const examples: Partial<Record<ExampleMetric, ExampleScores>> = {};
      if (r.task === 'vqa' && r.official) examples.vqa = exampleScores(r, 'vqa');
      if (r.task === 'nlvr') examples.nlvr = exampleScores(r, 'nlvr');
      if (r.task === 'retrieval') for (const m of ['tr1', 'ir1'] as const) examples[m] = exampleScores(r, m);
      if (d.official) d.official = { ...(d.official as object), perQuestion: undefined };
      results.push({ model: model.name, task: task.name, kind: task.kind, headlines: headlines(task, r), detail: d, files, examples });
    }
  }
  const title = o.title ?? 'vlmoe benchmark';
  const report: SuiteReport = {
    title,
    createdAt: new Date().toISOString(),
    models: o.models.map((m) => ({ name: m.name, params: m.params ?? null })),
    tasks: o.tasks.map((t) => ({ name: t.name, kind: t.kind, file: t.options.file })),
    results,
    files: [],
    markdown: '',
  };
  // charts
  const columns: string[] = [];
  for (const r of results) for (const h of r.headlines) if (!columns.includes(h.column)) columns.push(h.column);
  const chart = join(o.outDir, 'tasks.svg');
  writeFileAtomicSync(
    chart,
    barChartSvg({
      title,
      groups: columns,
      yLabel: '%',
      yMax: 100,
      series: report.models.map((m) => ({
        name: m.name,
        values: columns.map((c) => results.find((r) => r.model === m.name && r.headlines.some((h) => h.column === c))?.headlines.find((h) => h.column === c)?.value ?? null),
      })),
    }),
    { mkdir: true },
  );
  report.files.push(chart);
  // per training run, read once: its curves and, for MoE runs, the routing diagnostics
  // (each expert's share over training, drop rate, imbalance)
  const curveFiles: string[] = [];
  const routingFiles: string[] = [];
  for (const run of o.trainingRuns ?? []) {
    const text = readFileSync(run.metricsJsonl, 'utf8');
    const p = join(o.outDir, `curves_${safe(run.name)}.svg`);
    writeFileAtomicSync(p, lineChartSvg({ title: `${run.name}: training`, series: curvesFromJsonl(text, run.keys, run.metricsJsonl), xLabel: 'step' }), { mkdir: true });
    curveFiles.push(p);
    for (const [name, svg] of Object.entries(routingSvgs(run.name, routingFromJsonl(text, 60, run.metricsJsonl)))) {
      writeFileAtomicSync(join(o.outDir, name), svg, { mkdir: true });
      routingFiles.push(join(o.outDir, name));
    }
  }
  report.files.push(...curveFiles);
  report.files.push(...routingFiles);
  const md: string[] = [`# ${title}`, '', `${report.createdAt}`, '', markdownTable(report), '', '![task metrics](tasks.svg)', ''];
  for (const f of curveFiles) md.push(`![training curves](${f.split('/').pop()})`, '');
  if (routingFiles.length) {
    md.push('## Routing', '', 'Per MoE layer: each expert\'s share of the assignments over training (heatmap), the drop rate and the most-loaded expert / mean (balance chart).', '');
    for (const f of routingFiles) md.push(`![routing](${f.split('/').pop()})`, '');
  }
  md.push('## Details', '');
  for (const r of results) {
    md.push(`### ${r.model} — ${r.task} (${r.kind})`, '');
    md.push('```json', JSON.stringify(r.detail, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 1), '```', '');
    if (r.files.length) md.push(`Files: ${r.files.map((f) => f.slice(o.outDir.length + 1)).join(', ')}`, '');
  }
  report.markdown = md.join('\n');
  const mdPath = join(o.outDir, 'report.md');
  const jsonPath = join(o.outDir, 'report.json');
  report.files.push(mdPath, jsonPath);
  writeFileAtomicSync(mdPath, report.markdown, { mkdir: true });
  writeFileAtomicSync(jsonPath, JSON.stringify({ ...report, markdown: undefined, results: report.results.map(({ examples: _e, ...r }) => r) }, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 1) + '\n', { mkdir: true });
  return report;
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_');
}
