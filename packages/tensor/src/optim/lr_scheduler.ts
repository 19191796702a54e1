/**
 * Learning-rate schedulers (torch.optim.lr_scheduler): `LRScheduler` base, `LambdaLR`
 * (lr = initialLr * lambda(step)) and `WarmupDecayLR`, a LambdaLR with linear warm-up then
 * constant, linear, cosine or polynomial decay (Hugging Face transformers' formulas).
 *
 * As in PyTorch, constructing a scheduler sets the lrs for step 0, and `step()` is called
 * after `optimizer.step()`; `lastEpoch` counts the calls.
 */
import type { BaseHyper, Optimizer } from './optimizer.js';

type AnyOptimizer = Optimizer<BaseHyper>;

export interface SchedulerStateDict {
  lastEpoch: number;
  baseLrs: number[];
  lastLr: number[];
}

export abstract class LRScheduler {
  lastEpoch: number;
  readonly baseLrs: number[];
  protected lastLr: number[] = [];

  constructor(readonly optimizer: AnyOptimizer, lastEpoch = -1) {
    if (lastEpoch === -1) {
      for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    } else {
      optimizer.paramGroups.forEach((g, i) => {
        if (g.initialLr === undefined) throw new Error(`${this.constructor.name}: param group ${i} has no initialLr; it is needed when resuming with lastEpoch = ${lastEpoch}`);
      });
    }
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /** Call once from the subclass constructor (PyTorch's initial step). */
  protected init(): void {
    this.step();
  }

  /** The lrs for `this.lastEpoch`, one per group. */
  protected abstract getLr(): number[];

  /** Advances one step and sets every group's lr. */
  step(): void {
    this.lastEpoch += 1;
    const lrs = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = lrs[i]!;
    });
    this.lastLr = lrs.slice();
  }

  /** The lrs set by the last step. */
  getLastLr(): number[] {
    return this.lastLr.slice();
  }

  stateDict(): SchedulerStateDict {
    return { lastEpoch: this.lastEpoch, baseLrs: this.baseLrs.slice(), lastLr: this.lastLr.slice() };
  }

  /** Restores the position (the lambdas themselves are code and are not saved, as PyTorch). */
  loadStateDict(sd: SchedulerStateDict): void {
    if (sd.baseLrs.length !== this.baseLrs.length)
      throw new Error(`${this.constructor.name}.loadStateDict: the state dict has ${sd.baseLrs.length} groups, the optimizer has ${this.baseLrs.length}`);
    this.lastEpoch = sd.lastEpoch;
    this.baseLrs.splice(0, this.baseLrs.length, ...sd.baseLrs);
    this.lastLr = sd.lastLr.slice();
  }
}

export type LrLambda = (step: number) => number;

/** lr = initialLr * lambda(step), one lambda for all groups or one per group. */
export class LambdaLR extends LRScheduler {
  readonly lrLambdas: LrLambda[];

  constructor(optimizer: AnyOptimizer, lrLambda: LrLambda | LrLambda[], lastEpoch = -1) {
    super(optimizer, lastEpoch);
    const n = optimizer.paramGroups.length;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== n) throw new Error(`LambdaLR: expected ${n} lrLambdas, got ${lrLambda.length}`);
      this.lrLambdas = lrLambda.slice();
    } else this.lrLambdas = new Array<LrLambda>(n).fill(lrLambda);
    this.init();
  }

  protected getLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lrLambdas[i]!(this.lastEpoch));
  }
}

export interface WarmupDecayOptions {
  /** Decay after warm-up: 'constant', 'linear' (to 0), 'cosine' or 'polynomial'. */
  kind: 'constant' | 'linear' | 'cosine' | 'polynomial';
  /** Steps of the whole schedule (warm-up included). Not needed for 'constant' with warmupSteps. */
  totalSteps?: number;
  /** Warm-up length in steps ... */
  warmupSteps?: number;
  /** ... or as a fraction of totalSteps (rounded up, as transformers' warmup_ratio). */
  warmupFraction?: number;
  /** cosine: the lr ratio the curve ends at (default 0). */
  minLrRatio?: number;
  /** cosine: number of waves (default 0.5: one half-cosine from 1 down to 0). */
  numCycles?: number;
  /** polynomial: the final lr (absolute, default 1e-7) ... */
  lrEnd?: number;
  /** ... the lr the polynomial starts from (default: the optimizer's default lr) ... */
  lrInit?: number;
  /** ... and the power (default 1). */
  power?: number;
}

function resolveWarmup(o: WarmupDecayOptions): number {
  if (o.warmupSteps !== undefined && o.warmupFraction !== undefined) throw new Error('warmupDecay: give warmupSteps or warmupFraction, not both');
  if (o.warmupFraction !== undefined) {
    if (!(o.warmupFraction >= 0 && o.warmupFraction <= 1)) throw new RangeError(`warmupDecay: warmupFraction must be in [0, 1], got ${o.warmupFraction}`);
    if (o.totalSteps === undefined) throw new Error('warmupDecay: warmupFraction needs totalSteps');
    return Math.ceil(o.totalSteps * o.warmupFraction);
  }
  const w = o.warmupSteps ?? 0;
  if (!Number.isInteger(w) || w < 0) throw new RangeError(`warmupDecay: warmupSteps must be a non-negative integer, got ${w}`);
  return w;
}

/**
 * The multiplier of a linear warm-up (0 at step 0, 1 at warmupSteps) followed by the chosen
 * decay, as a function of the step; the formulas of transformers'
 * get_{constant,linear,cosine,polynomial_decay}_schedule_with_warmup.
 */
export function warmupDecay(o: WarmupDecayOptions): LrLambda {
  const warmup = resolveWarmup(o);
  const total = o.totalSteps;
  if (o.kind !== 'constant') {
    if (total === undefined || !Number.isInteger(total) || total < 0) throw new RangeError(`warmupDecay: '${o.kind}' decay needs a non-negative integer totalSteps, got ${total}`);
    if (warmup > total) throw new RangeError(`warmupDecay: warmup (${warmup} steps) is longer than totalSteps (${total})`);
  }
  const T = total ?? 0;
  const warm = (step: number) => step / Math.max(1, warmup);
  switch (o.kind) {
    case 'constant':
      return (step) => (step < warmup ? warm(step) : 1);
    case 'linear':
      return (step) => (step < warmup ? warm(step) : Math.max(0, (T - step) / Math.max(1, T - warmup)));
    case 'cosine': {
      const cycles = o.numCycles ?? 0.5;
      const minRatio = o.minLrRatio ?? 0;
      return (step) => {
        if (step < warmup) return warm(step);
        const progress = (step - warmup) / Math.max(1, T - warmup);
        const c = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
        return minRatio + (1 - minRatio) * c;
      };
    }
    case 'polynomial': {
      const lrEnd = o.lrEnd ?? 1e-7;
      const power = o.power ?? 1;
      const lrInit = o.lrInit;
      if (lrInit === undefined) throw new Error('warmupDecay: polynomial decay needs lrInit (WarmupDecayLR fills it from the optimizer)');
      if (!(lrEnd < lrInit)) throw new RangeError(`warmupDecay: lrEnd (${lrEnd}) must be smaller than the initial lr (${lrInit})`);
      return (step) => {
        if (step < warmup) return warm(step);
        if (step > T) return lrEnd / lrInit;
        const pct = 1 - (step - warmup) / (T - warmup);
        return ((lrInit - lrEnd) * pct ** power + lrEnd) / lrInit;
      };
    }
    default:
      throw new Error(`warmupDecay: unknown kind '${String((o as { kind: unknown }).kind)}'`);
  }
}

/** LambdaLR with `warmupDecay(opts)` for every group. */
export class WarmupDecayLR extends LambdaLR {
  readonly options: WarmupDecayOptions;

  constructor(optimizer: AnyOptimizer, opts: WarmupDecayOptions, lastEpoch = -1) {
    const o = { ...opts };
    if (o.kind === 'polynomial' && o.lrInit === undefined) o.lrInit = optimizer.defaults.lr;
    super(optimizer, warmupDecay(o), lastEpoch);
    this.options = o;
  }
}
