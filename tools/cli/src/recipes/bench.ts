/**
 * `vlmoe bench [--config bench.json] [--fresh]`: the model comparison of VL-MoE's Table 1 at
 * any scale. For every model of the config: pretrain (`vlmoe pretrain`), fine-tune the
 * pretrained weights on each task (`vlmoe finetune` for vqa, nlvr, retrieval), then evaluate
 * all fine-tuned models with @vlmoe/eval's suite into `<runs>/<name>/report/` (report.md with
 * the Table-1-style comparison, report.json, SVG charts, predictions) and print the table.
 *
 * The default (no --config) is the main job of `npm start`: on the synthetic shapes world,
 * VL-MoE-tiny (8 experts, top-1), its dense twin with the same active parameters per token,
 * and a dense model with ~3× the active parameters (wider and deeper, as VLMo-large is to
 * VLMo-base), each pretrained and fine-tuned with the same data and steps.
 *
 * Every run is resumable: a rerun skips finished runs and continues interrupted ones from
 * their last checkpoint (a run whose recipe changed starts over; --fresh starts all over).
 *
 * `--jobs N` (default 1: everything in this process) trains N models at once, each in its own
 * `vlmoe pretrain` / `vlmoe finetune` processes with cores/N compute threads, models going to
 * lanes longest first (cost ≈ active parameters). For machines with many cores and small
 * models; on our 2-core machines two one-thread lanes were no faster than one two-thread
 * process (measured: tiny VL-MoE 2.1 → 1.2 steps/s and tiny-3x 1.2 → 0.5 steps/s when paired).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { curveFromValJsonl, curveSvgs, runBenchmarkSuite, runCost, timeToQuality, timeToQualityMarkdown, type Curve, type SuiteReport, type TaskSpec, type TimeToQuality } from '@vlmoe/eval';
import { evalAdapter, parameterCount, TASKS, type TaskModels, type TaskName } from '@vlmoe/moe';
import { BertTokenizer } from '@vlmoe/data';
import * as T from '@vlmoe/tensor';
import { readConfig } from './config.js';
import { BENCH_SCHEMA, type BenchConfig, type BenchModel } from './schemas.js';
import { absoluteDataSpec, openDataset } from './dataset.js';
import { CURVE_METRICS, CURVE_METRIC_NAMES, PRETRAIN_CURVE_METRICS, loadFinetuned } from './evaluate.js';
import { checkFinetuneRecipe, finetune } from './finetune.js';
import { checkPretrainRecipe, pretrain } from './pretrain.js';
import { modelConfig } from './trainer.js';

export { BENCH_SCHEMA, type BenchConfig, type BenchModel } from './schemas.js';

/** The main job: tiny VL-MoE vs its dense twin vs a ~3× dense model on the shapes world. */
export const DEFAULT_BENCH: BenchConfig = {
  name: 'main', data: 'data/shapes', runs: 'runs', split: 'val', imageSize: 32, seed: 0, evalBatch: 64,
  models: [
    { id: 'vlmoe-tiny-e8', label: 'VL-MoE-tiny (8 experts, top-1)', preset: 'tiny', experts: 8, k: 1, model: {} },
    { id: 'vlmo-tiny', label: 'VLMo-tiny (dense twin)', preset: 'tiny', experts: 0, k: 1, model: {} },
    { id: 'vlmo-tiny-3x', label: 'VLMo-tiny-3x (dense, d96 x 6)', preset: 'tiny', experts: 0, k: 1, model: { dim: 96, depth: 6, heads: 4 } },
  ],
  pretrain: { steps: 150, batch: 32, lr: 1e-3, warmup: 15, textLen: 32, checkpointEvery: 50, evalEvery: 50 },
  finetune: {
    vqa: { steps: 150, batch: 32, lr: 1e-3, warmup: 15, textLen: 16, checkpointEvery: 50, evalEvery: 50 },
    nlvr: { steps: 150, batch: 32, lr: 1e-3, warmup: 15, textLen: 24, checkpointEvery: 50, evalEvery: 50 },
    retrieval: { steps: 150, batch: 32, lr: 1e-3, warmup: 15, textLen: 32, checkpointEvery: 50, evalEvery: 50 },
  },
  taskNames: { vqa: 'VQA', nlvr: 'NLVR', retrieval: 'Retrieval' },
};

export const BENCH_USAGE = `usage: vlmoe bench [--config bench.json] [--fresh] [--jobs N]

Pretrains every model of the config, fine-tunes each on every task, evaluates them all and
prints the Table-1-style comparison (report in <runs>/<name>/report/). Without --config: the
main job (VL-MoE-tiny vs dense twin vs ~3x dense on the shapes world). --jobs N trains N
models at once in child processes sharing the cores (default 1: one after the other here).
config keys (JSON): ${T.configUsage(BENCH_SCHEMA)}
JSON Schema for editors: tools/cli/schemas/bench.schema.json ("$schema" in the config)
models: [{id, label, preset, experts, k, model}], finetune: {vqa|nlvr|retrieval: recipe keys}`;

/**
 * Writes a run's recipe config; a changed recipe (or `fresh`) invalidates the run folder, which
 * starts over. Returns whether the run starts over (its dependants must too).
 */
export function writeRecipe(configPath: string, runDir: string, recipe: object, fresh: boolean, initChanged = false): boolean {
  const text = JSON.stringify(recipe, null, 2) + '\n';
  const same = fs.existsSync(configPath) && fs.readFileSync(configPath, 'utf8') === text;
  const restart = (!same || fresh || initChanged) && fs.existsSync(runDir);
  if (restart) {
    if (!fresh) console.log(`${path.basename(runDir)}: starting over (${same ? 'its pretraining run does' : 'its recipe changed'})`);
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(configPath), { recursive: true });
  fs.writeFileSync(configPath, text);
  return restart || !same;
}

function fmtTime(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

/** Runs `vlmoe <args>` in a child process with one compute thread, its output prefixed. */
function child(args: string[], prefix: string, threads: number): Promise<void> {
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VLMOE_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), VLMOE_PROGRESS: process.env.VLMOE_PROGRESS ?? '1' },
    });
    const pipe = (from: NodeJS.ReadableStream, to: NodeJS.WriteStream) => {
      let buf = '';
      from.setEncoding('utf8');
      from.on('data', (d: string) => {
        buf += d;
        const lines = buf.split(/\r?\n|\r/);
        buf = lines.pop()!;
        for (const l of lines) if (l.trim()) to.write(`[${prefix}] ${l}\n`);
      });
      from.on('end', () => buf.trim() && to.write(`[${prefix}] ${buf}\n`));
    };
    pipe(p.stdout!, process.stdout);
    pipe(p.stderr!, process.stderr);
    p.on('error', reject);
    p.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`vlmoe ${args.join(' ')} failed (${signal ?? `exit status ${code}`})`))));
  });
}

/** What a bench run gives back: the table, where the report is, the time, and the suite's results (per-example scores included). */
export interface BenchResult {
  markdown: string;
  reportDir: string;
  seconds: number;
  report: SuiteReport;
  config: BenchConfig;
  /** Learning curves on the val split (runs with evalEvery > 0): zero-shot retrieval during pretraining, then the task metrics; cost from the start of pretraining. */
  curves: Curve[];
  /** When each model first reaches each dense model's final val value. */
  timeToQuality: TimeToQuality[];
  /** Training seconds and FLOPs of every run (pretraining and fine-tuning, from their logs: a resumed run counts once). */
  training: { seconds: number; flops: number };
}

/** A run folder's training cost at its end (zeros without a metrics.jsonl). */
function runCostOf(runDir: string): { seconds: number; flops: number } {
  const p = path.join(runDir, 'metrics.jsonl');
  return runCost(fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '');
}

/** The summed cost of training runs. */
function trainingCost(runDirs: string[]): { seconds: number; flops: number } {
  return runDirs.map(runCostOf).reduce((a, c) => ({ seconds: a.seconds + c.seconds, flops: a.flops + c.flops }), { seconds: 0, flops: 0 });
}

/**
 * Every run's val.jsonl as curves: the pretraining run's zero-shot retrieval from its start, and
 * each fine-tuning run's task metrics offset by its pretraining run's cost.
 */
function readCurves(models: { label: string; pretrain: string; runs: Partial<Record<TaskName, string>>; before?: string[] }[]): Curve[] {
  const curves: Curve[] = [];
  for (const m of models) {
    // a model started from another model's run (initFrom) has that run's cost behind it
    const behind = (m.before ?? []).map(runCostOf).reduce((a, c) => ({ seconds: a.seconds + c.seconds, flops: a.flops + c.flops }), { seconds: 0, flops: 0 });
    const pp = path.join(m.pretrain, 'val.jsonl');
    if (fs.existsSync(pp)) {
      const text = fs.readFileSync(pp, 'utf8');
      for (const { key } of PRETRAIN_CURVE_METRICS) curves.push(curveFromValJsonl(text, { model: m.label, metric: key, source: pp, offset: behind }));
    }
    const own = runCostOf(m.pretrain), offset = { seconds: own.seconds + behind.seconds, flops: own.flops + behind.flops };
    for (const [task, dir] of Object.entries(m.runs) as [TaskName, string][]) {
      const vp = path.join(dir, 'val.jsonl');
      if (!fs.existsSync(vp)) continue;
      const text = fs.readFileSync(vp, 'utf8');
      for (const { key } of CURVE_METRICS[task]) curves.push(curveFromValJsonl(text, { model: m.label, metric: key, offset, source: vp }));
    }
  }
  return curves.filter((c) => c.points.length);
}

/** The learning-curve SVGs and the time-to-quality table, added to the report folder and report.md. */
function writeCurves(reportDir: string, curves: Curve[], ttq: TimeToQuality[]): void {
  if (!curves.length) return;
  const names = CURVE_METRIC_NAMES;
  const files: string[] = [];
  for (const metric of [...new Set(curves.map((c) => c.metric))]) {
    for (const [f, svg] of Object.entries(curveSvgs(metric, names[metric] ?? metric, curves.filter((c) => c.metric === metric)))) {
      T.writeFileAtomicSync(path.join(reportDir, f), (w) => w(new TextEncoder().encode(svg)));
      files.push(f);
    }
  }
  T.writeFileAtomicSync(path.join(reportDir, 'curves.json'), (w) => w(new TextEncoder().encode(JSON.stringify({ curves, timeToQuality: ttq }, null, 1) + '\n')));
  const md = path.join(reportDir, 'report.md');
  const section = [
    '', '## Time to quality', '',
    'Validation (val split) during training: zero-shot retrieval with the ITC head during pretraining, the task metrics during fine-tuning; cost counted from the start of pretraining (wall-clock seconds of training, and FLOPs of the matrix-multiply kernels, forward and backward). For every dense model\'s final value: when each model first reaches it.', '',
    timeToQualityMarkdown(ttq, names), '',
    ...files.map((f) => `![${f}](${f})`), '',
  ].join('\n');
  fs.writeFileSync(md, fs.readFileSync(md, 'utf8') + section);
}

/**
 * Runs the comparison of a bench config: a file, a config object (`where` names it in errors;
 * `vlmoe study` runs one per seed) or null for the main job.
 */
export async function bench(config: string | object | null, opts: { fresh?: boolean; jobs?: number; where?: string } = {}): Promise<BenchResult> {
  const t0 = performance.now();
  const where = typeof config === 'string' ? config : (opts.where ?? (config ? '(bench object)' : '(default main job)'));
  const parsed = config === null ? DEFAULT_BENCH : T.parseConfig(BENCH_SCHEMA, typeof config === 'string' ? readConfig(config) : JSON.parse(JSON.stringify(config)), `config ${where}`);
  const cfg: BenchConfig = { ...parsed, models: parsed.models.map((m) => ({ ...m, label: m.label ?? m.id })) };
  const ids = new Set<string>();
  for (const [i, m] of cfg.models.entries()) {
    if (ids.has(m.id)) throw new Error(`config ${where}: models[${i}].id '${m.id}' is used twice`);
    if (m.initFrom !== undefined && !ids.has(m.initFrom)) throw new Error(`config ${where}: models[${i}].initFrom '${m.initFrom}' must be the id of a model listed before it${T.didYouMean(m.initFrom, [...ids])}`);
    ids.add(m.id);
  }
  const tasks = TASKS.filter((t) => cfg.finetune[t]);
  const root = path.join(cfg.runs, cfg.name);
  const ds = await openDataset(cfg.data);
  const vocab = BertTokenizer.fromFile(ds.tokenizer).vocabSize;
  const data = absoluteDataSpec(cfg.data);
  console.log(`vlmoe bench ${cfg.name}: ${cfg.models.length} models × (pretrain + ${tasks.join(', ')}) on ${cfg.data}; runs in ${root}`);
  const counts = new Map(cfg.models.map((m) => [m, parameterCount(modelConfig({ ...m, imageSize: cfg.imageSize }, vocab, where))]));
  for (const m of cfg.models) {
    const pc = counts.get(m)!;
    console.log(`  ${m.label}: ${(pc.active / 1e6).toFixed(2)}M active parameters per token, ${(pc.total / 1e6).toFixed(2)}M total`);
  }
  const runs = path.resolve(root);
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, cfg.models.length));
  const threads = Math.max(1, Math.floor(os.availableParallelism() / jobs));
  type Plan = { m: BenchModel; label: string; pretrain: { name: string; config: string }; tasks: { task: TaskName; name: string; config: string }[] };
  // a model's pretraining recipe: the config's block, the model's own keys over it, its model keys
  const pretrainRecipe = (m: BenchModel) => ({
    seed: cfg.seed, ...cfg.pretrain, ...m.pretrain, preset: m.preset, experts: m.experts, k: m.k, model: m.model, imageSize: cfg.imageSize, name: `${m.id}-pretrain`, data, runs,
    // initFrom: start from (upcycle) another model's pretraining run
    ...(m.initFrom ? { init: path.join(runs, `${m.initFrom}-pretrain`) } : {}),
  });
  // every recipe the bench will run, checked whole before anything trains; errors name the user's file
  for (const m of cfg.models) {
    checkPretrainRecipe(pretrainRecipe(m), {}, `${where} (pretrain of model '${m.id}')`);
    for (const t of tasks) checkFinetuneRecipe({ seed: cfg.seed, ...cfg.finetune[t], task: t, name: `${m.id}-${t}`, data, runs, evalSplit: 'none' }, {}, `${where} (finetune.${t} of model '${m.id}')`);
  }
  // the evaluation files too: a missing split fails now, not after the training
  for (const t of tasks) ds.evalFile(t, cfg.split);
  const restarted = new Set<string>();
  const plans: Plan[] = cfg.models.map((m) => {
    const pName = `${m.id}-pretrain`;
    const pConfig = path.join(runs, 'configs', `${pName}.json`);
    // a pretraining run that starts over takes its fine-tuning runs with it, and the runs started from it (initFrom)
    const newPretrain = writeRecipe(pConfig, path.join(runs, pName), pretrainRecipe(m), opts.fresh === true, m.initFrom !== undefined && restarted.has(m.initFrom));
    if (newPretrain) restarted.add(m.id);
    const ts = tasks.map((t) => {
      const name = `${m.id}-${t}`;
      const c = path.join(runs, 'configs', `${name}.json`);
      writeRecipe(c, path.join(runs, name), { seed: cfg.seed, ...cfg.finetune[t], task: t, init: path.join(runs, pName), name, data, runs, evalSplit: 'none' }, opts.fresh === true, newPretrain);
      return { task: t, name, config: c };
    });
    return { m, label: m.label, pretrain: { name: pName, config: pConfig }, tasks: ts };
  });
  if (jobs === 1) {
    for (const p of plans) {
      await pretrain(p.pretrain.config, { resume: true });
      for (const t of p.tasks) await finetune(t.config, { resume: true, evaluate: false });
    }
  } else {
    // longest first onto the least loaded lane
    const cost = (p: Plan) => counts.get(p.m)!.active;
    const lanes: { load: number; plans: Plan[] }[] = Array.from({ length: jobs }, () => ({ load: 0, plans: [] }));
    for (const p of [...plans].filter((q) => !q.m.initFrom).sort((a, b) => cost(b) - cost(a))) {
      const lane = lanes.reduce((a, b) => (b.load < a.load ? b : a));
      lane.plans.push(p);
      lane.load += cost(p);
    }
    // a model started from another's run trains after it, in its lane
    for (const p of plans.filter((q) => q.m.initFrom)) {
      const lane = lanes.find((l) => l.plans.some((q) => q.m.id === p.m.initFrom))!;
      lane.plans.push(p);
      lane.load += cost(p);
    }
    console.log(`training ${jobs} models at a time (${threads} compute thread(s) each): ${lanes.map((l) => l.plans.map((p) => p.m.id).join(' → ')).join(' | ')}`);
    await Promise.all(lanes.map(async (lane) => {
      for (const p of lane.plans) {
        await child(['pretrain', '--config', p.pretrain.config, '--resume'], p.m.id, threads);
        for (const t of p.tasks) await child(['finetune', '--config', t.config, '--resume'], p.m.id, threads);
      }
    }));
  }
  const models = plans.map((p) => ({
    label: p.label, runs: Object.fromEntries(p.tasks.map((t) => [t.task, path.join(runs, t.name)])) as Record<TaskName, string>, pretrain: path.join(runs, p.pretrain.name),
    // the runs this model's pretraining started from (initFrom, transitively): their cost is this model's too
    before: ((): string[] => {
      const out: string[] = [];
      for (let id = p.m.initFrom; id !== undefined; id = cfg.models.find((x) => x.id === id)!.initFrom) out.push(path.join(runs, `${id}-pretrain`));
      return out;
    })(),
  }));
  // evaluate every fine-tuned model; one adapter per table row
  const adapters = models.map((m) => {
    const tm: TaskModels = {};
    for (const t of tasks) (tm as Record<string, unknown>)[t] = loadFinetuned(m.runs[t]).model;
    return Object.assign(evalAdapter(m.label, tm), { dispose: () => Object.values(tm).forEach((x) => (x as { dispose(): void }).dispose()) });
  });
  const textLen = (t: TaskName) => Number(cfg.finetune[t]!.textLen ?? 40);
  const common = (t: TaskName) => ({ file: ds.evalFile(t, cfg.split), tokenizer: ds.tokenizer, imageSize: cfg.imageSize, maxTextLen: textLen(t), batchSize: cfg.evalBatch, numWorkers: 1 });
  const specs: TaskSpec[] = tasks.map((t) => {
    const name = cfg.taskNames[t] ?? DEFAULT_BENCH.taskNames[t] ?? t;
    if (t === 'vqa') return { kind: 'vqa', name, options: { ...common(t), answers: ds.answers } };
    if (t === 'nlvr') return { kind: 'nlvr', name, options: common(t) };
    return { kind: 'retrieval', name, options: common(t) };
  });
  const reportDir = path.join(root, 'report');
  const report = await runBenchmarkSuite({
    title: `vlmoe bench ${cfg.name} (${cfg.split} split of ${path.basename(ds.dir)})`,
    models: adapters,
    tasks: specs,
    outDir: reportDir,
    trainingRuns: models.map((m) => ({ name: `${m.label} pretraining`, metricsJsonl: path.join(m.pretrain, 'metrics.jsonl'), keys: ['loss', 'itc', 'itm', 'mlm'] })),
  });
  for (const a of adapters) a.dispose?.();
  const curves = readCurves(models);
  const ttq = timeToQuality(curves, cfg.models.filter((m) => m.experts === 0).map((m) => m.label));
  writeCurves(reportDir, curves, ttq);
  const table = report.markdown.split('\n').filter((l) => l.startsWith('|')).join('\n');
  const seconds = (performance.now() - t0) / 1000;
  console.log(`\n${report.title}\n\n${table}\n\nwall-clock ${fmtTime(seconds)}; report: ${path.join(reportDir, 'report.md')}`);
  return { markdown: table, reportDir, seconds, report, config: cfg, curves, timeToQuality: ttq, training: trainingCost(models.flatMap((m) => [m.pretrain, ...Object.values(m.runs)])) };
}
