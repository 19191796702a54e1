/**
 * The hyperparameter search of `vlmoe study` (its `search` key): before the comparison, every
 * model gets the same search — a grid over pretraining recipe keys (`pretrain`, e.g. the
 * learning rate and warm-up) and, for the MoE models, over MoE keys (`moe`, e.g. the capacity
 * factor and the z-loss) — with the same steps and seed per trial, each trial scored by its
 * pretraining loss on fixed batches of the val captions at its end (`vlmoe pretrain`'s
 * validation loss). Each model then runs the study with its best trial's settings.
 *
 * The search looks at the val split only, so a study with a search computes its table on the
 * test split (it refuses otherwise): the comparison is made on examples no choice was made on.
 * Trials are ordinary pretraining runs under `<runs>/<name>-search/` — a finished trial is
 * reused and a killed one resumes, like every run of a study.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlops } from '@vlmoe/eval';
import type { BenchConfig, BenchModel, SearchConfig } from './schemas.js';
import { absoluteDataSpec } from './dataset.js';
import { checkPretrainRecipe, pretrain } from './pretrain.js';
import { writeRecipe } from './bench.js';
import type { ValRow } from './trainer.js';

type Value = number | string | boolean;

/** One trial: its settings, run folder and end-of-pretraining validation (val split). */
export interface SearchTrial {
  pretrain: Record<string, Value>;
  moe: Record<string, Value>;
  run: string;
  /** The validation loss (the selection criterion) and zero-shot retrieval at the trial's last step. */
  loss: number;
  zsTr1: number | null;
  zsIr1: number | null;
  /** The trial's training wall-clock (seconds) and FLOPs (matrix-multiply kernels, forward and backward). */
  seconds: number;
  flops: number;
}

export interface SearchResult {
  seed: number;
  steps: number;
  models: { id: string; label: string; trials: SearchTrial[]; best: number }[];
  markdown: string;
}

/** Every combination of the grid's values, in the grid's key order (the last key varies fastest). */
export function gridPoints(grid: Record<string, Value[]>): Record<string, Value>[] {
  let points: Record<string, Value>[] = [{}];
  for (const [k, values] of Object.entries(grid)) points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  return points;
}

/** A model with a trial's settings: pretraining keys over its own, MoE keys over its model.moe. */
export function withSettings(m: BenchModel, s: { pretrain: Record<string, Value>; moe: Record<string, Value> }): BenchModel {
  const moe = Object.keys(s.moe).length ? { moe: { ...((m.model.moe as Record<string, unknown> | undefined) ?? {}), ...s.moe } } : {};
  return { ...m, pretrain: { ...(m.pretrain ?? {}), ...s.pretrain }, model: { ...m.model, ...moe } };
}

function settingsText(s: { pretrain: Record<string, Value>; moe: Record<string, Value> }): string {
  const all = [...Object.entries(s.pretrain), ...Object.entries(s.moe).map(([k, v]) => [`moe.${k}`, v] as const)];
  return all.length ? all.map(([k, v]) => `${k} ${v}`).join(', ') : '(defaults)';
}

/** The last row of a run's val.jsonl. */
function lastValidation(runDir: string): ValRow {
  const p = path.join(runDir, 'val.jsonl');
  const lines = fs.existsSync(p) ? fs.readFileSync(p, 'utf8').trim().split('\n').filter(Boolean) : [];
  if (!lines.length) throw new Error(`${runDir}: the trial has no validation rows (val.jsonl)`);
  return JSON.parse(lines[lines.length - 1]!) as ValRow;
}

/**
 * Runs the search of a study config (`where` names it in errors): every trial's recipe is
 * checked before the first one trains. Returns each model's trials and best one.
 */
export async function search(cfg: Omit<BenchConfig, 'seed'> & { seeds: number[] }, s: SearchConfig, where: string, opts: { fresh?: boolean } = {}): Promise<SearchResult> {
  const seed = s.seed ?? cfg.seeds[0]!;
  const steps = s.steps ?? Number(cfg.pretrain.steps ?? 100);
  const root = path.resolve(cfg.runs, `${cfg.name}-search`);
  const data = absoluteDataSpec(cfg.data);
  const evalEvery = Number(cfg.pretrain.evalEvery ?? 0) > 0 ? Number(cfg.pretrain.evalEvery) : steps;
  if (Number(cfg.pretrain.valBatches ?? 1) === 0) throw new Error(`config ${where}: 'search' scores each trial by its validation loss; 'pretrain.valBatches' is 0`);
  const plans = cfg.models.map((m) => {
    const moePoints = m.experts > 0 ? gridPoints(s.moe) : [{}];
    const trials = gridPoints(s.pretrain).flatMap((pre) => moePoints.map((moe) => ({ pretrain: pre, moe })));
    return {
      m,
      trials: trials.map((t, i) => {
        const tm = withSettings(m, t);
        const name = `${m.id}-t${i}`;
        const recipe = {
          seed, ...cfg.pretrain, ...tm.pretrain, steps, evalEvery, evalSplit: 'none' as const,
          preset: tm.preset, experts: tm.experts, k: tm.k, model: tm.model, imageSize: cfg.imageSize, name, data, runs: root,
        };
        checkPretrainRecipe(recipe, {}, `${where} (search trial ${i} of model '${m.id}': ${settingsText(t)})`);
        return { ...t, name, recipe };
      }),
    };
  });
  const total = plans.reduce((a, p) => a + p.trials.length, 0);
  console.log(`\n== study ${cfg.name}: hyperparameter search, ${total} trials of ${steps} pretraining steps at seed ${seed}, scored by the validation loss on the val split (${plans.map((p) => `${p.m.id} ${p.trials.length}`).join(', ')})`);
  const models: SearchResult['models'] = [];
  for (const p of plans) {
    const trials: SearchTrial[] = [];
    for (const t of p.trials) {
      const config = path.join(root, 'configs', `${t.name}.json`);
      writeRecipe(config, path.join(root, t.name), t.recipe, opts.fresh === true);
      await pretrain(config, { resume: true });
      const v = lastValidation(path.join(root, t.name));
      if (v.step !== steps || typeof v.metrics.loss !== 'number') throw new Error(`${path.join(root, t.name)}: the trial's last validation is not at step ${steps} with a loss`);
      trials.push({ pretrain: t.pretrain, moe: t.moe, run: path.join(root, t.name), loss: v.metrics.loss, zsTr1: v.metrics.zs_tr1 ?? null, zsIr1: v.metrics.zs_ir1 ?? null, seconds: v.seconds, flops: v.flops });
    }
    const best = trials.reduce((b, t, i) => (t.loss < trials[b]!.loss ? i : b), 0);
    models.push({ id: p.m.id, label: p.m.label, trials, best });
  }
  const pct = (v: number | null) => (v === null ? '–' : (100 * v).toFixed(2));
  const markdown = [
    '## Hyperparameter search',
    '',
    `Every model: the same grid over pretraining keys${Object.keys(s.moe).length ? ', and for the MoE models also over MoE keys' : ''}; each trial pretrains ${steps} steps at seed ${seed} and is scored by its validation loss at the end (ITC + ITM + 0.25 MLM on fixed batches of the val captions; lower is better). The comparison below uses each model's best trial (**bold**) and is computed on the test split, which the search never saw.`,
    '',
    '| Model | Trial | Val loss | zero-shot TR@1 | zero-shot IR@1 |',
    '| --- | --- | ---: | ---: | ---: |',
    ...models.flatMap((m) => m.trials.map((t, i) => {
      const b = (x: string) => (i === m.best ? `**${x}**` : x);
      return `| ${m.label} | ${b(settingsText(t))} | ${b(t.loss.toFixed(4))} | ${pct(t.zsTr1)} | ${pct(t.zsIr1)} |`;
    })),
    '',
    `Search effort per model (the MoE models try each pretraining setting with every MoE setting): ${models.map((m) => `${m.label} ${m.trials.length} trials, ${(m.trials.reduce((a, t) => a + t.seconds, 0) / 60).toFixed(1)} min, ${formatFlops(m.trials.reduce((a, t) => a + t.flops, 0))}FLOPs`).join('; ')}.`,
    '',
  ].join('\n');
  console.log(`\n${markdown}`);
  return { seed, steps, models, markdown };
}
