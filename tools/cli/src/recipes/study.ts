/**
 * `vlmoe study`: the Table-1 comparison as an experiment — the bench config run at several
 * seeds, each model's metrics as mean ± s.d. over seeds, and every claim (an MoE model against
 * a dense one) as the paired difference with its 95% bootstrap interval over evaluation
 * examples, combined over seeds, in plain words ("… on VQA: yes, +2.10 (95% interval …)").
 *
 * Each seed is a bench run of its own (`<runs>/<name>-seed<s>/`): finished runs are reused and
 * killed ones resume, so a study that was stopped continues where it stopped. The report:
 * `<runs>/<name>/study/report.md` and `study.json`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { formatMeanSd, meanSd, pairScores, pairedBootstrap, verdict, type ExampleMetric, type Interval, type MeanSd, type TaskResult } from '@vlmoe/eval';
import { readConfig } from './config.js';
import { DEFAULT_BENCH, bench, type BenchResult } from './bench.js';
import { BENCH_SCHEMA } from './schemas.js';

const { z } = T;

export const STUDY_SCHEMA = BENCH_SCHEMA.omit({ seed: true }).extend({
  seeds: z.array(z.int()).min(1).default([0, 1, 2]).describe('the seeds every model is trained at (each seed is a whole bench run)'),
  compare: z
    .array(z.strictObject({ a: z.string().describe('model id (the claimed better one)'), b: z.string().describe('model id') }))
    .optional()
    .describe('the claims to test, as model-id pairs (default: every MoE model against every dense model)'),
  resamples: z.int().default(2000).describe('bootstrap resamples per interval'),
});
export type StudyConfig = T.Z.output<typeof STUDY_SCHEMA>;

export const STUDY_USAGE = `usage: vlmoe study [--config study.json] [--seeds 0,1,2] [--jobs N] [--fresh]

Runs the bench comparison at every seed, then reports each metric as mean ± s.d. over seeds
and every claim (an MoE model against a dense model) as the paired difference with its 95%
bootstrap interval over evaluation examples, combined over seeds. Without --config: the main
job's models at seeds 0, 1, 2. Report: <runs>/<name>/study/.
config keys (JSON): the bench config's (but 'seeds' instead of 'seed'), plus ${T.configUsage(STUDY_SCHEMA.pick({ seeds: true, compare: true, resamples: true }))}`;

/** The metrics a claim is tested on: which task result holds them and how the table calls them. */
const METRICS: { metric: ExampleMetric; kind: TaskResult['kind']; name: string }[] = [
  { metric: 'vqa', kind: 'vqa', name: 'VQA' },
  { metric: 'nlvr', kind: 'nlvr', name: 'NLVR' },
  { metric: 'tr1', kind: 'retrieval', name: 'TR@1' },
  { metric: 'ir1', kind: 'retrieval', name: 'IR@1' },
];

export interface Claim {
  a: string;
  b: string;
  metric: ExampleMetric;
  interval: Interval;
  /** The claim in plain words. */
  text: string;
}

export interface StudyResult {
  /** Per model label, per table column: mean ± s.d. over seeds (percent). */
  table: Record<string, Record<string, MeanSd>>;
  claims: Claim[];
  markdown: string;
  reportDir: string;
  seconds: number;
}

/** What chance is for the retrieval metrics of a run (1 / candidates). */
function chanceLine(r: BenchResult): string[] {
  const ret = r.report.results.find((x) => x.kind === 'retrieval');
  const n = Number(ret?.detail.images ?? 0);
  return n > 0 ? [`Chance: TR@1 = IR@1 = ${(100 / n).toFixed(2)} % (${n} candidate images).`, ''] : [];
}

export async function study(config: string | object | null, opts: { seeds?: number[]; jobs?: number; fresh?: boolean } = {}): Promise<StudyResult> {
  const t0 = performance.now();
  const where = typeof config === 'string' ? config : config ? '(study object)' : '(default study)';
  const raw = config === null ? { ...DEFAULT_BENCH, seed: undefined } : typeof config === 'string' ? readConfig(config) : JSON.parse(JSON.stringify(config));
  const cfg = T.parseConfig(STUDY_SCHEMA, raw, `config ${where}`);
  const seeds = opts.seeds ?? cfg.seeds;
  const ids = cfg.models.map((m) => m.id);
  const compare = cfg.compare ?? cfg.models.filter((m) => m.experts > 0).flatMap((a) => cfg.models.filter((m) => m.experts === 0).map((b) => ({ a: a.id, b: b.id })));
  for (const [i, c] of compare.entries()) {
    for (const k of ['a', 'b'] as const) if (!ids.includes(c[k])) throw new Error(`config ${where}: compare[${i}].${k} '${c[k]}' is not a model id${T.didYouMean(c[k], ids)} (${ids.join(', ')})`);
  }
  const { seeds: _s, compare: _c, resamples, ...benchKeys } = cfg;
  const runs: BenchResult[] = [];
  for (const seed of seeds) {
    console.log(`\n== study ${cfg.name}: seed ${seed} (${runs.length + 1} of ${seeds.length})`);
    runs.push(await bench({ ...benchKeys, name: `${cfg.name}-seed${seed}`, seed }, { jobs: opts.jobs, fresh: opts.fresh, where: `${where} (seed ${seed})` }));
  }
  const label = (id: string) => runs[0]!.config.models.find((m) => m.id === id)!.label;

  // mean ± s.d. of every headline over seeds
  const table: Record<string, Record<string, MeanSd>> = {};
  const columns: string[] = [];
  for (const m of runs[0]!.config.models) {
    table[m.label] = {};
    const values = new Map<string, number[]>();
    for (const r of runs) {
      for (const tr of r.report.results.filter((x) => x.model === m.label)) {
        for (const h of tr.headlines) {
          if (h.value === null) continue;
          if (!columns.includes(h.column)) columns.push(h.column);
          values.set(h.column, [...(values.get(h.column) ?? []), h.value]);
        }
      }
    }
    for (const [c, v] of values) table[m.label]![c] = meanSd(v);
  }

  // every claim: paired bootstrap over examples, combined over seeds
  const claims: Claim[] = [];
  for (const c of compare) {
    for (const { metric, kind, name } of METRICS) {
      const pairs = runs.flatMap((r) => {
        const ra = r.report.results.find((x) => x.model === label(c.a) && x.kind === kind)?.examples[metric];
        const rb = r.report.results.find((x) => x.model === label(c.b) && x.kind === kind)?.examples[metric];
        return ra && rb ? [pairScores(ra, rb)] : [];
      });
      if (pairs.length === 0) continue;
      const interval = pairedBootstrap(pairs, { resamples, seed: 0 });
      claims.push({ a: c.a, b: c.b, metric, interval, text: verdict(`${label(c.a)} > ${label(c.b)} on ${name}`, interval, { scale: 100 }) });
    }
  }

  const seconds = (performance.now() - t0) / 1000;
  const head = `| Model | ${columns.join(' | ')} |\n| --- |${columns.map(() => ' ---: |').join('')}`;
  const rows = Object.entries(table).map(([m, cols]) => `| ${m} | ${columns.map((c) => (cols[c] ? formatMeanSd(cols[c]!) : '–')).join(' | ')} |`);
  const markdown = [
    `# vlmoe study ${cfg.name}`,
    '',
    `${seeds.length} seed(s) (${seeds.join(', ')}), ${cfg.split} split; mean ± s.d. over seeds, in percent. Wall-clock ${(seconds / 60).toFixed(1)} min.`,
    '',
    head,
    ...rows,
    '',
    ...chanceLine(runs[0]!),
    `Claims: paired difference A − B in points, with its ${Math.round((claims[0]?.interval.level ?? 0.95) * 100)}% bootstrap interval over evaluation examples (${resamples} resamples), combined over seeds.`,
    '',
    ...claims.map((c) => `- ${c.text}`),
    '',
  ].join('\n');
  const reportDir = path.join(cfg.runs, cfg.name, 'study');
  fs.mkdirSync(reportDir, { recursive: true });
  T.writeFileAtomicSync(path.join(reportDir, 'report.md'), (w) => w(new TextEncoder().encode(markdown)));
  const json = { name: cfg.name, seeds, split: cfg.split, table, claims, seconds, benchRuns: runs.map((r) => r.reportDir) };
  T.writeFileAtomicSync(path.join(reportDir, 'study.json'), (w) => w(new TextEncoder().encode(JSON.stringify(json, null, 1) + '\n')));
  console.log(`\n${markdown}\nreport: ${path.join(reportDir, 'report.md')}`);
  return { table, claims, markdown, reportDir, seconds };
}
