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
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as T from '@vlmoe/tensor';
import { curveSvgs, formatFlops, formatMeanSd, meanSd, pairScores, pairedBootstrap, verdict, type Curve, type ExampleMetric, type Interval, type MeanSd, type TaskResult } from '@vlmoe/eval';
import { TASKS } from '@vlmoe/moe';
import { CURVE_METRIC_NAMES } from './evaluate.js';
import { readConfig } from './config.js';
import { DEFAULT_BENCH, bench, type BenchResult } from './bench.js';
import { STUDY_SCHEMA, SEARCH_SCHEMA, type StudyConfig } from './schemas.js';
import { openDataset } from './dataset.js';
import { search, withSettings, type SearchResult } from './search.js';

/** The repository root (for the committed reference studies of the built-in budgets). */
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * Fine-tuning recipes of the built-in studies. Retrieval wants more and larger batches: tuned
 * once on the dense twin's val split of the standard world (batch 64 × 300 steps at lr 1e-3:
 * TR@1 8.8 / IR@1 9.7 %, against 1.7 / 1.3 % at batch 32 × 150, and below that at lr 5e-4 and
 * 2e-3; 32 text tokens then, 40 now, which the identifying captions need), the same recipe
 * for every model.
 */
function shapesFinetune(steps: number, retrievalSteps: number) {
  const evalEvery = 50;
  return {
    vqa: { steps, batch: 32, lr: 1e-3, warmup: Math.round(steps / 10), textLen: 16, checkpointEvery: 50, evalEvery },
    nlvr: { steps, batch: 32, lr: 1e-3, warmup: Math.round(steps / 10), textLen: 24, checkpointEvery: 50, evalEvery },
    retrieval: { steps: retrievalSteps, batch: 64, lr: 1e-3, warmup: Math.round(retrievalSteps / 10), textLen: 40, checkpointEvery: 50, evalEvery },
  };
}

/**
 * The built-in studies, on the standard shapes world (`data/shapes`). `quick` (what `npm start`
 * runs; ≈ 15 min on 2 cores): VL-MoE-tiny top-1 vs its dense twin vs the ~3× dense model, one
 * seed, printed beside the committed full study. `full` (≈ 2 h on 2 cores): top-1 and top-2
 * VL-MoE, the dense twin and the 3× model at seeds 0, 1, 2, with longer pretraining and
 * fine-tuning; its report is committed under docs/results/shapes-full/. Retrieval feeds 40
 * text tokens: the standard world's identifying captions take up to 33 (67 of the 238 val ones
 * more than 32). The rich world (`shapes-rich`) is not used here yet: its identifying captions
 * (median 35 tokens, 191 of 496 over 40) do not fit the model's 40 text positions.
 */
export const STUDY_BUDGETS = {
  quick: {
    ...DEFAULT_BENCH, seed: undefined, name: 'quick', seeds: [0],
    finetune: shapesFinetune(100, 300),
    reference: path.join(REPO, 'docs', 'results', 'shapes-full', 'study.json'),
  },
  full: {
    ...DEFAULT_BENCH, seed: undefined, name: 'full', seeds: [0, 1, 2],
    models: [
      DEFAULT_BENCH.models[0]!,
      { id: 'vlmoe-tiny-e8-top2', label: 'VL-MoE-tiny (8 experts, top-2)', preset: 'tiny', experts: 8, k: 2, model: {} },
      ...DEFAULT_BENCH.models.slice(1),
    ],
    pretrain: { ...DEFAULT_BENCH.pretrain, steps: 400, warmup: 40, checkpointEvery: 100 },
    finetune: shapesFinetune(300, 300),
  },
} as const;
export type StudyBudget = keyof typeof STUDY_BUDGETS;

export const STUDY_USAGE = `usage: vlmoe study [--budget quick|full | --config study.json] [--seeds 0,1,2] [--jobs N] [--fresh]

Runs the bench comparison at every seed, then reports each metric as mean ± s.d. over seeds,
every claim (an MoE model against a dense model) as the paired difference with its 95%
bootstrap interval over evaluation examples, combined over seeds, and the time (seconds and
FLOPs) each model needs to reach each dense model's final validation quality.
--budget (without --config; default quick) picks a built-in study on the shapes world:
  quick  VL-MoE-tiny top-1 vs dense twin vs ~3x dense, 1 seed, beside the committed full study
         (what npm start runs; about 15 min on 2 cores)
  full   + VL-MoE-tiny top-2, seeds 0, 1, 2, longer training (about 2 h on 2 cores)
Report: <runs>/<name>/study/.
config keys (JSON): the bench config's (but 'seeds' instead of 'seed'), plus ${T.configUsage(STUDY_SCHEMA.pick({ seeds: true, compare: true, resamples: true, reference: true, search: true }))}
search keys: ${T.configUsage(SEARCH_SCHEMA)}`;

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

/** Time to quality over seeds: when `model` first reaches `target`'s final val value on `metric`. */
export interface StudyTimeToQuality {
  metric: string;
  target: string;
  model: string;
  /** Seeds in which the model reached the target / seeds with curves. */
  reached: number;
  seeds: number;
  /** Over the seeds that reached it: training seconds, FLOPs, and seconds ÷ the target model's own. */
  seconds: MeanSd | null;
  flops: MeanSd | null;
  ratio: MeanSd | null;
}

/** Per (metric, target, model): the seeds' time-to-quality rows combined. */
function combineTimeToQuality(runs: BenchResult[]): StudyTimeToQuality[] {
  const groups = new Map<string, StudyTimeToQuality & { s: number[]; f: number[]; r: number[] }>();
  for (const run of runs) {
    for (const t of run.timeToQuality) {
      const key = JSON.stringify([t.metric, t.target, t.model]);
      const g = groups.get(key) ?? { metric: t.metric, target: t.target, model: t.model, reached: 0, seeds: 0, seconds: null, flops: null, ratio: null, s: [], f: [], r: [] };
      g.seeds++;
      if (t.reach) {
        g.reached++;
        g.s.push(t.reach.seconds);
        g.f.push(t.reach.flops);
        g.r.push(t.reach.seconds / t.targetReach.seconds);
      }
      groups.set(key, g);
    }
  }
  return [...groups.values()].map(({ s, f, r, ...g }) => ({ ...g, seconds: s.length ? meanSd(s) : null, flops: f.length ? meanSd(f) : null, ratio: r.length ? meanSd(r) : null }));
}

/** Each model's curve per metric, averaged over seeds step by step (value, seconds and FLOPs). */
function meanCurves(runs: BenchResult[]): Curve[] {
  const out: Curve[] = [];
  const first = runs[0]?.curves ?? [];
  for (const c of first) {
    const same = runs.map((r) => r.curves.find((x) => x.model === c.model && x.metric === c.metric)).filter((x): x is Curve => x !== undefined);
    const points = c.points.flatMap((p) => {
      const at = same.map((x) => x.points.find((q) => q.step === p.step)).filter((q) => q !== undefined);
      if (at.length !== same.length) return [];
      const avg = (f: (q: (typeof at)[number]) => number) => at.reduce((a, q) => a + f(q), 0) / at.length;
      return [{ step: p.step, seconds: avg((q) => q.seconds), flops: avg((q) => q.flops), value: avg((q) => q.value) }];
    });
    out.push({ model: c.model, metric: c.metric, points });
  }
  return out;
}

/** The repository's commit (with '+changes' when the work tree differs), or null outside a git checkout. */
function gitCommit(): string | null {
  const git = (args: string[]) => spawnSync('git', args, { cwd: REPO, encoding: 'utf8' });
  const head = git(['rev-parse', 'HEAD']);
  if (head.status !== 0) return null;
  const dirty = git(['status', '--porcelain', '--untracked-files=no']).stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? '+changes' : ''}`;
}

/** What the study ran on: CPU model, cores, memory, Node and platform. */
function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} × ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${os.release()}, Node ${process.version}`;
}

/** A reference study's table (from its study.json), or null when the file does not exist. */
function readReference(file: string | undefined): { name: string; seeds: number[]; table: Record<string, Record<string, MeanSd>>; where: string } | null {
  if (!file || !fs.existsSync(file)) return null;
  const j = T.asObject(T.readJsonFile(file, 'reference study (study.json)'), file) as { name?: unknown; seeds?: unknown; table?: unknown; commit?: unknown };
  if (typeof j.name !== 'string' || !Array.isArray(j.seeds) || typeof j.table !== 'object' || j.table === null) throw new Error(`reference study ${file}: expected a study.json with name, seeds and table`);
  const rel = path.relative(process.cwd(), file);
  return { name: j.name, seeds: j.seeds as number[], table: j.table as Record<string, Record<string, MeanSd>>, where: `${rel.startsWith('..') ? file : rel}${typeof j.commit === 'string' ? `, commit ${j.commit.slice(0, 7)}` : ''}` };
}

export interface StudyResult {
  /** Per model label, per table column: mean ± s.d. over seeds (percent). */
  table: Record<string, Record<string, MeanSd>>;
  claims: Claim[];
  timeToQuality: StudyTimeToQuality[];
  markdown: string;
  reportDir: string;
  seconds: number;
}

/** A VQA task's accuracy per answer or question type (where the annotations carry types), mean ± s.d. over seeds per model. */
export interface StudyVqaByType {
  task: string;
  /** Which breakdown: the official `answer_type` or `question_type` of the annotations. */
  by: 'answer type' | 'question type';
  /** Questions of each type in the evaluation split. */
  counts: Record<string, number>;
  /** model label → type → accuracy (percent). */
  table: Record<string, Record<string, MeanSd>>;
}

/**
 * model label → key → mean ± s.d. over seeds of the values `pick` yields for that model in each seed's run
 * (a key a seed does not yield is averaged over the seeds that do).
 */
function seedMeans(runs: BenchResult[], pick: (run: BenchResult, label: string) => Iterable<[string, number]>): Record<string, Record<string, MeanSd>> {
  const table: Record<string, Record<string, MeanSd>> = {};
  for (const m of runs[0]!.config.models) {
    const values = new Map<string, number[]>();
    for (const r of runs) for (const [k, v] of pick(r, m.label)) values.set(k, [...(values.get(k) ?? []), v]);
    table[m.label] = Object.fromEntries([...values].map(([k, v]) => [k, meanSd(v)]));
  }
  return table;
}

function vqaByType(runs: BenchResult[]): StudyVqaByType[] {
  const out: StudyVqaByType[] = [];
  const breakdowns = [['answer type', 'perAnswerType'], ['question type', 'perQuestionType']] as const;
  for (const task of [...new Set(runs[0]!.report.results.filter((x) => x.kind === 'vqa').map((x) => x.task))]) {
    for (const [by, key] of breakdowns) {
      const perType = (detail: Record<string, unknown>) => (detail.official as Record<string, Record<string, { accuracy: number; count: number }> | undefined> | null)?.[key] ?? {};
      const counts: Record<string, number> = {};
      const table = seedMeans(runs, function* (r, label) {
        const res = r.report.results.find((x) => x.model === label && x.task === task);
        for (const [t, v] of Object.entries(res ? perType(res.detail) : {})) {
          counts[t] = v.count;
          yield [t, 100 * v.accuracy];
        }
      });
      if (Object.keys(counts).length > 1) out.push({ task, by, counts, table });
    }
  }
  return out;
}

/** One table per task and breakdown: a row per type (with its question count), a column per model. */
function vqaByTypeLines(byType: StudyVqaByType[], seeds: number): string[] {
  return byType.flatMap(({ task, by, counts, table }) => {
    const types = Object.keys(counts).sort();
    const models = Object.keys(table);
    return [
      `## ${task} by ${by}`,
      '',
      `Accuracy on the questions of each ${by} (as the dataset's annotations give it), ${seeds > 1 ? 'mean ± s.d. over seeds' : 'one seed'}, in percent.`,
      '',
      `| ${by[0]!.toUpperCase()}${by.slice(1)} | Questions | ${models.join(' | ')} |`,
      `| --- | ---: |${models.map(() => ' ---: |').join('')}`,
      ...types.map((t) => `| ${t} | ${counts[t]} | ${models.map((m) => (table[m]![t] ? formatMeanSd(table[m]![t]!) : '–')).join(' | ')} |`),
      '',
    ];
  });
}

/** What chance is for the retrieval metrics of a run (1 / candidates). */
function chanceLine(r: BenchResult): string[] {
  const ret = r.report.results.find((x) => x.kind === 'retrieval');
  const n = Number(ret?.detail.images ?? 0);
  return n > 0 ? [`Chance: TR@1 = IR@1 = ${(100 / n).toFixed(2)} % (${n} candidate images).`, ''] : [];
}

export async function study(config: string | object | null, opts: { seeds?: number[]; jobs?: number; fresh?: boolean; budget?: StudyBudget } = {}): Promise<StudyResult> {
  const t0 = performance.now();
  // the code that runs is the checkout as it is now: a commit made while the study runs must not be credited with it
  const commit = gitCommit();
  if (config !== null && opts.budget !== undefined) throw new Error(`--budget picks a built-in study; a config (${typeof config === 'string' ? config : 'object'}) sets its own models, seeds and steps: use one of them`);
  const budget = opts.budget ?? 'quick';
  if (!(budget in STUDY_BUDGETS)) throw new Error(`unknown budget '${budget}' (quick, full)`);
  const where = typeof config === 'string' ? config : config ? '(study object)' : `(built-in ${budget} study)`;
  const raw = config === null ? JSON.parse(JSON.stringify(STUDY_BUDGETS[budget])) : typeof config === 'string' ? readConfig(config) : JSON.parse(JSON.stringify(config));
  const cfg = T.parseConfig(STUDY_SCHEMA, raw, `config ${where}`);
  const seeds = opts.seeds ?? cfg.seeds;
  const ids = cfg.models.map((m) => m.id);
  const compare = cfg.compare ?? cfg.models.filter((m) => m.experts > 0).flatMap((a) => cfg.models.filter((m) => m.experts === 0).map((b) => ({ a: a.id, b: b.id })));
  for (const [i, c] of compare.entries()) {
    for (const k of ['a', 'b'] as const) if (!ids.includes(c[k])) throw new Error(`config ${where}: compare[${i}].${k} '${c[k]}' is not a model id${T.didYouMean(c[k], ids)} (${ids.join(', ')})`);
  }
  const { seeds: _s, compare: _c, resamples, reference: _r, search: searchCfg, ...benchKeys } = cfg;
  // the search chooses on the val split, so the comparison is made on the test split
  let searched: SearchResult | null = null;
  if (searchCfg) {
    if (cfg.split !== 'test') throw new Error(`config ${where}: 'search' chooses each model's settings on the val split, so the table must be computed on the test split: set "split": "test" (the dataset needs test files)`);
    // the test files must exist before the search trains (a dataset with only train and val fails now)
    const ds = await openDataset(cfg.data);
    for (const t of TASKS) if (cfg.finetune[t]) ds.evalFile(t, 'test');
    const models = cfg.models.map((m) => ({ ...m, label: m.label ?? m.id }));
    searched = await search({ ...cfg, models, seeds }, searchCfg, where, { fresh: opts.fresh });
    const chosen = searched.models;
    benchKeys.models = models.map((m, i) => { const c = chosen[i]!; return withSettings(m, c.trials[c.best]!); });
  }
  const runs: BenchResult[] = [];
  for (const seed of seeds) {
    console.log(`\n== study ${cfg.name}: seed ${seed} (${runs.length + 1} of ${seeds.length})`);
    runs.push(await bench({ ...benchKeys, name: `${cfg.name}-seed${seed}`, seed }, { jobs: opts.jobs, fresh: opts.fresh, where: `${where} (seed ${seed})` }));
  }
  const label = (id: string) => runs[0]!.config.models.find((m) => m.id === id)!.label;

  // mean ± s.d. of every headline over seeds
  const columns: string[] = [];
  const table = seedMeans(runs, function* (r, label) {
    for (const tr of r.report.results.filter((x) => x.model === label)) {
      for (const h of tr.headlines) {
        if (h.value === null) continue;
        if (!columns.includes(h.column)) columns.push(h.column);
        yield [h.column, h.value];
      }
    }
  });

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

  const byType = vqaByType(runs);

  // time to quality: per seed from the val curves, combined over seeds
  const ttq = combineTimeToQuality(runs);
  const names = CURVE_METRIC_NAMES;
  const fmt = (v: MeanSd | null, f: (x: number) => string = (x) => x.toFixed(1)) => (v === null ? '–' : v.n > 1 ? `${f(v.mean)} ± ${f(v.sd)}` : f(v.mean));
  const ttqLines = ttq.length
    ? [
        '## Time to quality',
        '',
        `Validation (val split) during training — zero-shot retrieval with the ITC head during pretraining, the task metrics during fine-tuning — with the cost counted from the start of pretraining: training wall-clock and FLOPs (matrix-multiply kernels, forward and backward) until a model's val metric first reaches a dense model's final val value; mean ± s.d. over the seeds that reached it. "× target" divides by the target model's own time to its final value.`,
        '',
        '| Metric | Target: final val of | Model | Reached | Seconds | FLOPs | × target |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: |',
        ...ttq.map((t) => `| ${names[t.metric] ?? t.metric} | ${t.target} | ${t.model} | ${t.reached}/${t.seeds} | ${fmt(t.seconds)} | ${t.flops ? formatFlops(t.flops.mean) : '–'} | ${fmt(t.ratio, (x) => x.toFixed(2))} |`),
        '',
        ...compare.flatMap((c) =>
          ttq.filter((t) => t.model === label(c.a) && t.target === label(c.b)).map((t) =>
            t.reached === 0
              ? `- ${t.model} reaches ${t.target}'s final ${names[t.metric] ?? t.metric}: no (0/${t.seeds} seeds)`
              : `- ${t.model} reaches ${t.target}'s final ${names[t.metric] ?? t.metric} in ${fmt(t.ratio, (x) => x.toFixed(2))} × its training time (${t.reached}/${t.seeds} seeds)${t.reached === t.seeds && t.ratio!.mean <= 0.5 ? ': at most half, yes' : ''}`,
          ),
        ),
        '',
      ]
    : [];
  const seconds = (performance.now() - t0) / 1000;
  const training = runs.reduce((a, r) => ({ seconds: a.seconds + r.training.seconds, flops: a.flops + r.training.flops }), { seconds: 0, flops: 0 });
  const head = `| Model | ${columns.join(' | ')} |\n| --- |${columns.map(() => ' ---: |').join('')}`;
  const ref = readReference(cfg.reference);
  const json0 = { command: ['vlmoe', ...process.argv.slice(2)].join(' '), commit, machine: machine() };
  const cell = (m: string, c: string, v: MeanSd | undefined) => {
    const own = v ? formatMeanSd(v) : '–';
    const r = ref?.table[m]?.[c];
    return ref ? `${own} (${ref.name}: ${r ? formatMeanSd(r) : '–'})` : own;
  };
  const rows = Object.entries(table).map(([m, cols]) => `| ${m} | ${columns.map((c) => cell(m, c, cols[c])).join(' | ')} |`);
  const markdown = [
    `# vlmoe study ${cfg.name}`,
    '',
    seeds.length === 1
      ? `One seed (${seeds[0]}): single-run values, no spread; ${cfg.split} split, in percent.`
      : `${seeds.length} seeds (${seeds.join(', ')}), ${cfg.split} split; mean ± s.d. over seeds, in percent.`,
    '',
    `Training: ${(training.seconds / 60).toFixed(1)} min and ${formatFlops(training.flops)}FLOPs over all runs (from their logs, whatever invocations ran them); this invocation's wall-clock ${(seconds / 60).toFixed(1)} min.`,
    '',
    `Command: \`${json0.command}\`; commit ${json0.commit ?? '(not a git checkout)'}; ${json0.machine}.`,
    '',
    ...(ref ? [`In brackets: the reference study ${ref.name} (${ref.seeds.length} seeds, mean ± s.d.; ${ref.where}).`, ''] : []),
    ...(cfg.reference && !ref ? [`No reference study at ${cfg.reference} yet (run \`vlmoe study --budget full\` and commit its report there).`, ''] : []),
    head,
    ...rows,
    '',
    ...chanceLine(runs[0]!),
    `Claims: paired difference A − B in points, with its ${Math.round((claims[0]?.interval.level ?? 0.95) * 100)}% bootstrap interval over evaluation examples (${resamples} resamples), combined over seeds.`,
    '',
    ...claims.map((c) => `- ${c.text}`),
    '',
    ...vqaByTypeLines(byType, seeds.length),
    ...ttqLines,
    ...(searched ? [searched.markdown] : []),
  ].join('\n');
  const reportDir = path.join(cfg.runs, cfg.name, 'study');
  fs.mkdirSync(reportDir, { recursive: true });
  // learning curves averaged over seeds
  const curves = meanCurves(runs);
  const svgs: string[] = [];
  for (const metric of [...new Set(curves.map((c) => c.metric))]) {
    for (const [f, svg] of Object.entries(curveSvgs(metric, `${names[metric] ?? metric} (mean of ${seeds.length} seeds)`, curves.filter((c) => c.metric === metric)))) {
      T.writeFileAtomicSync(path.join(reportDir, f), (w) => w(new TextEncoder().encode(svg)));
      svgs.push(f);
    }
  }
  // every seed's bench report (its table, training curves, routing charts, predictions) inside the study folder,
  // so the folder stands alone; the first seed's routing charts are the study's routing evidence
  const perSeed: string[] = ['', '## Per seed', ''];
  for (const [i, r] of runs.entries()) {
    const dst = path.join(reportDir, `seed${seeds[i]}`);
    fs.rmSync(dst, { recursive: true, force: true });
    fs.cpSync(r.reportDir, dst, { recursive: true });
    perSeed.push(`- seed ${seeds[i]}: [bench report](seed${seeds[i]}/report.md)`);
  }
  const routing = fs.readdirSync(path.join(reportDir, `seed${seeds[0]}`)).filter((f) => /^routing_.*\.svg$/.test(f)).sort();
  if (routing.length) {
    perSeed.push('', `## Routing (seed ${seeds[0]})`, '', "Per MoE layer and modality, over pretraining: each expert's share of the assignments (heatmap), and the balance chart — most-loaded expert ÷ mean, drop rate, router entropy ÷ ln E.", '');
    perSeed.push(...routing.map((f) => `![${f}](seed${seeds[0]}/${f})`));
  }
  const body = `${markdown}\n${perSeed.join('\n')}\n`;
  const full = svgs.length ? `${body}\n## Learning curves (mean over seeds)\n\n${svgs.map((f) => `![${f}](${f})`).join('\n')}\n` : body;
  T.writeFileAtomicSync(path.join(reportDir, 'report.md'), (w) => w(new TextEncoder().encode(full)));
  const json = { name: cfg.name, seeds, split: cfg.split, ...json0, table, claims, vqaByType: byType, timeToQuality: ttq, curves, seconds, training, benchRuns: runs.map((r) => r.reportDir), ...(searched ? { search: { seed: searched.seed, steps: searched.steps, models: searched.models } } : {}) };
  T.writeFileAtomicSync(path.join(reportDir, 'study.json'), (w) => w(new TextEncoder().encode(JSON.stringify(json, null, 1) + '\n')));
  console.log(`\n${markdown}\nreport: ${path.join(reportDir, 'report.md')}`);
  return { table, claims, timeToQuality: ttq, markdown, reportDir, seconds };
}
