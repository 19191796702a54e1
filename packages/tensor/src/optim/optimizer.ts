/**
 * Optimizer base class (torch.optim.Optimizer): parameter groups with their own
 * hyperparameters, per-parameter state, `step()`, `zeroGrad()` and a state dict that resumes
 * training exactly.
 *
 * State tensors are `keep()`-ed (no scope frees them) and owned by the optimiser:
 * `dispose()` frees them. `step()` runs under noGrad.
 */
import { enableGrad, noGrad } from '../autograd.js';
import { recordFunction } from '../profiler.js';
import { clone, contiguous, cast, fill_ } from '../ops/elementwise.js';
import { keep } from '../scope.js';
import { fmtShape, Tensor } from '../tensor.js';

/** Hyperparameters every group has. */
export interface BaseHyper {
  lr: number;
}

/** A parameter group: its parameters plus its hyperparameters. */
export type ParamGroup<H extends BaseHyper = BaseHyper> = H & {
  params: Tensor[];
  /** Set by LR schedulers: the lr the schedule multiplies (torch's `initial_lr`). */
  initialLr?: number;
};

/** A group as given to a constructor: hyperparameters it leaves out come from the defaults. */
export type ParamGroupInput<H extends BaseHyper = BaseHyper> = Partial<H> & { params: Iterable<Tensor> };

/** Parameters as given to a constructor: tensors, or groups of tensors with their own options. */
export type ParamsInput<H extends BaseHyper = BaseHyper> = Iterable<Tensor> | readonly ParamGroupInput<H>[];

/** Per-parameter state: a step count and state tensors (expAvg, momentumBuffer, ...). */
export type ParamState = Record<string, Tensor | number>;

/**
 * torch-style state dict. Parameters are named by their index over all groups in order;
 * group entries hold the hyperparameters and those indices.
 */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && (x as { _isTensor?: boolean })._isTensor === true;
}

export abstract class Optimizer<H extends BaseHyper = BaseHyper> {
  readonly defaults: H;
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state, created lazily by the first step that sees a gradient. */
  readonly state = new Map<Tensor, ParamState>();
  /** The class name used in messages (a getter: the base constructor reads it). */
  protected abstract get name(): string;

  constructor(params: ParamsInput<H>, defaults: H) {
    this.defaults = { ...defaults };
    const list = [...(params as Iterable<Tensor | ParamGroupInput<H>>)];
    if (list.length === 0) throw new Error('optimizer got an empty parameter list');
    if (list.every(isTensor)) this.addParamGroup({ params: list as Tensor[] } as unknown as ParamGroupInput<H>);
    else if (list.some(isTensor)) throw new Error('optimizer: give either tensors or parameter groups ({params, ...options}), not a mix');
    else for (const g of list as ParamGroupInput<H>[]) this.addParamGroup(g);
  }

  /** Adds a group (torch's add_param_group); options it leaves out come from the defaults. */
  addParamGroup(group: ParamGroupInput<H>): void {
    const params = isTensor(group.params) ? [group.params as unknown as Tensor] : [...group.params];
    if (params.length === 0) throw new Error(`${this.name}: a parameter group has no parameters`);
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of params) {
      if (!isTensor(p)) throw new TypeError(`${this.name}: parameters must be Tensors`);
      if (!p.isLeaf) throw new Error(`${this.name}: can't optimize a non-leaf Tensor (shape ${fmtShape(p.shape)})`);
      if (seen.has(p)) throw new Error(`${this.name}: some parameters appear in more than one parameter group (shape ${fmtShape(p.shape)})`);
      seen.add(p);
    }
    const full = { ...this.defaults, ...group, params } as ParamGroup<H>;
    const rec = full as unknown as Record<string, unknown>;
    const defs = this.defaults as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(rec)) if (v === undefined && k in defs) rec[k] = defs[k];
    this.validate(full);
    this.paramGroups.push(full);
  }

  /** Checks a group's hyperparameters (throws a clear error). */
  protected validate(group: ParamGroup<H>): void {
    checkNonNegative(this.name, 'lr', group.lr);
  }

  /**
   * One optimisation step over every parameter that has a gradient. `closure`, if given,
   * re-evaluates the model and returns the loss (run with gradients enabled).
   */
  step(closure?: () => number): number | undefined {
    let loss: number | undefined;
    if (closure) loss = enableGrad(closure);
    recordFunction('optimizer', () => noGrad(() => {
      for (const g of this.paramGroups) this.stepGroup(g);
    }));
    return loss;
  }

  /** Updates one group (under noGrad). */
  protected abstract stepGroup(group: ParamGroup<H>): void;

  /**
   * Clears gradients. `setToNone` (default, as PyTorch 2) disposes them; false fills them
   * with zeros in place.
   */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) p.zeroGrad();
        else noGrad(() => fill_(p.grad!, 0));
      }
    }
  }

  /**
   * Creates `p`'s state tensors now, each made by `zeros(like)`, instead of at `p`'s first step
   * (state already there is kept). The steps that follow are the same as with lazily created
   * state; ZeRO's optimiser offload uses this to put the state in file-backed memory
   * (`zerosFileBacked`) without ever holding it in RAM.
   */
  initState(p: Tensor, zeros: (like: Tensor) => Tensor): void {
    const g = this.paramGroups.find((x) => x.params.includes(p));
    if (!g) throw new Error(`${this.name}.initState: the tensor is not one of the optimizer's parameters`);
    this.createState(p, this.stateOf(p), g, zeros);
  }

  /** Fills `s` (p's state) with the state tensors the first step would create, made by `zeros`; does nothing for state that exists. */
  protected createState(_p: Tensor, _s: ParamState, _g: ParamGroup<H>, _zeros: (like: Tensor) => Tensor): void {}

  /** The state of `p`, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = {}));
    return s;
  }

  /**
   * The optimiser's state: per-parameter step counts and state tensors, and every group's
   * hyperparameters. Tensors are the live state (like PyTorch) unless `clone` is set, in
   * which case they are kept copies the caller owns.
   */
  stateDict(opts: { clone?: boolean } = {}): OptimizerStateDict {
    const state: Record<number, ParamState> = {};
    const paramGroups: OptimizerStateDict['paramGroups'] = [];
    let index = 0;
    for (const g of this.paramGroups) {
      const ids: number[] = [];
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s) {
          const out: ParamState = {};
          for (const [k, v] of Object.entries(s)) out[k] = typeof v === 'number' ? v : opts.clone ? keep(noGrad(() => clone(v))) : v;
          state[index] = out;
        }
        ids.push(index++);
      }
      const { params: _params, ...hyper } = g;
      paramGroups.push({ ...copyValues(hyper), params: ids });
    }
    return { state, paramGroups };
  }

  /**
   * Loads a state dict made by `stateDict()` of an optimiser over parameters of the same
   * shapes in the same group layout: hyperparameters are taken from it and state tensors
   * are copied (cast to each parameter's dtype and device), so the given dict stays the
   * caller's.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length)
      throw new Error(`${this.name}.loadStateDict: the state dict has ${sd.paramGroups.length} parameter groups, the optimizer has ${this.paramGroups.length}`);
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((sg, gi) => {
      const g = this.paramGroups[gi]!;
      if (sg.params.length !== g.params.length)
        throw new Error(`${this.name}.loadStateDict: parameter group ${gi} has ${sg.params.length} parameters in the state dict and ${g.params.length} in the optimizer`);
      sg.params.forEach((id, j) => byIndex.set(id, g.params[j]!));
    });
    // Build everything first so a bad entry leaves the optimiser untouched.
    const next = new Map<Tensor, ParamState>();
    try {
      for (const [key, s] of Object.entries(sd.state)) {
        const p = byIndex.get(Number(key));
        if (!p) throw new Error(`${this.name}.loadStateDict: state entry ${key} names no parameter`);
        const out: ParamState = {};
        next.set(p, out);
        for (const [k, v] of Object.entries(s)) {
          if (typeof v === 'number') out[k] = v;
          else if (isTensor(v)) {
            if (v.numel !== p.numel || v.shape.length !== p.shape.length || v.shape.some((d, i) => d !== p.shape[i]))
              throw new Error(`${this.name}.loadStateDict: state '${k}' of parameter ${key} has shape ${fmtShape(v.shape)}, the parameter has shape ${fmtShape(p.shape)}`);
            out[k] = keep(noGrad(() => copyLike(v, p)));
          } else throw new TypeError(`${this.name}.loadStateDict: state '${k}' of parameter ${key} is neither a number nor a Tensor`);
        }
      }
    } catch (e) {
      for (const s of next.values()) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
      throw e;
    }
    this.disposeState();
    for (const [p, s] of next) this.state.set(p, s);
    sd.paramGroups.forEach((sg, gi) => {
      const g = this.paramGroups[gi]!;
      const { params: _params, ...hyper } = sg;
      Object.assign(g, copyValues(hyper));
    });
  }

  /** Frees every state tensor (the optimiser can keep stepping: state is recreated). */
  disposeState(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
    this.state.clear();
  }

  /** Frees the optimiser's state tensors. */
  dispose(): void {
    this.disposeState();
  }
}

/** A contiguous copy of v with p's dtype and device. @internal */
function copyLike(v: Tensor, p: Tensor): Tensor {
  let t = v.device === p.device ? v : v.to(p.device);
  if (t.dtype !== p.dtype) {
    const c = cast(t, p.dtype);
    if (t !== v) t.dispose();
    t = c;
  }
  if (t === v) return clone(v);
  if (!t.isContiguous()) {
    const c = contiguous(t);
    t.dispose();
    t = c;
  }
  return t;
}

function copyValues(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = Array.isArray(v) ? [...v] : v;
  return out;
}

export function checkNonNegative(op: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0)) throw new RangeError(`${op}: invalid ${name} ${String(v)} (expected a number >= 0)`);
}

/**
 * The gradient of p for a kernel: p.grad itself when it matches p's dtype and is
 * contiguous, else a contiguous cast copy (`temp` true: dispose it after use).
 */
export function gradFor(op: string, p: Tensor, needContiguous: boolean): { grad: Tensor; temp: boolean } {
  const g = p.grad!;
  g.check(op);
  if (g.shape.length !== p.shape.length || g.shape.some((d, i) => d !== p.shape[i]))
    throw new Error(`${op}: gradient of shape ${fmtShape(g.shape)} does not match its parameter of shape ${fmtShape(p.shape)}`);
  if (g.device !== p.device) throw new Error(`${op}: gradient is on ${g.device}, its parameter on ${p.device}`);
  if (g.dtype === p.dtype && (!needContiguous || g.isContiguous())) return { grad: g, temp: false };
  const c = g.dtype === p.dtype ? contiguous(g) : cast(g, p.dtype);
  if (!c.isContiguous()) {
    const cc = contiguous(c);
    c.dispose();
    return { grad: cc, temp: true };
  }
  return { grad: c, temp: true };
}
