/**
 * SGD with momentum (torch.optim.SGD), per parameter as PyTorch 1.13:
 *   d = maximize ? -grad : grad;  if weightDecay: d += weightDecay * p
 *   if momentum: buf = (first step) ? d : momentum * buf + (1 - dampening) * d
 *                d = nesterov ? d + momentum * buf : buf
 *   p -= lr * d
 * `fused` (default): one native call per group and dtype for CPU float contiguous
 * parameters; otherwise a per-tensor path of elementwise ops.
 */
import { emptyLike } from '../ops/creation.js';
import { add, add_, clone, mul_, neg } from '../ops/elementwise.js';
import { keep, scope } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { fusable, fusedKey, groupBy, sgdStep, type SgdHyper, type SgdItem } from './fused.js';
import { checkNonNegative, gradFor, Optimizer, type ParamGroup, type ParamState, type ParamsInput } from './optimizer.js';

export interface SGDOptions extends SgdHyper {
  /** Use the fused native multi-tensor kernel where the parameters allow it (default true). */
  fused: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  protected get name(): string {
    return 'SGD';
  }

  /** `lr` has no default in PyTorch 1.13; here it is required too. */
  constructor(params: ParamsInput<SGDOptions>, opts: Partial<SGDOptions> & { lr: number }) {
    if (opts?.lr === undefined) throw new Error('SGD: lr is required');
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, fused: true, ...opts });
  }

  protected override validate(g: ParamGroup<SGDOptions>): void {
    super.validate(g);
    checkNonNegative(this.name, 'momentum value', g.momentum);
    checkNonNegative(this.name, 'weightDecay value', g.weightDecay);
    if (typeof g.dampening !== 'number' || Number.isNaN(g.dampening)) throw new RangeError(`${this.name}: invalid dampening ${g.dampening}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new Error(`${this.name}: Nesterov momentum requires a momentum and zero dampening`);
  }

  /**
   * The momentum buffer as zeros: the first step then computes momentum · 0 + grad = grad, the
   * buffer PyTorch's first step copies (with dampening that copy is undamped, so zeros would
   * differ: refused).
   */
  protected override createState(p: Tensor, s: ParamState, g: ParamGroup<SGDOptions>, zeros: (like: Tensor) => Tensor): void {
    if (g.momentum === 0 || s.momentumBuffer !== undefined) return;
    if (g.dampening !== 0) throw new Error(`${this.name}.initState: a momentum buffer created before the first step needs dampening 0 (the first step copies the gradient undamped), got ${g.dampening}`);
    s.momentumBuffer = keep(zeros(p));
  }

  protected stepGroup(g: ParamGroup<SGDOptions>): void {
    const items: SgdItem[] = [];
    const temps: Tensor[] = [];
    const mom = g.momentum !== 0;
    try {
      for (const p of g.params) {
        if (!p.grad) continue;
        const fused = g.fused && fusable(p);
        const { grad, temp } = gradFor(this.name, p, fused);
        if (temp) temps.push(grad);
        const s = this.stateOf(p);
        const buf = (s.momentumBuffer as Tensor | undefined) ?? null;
        const item: SgdItem = { param: p, grad, buf: mom ? buf : null, init: mom && !buf };
        if (fused && (!mom || !buf || fusable(buf))) {
          if (item.init) item.buf = s.momentumBuffer = keep(emptyLike(p));
          items.push(item);
        } else this.stepReference(item, g, s);
      }
      const h = { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, maximize: g.maximize };
      for (const same of groupBy(items, (it) => fusedKey(it.param))) sgdStep(same, h);
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  private stepReference(it: SgdItem, g: ParamGroup<SGDOptions>, s: Record<string, Tensor | number>): void {
    scope(() => {
      let d = g.maximize ? neg(it.grad) : it.grad;
      if (g.weightDecay !== 0) d = add(d, it.param, g.weightDecay);
      if (g.momentum !== 0) {
        let buf = it.buf;
        if (!buf) buf = s.momentumBuffer = keep(clone(d));
        else add_(mul_(buf, g.momentum), d, 1 - g.dampening);
        d = g.nesterov ? add(d, buf, g.momentum) : buf;
      }
      add_(it.param, d, -g.lr);
    });
  }
}
