/**
 * The training engine, after DeepSpeed's (`deepspeed.initialize` → engine with forward,
 * backward, step, save/load checkpoint):
 *
 * - Gradient accumulation: `backward(loss)` scales by 1 / gradient_accumulation_steps;
 *   `step()` is called every micro step and updates only at the accumulation boundary.
 * - Data parallel: gradients are all-reduced in buckets of `reduce_bucket_size` elements.
 *   With `zero_optimization.overlap_comm` (default on) the buckets are fixed in reverse
 *   parameter order (roughly the order backward finishes them, as DDP's) and a
 *   post-accumulate-grad hook launches each bucket's async collective on the communication
 *   thread as soon as all its gradients are final — in bucket order, so every rank issues the
 *   same collectives in the same order — while backward goes on; `step()` waits for them.
 *   Parameters left without a gradient count as zeros (their buckets go after backward).
 *   Like DDP without find_unused_parameters, overlap assumes that a backward's set of
 *   gradients is the same on every rank when it also runs collectives of its own (expert
 *   all-to-all); else turn it off. Without overlap the gradients are reduced after backward,
 *   in parameter order. Either way the result is the same bits (element-wise sums in rank
 *   order). Dense parameters are averaged over the data-parallel group; expert parameters
 *   (tag `expert`) are summed over the expert-data-parallel group and divided by the
 *   data-parallel size (DeepSpeed's scaling: the all-to-all already brought every rank's
 *   tokens to the expert).
 * - Tensor parallel (`tensor_parallel_size` T): the model's attention, dense FFNs and
 *   vocabulary are split over groups of T consecutive ranks (tensor_parallel/apply.ts); those
 *   ranks see the same samples, so the data-parallel size is world / T and batch sizes count
 *   it. Split parameters are reduced over the data-parallel group like the rest; replicated
 *   ones get the same gradient on every rank of a tensor-parallel group.
 * - ZeRO stage 1: each rank keeps optimiser state for 1/N of the flattened parameters only
 *   (dense: N = data-parallel size; expert: N = expert-data-parallel size), steps its partition, and the
 *   partitions are all-gathered back into the parameters. Stage 2: the gradients are
 *   reduce-scattered instead of all-reduced, so each rank only receives its partition; with
 *   overlap, a bucket (a contiguous range of the flat parameter space) is reduce-scattered
 *   with uneven blocks as soon as it is ready and its `.grad`s are freed right away.
 * - Stage 3: the parameters are partitioned too — each rank keeps its block of every
 *   parameter of at least `stage3_param_persistence_threshold` elements (DeepSpeed's
 *   per-parameter partitions; smaller ones stay whole) and their full tensors are freed; a
 *   module's are gathered just before its forward and again before its backward, and freed
 *   right after (zero3.ts). With overlap_comm each gradient is reduce-scattered into its
 *   partition block as soon as it is final and freed (zero.ts); `gatheredParameters(fn)` runs
 *   code that needs the full parameters.
 * - Gradient clipping by the global norm over all parameters (expert partitions, ZeRO
 *   partitions and tensor-parallel shards included exactly once, replicated ones once).
 * - Checkpoints by global parameter name, global expert index and full (unsplit) tensors
 *   (checkpoint.ts), so they load at another world size, tensor- or expert-parallel size or
 *   ZeRO stage.
 *
 * What is partitioned and how gradients are reduced at each stage is the ZeRO optimizer's
 * (zero.ts); the engine wires the layout into the model (wiring.ts), counts micro steps,
 * scales the loss, and drives the ZeRO optimizer, the loss scaler and the scheduler.
 */
import * as T from '@vlmoe/tensor';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { resolveConfig, type DeepSpeedConfig, type ResolvedConfig } from './config.js';
import { createParallelGroups, type ParallelGroups } from './groups.js';
import { LossScaler } from './loss_scaler.js';
import type { ProcessGroup } from './process_group.js';
import type { TensorParallelReport } from './tensor_parallel/apply.js';
import { isOptimizerStepModule, wireModel, type OptimizerStepModule } from './wiring.js';
import { ZeroOptimizer, type Optim } from './zero.js';
import { ParameterCoordinator } from './zero3.js';

export interface EngineOptions {
  model: T.nn.Module;
  /** DeepSpeed's config: an object or the path of a JSON file (as deepspeed.initialize takes). */
  config: DeepSpeedConfig | string;
  /** Names the config in errors (default: the file's path, or 'config'), e.g. "run.json: engine". */
  configSource?: string;
  /** The world group (initProcessGroup()). */
  processGroup: ProcessGroup;
  /** Groups made beforehand with createParallelGroups (needed when the model's MoE layers take the expert-parallel group at construction). */
  groups?: ParallelGroups;
}

export interface Engine {
  readonly module: T.nn.Module;
  readonly config: ResolvedConfig;
  readonly groups: ParallelGroups;
  readonly optimizer: Optim;
  readonly lrScheduler: T.optim.LRScheduler | null;
  /** Optimiser steps taken, micro steps seen. */
  readonly globalSteps: number;
  readonly microSteps: number;
  forward<A extends unknown[], R>(...args: A): R;
  backward(loss: T.Tensor): void;
  /** Call after every backward: updates at the gradient-accumulation boundary. Returns the pre-clip global grad norm when it stepped. */
  step(): number | null;
  isGradientAccumulationBoundary(): boolean;
  /** `clientState`: the caller's JSON-able resumable state (data position, RNG seeds), stored in the index. */
  saveCheckpoint(dir: string, tag?: string, clientState?: unknown): void;
  /** Loads the latest (or `tag`) checkpoint; returns the saved clientState (null if none). */
  loadCheckpoint(dir: string, tag?: string): unknown;
  /** Bytes of optimiser state this rank holds. */
  optimizerStateBytes(): number;
  /** Runs `fn` with the full parameters in place (ZeRO-3 gathers them; collective). */
  gatheredParameters<R>(fn: () => R): R;
  getLr(): number[];
  /** Frees the optimiser state, the ZeRO partitions and the module's parameters (DeepSpeed's `destroy`). */
  destroy(): void;
}

function makeOptimizer(c: ResolvedConfig, params: T.Tensor[]): Optim {
  const p = c.optimizer.params ?? {};
  const lr = p.lr ?? 1e-3;
  switch (c.optimizer.type) {
    case 'SGD':
      return new T.optim.SGD(params, { lr, momentum: p.momentum ?? 0, weightDecay: p.weight_decay ?? 0 }) as unknown as Optim;
    case 'Adam':
      // DeepSpeed's Adam decouples weight decay unless adam_w_mode is false (its FusedAdam / CPUAdam default)
      if (p.adam_w_mode ?? true) return new T.optim.AdamW(params, { lr, betas: p.betas ?? [0.9, 0.999], eps: p.eps ?? 1e-8, weightDecay: p.weight_decay ?? 0 }) as unknown as Optim;
      return new T.optim.Adam(params, { lr, betas: p.betas ?? [0.9, 0.999], eps: p.eps ?? 1e-8, weightDecay: p.weight_decay ?? 0 }) as unknown as Optim;
    default:
      return new T.optim.AdamW(params, { lr, betas: p.betas ?? [0.9, 0.999], eps: p.eps ?? 1e-8, weightDecay: p.weight_decay ?? 0.01 }) as unknown as Optim;
  }
}

function makeScheduler(c: ResolvedConfig, opt: Optim): T.optim.LRScheduler | null {
  const s = c.scheduler;
  if (!s) return null;
  const p = s.params ?? {};
  const warmup = p.warmup_num_steps ?? 1000;
  const maxLr = p.warmup_max_lr ?? opt.defaults.lr, minLr = p.warmup_min_lr ?? 0;
  for (const g of opt.paramGroups) g.lr = maxLr;
  (opt.defaults as { lr: number }).lr = maxLr;
  const span = maxLr > 0 ? minLr / maxLr : 0;
  const warm = (step: number) => (warmup > 0 && step < warmup ? span + (1 - span) * (step / warmup) : 1);
  if (s.type === 'WarmupLR') return new T.optim.LambdaLR(opt, (step) => warm(step));
  const total = p.total_num_steps!;
  if (s.type === 'WarmupDecayLR') return new T.optim.LambdaLR(opt, (step) => (step < warmup ? warm(step) : Math.max(0, (total - step) / Math.max(1, total - warmup))));
  const minRatio = p.cos_min_ratio ?? 0;
  return new T.optim.LambdaLR(opt, (step) => {
    if (step < warmup) return warm(step);
    const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
    return minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress));
  });
}

export class DistributedEngine implements Engine {
  readonly module: T.nn.Module;
  readonly config: ResolvedConfig;
  readonly groups: ParallelGroups;
  /** Partitioning, gradient reduction and the optimiser (zero.ts). */
  readonly zero: ZeroOptimizer;
  readonly lrScheduler: T.optim.LRScheduler | null;
  globalSteps = 0;
  microSteps = 0;
  /** fp16: optimiser steps skipped because the gradients overflowed. */
  skippedSteps = 0;
  /** Modules told after each optimizer step (e.g. routers' expert bias updates). */
  private readonly stepModules: OptimizerStepModule[];
  /** fp16: the loss scaler (null otherwise). */
  readonly lossScaler: LossScaler | null;
  /** What tensor parallelism split in the model (zeros at tensor_parallel_size 1 apart from the element counts). */
  readonly tensorParallelReport: TensorParallelReport;
  /** ZeRO-3: gathers and frees the partitioned parameters around each module (null below stage 3). */
  private readonly coordinator: ParameterCoordinator | null;

  constructor(o: EngineOptions) {
    this.module = o.model;
    const world = o.processGroup;
    const source = o.configSource ?? (typeof o.config === 'string' ? o.config : 'config');
    this.config = resolveConfig(typeof o.config === 'string' ? (T.readJsonFile(o.config, 'DeepSpeed config') as DeepSpeedConfig) : o.config, world.size, source);
    if (o.groups && o.groups.expertParallelSize !== this.config.expertParallel)
      throw new Error(`initialize: the given groups have expert-parallel size ${o.groups.expertParallelSize}, the config says ${this.config.expertParallel}`);
    if (o.groups && o.groups.tensorParallelSize !== this.config.tensorParallel)
      throw new Error(`initialize: the given groups have tensor-parallel size ${o.groups.tensorParallelSize}, the config says ${this.config.tensorParallel}`);
    this.groups = o.groups ?? createParallelGroups(world, { tensor: this.config.tensorParallel, expert: this.config.expertParallel });
    // the layout goes into the model before its parameters are listed (split layers, MoE layers' share of the experts)
    this.tensorParallelReport = wireModel(o.model, this.groups);
    this.stepModules = [...o.model.modules()].flatMap((m) => (isOptimizerStepModule(m) ? [m] : []));
    this.zero = new ZeroOptimizer([...o.model.namedParameters()], this.groups, {
      stage: this.config.stage, bucketElements: this.config.bucketElements, overlapComm: this.config.overlapComm, persistenceThreshold: this.config.persistenceThreshold,
      offloadOptimizer: this.config.offloadOptimizer,
      makeOptimizer: (params) => makeOptimizer(this.config, params),
    });
    this.coordinator = this.config.stage === 3 ? new ParameterCoordinator(o.model, this.zero, this.config.prefetchElements, this.config.maxLiveElements) : null;
    this.lrScheduler = makeScheduler(this.config, this.zero.optimizer);
    this.lossScaler = this.config.lossScale ? new LossScaler(this.config.lossScale) : null;
  }

  get optimizer(): Optim {
    return this.zero.optimizer;
  }

  /** Gradient buckets per parameter group when reduction overlaps backward (else null). */
  get overlapBuckets(): number[] | null {
    return this.zero.overlapBuckets;
  }

  /** The module's forward; with bf16 / fp16 its float32 matrix products run in that dtype (T.autocast). */
  forward<A extends unknown[], R>(...args: A): R {
    this.coordinator?.beginPhase('forward');
    try {
      return T.autocast(this.config.mixedPrecision, () => (this.module as unknown as { forward: (...a: A) => R }).forward(...args));
    } finally {
      this.coordinator?.endForward();
    }
  }

  /** The current fp16 loss scale (1 without fp16). */
  get lossScale(): number {
    return this.lossScaler?.scale ?? 1;
  }

  isGradientAccumulationBoundary(): boolean {
    return (this.microSteps + 1) % this.config.gradAccum === 0;
  }

  backward(loss: T.Tensor): void {
    if (loss.numel !== 1) throw new Error(`engine.backward: the loss must be a scalar, got shape [${loss.shape.join(', ')}]`);
    // 1 / accumulation steps, times the fp16 loss scale (undone in step())
    const factor = this.lossScale / this.config.gradAccum;
    const scaled = factor !== 1 ? T.mul(loss, factor) : loss;
    const boundary = this.isGradientAccumulationBoundary();
    this.zero.beginBackward(boundary);
    this.coordinator?.beginPhase('backward');
    try {
      T.autocast(this.config.mixedPrecision, () => scaled.backward());
    } finally {
      this.zero.endBackward(boundary);
      this.coordinator?.endBackward();
    }
  }

  /**
   * Runs `fn` with the module's full parameters in place (collective: every rank calls it,
   * though `fn` may differ per rank) — under ZeRO-3 the partitioned parameters are gathered
   * first and freed after `fn` returns or its promise settles (DeepSpeed's
   * `GatheredParameters`); at other stages it just runs `fn`.
   */
  gatheredParameters<R>(fn: () => R): R {
    return this.coordinator ? this.coordinator.gathered(fn) : fn();
  }

  step(): number | null {
    const boundary = this.isGradientAccumulationBoundary();
    this.microSteps++;
    if (!boundary) return null;
    this.zero.reduceGradients(1 / this.groups.dataParallelSize);
    // fp16: back to the true gradients
    if (this.lossScaler && this.lossScaler.scale !== 1) this.zero.scaleGradients(1 / this.lossScaler.scale);
    const norm = Math.sqrt(this.zero.gradNormSq());
    if (this.lossScaler) {
      // an overflow (the norm is reduced over every group, so all ranks agree) skips the step
      const overflow = !Number.isFinite(norm);
      this.lossScaler.update(overflow);
      if (overflow) {
        this.zero.zeroGrad();
        this.skippedSteps++;
        this.globalSteps++;
        for (const m of this.stepModules) m.afterOptimizerStep(this.groups);
        return norm;
      }
    }
    if (this.config.clip > 0 && norm > this.config.clip) this.zero.scaleGradients(this.config.clip / (norm + 1e-6));
    this.zero.step();
    this.coordinator?.afterStep();
    this.lrScheduler?.step();
    this.globalSteps++;
    for (const m of this.stepModules) m.afterOptimizerStep(this.groups);
    return norm;
  }

  destroy(): void {
    this.coordinator?.remove();
    this.zero.destroy();
    this.module.dispose();
  }

  optimizerStateBytes(): number {
    return this.zero.stateBytes();
  }

  getLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  saveCheckpoint(dir: string, tag = `global_step${this.globalSteps}`, clientState?: unknown): void {
    saveCheckpoint(dir, tag, this.zero, this.groups.world, { world: this.groups.world.size, expertParallel: this.groups.expertParallelSize, tensorParallel: this.groups.tensorParallelSize, stage: this.config.stage }, {
      globalSteps: this.globalSteps, microSteps: this.microSteps, lrs: this.getLr(), scheduler: this.lrScheduler ? this.lrScheduler.stateDict() : null,
      lossScaler: this.lossScaler ? this.lossScaler.stateDict() : null, skippedSteps: this.skippedSteps, clientState: clientState ?? null,
    }, [...this.module.namedBuffers()]);
  }

  loadCheckpoint(dir: string, tag?: string): unknown {
    const s = loadCheckpoint(dir, tag, this.zero, this.groups.world, [...this.module.namedBuffers()]);
    this.globalSteps = s.globalSteps;
    this.microSteps = s.microSteps;
    this.skippedSteps = s.skippedSteps;
    if (this.lossScaler && s.lossScaler) this.lossScaler.loadStateDict(s.lossScaler);
    this.optimizer.paramGroups.forEach((g) => (g.lr = s.lrs[0] ?? g.lr));
    if (this.lrScheduler && s.scheduler) this.lrScheduler.loadStateDict(s.scheduler as T.optim.SchedulerStateDict);
    return s.clientState;
  }
}

export interface InitializeResult {
  engine: DistributedEngine;
  optimizer: Optim;
  lrScheduler: T.optim.LRScheduler | null;
}

/** deepspeed.initialize: wraps the model in an engine built from a DeepSpeed config. */
export function initialize(o: EngineOptions): InitializeResult {
  const engine = new DistributedEngine(o);
  return { engine, optimizer: engine.optimizer, lrScheduler: engine.lrScheduler };
}
