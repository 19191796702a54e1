/**
 * Deferred initialisation (torchdistx's `deferred_init`, the idea behind DeepSpeed's
 * `zero.Init`): inside `deferredInit(build)`, the creation ops (`empty`, `zeros`, `ones`,
 * `full`, `rand`, `uniform`, `randn`, `randint`) and the in-place initialisers of `nn.init`
 * that overwrite a whole tensor record *how* to make the values instead of making them. A
 * tensor made so holds no memory: its storage is deferred (`Storage.deferred`) and carries a
 * recipe, a pure function of the element index — a constant, or a Philox stream (seed, counter)
 * read at counter + index, which is how every random op of this package draws. So:
 *
 * - the generator advances exactly as in an ordinary build, and every value is the one an
 *   ordinary build at the same seed makes (the same counters are read);
 * - any range of a tensor's elements can be made on its own (`materializeRange`), as ZeRO-3
 *   cuts each rank's block of every parameter without anyone making the whole parameter;
 * - a contiguous slice of a deferred tensor (`clone`, e.g. expert parallelism keeping its
 *   experts) is deferred too;
 * - anything else that touches the bytes (a kernel, `data()`, a partial in-place write) makes
 *   the whole tensor first, in RAM — or in a scratch file under `fileDir` for parameters —,
 *   so code that does not know about deferral still computes the same thing.
 */
import { native } from '@vlmoe/native-cuda';
import * as kernels from './backend/kernels.js';
import { A } from './backend/native.js';
import { dtypeSize, type DType } from './dtype.js';
import { copy_, gt, logicalOr, lt, where } from './ops/elementwise.js';
import { scope } from './scope.js';
import { Storage, type PendingValues } from './storage.js';
import { contiguousStrides, empty, fmtShape, Tensor, type Shape } from './tensor.js';

/**
 * The values of a deferred tensor, element i of its storage being the recipe's element
 * `i` (random kinds: Philox counter `counter + i` of stream `seed`).
 */
export type InitRecipe =
  | { kind: 'fill'; value: number }
  | { kind: 'uniform'; seed: number; counter: number; low: number; high: number }
  | { kind: 'normal'; seed: number; counter: number; mean: number; std: number }
  | { kind: 'randint'; seed: number; counter: number; low: number; high: number }
  /** Normal(mean, std) with each draw outside [a, b] redrawn from streams derived from `seed` (redrawSeed) at the same counter. */
  | { kind: 'truncNormal'; seed: number; counter: number; mean: number; std: number; a: number; b: number };

/** The recipe shifted by `k` elements (element i of the result = element i + k of `r`). */
function shift(r: InitRecipe, k: number): InitRecipe {
  return r.kind === 'fill' || k === 0 ? r : { ...r, counter: r.counter + k };
}

class Deferred implements PendingValues {
  constructor(readonly recipe: InitRecipe, readonly dtype: DType, readonly dir: string | null) {}
  allocate(nbytes: number): number {
    return this.dir ? native.mapFile(this.dir, nbytes) : native.alloc(-1, nbytes);
  }
  fill(s: Storage): void {
    // made while a kernel call writes its arguments (the first use reads the handle then):
    // the kernels run here must leave that call's argument block as they found it
    const args = A.slice();
    const t = new Tensor(s, [s.nbytes / dtypeSize[this.dtype]], [1], 0, this.dtype);
    try {
      writeValues(t, this.recipe, 0);
    } finally {
      t.dispose();
      A.set(args);
    }
  }
}

interface Context {
  fileDir: string | null;
}
let context: Context | null = null;

/**
 * Runs `build` with the creation ops and whole-tensor initialisers deferred (see the file
 * comment). `fileDir`: parameters that must be made whole later go to scratch files there
 * (`zerosFileBacked`), not RAM; so do parameters made from ordinary tensors meanwhile. Calls
 * nest (the inner options apply inside).
 */
export function deferredInit<R>(build: () => R, opts: { fileDir?: string } = {}): R {
  const saved = context;
  context = { fileDir: opts.fileDir ?? null };
  try {
    return build();
  } finally {
    context = saved;
  }
}

/** Whether creation ops defer now (inside deferredInit). @internal */
export function deferring(): boolean {
  return context !== null;
}

/** The directory new parameters' bytes go to inside deferredInit({fileDir}), or null. @internal */
export function parameterFileDir(): string | null {
  return context?.fileDir ?? null;
}

/** A deferred contiguous CPU tensor of `shape` holding `recipe`'s values. @internal */
export function deferredTensor(shape: Shape, dtype: DType, recipe: InitRecipe, dir: string | null = null): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Storage.deferred(n * dtypeSize[dtype], new Deferred(recipe, dtype, dir)), shape.slice(), contiguousStrides(shape), 0, dtype);
}

function pendingOf(t: Tensor): Deferred | null {
  const p = t.storage.pending;
  return p instanceof Deferred ? p : null;
}

/** Whether `t`'s values are not made yet (a deferred tensor: it holds no memory). */
export function isDeferred(t: Tensor): boolean {
  return pendingOf(t) !== null;
}

/** Whether t is deferred and is all of its storage (an initialiser may replace the recipe). */
function wholeDeferred(t: Tensor): Deferred | null {
  const p = pendingOf(t);
  return p && t.offset === 0 && t.isContiguous() && t.numel * dtypeSize[t.dtype] === t.storage.nbytes ? p : null;
}

/**
 * Records `recipe()` as the values of `t` when t is a whole deferred tensor (returns true);
 * otherwise calls nothing and returns false (the caller writes the values itself). @internal
 */
export function defer_(t: Tensor, recipe: () => InitRecipe): boolean {
  const p = wholeDeferred(t);
  if (!p) return false;
  t.storage.setPending(new Deferred(recipe(), p.dtype, p.dir));
  return true;
}

/** Makes the bytes of parameters deferred from now on go to scratch files in `dir`. @internal */
export function deferToFile(t: Tensor, dir: string): void {
  const p = wholeDeferred(t);
  if (p && p.dir !== dir) t.storage.setPending(new Deferred(p.recipe, p.dtype, dir));
}

/** A deferred copy of a contiguous view of a deferred tensor (clone), or null when `t` is not one. @internal */
export function deferredSlice(t: Tensor): Tensor | null {
  const p = pendingOf(t);
  if (!p || !t.isContiguous()) return null;
  return deferredTensor(t.shape, t.dtype, shift(p.recipe, t.offset), p.dir);
}

/** The seed of redraw round r ≥ 1 of a truncated normal: an independent Philox stream. @internal */
export function redrawSeed(seed: number, round: number): number {
  return Number((BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(round) * 0xbf58476d1ce4e5b9n) & ((1n << 53n) - 1n));
}

/** Writes elements [first, first + dst.numel) of `recipe` into `dst` (contiguous). @internal */
export function writeValues(dst: Tensor, recipe: InitRecipe, first: number): void {
  if (!dst.isContiguous()) throw new Error(`writeValues: the destination [${fmtShape(dst.shape)}] must be contiguous`);
  if (dst.numel === 0) return;
  const r = shift(recipe, first);
  switch (r.kind) {
    case 'fill':
      kernels.fill(dst, r.value);
      return;
    case 'uniform':
      kernels.random(0, dst, r.seed, r.counter, r.low, r.high);
      return;
    case 'normal':
      kernels.random(1, dst, r.seed, r.counter, r.mean, r.std);
      return;
    case 'randint':
      kernels.random(2, dst, r.seed, r.counter, r.low, r.high);
      return;
    case 'truncNormal': {
      kernels.random(1, dst, r.seed, r.counter, r.mean, r.std);
      // each element keeps its first draw inside [a, b]: the redraws depend on the element's index alone
      for (let round = 1; ; ++round) {
        const done = scope(() => {
          const bad = logicalOr(lt(dst, r.a), gt(dst, r.b));
          if (bad.sum().item() === 0) return true;
          if (round >= 1000) throw new Error(`truncNormal: values outside [${r.a}, ${r.b}] remain after 1000 draws`);
          const redraw = empty(dst.shape, dst.dtype, dst.device);
          kernels.random(1, redraw, redrawSeed(r.seed, round), r.counter, r.mean, r.std);
          copy_(dst, where(bad, redraw, dst));
          return false;
        });
        if (done) return;
      }
    }
  }
}

/**
 * Writes `src`'s flat elements [begin, begin + dst.numel) into `dst` (contiguous, src's
 * dtype): straight from the recipe when `src` is deferred (nothing else is made), by a copy
 * otherwise. ZeRO-3 cuts each rank's block of a parameter built under deferredInit this way.
 */
export function materializeRange(dst: Tensor, src: Tensor, begin: number): void {
  if (!(Number.isInteger(begin) && begin >= 0 && begin + dst.numel <= src.numel))
    throw new RangeError(`materializeRange: elements [${begin}, ${begin + dst.numel}) are not in a tensor of ${src.numel}`);
  if (dst.dtype !== src.dtype) throw new TypeError(`materializeRange: dtypes differ (${dst.dtype} ← ${src.dtype})`);
  const p = pendingOf(src);
  if (p && src.isContiguous() && dst.isContiguous()) {
    writeValues(dst, p.recipe, src.offset + begin);
    return;
  }
  scope(() => copy_(dst, src.reshape(-1).narrow(0, begin, dst.numel)));
}

/**
 * A summary of a deferred tensor's values (its recipe and where it starts), equal on two
 * ranks exactly when they would make the same values; null for a tensor that is not deferred.
 * ZeRO compares it across ranks instead of broadcasting the values.
 */
export function deferredFingerprint(t: Tensor): number[] | null {
  const p = pendingOf(t);
  if (!p || !t.isContiguous()) return null;
  const r = shift(p.recipe, t.offset);
  const kinds = ['fill', 'uniform', 'normal', 'randint', 'truncNormal'];
  if (r.kind === 'fill') return [0, r.value, 0, 0, 0, 0, 0];
  const x = r.kind === 'uniform' || r.kind === 'randint' ? [r.low, r.high, 0, 0] : r.kind === 'normal' ? [r.mean, r.std, 0, 0] : [r.mean, r.std, r.a, r.b];
  return [kinds.indexOf(r.kind), r.seed, r.counter, ...x];
}
