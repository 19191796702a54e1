/**
 * Reverse-mode autograd on a define-by-run tape. Each differentiable op output carries a
 * Node with its inputs, the tensors its backward needs, and the backward rule (which lives
 * next to the op's forward in ops/). `backward()` walks the graph in reverse topological
 * order, accumulates into leaves' `.grad`, and calls each leaf's post-accumulate hooks as
 * soon as that leaf's gradient is complete (the parallel engine buckets all-reduces there).
 */
import type { Tensor } from './tensor.js';
import { nextTensorId } from './tensor_id.js';
import { currentRange, timeBackward } from './profiler.js';
import { scope } from './scope.js';

export type BackwardFn = (grad: Tensor) => (Tensor | null)[];

export class Node {
  released = false;
  /**
   * Called just before this node's backward runs (a module's pre-backward hook: ZeRO-3 gathers
   * the module's partitioned parameters there). Add with `addPreHook`.
   */
  preHooks: (() => void)[] | undefined;
  /** Storage versions of `saved` when recorded: an in-place write since then is an error. */
  readonly savedVersions: number[];
  /** The profiler range the forward ran in (null when not profiling): its backward is booked there. */
  readonly range: string | null = currentRange();
  constructor(
    readonly name: string,
    readonly inputs: (Tensor | null)[],
    readonly backward: BackwardFn,
    public saved: Tensor[] = [],
  ) {
    this.savedVersions = saved.map((t) => t.storage.version);
  }

  addPreHook(fn: () => void): void {
    (this.preHooks ??= []).push(fn);
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off (like torch.no_grad). */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn with gradient recording on, even inside noGrad. */
export function enableGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

let nodeCreated: ((node: Node) => void) | null = null;

/**
 * Calls `fn` with every autograd node recorded from now on (null: stop), returning the hook it
 * replaces — how ZeRO-3 gives every node a module's forward records a pre-hook that gathers the
 * module's parameters. One hook at a time.
 */
export function setNodeCreationHook(fn: ((node: Node) => void) | null): ((node: Node) => void) | null {
  const prev = nodeCreated;
  nodeCreated = fn;
  return prev;
}

/**
 * Attaches a Node to `out` when grad mode is on and any input requires grad.
 * `saved` lists tensors the backward reads (kept alive by scopes with the graph).
 */
export function record(out: Tensor, name: string, inputs: (Tensor | null)[], backward: BackwardFn, saved: Tensor[] = []): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const x of inputs) if (x && x.requiresGrad) { any = true; break; }
  if (!any) return out;
  out.requiresGrad = true;
  out.gradFn = new Node(name, inputs, backward, saved);
  if (nodeCreated) nodeCreated(out.gradFn);
  return out;
}

/** Whether recording would attach a node for these inputs (lets ops skip saving). */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const x of inputs) if (x && x.requiresGrad) return true;
  return false;
}

export interface BackwardOptions {
  /** Keep the graph so backward can run through it again. */
  retainGraph?: boolean;
}

export function runBackward(root: Tensor, grad: Tensor | undefined, opts: BackwardOptions, ones: (like: Tensor) => Tensor,
  accumulate: (leaf: Tensor, g: Tensor, owned: boolean) => boolean, addGrads: (a: Tensor, b: Tensor) => Tensor): void {
  // Tensors made from here on (the implicit seed gradient included) are internal to this
  // backward and disposed once consumed; the caller's `grad` is older and never disposed.
  const firstInternal = nextTensorId();
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no input had requiresGrad set, or it was computed under noGrad)');
  if (grad === undefined) {
    if (root.numel !== 1) throw new Error(`backward: grad can be implicitly created only for scalar outputs, got shape [${root.shape.join(', ')}]`);
    grad = ones(root);
  } else if (grad.shape.length !== root.shape.length || grad.shape.some((s, i) => s !== root.shape[i])) {
    throw new Error(`backward: gradient shape [${grad.shape.join(', ')}] does not match the tensor's shape [${root.shape.join(', ')}]`);
  } else if (grad.dtype !== root.dtype || grad.device !== root.device) {
    throw new Error(`backward: the gradient is ${grad.dtype} on ${grad.device}, the tensor ${root.dtype} on ${root.device}; they must match`);
  }
  // Topological order of non-leaf tensors; consumer counts for every tensor.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const pending = new Map<Tensor, number>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const node = t.gradFn;
    if (node && i < node.inputs.length) {
      top[1]++;
      const x = node.inputs[i];
      if (x && x.requiresGrad) {
        pending.set(x, (pending.get(x) ?? 0) + 1);
        if (!visited.has(x)) {
          visited.add(x);
          stack.push([x, 0]);
        }
      }
      continue;
    }
    stack.pop();
    if (node) order.push(t);
  }
  // Fail before touching any .grad when part of the graph was already freed.
  for (const t of order) {
    const n = t.gradFn!;
    if (n.released) throw new Error(`backward: the graph through '${n.name}' was already freed by an earlier backward(); pass { retainGraph: true } to the first call`);
    n.saved.forEach((s, i) => {
      if (!s._disposed && s.storage.version !== n.savedVersions[i])
        throw new Error(`backward: a tensor of shape [${s.shape.join(', ')}] saved by '${n.name}' for its backward was modified in place after it was saved; clone() it before the in-place update`);
    });
    for (const s of n.saved)
      if (s._disposed) throw new Error(`backward: a tensor of shape [${s.shape.join(', ')}] saved by '${n.name}' for its backward was disposed; keep it (or run backward) before disposing`);
  }
  // Gradients made during this backward are internal: each is disposed as soon as no
  // pending entry holds it any more, so peak memory follows the graph, not the whole step.
  // Objects are counted (a backward may return one tensor for two inputs) and only those
  // created after `firstInternal` are ever disposed (never a forward tensor or the caller's).
  const grads = new Map<Tensor, Tensor>();
  const holds = new Map<Tensor, number>();
  const hold = (g: Tensor) => holds.set(g, (holds.get(g) ?? 0) + 1);
  const drop = (g: Tensor) => {
    const n = (holds.get(g) ?? 1) - 1;
    if (n > 0) {
      holds.set(g, n);
      return;
    }
    holds.delete(g);
    if (g._id >= firstInternal && !g._kept) g.dispose();
  };
  grads.set(root, grad);
  hold(grad);
  const finishLeaf = (leaf: Tensor) => {
    const g = grads.get(leaf);
    grads.delete(leaf);
    if (g) {
      // A gradient made in this backward, held by this entry only, sharing its storage with
      // no view, can become leaf.grad as is (no copy of every parameter's gradient per step).
      const owned = g._id >= firstInternal && !g._kept && holds.get(g) === 1 && g.storage.refs === 1 && g.offset === 0 && g.isContiguous();
      if (accumulate(leaf, g, owned)) holds.delete(g);
      else drop(g);
    }
  };
  if (!root.gradFn) {
    finishLeaf(root);
    return;
  }
  for (let k = order.length - 1; k >= 0; --k) {
    const t = order[k]!;
    const node = t.gradFn!;
    const g = grads.get(t);
    grads.delete(t);
    // pre-hooks run whether or not a gradient reached the node: they may be collectives, which
    // every rank must run alike
    if (node.preHooks) for (const h of node.preHooks) h();
    if (g) {
      // In a scope of its own: what a backward rule makes besides the gradients it returns
      // (contiguous copies, transposes, partial products) is freed now, not at the end of the
      // step's scope.
      const gin = noGrad(() => timeBackward(node.range, () => scope(() => node.backward(g))));
      for (let i = 0; i < node.inputs.length; ++i) {
        const x = node.inputs[i];
        const gi = gin[i];
        if (!x || !x.requiresGrad || !gi) continue;
        const prev = grads.get(x);
        if (prev) {
          const sum = addGrads(prev, gi);
          hold(sum);
          grads.set(x, sum);
          drop(prev);
          if (gi !== g) {
            hold(gi);
            drop(gi);
          }
        } else {
          hold(gi);
          grads.set(x, gi);
        }
      }
      drop(g);
    }
    for (const x of node.inputs) {
      if (!x || !x.requiresGrad) continue;
      const left = pending.get(x)! - 1;
      pending.set(x, left);
      if (left === 0 && !x.gradFn) finishLeaf(x);
    }
    if (!opts.retainGraph) {
      node.released = true;
      node.saved = [];
    }
  }
}

/**
 * A differentiable op defined outside this package (torch.autograd.Function's role):
 * `forward` runs without recording; when any input requires grad, the result gets a node
 * whose `backward(grad)` returns one gradient (or null) per input. Tensors `backward` reads
 * must be listed in `saved` (they are kept alive and checked for in-place changes).
 */
export function customOp(name: string, inputs: (Tensor | null)[], forward: () => Tensor, backward: BackwardFn, saved: Tensor[] = []): Tensor {
  const out = noGrad(forward);
  if (needsGrad(...inputs)) record(out, name, inputs, backward, saved);
  return out;
}
