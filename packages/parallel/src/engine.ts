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
 *   order). Dense parameters are averaged over the world; expert parameters (tag `expert`)
 *   are summed over the expert-data-parallel group and divided by the world size
 *   (DeepSpeed's scaling: the all-to-all already brought every rank's tokens to the expert).
 * - ZeRO stage 1: each rank keeps optimiser state for 1/N of the flattened parameters only
 *   (dense: N = world; expert: N = expert-data-parallel size), steps its partition, and the
 *   partitions are all-gathered back into the parameters. Stage 2: the gradients are
 *   reduce-scattered instead of all-reduced, so each rank only receives its partition; with
 *   overlap, a bucket (a contiguous range of the flat parameter space) is reduce-scattered
 *   with uneven blocks as soon as it is ready and its `.grad`s are freed right away.
 * - Gradient clipping by the global norm over all parameters (expert partitions and shards
 *   included exactly once).
 * - Checkpoints by global parameter name and global expert index (checkpoint.ts), so they
 *   load at another world size, expert-parallel size or ZeRO stage.
 */
import * as T from '@vlmoe/tensor';
import { resolveConfig, type DeepSpeedConfig, type ResolvedConfig } from './config.js';
import { createParallelGroups, type ParallelGroups } from './groups.js';
import type { ProcessGroup } from './process_group.js';
import { OverlappedReducer } from './overlap.js';
import { LossScaler } from './loss_scaler.js';
import { wireModel } from './wiring.js';

type Optim = T.optim.Optimizer<T.optim.BaseHyper>;

/** A set of parameters reduced over one group, optionally flattened and partitioned (ZeRO). */
interface ParamSet {
  kind: 'dense' | 'expert';
  names: string[];
  params: T.nn.Parameter[];
  /** Group the gradients are summed over. */
  group: ProcessGroup;
  /** Flat offsets (ZeRO): params[i] occupies [offsets[i], offsets[i] + numel). */
  offsets: number[];
  numel: number;
  /** ZeRO: elements per rank partition (numel padded up to a multiple of group size). */
  chunk: number;
  /** ZeRO: this rank's partition as a trainable flat tensor (the optimiser's only parameter). */
  shard: T.nn.Parameter | null;
}

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
  readonly optimizer: Optim;
  readonly lrScheduler: T.optim.LRScheduler | null;
  globalSteps = 0;
  microSteps = 0;
  /** fp16: optimiser steps skipped because the gradients overflowed. */
  skippedSteps = 0;
  /** fp16: the loss scaler (null otherwise). */
  readonly lossScaler: LossScaler | null;
  readonly sets: ParamSet[];
  /** Buckets reduced during backward (overlap_comm, more than one rank): all-reduced (stages 0, 1) or reduce-scattered (stage 2). */
  private readonly overlap: OverlappedReducer | null;

  constructor(o: EngineOptions) {
    this.module = o.model;
    const world = o.processGroup;
    const source = o.configSource ?? (typeof o.config === 'string' ? o.config : 'config');
    this.config = resolveConfig(typeof o.config === 'string' ? (T.readJsonFile(o.config, 'DeepSpeed config') as DeepSpeedConfig) : o.config, world.size, source);
    if (o.groups && o.groups.expertParallelSize !== this.config.expertParallel)
      throw new Error(`initialize: the given groups have expert-parallel size ${o.groups.expertParallelSize}, the config says ${this.config.expertParallel}`);
    this.groups = o.groups ?? createParallelGroups(world, this.config.expertParallel);
    // the layout goes into the model before its parameters are listed (MoE layers keep their share of the experts)
    wireModel(o.model, this.groups);
    const named = [...o.model.namedParameters()];
    if (!named.length) throw new Error('initialize: the model has no parameters');
    const dense = named.filter(([, p]) => !p.tags.expert), expert = named.filter(([, p]) => p.tags.expert);
    const mk = (kind: 'dense' | 'expert', list: [string, T.nn.Parameter][], group: ProcessGroup): ParamSet => {
      const offsets: number[] = [];
      let n = 0;
      for (const [, p] of list) {
        offsets.push(n);
        n += p.numel;
      }
      const chunk = Math.ceil(n / group.size);
      return { kind, names: list.map(([k]) => k), params: list.map(([, p]) => p), group, offsets, numel: n, chunk, shard: null };
    };
    this.sets = [mk('dense', dense, world)];
    if (expert.length) this.sets.push(mk('expert', expert, this.groups.expertDataParallel));
    // every rank starts from rank 0's dense parameters and its expert-data-parallel peers' experts
    T.noGrad(() => {
      for (const s of this.sets) for (const p of s.params) s.group.broadcast(p, 0);
    });
    if (this.config.stage >= 1) {
      for (const s of this.sets) {
        const flat = this.flatten(s, (p) => p);
        const r = s.group.rank;
        const part = T.noGrad(() => T.zeros([s.chunk], { dtype: s.params[0]!.dtype, device: s.params[0]!.device }));
        const lo = Math.min(s.numel, r * s.chunk), hi = Math.min(s.numel, (r + 1) * s.chunk);
        if (hi > lo) T.noGrad(() => T.copy_(part.narrow(0, 0, hi - lo), flat.narrow(0, lo, hi - lo)));
        flat.dispose();
        s.shard = new T.nn.Parameter(part);
      }
      this.optimizer = makeOptimizer(this.config, this.sets.map((s) => s.shard!));
    } else {
      this.optimizer = makeOptimizer(this.config, named.map(([, p]) => p));
    }
    this.lrScheduler = makeScheduler(this.config, this.optimizer);
    this.lossScaler = this.config.lossScale ? new LossScaler(this.config.lossScale) : null;
    const reduces = this.sets.some((s) => s.group.size > 1);
    this.overlap = this.config.overlapComm && reduces ? new OverlappedReducer(this.sets, this.config.bucketElements, this.config.stage === 2) : null;
  }

  /** Gradient buckets per parameter set when reduction overlaps backward (else null). */
  get overlapBuckets(): number[] | null {
    return this.overlap ? this.overlap.bucketCounts : null;
  }

  /** The module's forward; with bf16 / fp16 its float32 matrix products run in that dtype (T.autocast). */
  forward<A extends unknown[], R>(...args: A): R {
    return T.autocast(this.config.mixedPrecision, () => (this.module as unknown as { forward: (...a: A) => R }).forward(...args));
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
    const overlap = this.overlap !== null && this.isGradientAccumulationBoundary();
    if (overlap) this.overlap!.begin();
    try {
      T.autocast(this.config.mixedPrecision, () => scaled.backward());
    } finally {
      // buckets whose parameters got no gradient (or all of them, if backward failed) go now
      if (overlap) this.overlap!.finishBackward();
    }
  }

  /** Concatenation of f(param) for the set's params (zeros where f gives null), float32 flat. */
  private flatten(s: ParamSet, f: (p: T.nn.Parameter) => T.Tensor | null): T.Tensor {
    return T.noGrad(() => {
      const out = T.zeros([s.chunk * s.group.size], { dtype: s.params[0]!.dtype, device: s.params[0]!.device });
      s.params.forEach((p, i) => {
        const v = f(p);
        if (v) T.copy_(out.narrow(0, s.offsets[i]!, p.numel), v.reshape(-1));
      });
      return out;
    });
  }

  /** Reduces the gradients of a set in place (plain data parallel / ZeRO-1): buckets in parameter order. */
  private allReduceGrads(s: ParamSet, scale: number): void {
    T.noGrad(() => {
      let bucket: T.nn.Parameter[] = [];
      let size = 0;
      const flush = () => {
        if (!bucket.length) return;
        const flat = T.cat(bucket.map((p) => p.grad!.reshape(-1)), 0);
        s.group.allReduce(flat, 'sum');
        T.mul_(flat, scale);
        let off = 0;
        for (const p of bucket) {
          T.copy_(p.grad!, flat.narrow(0, off, p.numel).reshape(...p.shape));
          off += p.numel;
        }
        flat.dispose();
        bucket = [];
        size = 0;
      };
      for (const p of s.params) {
        if (!p.grad) p.grad = T.keep(T.zeros(p.shape.slice(), { dtype: p.dtype, device: p.device }));
        bucket.push(p);
        size += p.numel;
        if (size >= this.config.bucketElements) flush();
      }
      flush();
    });
  }

  /** The squared global gradient norm: every gradient entry of the model counted once. */
  private gradNormSq(): number {
    let total = 0;
    T.noGrad(() => {
      for (const s of this.sets) {
        let local = 0;
        const acc = (g: T.Tensor | null) => {
          if (g) local += T.sum(T.mul(g, g)).item();
        };
        if (s.shard) acc(s.shard.grad);
        else for (const p of s.params) acc(p.grad);
        const t = T.tensor([local], { dtype: 'float64', device: s.group.device });
        // ZeRO partitions a set over its group; expert sets also differ across the EP group
        if (s.shard) s.group.allReduce(t, 'sum');
        if (s.kind === 'expert') this.groups.expertParallel.allReduce(t, 'sum');
        total += t.item();
      }
    });
    return total;
  }

  step(): number | null {
    const boundary = this.isGradientAccumulationBoundary();
    this.microSteps++;
    if (!boundary) return null;
    const W = this.groups.world.size;
    for (const s of this.sets) {
      if (this.config.stage === 2 && this.overlap) {
        // buckets were reduce-scattered during backward: this rank's partition only
        const g = this.overlap.wait(s, 1 / W)!;
        for (const p of s.params) p.zeroGrad();
        s.shard!.zeroGrad();
        s.shard!.grad = T.keep(g);
      } else if (this.config.stage === 2) {
        // reduce-scatter: this rank receives only its partition of the summed gradients
        T.noGrad(() => {
          const flat = this.flatten(s, (p) => p.grad);
          for (const p of s.params) p.zeroGrad();
          const g = T.zeros([s.chunk], { dtype: s.params[0]!.dtype, device: s.params[0]!.device });
          s.group.reduceScatterTensor(g, flat, 'sum');
          flat.dispose();
          T.mul_(g, 1 / W);
          s.shard!.zeroGrad();
          s.shard!.grad = T.keep(g);
        });
      } else {
        if (this.overlap) this.overlap.wait(s, 1 / W);
        else this.allReduceGrads(s, 1 / W);
        if (s.shard) {
          T.noGrad(() => {
            const flat = this.flatten(s, (p) => p.grad);
            for (const p of s.params) p.zeroGrad();
            s.shard!.zeroGrad();
            s.shard!.grad = T.keep(T.contiguous(flat.narrow(0, s.group.rank * s.chunk, s.chunk)));
            flat.dispose();
          });
        }
      }
    }
    if (this.lossScaler && this.lossScaler.scale !== 1) {
      // fp16: back to the true gradients
      const inv = 1 / this.lossScaler.scale;
      T.noGrad(() => {
        for (const s of this.sets) {
          if (s.shard) {
            if (s.shard.grad) T.mul_(s.shard.grad, inv);
          } else for (const p of s.params) if (p.grad) T.mul_(p.grad, inv);
        }
      });
    }
    const norm = Math.sqrt(this.gradNormSq());
    if (this.lossScaler) {
      // an overflow (the norm is reduced over every group, so all ranks agree) skips the step
      const overflow = !Number.isFinite(norm);
      this.lossScaler.update(overflow);
      if (overflow) {
        for (const s of this.sets) {
          s.shard?.zeroGrad();
          for (const p of s.params) p.zeroGrad();
        }
        this.skippedSteps++;
        this.globalSteps++;
        return norm;
      }
    }
    if (this.config.clip > 0 && norm > this.config.clip) {
      const coef = this.config.clip / (norm + 1e-6);
      T.noGrad(() => {
        for (const s of this.sets) {
          if (s.shard) T.mul_(s.shard.grad!, coef);
          else for (const p of s.params) if (p.grad) T.mul_(p.grad, coef);
        }
      });
    }
    this.optimizer.step();
    for (const s of this.sets) {
      if (!s.shard) continue;
      // gather the updated partitions back into the parameters
      T.noGrad(() => {
        const full = T.empty([s.chunk * s.group.size], { dtype: s.params[0]!.dtype, device: s.params[0]!.device });
        s.group.allGatherIntoTensor(full, s.shard!);
        s.params.forEach((p, i) => T.copy_(p, full.narrow(0, s.offsets[i]!, p.numel).reshape(...p.shape)));
        full.dispose();
      });
      s.shard.zeroGrad();
    }
    for (const s of this.sets) for (const p of s.params) p.zeroGrad();
    this.lrScheduler?.step();
    this.globalSteps++;
    return norm;
  }

  destroy(): void {
    this.overlap?.dispose();
    for (const st of this.optimizer.state.values()) for (const v of Object.values(st)) if (typeof v === 'object' && v) (v as T.Tensor).dispose();
    this.optimizer.state.clear();
    for (const s of this.sets) {
      s.shard?.dispose();
      s.shard = null;
    }
    this.module.dispose();
  }

  optimizerStateBytes(): number {
    let bytes = 0;
    for (const st of this.optimizer.state.values()) for (const v of Object.values(st)) if (typeof v === 'object' && v) bytes += (v as T.Tensor).numel * T.dtypeSize[(v as T.Tensor).dtype];
    return bytes;
  }

  getLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  saveCheckpoint(dir: string, tag?: string, clientState?: unknown): void {
    saveCheckpointImpl(this, dir, tag, clientState ?? null);
  }

  loadCheckpoint(dir: string, tag?: string): unknown {
    return loadCheckpointImpl(this, dir, tag);
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

import { loadCheckpointImpl, saveCheckpointImpl } from './checkpoint.js';
