/**
 * `vlmoe finetune --config ft.json [--resume]`: fine-tunes a pretrained VLMo / VL-MoE on one
 * downstream task — `vqa` (soft-score BCE on the fused pass), `nlvr` (two fused passes,
 * concatenated pooled outputs) or `retrieval` (dual-encoder contrastive loss, negatives
 * gathered over data-parallel ranks) — through the same engine and run folder as pretraining
 * (`config.json`, `metrics.jsonl`, `checkpoints/`, `--resume`), then evaluates the final
 * weights on the validation (or test) split with @vlmoe/eval into `<run>/eval/<split>/`.
 *
 * `init` names the pretraining run (its folder) to start from; the model keys (preset,
 * experts, k, imageSize, model) default to that run's. Without `init` the model starts from
 * random weights (the "no pretraining" baseline).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { AnswerVocab } from '@vlmoe/data';
import { TASKS, createTaskModel, evalAdapter, resolveVLMoConfig, taskBatchFrom, type TaskBatch, type TaskModels, type TaskName } from '@vlmoe/moe';
import { initProcessGroup, loadCheckpointWeights } from '@vlmoe/parallel';
import { recipeConfig } from './config.js';
import { TASK_DATA } from './dataset.js';
import { curveMetrics, evaluateRun, evaluateTask } from './evaluate.js';
import { RECIPE_OPTIONS_USAGE, applyDeepSpeedConfig, buildRecipeModel, checkpointsOf, checkRecipe, describeModel, openRecipeData, train, type RecipeRunOptions, type TrainResult } from './trainer.js';
import { FINETUNE_SCHEMA, MODEL_DEFAULTS, type FinetuneConfig } from './schemas.js';

export { FINETUNE_SCHEMA, type FinetuneConfig } from './schemas.js';

export const FINETUNE_USAGE = `usage: vlmoe finetune --config ft.json [--deepspeed_config ds.json] [--resume] [--stop-after N]

${RECIPE_OPTIONS_USAGE}

config keys (JSON): ${T.configUsage(FINETUNE_SCHEMA)}
JSON Schema for editors: tools/cli/schemas/finetune.schema.json ("$schema" in the recipe)
task: ${TASKS.join(' | ')}; init: a 'vlmoe pretrain' run folder (model keys default to its own)`;


/** Fills the model keys a fine-tuning config left out from its init run (else the defaults). */
export function resolveModelKeys(cfg: FinetuneConfig, where: string): void {
  let fromInit: Record<string, unknown> = {};
  if (cfg.init) {
    const runConfig = fs.existsSync(path.join(cfg.init, 'config.json')) ? path.join(cfg.init, 'config.json') : path.join(cfg.init, '..', 'config.json');
    if (!fs.existsSync(runConfig)) throw new Error(`config ${where}: init ${cfg.init} has no config.json (is it a 'vlmoe pretrain' run folder?)`);
    fromInit = T.asObject(T.readJsonFile(runConfig, 'run record'), runConfig);
  }
  const rec = cfg as unknown as Record<string, unknown>;
  for (const [k, d] of Object.entries(MODEL_DEFAULTS)) rec[k] ??= fromInit[k] ?? d;
}

/** A fine-tuning recipe read and checked whole before anything is loaded (see checkPretrainRecipe). */
export function checkFinetuneRecipe(config: string | Partial<FinetuneConfig>, opts: RecipeRunOptions = {}, objectWhere?: string): { cfg: FinetuneConfig; where: string; engineSource: string } {
  const { cfg: parsed, where } = recipeConfig(config, FINETUNE_SCHEMA, objectWhere);
  const cfg = parsed as FinetuneConfig; // the model keys are filled by resolveModelKeys
  const engineSource = applyDeepSpeedConfig(cfg, where, opts.deepspeedConfig);
  checkRecipe(cfg, where, engineSource);
  return { cfg, where, engineSource };
}

/** Runs the recipe from a config file, or from a config object (the same keys; a library call). */
export async function finetune(config: string | Partial<FinetuneConfig>, opts: RecipeRunOptions & { evaluate?: boolean } = {}): Promise<TrainResult & { evaluation: unknown }> {
  const { cfg, where: configPath, engineSource } = checkFinetuneRecipe(config, opts);
  resolveModelKeys(cfg, configPath);
  const pg = initProcessGroup();
  let result: TrainResult;
  try {
    const { ds, tokenizer, mc } = await openRecipeData(cfg, configPath);
    const numAnswers = cfg.task === 'vqa' ? AnswerVocab.load(ds.answers).size : undefined;
    const modelGen = new T.Generator(cfg.seed);
    const model = buildRecipeModel(cfg, pg, () => createTaskModel(cfg.task, mc, { generator: modelGen, numAnswers }));
    let initNote = 'random init';
    if (cfg.init) {
      const dir = checkpointsOf(cfg.init);
      const ck = loadCheckpointWeights(dir);
      const { missingKeys } = model.loadStateDict(ck.weights, { strict: false });
      const headless = missingKeys.filter((k) => k.startsWith('backbone.'));
      if (headless.length) throw new Error(`init ${cfg.init}: the checkpoint lacks backbone weights ${headless.slice(0, 5).join(', ')}${headless.length > 5 ? ', …' : ''} (a different model config?)`);
      initNote = `from ${dir} (${ck.tag}; new: ${[...new Set(missingKeys.map((k) => k.split('.')[0]))].join(', ') || 'nothing'})`;
      for (const t of Object.values(ck.weights)) t.dispose();
    }
    const r = resolveVLMoConfig(mc);
    const images = cfg.task === 'nlvr' ? 2 : 1;
    result = await train<TaskBatch>({
      label: `finetune-${cfg.task}`, where: configPath, cfg, pg, model, record: { recipe: 'finetune', ...cfg, modelConfig: mc, numAnswers: numAnswers ?? null }, resume: opts.resume, stopAfter: opts.stopAfter, engineSource,
      loader: { files: ds.file(TASK_DATA[cfg.task], 'train'), tokenizer, image: { size: r.imageSize }, ...(numAnswers ? { numAnswers } : {}) },
      toBatch: (b) => taskBatchFrom(cfg.task, b),
      tokensPerSample: images * (cfg.textLen + r.numPatches + 1),
      describe: `${describeModel(mc, cfg)}, ${initNote}`,
      generators: { model: modelGen },
      validate: cfg.evalEvery > 0 ? {
        every: cfg.evalEvery,
        run: async () => curveMetrics(await evaluateTask(evalAdapter(cfg.name, { [cfg.task]: model } as TaskModels), cfg.task, {
          data: cfg.data, split: 'val', imageSize: r.imageSize, textLen: cfg.textLen, batchSize: cfg.evalBatch,
        })),
      } : undefined,
    });
  } finally {
    pg.destroy();
  }
  let evaluation: unknown = null;
  if (cfg.evalSplit !== 'none' && opts.evaluate !== false && pg.rank === 0) evaluation = await evaluateRun(result.runDir, { split: cfg.evalSplit });
  return { ...result, evaluation };
}
