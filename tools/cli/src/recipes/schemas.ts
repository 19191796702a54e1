/**
 * The config kinds of the command line, each one zod schema: its keys, types, defaults,
 * documentation and TypeScript type in one definition. `vlmoe pretrain` / `finetune` read
 * recipes, `vlmoe bench` reads bench configs, `vlmoe study` study configs (a bench config at several
 * seeds, with an optional hyperparameter search); a recipe's `engine` block is the DeepSpeed
 * config of @vlmoe/parallel and its `model` block the model config of @vlmoe/moe (each checked
 * by its own schema there, with DeepSpeed's names accepted). `jsonSchemas()` composes them into
 * the JSON Schema files published in `tools/cli/schemas/` for editors (`"$schema"` in a config).
 */
import * as T from '@vlmoe/tensor';
import { DEEPSPEED_MOE_ALIASES, MOE_CONFIG_SCHEMA, TASKS, VLMO_CONFIG_SCHEMA } from '@vlmoe/moe';
import { DEEPSPEED_CONFIG_SCHEMA } from '@vlmoe/parallel';

const { z } = T;

const PRESETS = ['tiny', 'small', 'base', 'large'] as const;
const object = () => z.record(z.string(), z.unknown());

/** Keys shared by every training recipe. */
export const COMMON_SHAPE = {
  ...T.SCHEMA_KEY,
  name: z.string().describe('the run folder: <runs>/<name> (letters, digits, _ . -)'),
  data: z.string().default('data/shapes').describe('a prepared dataset folder, or "shapes" / "shapes:<folder>" for the synthetic shapes world (data/shapes is the default), "shapes-rich" / "shapes-rich:<folder>" for its rich variant (12 colours, 3×3 positions, 1–6 objects; data/shapes-rich)'),
  runs: z.string().default('runs').describe('where run folders go'),
  steps: z.int().default(100).describe('optimiser steps'),
  batch: z.int().default(16).describe("global batch (DeepSpeed's train_batch_size)"),
  textLen: z.int().default(40).describe("tokens per text fed to the model (≤ the model's 40 positions)"),
  lr: z.number().default(2e-3).describe('peak learning rate (AdamW)'),
  warmup: z.int().default(10).describe('linear warm-up steps, then linear decay to 0'),
  weightDecay: z.number().default(0.01),
  checkpointEvery: z.int().default(50).describe('steps between checkpoints (one is also written at the end)'),
  seed: z.int().default(0).describe('every random choice is a function of the seed, the step and the sample'),
  augment: z.boolean().default(false).describe('random resized crop + flip (off: a flip contradicts "left of" texts, crops cut counted objects)'),
  engine: object().default({}).describe("DeepSpeed config keys merged over the recipe's (zero_optimization, expert_parallel_size, bf16, …)"),
  evalBatch: z.int().min(1).default(64).describe('batch of the evaluations (during and after training)'),
  evalEvery: z.int().min(0).default(0).describe("steps between evaluations on the val split during training (0: none; fine-tuning: the task's metrics, pretraining: zero-shot retrieval with the ITC head), logged to <run>/val.jsonl with the training seconds and FLOPs so far"),
};

/** The model keys of a recipe (a fine-tuning recipe leaves them to its init run). */
export const MODEL_SHAPE = {
  preset: z.enum(PRESETS).default('tiny').describe('model size'),
  experts: z.int().default(4).describe('experts per MoE layer; 0 = the dense VLMo'),
  k: z.int().default(1).describe('experts per token (top-k), at most experts'),
  imageSize: z.int().default(32).describe('image side in pixels'),
  model: object().default({}).describe("model config keys over the preset's (dim, depth, heads, mlpRatio, vlBlocks, patchSize, layerScale, dropPath, moe)"),
};

/** The defaults of the model keys (what a fine-tuning recipe without an init run gets). */
export const MODEL_DEFAULTS = z.strictObject(MODEL_SHAPE).parse({});

export const PRETRAIN_SCHEMA = z.strictObject({
  ...COMMON_SHAPE,
  ...MODEL_SHAPE,
  weights: z.strictObject({ itc: z.number().optional(), itm: z.number().optional(), mlm: z.number().optional() }).default({}).describe('loss weights (default itc 1, itm 1, mlm 0.25)'),
  evalSplit: z.enum(['val', 'test', 'none']).default('val').describe('split of the final zero-shot retrieval report'),
  valBatches: z.int().min(0).default(8).describe("with evalEvery: batches of the val captions (of the global batch size, in a fixed order with fixed MLM masks) whose pretraining loss each validation logs as loss, loss_itc, loss_itm, loss_mlm (0: none)"),
  init: z.string().nullable().default(null).describe("a 'vlmoe pretrain' run folder whose newest weights this run starts from: a dense run upcycles (every expert of an MoE layer a copy of the dense FFN there, routers fresh), a run of the same model loads as is; null: random init"),
  upcycleNoise: z.number().min(0).default(0).describe("with init from a dense run: noise on each expert's copy, relative to the weights' std (0: exact copies)"),
});

export const FINETUNE_SCHEMA = z.strictObject({
  ...COMMON_SHAPE,
  task: z.enum(TASKS).describe('the task trained and evaluated'),
  init: z.string().nullable().default(null).describe("a 'vlmoe pretrain' run folder to start from (its model keys are the defaults); null: random init"),
  preset: MODEL_SHAPE.preset.unwrap().nullable().default(null),
  experts: z.int().nullable().default(null),
  k: z.int().nullable().default(null),
  imageSize: z.int().nullable().default(null),
  model: object().nullable().default(null),
  evalSplit: z.enum(['val', 'test', 'none']).default('val').describe('split evaluated after training'),
});

/** A recipe schema's keys, none required and no defaults filled: a bench config's per-stage block. */
function block<S extends Record<string, T.Z.ZodType>>(shape: S, omit: readonly string[]) {
  const out: Record<string, T.Z.ZodType> = {};
  for (const [k, s] of Object.entries(shape)) {
    if (omit.includes(k) || k === '$schema') continue;
    const def = (s as unknown as { _zod: { def: { type: string; innerType?: T.Z.ZodType } } })._zod.def;
    out[k] = (def.type === 'default' ? def.innerType! : s).optional();
  }
  return z.strictObject(out);
}
const SET_BY_BENCH = ['name', 'data', 'runs', 'preset', 'experts', 'k', 'imageSize', 'model', 'task', 'init', 'evalSplit', 'seed'];

export const BENCH_MODEL_SCHEMA = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'may only hold letters, digits, _ . -').describe('run-folder id'),
  label: z.string().optional().describe('name in the table (default: the id)'),
  preset: MODEL_SHAPE.preset,
  experts: z.int().default(0),
  k: z.int().default(1),
  model: object().default({}),
  pretrain: block(PRETRAIN_SCHEMA.shape, SET_BY_BENCH).optional().describe("this model's pretraining recipe keys over the config's 'pretrain' block (e.g. its own lr; what a study's search chose)"),
  initFrom: z.string().optional().describe("the id of a model listed before this one: this model's pretraining starts from that model's pretraining run (a dense one is upcycled: every expert a copy of its FFN); its cost counts in this model's time to quality"),
});

export const BENCH_SCHEMA = z.strictObject({
  ...T.SCHEMA_KEY,
  name: z.string().default('main'),
  data: COMMON_SHAPE.data,
  runs: COMMON_SHAPE.runs,
  split: z.enum(['val', 'test']).default('val').describe('split the table is computed on'),
  imageSize: z.int().default(32),
  seed: z.int().default(0),
  models: z.array(BENCH_MODEL_SCHEMA).min(1).describe('the models compared (rows of the table)'),
  pretrain: block(PRETRAIN_SCHEMA.shape, SET_BY_BENCH).default({}).describe("pretraining recipe keys (steps, batch, lr, warmup, textLen, weights, checkpointEvery, engine, …)"),
  finetune: z
    .strictObject(Object.fromEntries(TASKS.map((t) => [t, block(FINETUNE_SCHEMA.shape, SET_BY_BENCH).optional()])) as Record<(typeof TASKS)[number], T.Z.ZodOptional<ReturnType<typeof block>>>)
    .default({})
    .describe('per task, fine-tuning recipe keys; a task left out is not run'),
  taskNames: z.strictObject(Object.fromEntries(TASKS.map((t) => [t, z.string().optional()])) as Record<(typeof TASKS)[number], T.Z.ZodOptional<T.Z.ZodString>>).default({}).describe('table names of the tasks'),
  evalBatch: z.int().default(64),
});

/** A study's hyperparameter search: the same grid for every model, trials scored by the pretraining validation loss. */
const VALUES = z.array(z.union([z.number(), z.string(), z.boolean()])).min(1);

export const SEARCH_SCHEMA = z.strictObject({
  pretrain: z.record(z.string(), VALUES).default({}).describe('pretraining recipe keys and the values tried for every model, e.g. {"lr": [5e-4, 1e-3, 2e-3], "warmup": [20, 40]}'),
  moe: z.record(z.string(), VALUES).default({}).describe('MoE keys (model.moe) and the values tried for the MoE models only, e.g. {"capacityFactor": [1.25, 2]}'),
  steps: z.int().min(1).optional().describe("pretraining steps of every trial (default: the study's pretraining steps)"),
  seed: z.int().optional().describe("the trials' seed (default: the study's first seed)"),
});

/** A `vlmoe study` config: a bench config run at several seeds, with the claims tested and an optional search. */
export const STUDY_SCHEMA = BENCH_SCHEMA.omit({ seed: true }).extend({
  seeds: z.array(z.int()).min(1).default([0, 1, 2]).describe('the seeds every model is trained at (each seed is a whole bench run)'),
  compare: z
    .array(z.strictObject({ a: z.string().describe('model id (the claimed better one)'), b: z.string().describe('model id') }))
    .optional()
    .describe('the claims to test, as model-id pairs (default: every MoE model against every dense model)'),
  resamples: z.int().default(2000).describe('bootstrap resamples per interval'),
  reference: z.string().optional().describe("a study.json (e.g. a committed full study) whose mean ± s.d. are printed beside this study's, row by row"),
  search: SEARCH_SCHEMA.optional().describe("a hyperparameter search before the comparison: the same grid for every model, trials scored on the val split; each model then runs with its best trial's settings, and the table is computed on the test split ('split': 'test')"),
});
export type CommonConfig = T.Z.output<T.Z.ZodObject<typeof COMMON_SHAPE>>;
export type ModelKeys = T.Z.output<T.Z.ZodObject<typeof MODEL_SHAPE>>;
export type PretrainConfig = T.Z.output<typeof PRETRAIN_SCHEMA>;
/** A fine-tuning recipe; its model keys are filled from the init run (or the defaults) by resolveModelKeys. */
export type FinetuneConfig = Omit<T.Z.output<typeof FINETUNE_SCHEMA>, keyof ModelKeys> & ModelKeys;
export type BenchModel = T.Z.output<typeof BENCH_MODEL_SCHEMA> & { label: string };
export type BenchConfig = Omit<T.Z.output<typeof BENCH_SCHEMA>, 'models'> & { models: BenchModel[] };
export type SearchConfig = T.Z.output<typeof SEARCH_SCHEMA>;
export type StudyConfig = T.Z.output<typeof STUDY_SCHEMA>;

/** A recipe's `model` block as editors see it: the model config's keys (DeepSpeed's MoE names too), none required. */
function modelBlockSchema() {
  const moeShape: Record<string, T.Z.ZodType> = {};
  for (const [k, s] of Object.entries(MOE_CONFIG_SCHEMA.shape)) moeShape[k] = (s as T.Z.ZodType).optional();
  for (const [alias, ours] of Object.entries(DEEPSPEED_MOE_ALIASES)) moeShape[alias] = (MOE_CONFIG_SCHEMA.shape[ours] as T.Z.ZodType).optional().describe(`DeepSpeed's name of ${ours}`);
  moeShape.ep_size = z.int().optional().describe("DeepSpeed's ep_size: moved to the engine's expert_parallel_size");
  const shape: Record<string, T.Z.ZodType> = {};
  for (const [k, s] of Object.entries(VLMO_CONFIG_SCHEMA.shape)) if (!['vocabSize', 'maxTextLen', 'imageSize', 'moe'].includes(k)) shape[k] = (s as T.Z.ZodType).optional();
  shape.moe = z.strictObject(moeShape).optional();
  return z.strictObject(shape);
}

/** The JSON Schema files of `tools/cli/schemas/` (name → schema). */
export function jsonSchemas(): Record<string, Record<string, unknown>> {
  const model = modelBlockSchema();
  const engine = DEEPSPEED_CONFIG_SCHEMA;
  const typed = <S extends T.Z.ZodObject>(s: S, fields: Record<string, T.Z.ZodType>) => s.extend(fields);
  const pre = typed(PRETRAIN_SCHEMA, { engine: engine.optional(), model: model.optional() });
  const ft = typed(FINETUNE_SCHEMA, { engine: engine.optional(), model: model.nullable().optional() });
  const models = z.array(BENCH_MODEL_SCHEMA.extend({ model: model.optional() })).min(1);
  const bench = BENCH_SCHEMA.extend({ models });
  const study = STUDY_SCHEMA.extend({ models });
  return {
    pretrain: T.jsonSchemaOf(pre, { title: 'vlmoe pretrain recipe' }),
    finetune: T.jsonSchemaOf(ft, { title: 'vlmoe finetune recipe' }),
    bench: T.jsonSchemaOf(bench, { title: 'vlmoe bench config' }),
    study: T.jsonSchemaOf(study, { title: 'vlmoe study config' }),
    deepspeed: T.jsonSchemaOf(engine, { title: 'DeepSpeed config (the keys the vlmoe engine implements)' }),
  };
}
