/**
 * `vlmoe eval --run runs/<name> [--split val|test]`: evaluates a fine-tuning run's newest
 * checkpoint on its task (a pretraining run: zero-shot retrieval with its ITC head) with @vlmoe/eval's harness (official VQA accuracy, NLVR accuracy and
 * consistency, retrieval TR/IR@1/5/10), writing `<run>/eval/<split>/` (predictions and
 * `result.json`). The model is rebuilt from the run's `config.json` on one process, whatever
 * world size, expert-parallel size and ZeRO stage trained it (checkpoints are global).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { evaluateNlvr, evaluateRetrieval, evaluateVqa, type ModelAdapter, type NlvrEvalResult, type RetrievalEvalResult, type VqaEvalResult } from '@vlmoe/eval';
import { createTaskModel, evalAdapter, parseVLMoConfig, resolveVLMoConfig, type AnyTaskModel, type TaskName, type VLMoConfig, type VLMoEvalAdapter } from '@vlmoe/moe';
import { loadCheckpointWeights } from '@vlmoe/parallel';
import { openDataset } from './dataset.js';

export const EVAL_USAGE = `usage: vlmoe eval --run runs/<name> [--split val|test] [--limit N] [--batch N]

Evaluates a 'vlmoe finetune' run's newest checkpoint on its task (a 'vlmoe pretrain' run:
zero-shot image-text retrieval with its ITC head); writes <run>/eval/<split>/.`;

interface RunRecord {
  recipe: string;
  task: TaskName;
  data: string;
  textLen: number;
  modelConfig: VLMoConfig;
  numAnswers: number | null;
  evalBatch?: number;
  name: string;
}

export function readRunRecord(runDir: string): RunRecord {
  const p = path.join(runDir, 'config.json');
  if (!fs.existsSync(p)) throw new Error(`${runDir}: no config.json (not a run folder)`);
  const rec = T.asObject(T.readJsonFile(p, 'run record'), p) as unknown as RunRecord;
  rec.modelConfig = parseVLMoConfig(rec.modelConfig, p, 'modelConfig.');
  if (rec.recipe === 'pretrain') return { ...rec, task: 'retrieval', numAnswers: null }; // zero-shot retrieval
  if (rec.recipe !== 'finetune') throw new Error(`${runDir}: a '${rec.recipe}' run; evaluation needs a 'vlmoe finetune' or 'vlmoe pretrain' run`);
  return rec;
}

/** The fine-tuned model of a run, with its newest checkpoint's weights, in eval mode. */
export function loadFinetuned(runDir: string): { record: RunRecord; model: AnyTaskModel; step: number } {
  const record = readRunRecord(runDir);
  const model = createTaskModel(record.task, record.modelConfig, { numAnswers: record.numAnswers ?? undefined });
  const ck = loadCheckpointWeights(path.join(runDir, 'checkpoints'));
  // a pretraining checkpoint also holds the ITM / MLM heads and the pooler: only missing keys are errors
  const { missingKeys } = model.loadStateDict(ck.weights, { strict: record.recipe === 'finetune' });
  if (missingKeys.length) throw new Error(`${runDir}: the checkpoint lacks ${missingKeys.slice(0, 5).join(', ')}`);
  for (const t of Object.values(ck.weights)) t.dispose();
  model.eval();
  return { record, model, step: ck.globalSteps };
}

export type TaskEvalResult = VqaEvalResult | NlvrEvalResult | RetrievalEvalResult;

/** Runs the task's harness on a model adapter (shared by `vlmoe eval` and `vlmoe bench`). */
export async function evaluateTask(adapter: VLMoEvalAdapter, task: TaskName, o: { data: string; split: 'val' | 'test'; imageSize: number; textLen: number; batchSize: number; outDir?: string; limit?: number }): Promise<TaskEvalResult> {
  const ds = await openDataset(o.data);
  const common = { file: ds.evalFile(task, o.split), tokenizer: ds.tokenizer, imageSize: o.imageSize, maxTextLen: o.textLen, batchSize: o.batchSize, outDir: o.outDir, numWorkers: 1 };
  // @vlmoe/moe's adapter takes the loader's batches structurally (it does not depend on @vlmoe/eval): no cast needed
  const a: ModelAdapter = adapter;
  if (o.outDir) fs.mkdirSync(o.outDir, { recursive: true });
  if (task === 'vqa') return evaluateVqa(a, { ...common, answers: ds.answers, limitBatches: o.limit });
  if (task === 'nlvr') return evaluateNlvr(a, { ...common, limitBatches: o.limit });
  return evaluateRetrieval(a, { ...common, limitImages: o.limit });
}

/** A result without its per-example lists (what result.json and reports keep). */
export function summary(r: TaskEvalResult): Record<string, unknown> {
  const d: Record<string, unknown> = { ...(r as unknown as Record<string, unknown>) };
  delete d.predictions;
  delete d.ranks; // per-query ranks: kept in memory for paired comparisons, not in result.json
  if (d.official) d.official = { ...(d.official as object), perQuestion: undefined };
  return d;
}

export async function evaluateRun(runDir: string, o: { split?: 'val' | 'test'; limit?: number; batchSize?: number } = {}): Promise<Record<string, unknown>> {
  const split = o.split ?? 'val';
  const { record, model, step } = loadFinetuned(runDir);
  const outDir = path.join(runDir, 'eval', split);
  const adapter = evalAdapter(record.name, { [record.task]: model } as Parameters<typeof evalAdapter>[1]);
  const r = await evaluateTask(adapter, record.task, { data: record.data, split, imageSize: resolveVLMoConfig(record.modelConfig).imageSize, textLen: record.textLen, batchSize: o.batchSize ?? record.evalBatch ?? 64, outDir, limit: o.limit });
  const s = { run: runDir, task: record.task, split, step, ...summary(r) };
  fs.writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(s, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 1) + '\n');
  model.dispose();
  console.log(`eval ${record.name} (${record.task}, ${split}, step ${step}): ${headline(r)}`);
  return s;
}

/** The metrics (fractions) a task's learning curve follows in val.jsonl, with their table names. */
export const CURVE_METRICS: Record<TaskName, { key: string; name: string }[]> = {
  vqa: [{ key: 'vqa', name: 'VQA acc' }],
  nlvr: [{ key: 'nlvr', name: 'NLVR acc' }],
  retrieval: [{ key: 'tr1', name: 'TR@1' }, { key: 'ir1', name: 'IR@1' }],
};

/** The metrics a pretraining run's curve follows in val.jsonl: zero-shot retrieval with its ITC head. */
export const PRETRAIN_CURVE_METRICS: { key: string; name: string }[] = CURVE_METRICS.retrieval.map((m) => ({ key: `zs_${m.key}`, name: `zero-shot ${m.name}` }));

/** The table names of CURVE_METRICS' and PRETRAIN_CURVE_METRICS' keys. */
export const CURVE_METRIC_NAMES: Record<string, string> = Object.fromEntries([...Object.values(CURVE_METRICS).flat(), ...PRETRAIN_CURVE_METRICS].map((m) => [m.key, m.name]));

/** A result's curve metrics (CURVE_METRICS' keys). */
export function curveMetrics(r: TaskEvalResult): Record<string, number> {
  if (r.task === 'vqa') return { vqa: r.accuracy ?? 0 };
  if (r.task === 'nlvr') return { nlvr: r.accuracy ?? 0 };
  return { tr1: r.tr[1] ?? 0, ir1: r.ir[1] ?? 0 };
}

/** A pretraining run's zero-shot retrieval result as its curve metrics (PRETRAIN_CURVE_METRICS' keys). */
export function zeroShotCurveMetrics(r: TaskEvalResult): Record<string, number> {
  return Object.fromEntries(Object.entries(curveMetrics(r)).map(([k, v]) => [`zs_${k}`, v]));
}

export function headline(r: TaskEvalResult): string {
  const p = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(2)}`);
  if (r.task === 'vqa') return `VQA acc ${p(r.accuracy)} (soft score ${p(r.softScore)}) on ${r.questions} questions`;
  if (r.task === 'nlvr') return `NLVR acc ${p(r.accuracy)}, consistency ${p(r.consistency)} on ${r.examples} statements`;
  return `TR@1 ${p(r.tr[1])} TR@5 ${p(r.tr[5])} IR@1 ${p(r.ir[1])} IR@5 ${p(r.ir[5])} on ${r.images} images / ${r.texts} captions`;
}
