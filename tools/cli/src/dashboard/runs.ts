/**
 * What the dashboard shows of a runs folder, read from the run folders as the trainer writes
 * them (config.json, metrics.jsonl and val.jsonl appended line by line, eval/<split>/result.json):
 * nothing is added to a run for it, and a run still writing shows up to its last complete line.
 *
 * Names are checked before any file is touched: a run is a folder directly inside the runs
 * folder (letters, digits, '_', '.', '-'; never '.' or '..'), and its real path — symbolic
 * links resolved — must lie inside the runs folder's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { curvesFromJsonl, lineChartSvg, routingCharts, routingFromJsonl } from '@vlmoe/eval';

export type RunStatus = 'running' | 'finished' | 'stopped';

export interface RunListing {
  name: string;
  recipe: string | null;
  /** Steps the recipe asks for (config.json), or null. */
  steps: number | null;
  /** The last step in metrics.jsonl (0: none yet). */
  lastStep: number;
  /** When metrics.jsonl last changed (ms since the epoch), or null. */
  updated: number | null;
  status: RunStatus;
}

export interface Chart {
  id: string;
  title: string;
  /** The plotted data (what the SVG draws): series of [step, value]; heatmaps: rows of values. */
  series: { name: string; points: [number, number][] }[];
  svg: string;
}

export interface RunView extends RunListing {
  /** The resolved recipe (config.json), or null. */
  config: unknown;
  /** The newest metrics row. */
  last: Record<string, unknown> | null;
  /** eval/<split>/result.json by split. */
  evals: Record<string, unknown>;
  charts: Chart[];
}

/** A run still writing counts as running while its metrics changed within this long. */
const LIVE_MS = 120_000;
const NAME = /^[A-Za-z0-9_.-]+$/;

/** The run folder of `name` inside `root`, or null when the name or its real path is not a run of root. */
export function runFolder(root: string, name: string): string | null {
  if (!NAME.test(name) || name === '.' || name === '..') return null;
  let realRoot: string, real: string;
  try {
    realRoot = fs.realpathSync(root);
    real = fs.realpathSync(path.join(realRoot, name));
  } catch {
    return null;
  }
  const rel = path.relative(realRoot, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep)) return null;
  return fs.statSync(real).isDirectory() && (fs.existsSync(path.join(real, 'config.json')) || fs.existsSync(path.join(real, 'metrics.jsonl'))) ? real : null;
}

const readText = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');

/** The complete lines of a JSON-lines file being appended to (a half-written last line is left for the next read). */
function completeLines(text: string): string {
  const end = text.lastIndexOf('\n');
  return end < 0 ? '' : text.slice(0, end + 1);
}

function parseLines(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

function readConfig(dir: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function listing(name: string, dir: string, rows: Record<string, unknown>[]): RunListing {
  const config = readConfig(dir);
  const metrics = path.join(dir, 'metrics.jsonl');
  const updated = fs.existsSync(metrics) ? fs.statSync(metrics).mtimeMs : null;
  const steps = typeof config?.steps === 'number' ? config.steps : null;
  const lastStep = rows.length ? Number(rows[rows.length - 1]!.step ?? rows.length) : 0;
  const status: RunStatus = steps !== null && lastStep >= steps ? 'finished' : updated !== null && Date.now() - updated < LIVE_MS ? 'running' : 'stopped';
  return { name, recipe: typeof config?.recipe === 'string' ? config.recipe : null, steps, lastStep, updated, status };
}

/** Every run folder in `root`, newest first. */
export function listRuns(root: string): RunListing[] {
  if (!fs.existsSync(root)) return [];
  const out: RunListing[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    const dir = runFolder(root, e.name);
    if (!dir) continue;
    out.push(listing(e.name, dir, parseLines(completeLines(readText(path.join(dir, 'metrics.jsonl'))))));
  }
  return out.sort((a, b) => (b.updated ?? 0) - (a.updated ?? 0) || a.name.localeCompare(b.name));
}

/** The training curves the trainer logs (those a run has). */
const CURVES: { id: string; title: string; keys: string[]; yLabel: string; logY?: boolean }[] = [
  { id: 'loss', title: 'loss and its parts', keys: ['loss', 'itc', 'itm', 'mlm', 'task', 'moe'], yLabel: 'loss' },
  { id: 'lr', title: 'learning rate', keys: ['lr'], yLabel: 'lr' },
  { id: 'gradNorm', title: 'gradient norm', keys: ['gradNorm'], yLabel: 'norm' },
  { id: 'tokensPerSec', title: 'tokens / s', keys: ['tokensPerSec'], yLabel: 'tokens/s' },
];

/** A run's view: its listing, config, newest row, eval results and charts. Null when `name` is not a run of root. */
export function readRun(root: string, name: string): RunView | null {
  const dir = runFolder(root, name);
  if (!dir) return null;
  const text = completeLines(readText(path.join(dir, 'metrics.jsonl')));
  const rows = parseLines(text);
  const charts: Chart[] = [];
  for (const c of CURVES) {
    const series = curvesFromJsonl(text, c.keys, `${name}/metrics.jsonl`).filter((s) => s.points.length > 0);
    if (series.length) charts.push({ id: c.id, title: c.title, series, svg: lineChartSvg({ title: `${name}: ${c.title}`, series, xLabel: 'step', yLabel: c.yLabel }) });
  }
  // per MoE layer (and modality): the load heatmap, drop rate / imbalance / entropy, the expert bias — the study report's pictures
  const layers = routingFromJsonl(text, 60, `${name}/metrics.jsonl`);
  for (const c of routingCharts(name, layers)) {
    const title = c.kind === 'load' ? `${c.layer!.layer}: expert load` : c.kind === 'bias' ? `${c.layer!.layer}: expert bias` : 'routing balance';
    charts.push({ id: c.file.replace(/\.svg$/, ''), title, series: c.series, svg: c.svg });
  }
  // validation curves (val.jsonl: {step, metrics})
  const val = parseLines(completeLines(readText(path.join(dir, 'val.jsonl'))));
  const metricKeys = [...new Set(val.flatMap((v) => Object.keys((v.metrics as Record<string, number>) ?? {})))];
  if (metricKeys.length) {
    const series = metricKeys.map((k) => ({ name: k, points: val.flatMap((v): [number, number][] => (typeof (v.metrics as Record<string, number>)[k] === 'number' ? [[Number(v.step), (v.metrics as Record<string, number>)[k]!]] : [])) }));
    charts.push({ id: 'validation', title: 'validation metrics', series, svg: lineChartSvg({ title: `${name}: validation`, series, xLabel: 'step' }) });
  }
  const evals: Record<string, unknown> = {};
  const evalDir = path.join(dir, 'eval');
  if (fs.existsSync(evalDir)) for (const split of fs.readdirSync(evalDir)) {
    try {
      evals[split] = JSON.parse(fs.readFileSync(path.join(evalDir, split, 'result.json'), 'utf8'));
    } catch {
      // not evaluated (yet)
    }
  }
  return { ...listing(name, dir, rows), config: readConfig(dir), last: rows.length ? rows[rows.length - 1]! : null, evals, charts };
}
