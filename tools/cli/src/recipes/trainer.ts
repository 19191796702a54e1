/**
 * What every training recipe shares: the model keys of a recipe config, the engine set-up
 * (DeepSpeed keys merged over the recipe's), the run folder (`config.json`, `metrics.jsonl`,
 * `checkpoints/` with the loader position and RNG state), `--resume`, and the step loop with
 * its progress bar. `pretrain` and `finetune` differ only in the model, the data and how a
 * loader batch becomes the model's input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { BertTokenizer, DataLoader, Progress, type Batch, type DataLoaderOptions } from '@vlmoe/data';
import { canonicalMoE, expertBiasesOf, parameterCount, parseVLMoConfig, preset, resolveVLMoConfig, type PresetName, type VLMoConfig } from '@vlmoe/moe';
import { describeParallelGroups, initialize, resolveConfig, resolveInit, zeroInit, type DeepSpeedConfig, type ProcessGroup } from '@vlmoe/parallel';
import type { CommonConfig, ModelKeys } from './schemas.js';
import { openDataset, type RecipeDataset } from './dataset.js';

export { COMMON_SHAPE, MODEL_SHAPE, MODEL_DEFAULTS, type CommonConfig, type ModelKeys } from './schemas.js';

/** The keys of a recipe's `model` object: the model config's own, except what the recipe sets itself. */
const RECIPE_SET = ['vocabSize', 'maxTextLen', 'imageSize'];

/**
 * The VLMoConfig of a recipe: preset, `model` overrides (any VLMoConfig key, `moe` any MoE
 * option — checked by @vlmoe/moe's parseVLMoConfig), experts; text positions fixed at 40.
 */
export function modelConfig(m: ModelKeys, vocabSize: number, where: string): VLMoConfig {
  if (!['tiny', 'small', 'base', 'large'].includes(m.preset)) throw new Error(`config ${where}: 'preset' must be tiny, small, base or large, got ${JSON.stringify(m.preset)}`);
  if (m.experts < 0) throw new Error(`config ${where}: 'experts' must be ≥ 0 (0 = dense), got ${m.experts}`);
  if (m.experts && (m.k < 1 || m.k > m.experts)) throw new Error(`config ${where}: 'k' must be in [1, experts = ${m.experts}], got ${m.k}`);
  for (const k of RECIPE_SET) if (k in m.model) throw new Error(`config ${where}: 'model.${k}' is set by the recipe (${k === 'imageSize' ? "use the recipe's 'imageSize'" : k === 'vocabSize' ? "the dataset's tokenizer" : 'fixed at 40'}), not under 'model'`);
  // DeepSpeed's MoE names become ours before the preset's routing defaults are merged in
  const model = m.model.moe && typeof m.model.moe === 'object' ? { ...m.model, moe: canonicalMoE(m.model.moe as Record<string, unknown>, `config ${where}`, 'model.moe.') } : m.model;
  const c = preset(m.preset as PresetName, { vocabSize, maxTextLen: 40, imageSize: m.imageSize, ...(model as Partial<VLMoConfig>), ...(m.experts ? { experts: m.experts, k: m.k } : {}) });
  return parseVLMoConfig(c, `config ${where}`, 'model.');
}

/** The DeepSpeed config of a recipe: its own keys (batch, lr, warmup, …) with `engine`'s merged over them. */
export function engineConfig(cfg: CommonConfig): DeepSpeedConfig {
  return {
    train_batch_size: cfg.batch, gradient_clipping: 1.0,
    optimizer: { type: 'AdamW', params: { lr: cfg.lr, betas: [0.9, 0.98], eps: 1e-8, weight_decay: cfg.weightDecay } },
    scheduler: { type: 'WarmupDecayLR', params: { warmup_num_steps: cfg.warmup, total_num_steps: cfg.steps } },
    ...(cfg.engine as DeepSpeedConfig),
  };
}

/**
 * Builds a recipe's model: at ZeRO-3 under `zeroInit` (deferred: no parameter is made until
 * ZeRO-3 writes each rank's block of it into the rank's partition, so no rank ever holds the
 * whole model; with `offload_optimizer: {device: "nvme"}` the parameters made whole go to
 * scratch files under nvme_path), otherwise directly. The same values either way.
 */
export function buildRecipeModel<M>(cfg: CommonConfig, pg: ProcessGroup, build: () => M): M {
  const z = engineConfig(cfg).zero_optimization;
  if (z?.stage !== 3) return build();
  const off = z.offload_optimizer;
  const dir = off?.device === 'nvme' && off.nvme_path ? off.nvme_path : undefined;
  const t0 = performance.now();
  const model = zeroInit({ nvmePath: dir }, build);
  if (pg.rank === 0) console.log(`zero.Init: the model was built without making its parameters (${((performance.now() - t0) / 1000).toFixed(1)} s); each rank makes its ZeRO-3 partitions next${dir ? `, the parameters kept whole in scratch files under ${dir}` : ''}`);
  return model;
}

/** The checkpoints folder of a run folder (or a checkpoints folder given as is), for a recipe's `init`. */
export function checkpointsOf(init: string): string {
  if (fs.existsSync(path.join(init, 'latest'))) return init;
  if (fs.existsSync(path.join(init, 'checkpoints', 'latest'))) return path.join(init, 'checkpoints');
  throw new Error(`init ${init}: neither a run folder with checkpoints/latest nor a checkpoints folder with 'latest'`);
}

/** The command-line options of `vlmoe pretrain` and `vlmoe finetune`, as their usage lists them. */
export const RECIPE_OPTIONS_USAGE = `  --config            the recipe (JSON; keys below)
  --deepspeed_config  a DeepSpeed JSON config used as the engine part (the recipe then has no 'engine')
  --resume            continue from the run's newest checkpoint
  --stop-after N      kill this process (SIGKILL) after global step N: a crash, to try --resume`;

/** How a recipe runs, from the command line (`--resume`, `--stop-after`, `--deepspeed_config`). */
export interface RecipeRunOptions {
  /** Continue from the newest checkpoint of the run folder. */
  resume?: boolean;
  /** Kill the process (SIGKILL) after this global step: a crash, to try `--resume`. */
  stopAfter?: number;
  /**
   * A DeepSpeed JSON config file used as is for the engine part (DeepSpeed's
   * `--deepspeed_config`): it takes the place of the recipe's `engine` block, which must then be
   * absent (DeepSpeed refuses two configs the same way).
   */
  deepspeedConfig?: string;
}

/** Puts `--deepspeed_config`'s file in the recipe's `engine`; returns what names the engine config in errors. */
export function applyDeepSpeedConfig(cfg: CommonConfig & { model?: Record<string, unknown> | null }, where: string, deepspeedConfig: string | undefined): string {
  let source = `config ${where}: engine`;
  if (deepspeedConfig !== undefined) {
    if (Object.keys(cfg.engine).length) {
      throw new Error(`config ${where} has an 'engine' block and --deepspeed_config ${deepspeedConfig} was given: use one of them`);
    }
    cfg.engine = T.asObject(T.readJsonFile(deepspeedConfig, 'DeepSpeed config (JSON)'), `deepspeed config ${deepspeedConfig}`);
    source = `deepspeed config ${deepspeedConfig}`;
  }
  // DeepSpeed gives ep_size to each MoE layer; here the engine's expert_parallel_size is the one place
  const moe = cfg.model?.moe as Record<string, unknown> | undefined;
  if (moe && typeof moe === 'object' && 'ep_size' in moe) {
    const ep = moe.ep_size;
    const engine = cfg.engine as Record<string, unknown>;
    if (engine.expert_parallel_size !== undefined && engine.expert_parallel_size !== ep) {
      throw new Error(`config ${where}: 'model.moe.ep_size' ${JSON.stringify(ep)} differs from the engine's expert_parallel_size ${JSON.stringify(engine.expert_parallel_size)} (${source})`);
    }
    cfg.engine = { ...engine, expert_parallel_size: ep };
    const { ep_size: _moved, ...rest } = moe;
    cfg.model = { ...cfg.model, moe: rest };
  }
  return source;
}

/**
 * The checks every recipe config gets beyond its schema, before any data or model is built:
 * the run name, the eval split, and every engine key (at the world size it will run with).
 * `engineSource` names the engine config in errors (the recipe's block or a DeepSpeed file).
 */
export function checkRecipe(cfg: CommonConfig & { evalSplit: string }, where: string, engineSource = `config ${where}: engine`): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(cfg.name)) throw new Error(`config ${where}: 'name' may only hold letters, digits, '_', '.', '-' (it names the run folder)`);
  if (!['val', 'test', 'none'].includes(cfg.evalSplit)) throw new Error(`config ${where}: 'evalSplit' must be val, test or none, got ${JSON.stringify(cfg.evalSplit)}`);
  const ep = Number((cfg.engine as Record<string, unknown>).expert_parallel_size ?? 1);
  if (cfg.evalEvery > 0 && ep > 1) throw new Error(`config ${where}: 'evalEvery' needs expert_parallel_size 1 (rank 0 evaluates alone and holds only its own experts at ${ep}); evaluate the checkpoints with 'vlmoe eval' instead`);
  resolveConfig(engineConfig(cfg), resolveInit().worldSize, engineSource);
}

/** One line about a recipe's model: preset, shape, experts, total and active parameters. */
export function describeModel(c: VLMoConfig, m: ModelKeys): string {
  const { total, active } = parameterCount(c);
  const r = resolveVLMoConfig(c);
  return `${m.preset} d${r.dim}×${r.depth}${m.experts ? ` / ${m.experts} experts top-${m.k}` : ' dense'}, ${(total / 1e6).toFixed(2)}M parameters (${(active / 1e6).toFixed(2)}M active)`;
}

/** A recipe's dataset folder, its tokenizer and the model config it implies. */
export async function openRecipeData(cfg: CommonConfig & ModelKeys, where: string): Promise<{ ds: RecipeDataset; tokenizer: BertTokenizer; mc: VLMoConfig }> {
  const ds = await openDataset(cfg.data);
  const tokenizer = BertTokenizer.fromFile(ds.tokenizer);
  return { ds, tokenizer, mc: modelConfig(cfg, tokenizer.vocabSize, where) };
}

/** What a recipe's model returns from `forward`. */
export interface StepOutput {
  loss: T.Tensor;
  parts: Record<string, number>;
  expertCounts: Record<string, T.Tensor>;
  droppedBy?: Record<string, number>;
  /** The router's mean per-token entropy (nats) per MoE layer. */
  entropyBy?: Record<string, number>;
  dropped: number;
}

export interface TrainSpec<B> {
  /** Progress-bar label and log prefix (e.g. 'pretrain', 'finetune-vqa'). */
  label: string;
  /** The recipe file (names it in errors). */
  where: string;
  /** What names the engine config in errors (default: the recipe's `engine` block). */
  engineSource?: string;
  cfg: CommonConfig;
  /** Everything written to the run's config.json (the resolved recipe config). */
  record: Record<string, unknown>;
  model: T.nn.Module;
  pg: ProcessGroup;
  /** Loader options except batch size, seed and sharding (shuffled, drop last). */
  loader: Omit<DataLoaderOptions, 'batchSize' | 'seed' | 'rank' | 'worldSize' | 'shuffle'>;
  toBatch(b: Batch, step: number): B;
  /** Input tokens of one sample (text + image tokens of every image), for tokens/s. */
  tokensPerSample: number;
  /** Printed by rank 0 before training (model and data description). */
  describe: string;
  /** Generators whose positions are checkpointed (e.g. the model's dropout / hard-negative RNG). */
  generators?: Record<string, T.Generator>;
  resume?: boolean;
  /** Simulate a crash (SIGKILL) after this many steps (the resume tests). */
  stopAfter?: number;
  /**
   * Validation during training: every `every` steps and after the last, rank 0 runs `run` (the
   * model in eval mode) and appends its metrics, with the training seconds and FLOPs so far, to
   * `<run>/val.jsonl`; the time it takes is not training time.
   */
  validate?: { every: number; run(step: number): Promise<Record<string, number>> };
}

/** A row of `<run>/val.jsonl`: validation metrics (fractions) after `step`, with the training cost so far. */
export interface ValRow {
  step: number;
  /** Training wall-clock so far (seconds; validation and start-up excluded). */
  seconds: number;
  /** Training FLOPs so far, all ranks (matrix-multiply kernels, forward and backward: T.flopCount). */
  flops: number;
  metrics: Record<string, number>;
}

/** The rows of a JSON-lines run file up to (and including) `step`: what a resumed run keeps. */
function rowsUpTo(file: string, step: number): string[] {
  if (!fs.existsSync(file) || step === 0) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= step);
}

export interface TrainResult {
  runDir: string;
  checkpoints: string;
  losses: number[];
  /** Steps done in this call (0 when the run was already complete). */
  stepsRun: number;
}

/** Runs (or resumes) one recipe's training through the engine. */
export async function train<B>(spec: TrainSpec<B>): Promise<TrainResult> {
  const { cfg, pg } = spec;
  const runDir = path.join(cfg.runs, cfg.name), ckptDir = path.join(runDir, 'checkpoints');
  const { engine } = initialize({
    model: spec.model, processGroup: pg, configSource: spec.engineSource ?? `config ${spec.where}: engine`, config: engineConfig(cfg),
  });
  // the ranks of a tensor-parallel group read the same samples: the data is sharded over the data-parallel group
  const dp = engine.groups.dataParallel;
  const loader = await DataLoader.create({ ...spec.loader, image: { ...spec.loader.image, train: cfg.augment }, batchSize: engine.config.microBatch, shuffle: true, seed: cfg.seed, rank: dp.rank, worldSize: dp.size, maxTextLen: cfg.textLen });
  // a tensor-parallel model runs its forward collectively: every rank validates, rank 0 writes
  // (validation with expert parallelism is refused by checkRecipe)
  const splitModel = engine.groups.tensorParallelSize > 1;
  // under ZeRO-3 every rank gathers the full parameters with rank 0 (a collective), which validates
  const partitioned = engine.config.stage === 3 && pg.size > 1;
  let step = 0;
  const gens = spec.generators ?? {};
  if (spec.resume && fs.existsSync(path.join(ckptDir, 'latest'))) {
    const st = engine.loadCheckpoint(ckptDir) as { step: number; loader: Parameters<DataLoader['loadStateDict']>[0]; generators: Record<string, { seed: number; offset: number }> };
    step = st.step;
    loader.loadStateDict(st.loader);
    for (const [k, g] of Object.entries(gens)) if (st.generators?.[k]) g.setState(st.generators[k]);
  }
  const metricsPath = path.join(runDir, 'metrics.jsonl'), valPath = path.join(runDir, 'val.jsonl');
  // the training cost so far (a resumed run continues its count from the checkpoint's row)
  let seconds = 0, flops = 0;
  if (pg.rank === 0) {
    fs.mkdirSync(runDir, { recursive: true });
    fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ ...spec.record, resolvedEngine: engine.config, world: pg.size }, null, 2));
    // metrics of steps after the checkpoint were never checkpointed: drop them on resume
    const kept = rowsUpTo(metricsPath, step);
    fs.writeFileSync(metricsPath, kept.map((l) => `${l}\n`).join(''));
    const last = kept.length ? (JSON.parse(kept[kept.length - 1]!) as { seconds?: number; flops?: number }) : {};
    seconds = last.seconds ?? 0;
    flops = last.flops ?? 0;
    if (spec.validate) fs.writeFileSync(valPath, rowsUpTo(valPath, step).map((l) => `${l}\n`).join(''));
    console.log(`${spec.label} ${cfg.name}: ${spec.describe}, ${pg.size} rank(s), global batch ${engine.config.trainBatchSize}${step ? `, resuming at step ${step}` : ''}`);
    if (pg.size > 1) console.log(describeParallelGroups(engine.groups));
    const tp = engine.tensorParallelReport;
    if (engine.groups.tensorParallelSize > 1)
      console.log(`tensor parallel ${engine.groups.tensorParallelSize}: ${tp.attention} attention layer(s) and ${tp.feedForward} FFN(s) split by heads / hidden units, ${tp.modules} module(s) split by their own rule (word embedding, MLM head, experts with enableExpertTensorParallelism); this rank holds ${tp.splitElements} split + ${tp.replicatedElements} replicated parameter elements`);
    if (engine.config.stage === 3) {
      const all = engine.module.parameters(), part = all.filter((p) => engine.zero.partitioned.has(p));
      const el = (ps: typeof all) => ps.reduce((n, p) => n + p.numel, 0);
      console.log(`ZeRO-3: ${part.length} of ${all.length} parameters partitioned (${el(part)} of ${el(all)} elements); ${all.length - part.length} under stage3_param_persistence_threshold ${engine.config.persistenceThreshold} kept whole on every rank`);
    }
    const off = engine.config.offloadOptimizer;
    if (off) {
      const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
      console.log(off.device === 'nvme'
        ? `optimizer offload (nvme): this rank's master weights and optimizer state, ${gib(engine.zero.stateBytes() + engine.zero.partitionBytes())}, live in scratch files under ${off.path} (paged by the kernel, removed at exit)`
        : `optimizer offload (cpu): the optimizer state is in host memory, where a CPU run keeps it anyway`);
    }
  }
  const losses: number[] = [];
  const save = () => engine.saveCheckpoint(ckptDir, `step${step}`, { step, loader: loader.stateDict(), generators: Object.fromEntries(Object.entries(gens).map(([k, g]) => [k, g.getState()])) });
  const bar = new Progress(`${spec.label} ${cfg.name}`, cfg.steps, { enabled: pg.rank === 0 ? undefined : false });
  if (step) bar.resumeAt(step);
  const start = step;
  let t0 = performance.now();
  epochs: while (step < cfg.steps) {
    for await (const b of loader) {
      const tokens = b.size * spec.tokensPerSample;
      const flops0 = T.flopCount();
      const row = T.scope(() => {
        const r = engine.forward<[B], StepOutput>(spec.toBatch(b, step));
        const lr = engine.getLr()[0]!;
        let loss = r.loss.item();
        let parts = r.parts;
        if (dp.size > 1) {
          // log the global batch's mean loss (and parts), not rank 0's share
          const keys = Object.keys(parts);
          const v = T.tensor([loss, ...keys.map((k) => parts[k]!)], { dtype: 'float64' });
          dp.allReduce(v, 'avg');
          const a = v.dataSync() as Float64Array;
          loss = a[0]!;
          parts = Object.fromEntries(keys.map((k, i) => [k, a[i + 1]!]));
        }
        engine.backward(r.loss);
        const gradNorm = engine.step();
        // per MoE layer: the assignments per expert, their max and mean, the drop rate, the router's entropy and
        // the aux-loss-free expert bias after this step's update (enableExpertBias)
        const load: Record<string, { max: number; mean: number; dropRate: number; entropy?: number; counts: number[]; bias?: number[] }> = {};
        const biases = expertBiasesOf(spec.model);
        for (const [k, c] of Object.entries(r.expertCounts)) {
          const v = Array.from(c.dataSync() as BigInt64Array, Number);
          const total = v.reduce((a, x) => a + x, 0);
          load[k] = { max: Math.max(...v), mean: total / v.length, dropRate: total ? (r.droppedBy?.[k] ?? 0) / total : 0, ...(r.entropyBy?.[k] !== undefined ? { entropy: r.entropyBy[k] } : {}), counts: v, ...(biases[k] ? { bias: biases[k] } : {}) };
        }
        // fp16: the loss scale and the steps skipped on overflow so far
        const fp16 = engine.lossScaler ? { lossScale: engine.lossScale, skippedSteps: engine.skippedSteps } : {};
        return { loss, ...parts, lr, gradNorm, dropped: r.dropped, load, ...fp16 };
      });
      b.release?.();
      step++;
      let stepFlops = T.flopCount() - flops0;
      if (pg.size > 1) {
        const f = T.tensor([stepFlops], { dtype: 'float64' });
        pg.allReduce(f, 'sum');
        stepFlops = (f.dataSync() as Float64Array)[0]!;
        f.dispose();
      }
      const dt = (performance.now() - t0) / 1000;
      seconds += dt;
      flops += stepFlops;
      losses.push(row.loss);
      if (pg.rank === 0) {
        fs.appendFileSync(metricsPath, `${JSON.stringify({ step, ...row, samplesPerSec: engine.config.trainBatchSize / dt, tokensPerSec: (tokens * dp.size) / dt, seconds, flops })}\n`);
        bar.tick(1, `loss ${row.loss.toFixed(3)} (${Object.entries(row).filter(([k, v]) => typeof v === 'number' && !['loss', 'lr', 'gradNorm', 'dropped', 'lossScale', 'skippedSteps'].includes(k)).map(([k, v]) => `${k} ${(v as number).toFixed(3)}`).join(' ')})`);
      }
      if (spec.validate && (pg.rank === 0 || splitModel || partitioned) && (step % spec.validate.every === 0 || step === cfg.steps)) {
        spec.model.eval();
        const validate = spec.validate;
        const metrics = await engine.gatheredParameters(() => (pg.rank === 0 || splitModel ? validate.run(step) : Promise.resolve(null)));
        spec.model.train();
        if (pg.rank === 0 && metrics) {
          const v: ValRow = { step, seconds, flops, metrics };
          fs.appendFileSync(valPath, `${JSON.stringify(v)}\n`);
          // metrics are fractions (printed as percent), losses (keys loss, loss_*) are printed as they are
          bar.note(`validation at step ${step}: ${Object.entries(metrics).map(([k, x]) => `${k} ${/^loss(_|$)/.test(k) ? x.toFixed(3) : (100 * x).toFixed(2)}`).join(', ')}`);
        }
      }
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps) save();
      t0 = performance.now(); // validation and checkpoints are not training time
      if (spec.stopAfter !== undefined && step >= spec.stopAfter) process.kill(process.pid, 'SIGKILL'); // a crash, for the resume tests
      if (step >= cfg.steps) break epochs;
    }
  }
  bar.finish();
  await loader.close();
  engine.destroy();
  // the run's cached blocks go back to the system: the next run in this process (a study's next
  // model) starts from an empty cache (the cache would also evict them once stale; this is sooner)
  T.emptyCache();
  return { runDir, checkpoints: ckptDir, losses, stepsRun: step - start };
}
