/**
 * Adam (torch.optim.Adam): L2 weight decay added to the gradient. AdamW (adamw.ts) shares
 * this implementation with decoupled weight decay.
 *
 * Per parameter, as PyTorch 1.13's for-loop implementation (step counts per parameter;
 * parameters without a gradient are skipped and keep their count):
 *   step += 1
 *   g = maximize ? -grad : grad;  Adam: g += wd * p;  AdamW: p *= 1 - lr * wd
 *   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
 *   denom = sqrt(amsgrad ? vmax = max(vmax, v) : v) / sqrt(1 - beta2^step) + eps
 *   p -= lr / (1 - beta1^step) * m / denom
 *
 * With `fused` (default) every float32/float64 contiguous parameter of a group is updated by
 * one native call per device and dtype (packages/native-cuda/src/cpu/optim.cpp, cuda/optim.cu);
 * other parameters (non-contiguous) and `fused: false` use a per-tensor path of elementwise
 * ops — the plain reference the tests compare the fused kernel with.
 */
import { zerosLike } from '../ops/creation.js';
import { add, add_, copy_, div, maximum, mul, mul_, neg, sqrt } from '../ops/elementwise.js';
import { keep, scope } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { adamStep, fusable, fusedKey, groupBy, type AdamItem } from './fused.js';
import { checkNonNegative, gradFor, Optimizer, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  /** Use the fused native multi-tensor kernel where the parameters allow it (default true). */
  fused: boolean;
}

export abstract class AdamBase extends Optimizer<AdamOptions> {
  /** True for AdamW (decoupled weight decay). A getter: the base constructor reads it. */
  protected abstract get decoupled(): boolean;

  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    checkNonNegative(this.name, 'epsilon value', g.eps);
    checkNonNegative(this.name, 'weightDecay value', g.weightDecay);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new RangeError(`${this.name}: betas must be [beta1, beta2]`);
    g.betas.forEach((b, i) => {
      if (typeof b !== 'number' || !(b >= 0 && b < 1)) throw new RangeError(`${this.name}: invalid beta parameter at index ${i}: ${b} (expected 0 <= beta < 1)`);
    });
  }

  protected override createState(p: Tensor, s: ParamState, g: ParamGroup<AdamOptions>, zeros: (like: Tensor) => Tensor): void {
    if (s.step === undefined) {
      s.step = 0;
      s.expAvg = keep(zeros(p));
      s.expAvgSq = keep(zeros(p));
    }
    if (g.amsgrad && s.maxExpAvgSq === undefined) s.maxExpAvgSq = keep(zeros(p));
  }

  protected stepGroup(g: ParamGroup<AdamOptions>): void {
    const [beta1, beta2] = g.betas;
    const items: AdamItem[] = [];
    const temps: Tensor[] = [];
    try {
      for (const p of g.params) {
        if (!p.grad) continue;
        const s = this.stateOf(p);
        this.createState(p, s, g, zerosLike);
        const fused = g.fused && fusable(p);
        const { grad, temp } = gradFor(this.name, p, fused);
        if (temp) temps.push(grad);
        s.step = (s.step as number) + 1;
        const item: AdamItem = {
          param: p,
          grad,
          expAvg: s.expAvg as Tensor,
          expAvgSq: s.expAvgSq as Tensor,
          maxExpAvgSq: g.amsgrad ? (s.maxExpAvgSq as Tensor) : null,
          step: s.step,
        };
        if (fused && fusable(item.expAvg) && fusable(item.expAvgSq) && (!item.maxExpAvgSq || fusable(item.maxExpAvgSq))) items.push(item);
        else this.stepReference(item, g);
      }
      const h = { lr: g.lr, beta1, beta2, eps: g.eps, weightDecay: g.weightDecay, maximize: g.maximize, decoupled: this.decoupled, amsgrad: g.amsgrad };
      for (const same of groupBy(items, (it) => fusedKey(it.param))) adamStep(same, h);
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  /** The per-tensor path (elementwise ops): CUDA, non-contiguous, or `fused: false`. */
  private stepReference(it: AdamItem, g: ParamGroup<AdamOptions>): void {
    const [beta1, beta2] = g.betas;
    const { param: p, expAvg: m, expAvgSq: v } = it;
    scope(() => {
      let grad = g.maximize ? neg(it.grad) : it.grad;
      if (this.decoupled) mul_(p, 1 - g.lr * g.weightDecay);
      else if (g.weightDecay !== 0) grad = add(grad, p, g.weightDecay);
      add_(mul_(m, beta1), grad, 1 - beta1);
      add_(mul_(v, beta2), mul(grad, grad), 1 - beta2);
      let src = v;
      if (it.maxExpAvgSq) {
        copy_(it.maxExpAvgSq, maximum(it.maxExpAvgSq, v));
        src = it.maxExpAvgSq;
      }
      const bc1 = 1 - beta1 ** it.step;
      const bc2 = 1 - beta2 ** it.step;
      const denom = add(div(sqrt(src), Math.sqrt(bc2)), g.eps);
      add_(p, div(m, denom), -(g.lr / bc1));
    });
  }
}

/** torch.optim.Adam (L2 weight decay; default weightDecay 0). */
export class Adam extends AdamBase {
  protected get name(): string {
    return 'Adam';
  }
  protected get decoupled(): boolean {
    return false;
  }

  constructor(params: ParamsInput<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, fused: true, ...opts });
  }
}
