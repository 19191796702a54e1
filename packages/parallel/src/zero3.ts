/**
 * ZeRO stage 3's parameter coordinator (DeepSpeed's PartitionedParameterCoordinator): the
 * ZeRO optimizer keeps every large parameter as per-rank partitions and frees its full tensor;
 * this gathers a module's own partitioned parameters just before the module runs and frees them
 * again right after —
 *
 * - forward: every module with partitioned parameters of its own (a unit) gets its `forward`
 *   wrapped: gather (one all-gather per parameter group), run, release;
 * - backward: every autograd node the unit's forward records (`T.setNodeCreationHook`) gets a
 *   pre-hook that gathers the unit's parameters if they are not, so no backward rule ever reads
 *   a freed weight; a parameter is freed as soon as its gradient is final (post-accumulate-grad
 *   hook), and whatever is still gathered when backward ends is freed then. (Freeing a unit as
 *   soon as backward moves on to another, which these hooks make safe, was tried: on VL-MoE
 *   small the step's peak sits where it does not help — 1150 vs 1084 MiB per rank on 2 ranks —
 *   and the re-gathers cost time.)
 *
 * Prefetch (DeepSpeed's `stage3_prefetch_bucket_size`, elements; 0 turns it off): the coordinator
 * records the order in which units gather during each forward and each backward the engine runs;
 * in the next one, as soon as a unit has gathered, the units that followed it last time are
 * gathered asynchronously (on the communication thread) up to that many elements, and a unit
 * whose gather is in flight waits for it instead of gathering. The order is the same on every
 * rank (it follows the model's code), so the collectives match; whatever is still in flight
 * when backward ends is completed and freed.
 *
 * Live parameters in backward (DeepSpeed's `stage3_max_live_parameters`, elements): a unit
 * gathered in backward stays gathered until its gradients are final — with VLMo's several
 * passes a step, that is most of the model at once. When the units gathered in this backward
 * hold more elements than the limit, the least recently gathered ones are freed (never the one
 * gathering); a node of theirs that runs later gathers them again, so the limit trades
 * all-gathers for memory. Default 1e9, as DeepSpeed (a small model never reaches it).
 *
 * A module that reads its own parameters in methods its callers call besides `forward` names
 * them in `static zero3Entries` (the contrastive head's `logits`); they gather and release like
 * forward (nested calls hold the parameters until the outermost returns).
 *
 * A module whose forward reads its children's parameters directly (attention applying its
 * q·k·v linear's weight with its own biases) is a ZeRO-3 leaf (DeepSpeed's `z3_leaf_module`):
 * its class has `static zero3Leaf = true` (or `setZero3LeafModules` marks instances), and it
 * gathers its whole subtree's parameters for its forward and backward. A partitioned parameter
 * read anywhere else throws an error naming it; `engine.gatheredParameters(fn)` runs code that
 * needs the full parameters (DeepSpeed's `GatheredParameters`). Every rank runs the same
 * modules in the same order, so the gathers — collectives — match across the group.
 */
import * as T from '@vlmoe/tensor';
import type { ZeroOptimizer } from './zero.js';

const LEAF = Symbol('zero3Leaf');

/** Whether ZeRO-3 gathers `m`'s whole subtree for its forward (see the file comment). */
export function isZero3Leaf(m: T.nn.Module): boolean {
  return (m as unknown as Record<symbol, boolean>)[LEAF] === true || (m.constructor as { zero3Leaf?: boolean }).zero3Leaf === true;
}

/** Marks every module of `model` that is an instance of one of `classes` as a ZeRO-3 leaf (DeepSpeed's set_z3_leaf_modules). Returns how many. */
export function setZero3LeafModules(model: T.nn.Module, classes: readonly (abstract new (...a: never[]) => T.nn.Module)[]): number {
  let n = 0;
  for (const m of model.modules()) {
    if (!classes.some((c) => m instanceof c)) continue;
    Object.defineProperty(m, LEAF, { value: true, enumerable: false, configurable: true });
    n++;
  }
  return n;
}

/** The modules whose forward gathers parameters, with the parameters each gathers: leaves take their subtree. */
function units(m: T.nn.Module, partitioned: ReadonlySet<T.nn.Parameter>, out: [T.nn.Module, T.nn.Parameter[]][] = []): [T.nn.Module, T.nn.Parameter[]][] {
  const leaf = isZero3Leaf(m);
  const own = (leaf ? m.parameters() : [...m.ownParameters()].map(([, p]) => p)).filter((p) => partitioned.has(p));
  if (own.length) out.push([m, own]);
  if (!leaf) for (const c of m.children()) units(c, partitioned, out);
  return out;
}

/** The gather order of one phase (a forward or a backward run through the engine). */
class Trace {
  /** This phase's gathers so far, by unit. */
  readonly now: number[] = [];
  /** The last phase's, and where this one is in it. */
  last: number[] = [];
  at = -1;
  /** Starts a new phase: this one's order becomes the one to follow. */
  restart(): void {
    if (this.now.length) this.last = this.now.splice(0);
    this.at = -1;
  }
  /** Records unit u's gather; returns the units that came after it last time (in order). */
  record(u: number): number[] {
    this.now.push(u);
    const next = this.last.indexOf(u, this.at + 1);
    if (next < 0) return [];
    this.at = next;
    return this.last.slice(next + 1);
  }
}

export class ParameterCoordinator {
  private readonly undo: (() => void)[] = [];
  /** Inside `gathered`: every parameter stays gathered (modules neither gather nor release). */
  private pinned = 0;
  private readonly unitParams: T.nn.Parameter[][] = [];
  /** The engine's phase (prefetch happens only inside one), and the gather order of each kind. */
  private phase: 'forward' | 'backward' | null = null;
  private readonly traces = { forward: new Trace(), backward: new Trace() };
  /** Units whose forward is running (innermost last): the nodes recorded now belong to the last. */
  private readonly running: number[] = [];
  private readonly previousNodeHook: ((node: T.Node) => void) | null;

  /** Units gathered in this backward, least recently gathered first (stage3_max_live_parameters). */
  private readonly liveOrder: number[] = [];
  /** Whether the live limit can bind: below the elements of every partitioned parameter together. */
  private readonly limitsLive: boolean;

  /** `prefetchElements`: how many elements may be gathered ahead (0: no prefetch); `maxLiveElements`: the backward's live limit. */
  constructor(model: T.nn.Module, private readonly zero: ZeroOptimizer, private readonly prefetchElements = 0, private readonly maxLiveElements = Infinity) {
    for (const [m, own] of units(model, zero.partitioned)) {
      const u = this.unitParams.push(own) - 1;
      let depth = 0; // entries of this module on the stack (forward calling another entry)
      const entries = ['forward', ...((m.constructor as { zero3Entries?: readonly string[] }).zero3Entries ?? [])];
      for (const name of entries) {
        const target = m as unknown as Record<string, (...a: unknown[]) => unknown>;
        const original = target[name];
        if (typeof original !== 'function') throw new Error(`ZeRO-3: ${m.constructor.name}.zero3Entries names '${name}', which is not a method`);
        const hadOwn = Object.prototype.hasOwnProperty.call(m, name);
        Object.defineProperty(m, name, {
          configurable: true, writable: true, enumerable: false,
          value: (...args: unknown[]) => {
            if (depth++ === 0 && !this.pinned) this.gatherUnit(u);
            this.running.push(u);
            try {
              return original.apply(m, args);
            } finally {
              this.running.pop();
              if (--depth === 0 && !this.pinned) zero.releaseParams(own);
            }
          },
        });
        this.undo.push(() => {
          if (hadOwn) target[name] = original;
          else delete target[name];
        });
      }
    }
    this.limitsLive = maxLiveElements < [...zero.partitioned].reduce((n, p) => n + p.numel, 0);
    for (const p of zero.partitioned) this.undo.push(p.registerPostAccumulateGradHook(() => this.pinned || zero.releaseParams([p])));
    // every node a unit's forward records gathers the unit before its backward rule runs
    const hooks = this.unitParams.map((_, u) => () => this.pinned || this.gatherUnit(u));
    this.previousNodeHook = T.setNodeCreationHook((node) => {
      if (this.running.length) node.addPreHook(hooks[this.running[this.running.length - 1]!]!);
    });
    this.undo.push(() => T.setNodeCreationHook(this.previousNodeHook));
  }

  /** Gathers unit u (or waits for its prefetch) and, inside an engine phase, prefetches what followed it last time. */
  private gatherUnit(u: number): void {
    const own = this.unitParams[u]!;
    const needed = own.some((p) => p.storage.dataReleased);
    if (!needed) return;
    this.zero.gatherParams(own);
    if (this.phase === 'backward' && this.limitsLive) this.holdLive(u);
    if (!this.phase) return;
    const after = this.traces[this.phase].record(u);
    let budget = this.prefetchElements;
    for (const v of after) {
      if (budget <= 0) break;
      budget -= this.zero.prefetchParams(this.unitParams[v]!);
    }
  }

  /** Backward: u was just gathered; frees the least recently gathered units while the live elements exceed the limit. */
  private holdLive(u: number): void {
    const order = this.liveOrder;
    const at = order.indexOf(u);
    if (at >= 0) order.splice(at, 1);
    order.push(u);
    const liveOf = (v: number) => this.unitParams[v]!.reduce((n, p) => n + (p.storage.dataReleased ? 0 : p.numel), 0);
    let live = order.reduce((n, v) => n + liveOf(v), 0);
    while (live > this.maxLiveElements && order.length > 1) {
      const v = order.shift()!;
      live -= liveOf(v);
      this.zero.releaseParams(this.unitParams[v]!);
    }
  }

  /** The engine starts a forward or a backward (prefetch follows the last one of that kind). */
  beginPhase(phase: 'forward' | 'backward'): void {
    this.phase = phase;
    if (phase === 'backward') this.liveOrder.length = 0;
    this.traces[phase].restart();
  }

  /** The engine's forward returned. */
  endForward(): void {
    this.phase = null;
  }

  /** After a backward (also a failed one): completes what is in flight and frees every full parameter still gathered (not inside `gathered`). */
  endBackward(): void {
    this.phase = null;
    this.zero.completePrefetches();
    if (!this.pinned) this.zero.releaseParams(this.zero.partitioned);
  }

  /** After an optimiser step (which frees the now stale full parameters): inside `gathered`, gathers them again. */
  afterStep(): void {
    if (this.pinned) this.zero.gatherParams(this.zero.partitioned);
  }

  /**
   * Runs `fn` with every partitioned parameter gathered (collective: every rank calls it, `fn`
   * may differ per rank — e.g. rank 0 validates, the others wait), then frees them; modules run
   * inside it gather nothing. A promise returned by `fn` keeps them until it settles.
   */
  gathered<R>(fn: () => R): R {
    // only what this call gathers is freed after it (inside a module's forward, that module's stay)
    const mine = [...this.zero.partitioned].filter((p) => p.storage.dataReleased);
    this.zero.gatherParams(this.zero.partitioned);
    this.pinned++;
    const done = () => {
      if (--this.pinned === 0) this.zero.releaseParams(mine);
    };
    let out: R;
    try {
      out = fn();
    } catch (e) {
      done();
      throw e;
    }
    if (out instanceof Promise) return out.finally(done) as R;
    done();
    return out;
  }

  /** Unwraps the modules and removes the hooks. */
  remove(): void {
    for (const f of this.undo.splice(0)) f();
  }
}
