/**
 * Deterministic memory: every tensor made inside `scope(fn)` is disposed when fn returns,
 * except the tensors it returns (and what their autograd graphs need) and those passed to
 * `keep()`. Outside any scope, tensors live until `dispose()`; a FinalizationRegistry frees
 * forgotten ones as a safety net only.
 */
import type { Tensor } from './tensor.js';
import type { Storage } from './storage.js';
import { nextTensorId } from './tensor_id.js';

type Scope = Tensor[] & { firstId?: number };

const stack: Scope[] = [];

const registry = new FinalizationRegistry<Storage>((storage) => storage.release());

/** Leaves t to the garbage collector (FinalizationRegistry), its storage's bytes reported to V8. */
function finalizable(t: Tensor): void {
  registry.register(t, t.storage, t);
  t._finalizable = true;
  t.storage.gcOwned();
}

/** Called for every new tensor. */
export function track(t: Tensor): void {
  const top = stack[stack.length - 1];
  if (top) top.push(t);
  else finalizable(t);
}

/** Called when a tensor is disposed explicitly. */
export function untrackFinalizer(t: Tensor): void {
  if (t._finalizable) {
    registry.unregister(t);
    t._finalizable = false;
  }
}

/** Keep a tensor alive past the end of the enclosing scopes (the caller now owns it). */
export function keep<T extends Tensor>(t: T): T {
  t._kept = true;
  if (!t._finalizable) finalizable(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as { _isTensor?: boolean })._isTensor) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * The tensors made since `firstId` that the results need: the results themselves and the
 * tensors their autograd graphs saved for backward. Graph inputs that were not saved are
 * only used as keys by backward (their values are never read), so they may be freed; the
 * walk stops at tensors older than the scope, which it cannot free anyway.
 */
function withGraphs(roots: Set<Tensor>, firstId: number): Set<Tensor> {
  const out = new Set<Tensor>();
  const walked = new Set<Tensor>();
  const todo = [...roots];
  for (const r of roots) out.add(r);
  while (todo.length) {
    const t = todo.pop()!;
    if (walked.has(t) || t._id < firstId) continue;
    walked.add(t);
    const n = t.gradFn;
    if (n && !n.released) {
      for (const x of n.saved) out.add(x);
      for (const x of n.inputs) if (x) todo.push(x);
      for (const x of n.saved) todo.push(x);
    }
  }
  return out;
}

/**
 * Runs fn and disposes every tensor created meanwhile, except those in its result (found in
 * arrays, Maps and plain objects), the tensors their autograd graphs need, and kept ones.
 * Survivors move to the enclosing scope. Works with async functions too (the scope closes
 * when the promise settles); while it awaits, tensors made by other code also land in it,
 * so do not run unrelated tensor work concurrently with an open async scope.
 */
export function scope<R>(fn: () => R): R {
  const mine: Scope = [];
  mine.firstId = nextTensorId();
  stack.push(mine);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    close(mine, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        close(mine, v);
        return v;
      },
      (e) => {
        close(mine, undefined);
        throw e;
      },
    ) as R;
  }
  close(mine, result);
  return result;
}

/** Alias of `scope`, under TensorFlow.js's name. */
export const tidy = scope;

function close(mine: Scope, result: unknown): void {
  // Async scopes that interleave close out of order: take this one out wherever it is
  // (leaving it on the stack would route every later tensor into a dead scope).
  const idx = stack.lastIndexOf(mine);
  if (idx >= 0) stack.splice(idx, 1);
  const roots = new Set<Tensor>();
  collect(result, roots, new Set());
  const survivors = roots.size ? withGraphs(roots, mine.firstId ?? 0) : roots;
  const parent = stack[stack.length - 1];
  for (const t of mine) {
    if (t._disposed) continue;
    if (t._kept) continue;
    if (survivors.has(t)) {
      if (parent) parent.push(t);
      else finalizable(t);
      continue;
    }
    t.dispose();
  }
}

/** Number of open scopes (for tests and diagnostics). */
export function scopeDepth(): number {
  return stack.length;
}
