/**
 * `vlmoe pretrain --config run.json [--resume]`: VLMo / VL-MoE pretraining (ITC + ITM + MLM +
 * MoE losses, see VLMoPretrainer) on a captions Arrow dataset (default: the synthetic shapes
 * world, generated on first use) through the @vlmoe/parallel engine — one process, or N
 * under `vlmoe-run` / `mpirun`.
 *
 * The run folder `<runs>/<name>/` holds the resolved config, `metrics.jsonl` (one line per
 * step: loss parts, lr, grad norm, samples/s, tokens/s, per MoE layer the expert load (max /
 * mean count) and the drop rate) and `checkpoints/` (every `checkpointEvery` steps and at the
 * end, with the data-loader position and the RNG states). With `evalEvery`, `val.jsonl` gets
 * zero-shot retrieval on the val split (`zs_tr1`, `zs_ir1`) and the pretraining loss on
 * `valBatches` fixed batches of the val captions (`loss`, `loss_itc`, `loss_itm`, `loss_mlm`)
 * every that many steps, with the training seconds and FLOPs so far: the pretraining learning
 * curve. `--resume` continues from the newest checkpoint and reproduces the uninterrupted run's
 * losses exactly. `init` starts from another run's newest weights: from a dense run, a VL-MoE
 * is upcycled (sparse upcycling: every expert a copy of the dense FFN at its place, routers
 * fresh; `upcycleNoise` perturbs the copies).
 */
import * as T from '@vlmoe/tensor';
import { DataLoader, type BertTokenizer } from '@vlmoe/data';
import { VLMoPretrainer, evalAdapter, pretrainBatchFrom, upcycle, type PretrainBatch } from '@vlmoe/moe';
import { initProcessGroup, loadCheckpointWeights } from '@vlmoe/parallel';
import { recipeConfig } from './config.js';
import { evaluateRun, evaluateTask, zeroShotCurveMetrics } from './evaluate.js';
import { RECIPE_OPTIONS_USAGE, applyDeepSpeedConfig, buildRecipeModel, checkpointsOf, checkRecipe, describeModel, openRecipeData, train, type RecipeRunOptions, type TrainResult } from './trainer.js';
import { PRETRAIN_SCHEMA, type PretrainConfig } from './schemas.js';

export { PRETRAIN_SCHEMA, type PretrainConfig } from './schemas.js';

export const PRETRAIN_USAGE = `usage: vlmoe pretrain --config run.json [--deepspeed_config ds.json] [--resume] [--stop-after N]

${RECIPE_OPTIONS_USAGE}

config keys (JSON): ${T.configUsage(PRETRAIN_SCHEMA)}
JSON Schema for editors: tools/cli/schemas/pretrain.schema.json ("$schema" in the recipe)`;

/**
 * A pretraining recipe read and checked whole — every key, the engine keys at this world size —
 * before any data or model is touched (`vlmoe bench` checks its generated recipes with it, naming
 * `objectWhere`, before anything trains).
 */
export function checkPretrainRecipe(config: string | Partial<PretrainConfig>, opts: RecipeRunOptions = {}, objectWhere?: string): { cfg: PretrainConfig; where: string; engineSource: string } {
  const { cfg, where } = recipeConfig(config, PRETRAIN_SCHEMA, objectWhere);
  const engineSource = applyDeepSpeedConfig(cfg, where, opts.deepspeedConfig);
  checkRecipe(cfg, where, engineSource);
  return { cfg, where, engineSource };
}

/** The seed of the validation batches' order, MLM masks and hard negatives: the same for every run, model and seed. */
const VALIDATION_SEED = 20230101;

/**
 * The pretraining loss on the first `batches` batches of `file` (val captions) in a fixed
 * shuffled order, with fixed MLM masks and hard-negative draws, without augmentation: every
 * validation of every run sees the same batches, so the values compare across steps, models and
 * seeds. Batches of the recipe's global batch size (the ITC loss depends on it), on this process
 * alone (`VLMoPretrainer.validationLosses`), with the model in eval mode. Returns the means of
 * the weighted loss (without the MoE balance loss) and of each objective.
 */
export async function pretrainValidationLoss(model: VLMoPretrainer, o: { file: string; tokenizer: BertTokenizer; imageSize: number; textLen: number; batch: number; batches: number }): Promise<{ loss: number; loss_itc: number; loss_itm: number; loss_mlm: number }> {
  const loader = await DataLoader.create({
    files: o.file, tokenizer: o.tokenizer, image: { size: o.imageSize, train: false }, maxTextLen: o.textLen, batchSize: o.batch,
    shuffle: true, dropLast: true, seed: VALIDATION_SEED, numWorkers: 0, mlm: { probability: 0.15 },
  });
  const sum = { itc: 0, itm: 0, mlm: 0 };
  let n = 0;
  try {
    for await (const b of loader) {
      const parts = model.validationLosses(pretrainBatchFrom(b, new T.Generator(VALIDATION_SEED + n)));
      b.release?.();
      for (const k of ['itc', 'itm', 'mlm'] as const) sum[k] += parts[k];
      if (++n >= o.batches) break;
    }
  } finally {
    await loader.close();
  }
  if (n === 0) throw new Error(`${o.file}: no complete batch of ${o.batch} captions for the validation loss`);
  const w = model.lossWeights;
  const [itc, itm, mlm] = [sum.itc / n, sum.itm / n, sum.mlm / n];
  return { loss: w.itc * itc + w.itm * itm + w.mlm * mlm, loss_itc: itc, loss_itm: itm, loss_mlm: mlm };
}

/** Runs the recipe from a config file, or from a config object (the same keys; a library call). */
export async function pretrain(config: string | Partial<PretrainConfig>, opts: RecipeRunOptions = {}): Promise<TrainResult & { evaluation: unknown }> {
  const { cfg, where: configPath, engineSource } = checkPretrainRecipe(config, opts);
  const pg = initProcessGroup();
  let result: TrainResult;
  try {
    const { ds, tokenizer, mc } = await openRecipeData(cfg, configPath);
    const modelGen = new T.Generator(cfg.seed);
    const model = buildRecipeModel(cfg, pg, () => new VLMoPretrainer(mc, cfg.weights, { generator: modelGen }));
    const r = model.backbone.config;
    let initNote = '';
    if (cfg.init) {
      // before the engine: every rank upcycles the whole model the same way (the noise is seeded), then keeps its share
      const dir = checkpointsOf(cfg.init);
      const ck = loadCheckpointWeights(dir);
      const rep = upcycle(model, ck.weights, { noise: cfg.upcycleNoise, generator: new T.Generator(cfg.seed * 7919 + 1) });
      for (const t of Object.values(ck.weights)) t.dispose();
      const freshLayers = [...new Set(rep.fresh.map((k) => k.replace(/\.(weight|bias|expertBias)$/, '')))];
      initNote = rep.upcycled.length
        ? `, upcycled from ${dir} (${ck.tag}): ${rep.upcycled.length} MoE layers from dense FFNs${cfg.upcycleNoise > 0 ? ` (noise ${cfg.upcycleNoise})` : ''}, fresh: ${freshLayers.length ? freshLayers.join(', ') : 'nothing'}`
        : `, from ${dir} (${ck.tag})${freshLayers.length ? `; fresh: ${freshLayers.join(', ')}` : ''}`;
    } else if (cfg.upcycleNoise > 0) throw new Error(`config ${configPath}: upcycleNoise is for a run upcycled from a dense run (init); this run has no init`);
    // checked before training: a dataset without val captions fails now, not at the first validation
    const valCaptions = cfg.evalEvery > 0 && cfg.valBatches > 0 ? ds.file('captions', 'val') : null;
    result = await train<PretrainBatch>({
      label: 'pretrain', where: configPath, cfg, pg, model, record: { recipe: 'pretrain', ...cfg, modelConfig: mc }, resume: opts.resume, stopAfter: opts.stopAfter, engineSource,
      loader: { files: ds.file('captions', 'train'), tokenizer, image: { size: r.imageSize }, mlm: { probability: 0.15 } },
      // the hard negatives' draws: a function of the seed and the step, the same on every rank
      toBatch: (b, step) => pretrainBatchFrom(b, new T.Generator(cfg.seed * 1_000_003 + step * 97)),
      tokensPerSample: cfg.textLen + r.numPatches + 1,
      describe: `${describeModel(mc, cfg)}${initNote}`,
      generators: { model: modelGen },
      // zero-shot image-text retrieval with the ITC head on the val split, as the final report,
      // and the pretraining loss on fixed val batches
      validate: cfg.evalEvery > 0 ? {
        every: cfg.evalEvery,
        run: async () => ({
          ...zeroShotCurveMetrics(await evaluateTask(evalAdapter(cfg.name, { retrieval: model }), 'retrieval', {
            data: cfg.data, split: 'val', imageSize: r.imageSize, textLen: cfg.textLen, batchSize: cfg.evalBatch,
          })),
          ...(valCaptions ? await pretrainValidationLoss(model, { file: valCaptions, tokenizer, imageSize: r.imageSize, textLen: cfg.textLen, batch: cfg.batch, batches: cfg.valBatches }) : {}),
        }),
      } : undefined,
    });
  } finally {
    pg.destroy();
  }
  // the run's report: zero-shot image-text retrieval with the ITC head
  let evaluation: unknown = null;
  if (cfg.evalSplit !== 'none' && pg.rank === 0) evaluation = await evaluateRun(result.runDir, { split: cfg.evalSplit });
  return { ...result, evaluation };
}
