/** Tensor creation: from data, constants, ranges and seeded random draws. */
import * as kernels from '../backend/kernels.js';
import { native } from '@vlmoe/native-cuda';
import { dtypeSize, isFloating, typedArrayFor, type DType } from '../dtype.js';
import { defaultGenerator, type Generator } from '../generator.js';
import { deferredTensor, deferring, type InitRecipe } from '../deferred.js';
import { empty, emptyFileBacked, fmtShape, hooks, type Shape, type Tensor } from '../tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

function finish(t: Tensor, opts: TensorOptions | undefined): Tensor {
  if (opts?.requiresGrad) t.requiresGrad_(true);
  return t;
}

type Nested = number | boolean | bigint | readonly Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = (cur as readonly Nested[])[0] as Nested;
    if (cur === undefined) break;
  }
  return shape;
}

function flatten(data: Nested, shape: number[], out: (number | bigint | boolean)[], d = 0, path = ''): void {
  if (d === shape.length) {
    if (Array.isArray(data)) throw new Error(`tensor: ragged nested array at ${path || 'the top'}`);
    out.push(data as number);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[d]) throw new Error(`tensor: ragged nested array at ${path || 'the top'}: expected length ${shape[d]}`);
  for (let i = 0; i < data.length; ++i) flatten(data[i] as Nested, shape, out, d + 1, `${path}[${i}]`);
}

/**
 * A tensor from nested arrays, a typed array (with `shape`), or a number. dtype defaults
 * from the data: float32 for numbers, bool for booleans, int64 for bigints and
 * BigInt64Array, int32 for Int32Array, float64 for Float64Array.
 */
export function tensor(data: Nested | ArrayLike<number> | ArrayBufferView, opts: TensorOptions & { shape?: Shape } = {}): Tensor {
  let flat: ArrayLike<number | bigint | boolean>;
  let shape: number[];
  let dtype = opts.dtype;
  if (ArrayBuffer.isView(data)) {
    const ta = data as unknown as ArrayLike<number>;
    flat = ta;
    shape = opts.shape ? opts.shape.slice() : [ta.length];
    if (!dtype) {
      dtype = data instanceof Float64Array ? 'float64' : data instanceof Int32Array ? 'int32' : data instanceof BigInt64Array ? 'int64'
        : data instanceof Uint8Array ? 'uint8' : 'float32';
    }
  } else {
    const tmp: (number | bigint | boolean)[] = [];
    shape = inferShape(data as Nested);
    flatten(data as Nested, shape, tmp);
    flat = tmp;
    if (opts.shape) shape = opts.shape.slice();
    if (!dtype) dtype = typeof tmp[0] === 'boolean' ? 'bool' : typeof tmp[0] === 'bigint' ? 'int64' : 'float32';
  }
  let n = 1;
  for (const s of shape) n *= s;
  if (n !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${fmtShape(shape)}`);
  if (dtype === 'bfloat16' || dtype === 'float16') {
    // rounded from float32 by the native cast (round to nearest even)
    const f = tensor(flat as ArrayLike<number>, { ...opts, shape, dtype: 'float32', requiresGrad: false });
    const h = hooks.cast(f, dtype);
    f.dispose();
    if (opts.requiresGrad) h.requiresGrad = true;
    return h;
  }
  const host = typedArrayFor(dtype, new ArrayBuffer(n * dtypeSize[dtype]), 0, n);
  if (dtype === 'int64') {
    const h = host as BigInt64Array;
    for (let i = 0; i < n; ++i) {
      const v = flat[i]!;
      if (typeof v === 'bigint') h[i] = v;
      else {
        const num = Number(v);
        if (!Number.isFinite(num)) throw new RangeError(`tensor: ${num} (element ${i}) cannot be stored as int64`);
        h[i] = BigInt(Math.trunc(num));
      }
    }
  } else if (dtype === 'bool') {
    // Stored as 0/1 bytes: any other byte is not a valid C++ bool for the kernels.
    const h = host as Uint8Array;
    for (let i = 0; i < n; ++i) {
      const v = flat[i]!;
      h[i] = (typeof v === 'bigint' ? v !== 0n : typeof v === 'boolean' ? v : v !== 0) ? 1 : 0;
    }
  } else {
    const h = host as Float32Array;
    for (let i = 0; i < n; ++i) {
      const v = flat[i]!;
      h[i] = typeof v === 'bigint' ? Number(v) : Number(v);
    }
  }
  const t = empty(shape, dtype, opts.device ?? 'cpu');
  if (n > 0) native.write(t.storage.handle, 0, host);
  return finish(t, opts);
}

/** Inside deferredInit, a CPU tensor of `recipe`'s values that holds no memory yet (deferred.ts); else null. */
function deferredOrNull(shape: Shape, dtype: DType, device: string | undefined, recipe: (n: number) => InitRecipe): Tensor | null {
  if (!deferring() || (device !== undefined && device !== 'cpu')) return null;
  for (const s of shape) if (!Number.isInteger(s) || s < 0) throw new RangeError(`invalid shape ${fmtShape(shape)}: sizes must be non-negative integers`);
  return deferredTensor(shape, dtype, recipe(shape.reduce((a, b) => a * b, 1)));
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const d = deferredOrNull(shape, opts.dtype ?? 'float32', opts.device, () => ({ kind: 'fill', value }));
  return d ? finish(d, opts) : fullNow(shape, value, opts);
}

/** full, made now even inside deferredInit (the ops' own scalars and constants). @internal */
export function fullNow(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const t = empty(shape, opts.dtype ?? 'float32', opts.device ?? 'cpu');
  if (t.numel > 0) kernels.fill(t, value);
  return finish(t, opts);
}

export const zeros = (shape: Shape, opts: TensorOptions = {}) => full(shape, 0, opts);
/**
 * Zeros in host memory backed by a scratch file in directory `dir` (as ZeRO-Infinity's NVMe
 * offload keeps optimiser state on a local disk): the file is unlinked as soon as it is mapped,
 * so nothing is left behind, and the kernel pages the tensor to and from it, so such tensors
 * can together exceed RAM. An ordinary tensor otherwise (every op reads and writes it);
 * `memory().cpu.file` counts its bytes. Throws naming `dir` when it cannot be created there.
 */
export const zerosFileBacked = (shape: Shape, dir: string, opts: Omit<TensorOptions, 'device'> = {}) => finish(emptyFileBacked(shape, opts.dtype ?? 'float32', dir), opts);
export const ones = (shape: Shape, opts: TensorOptions = {}) => full(shape, 1, opts);
/** Uninitialised (inside deferredInit: zeros once made). */
export const emptyTensor = (shape: Shape, opts: TensorOptions = {}) =>
  finish(deferredOrNull(shape, opts.dtype ?? 'float32', opts.device, () => ({ kind: 'fill', value: 0 })) ?? empty(shape, opts.dtype ?? 'float32', opts.device ?? 'cpu'), opts);

const likeOpts = (t: Tensor, opts: TensorOptions, op: string) => (t.check(op), { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device, requiresGrad: opts.requiresGrad });
export const zerosLike = (t: Tensor, opts: TensorOptions = {}) => zeros(t.shape, likeOpts(t, opts, 'zerosLike'));
export const onesLike = (t: Tensor, opts: TensorOptions = {}) => ones(t.shape, likeOpts(t, opts, 'onesLike'));
export const fullLike = (t: Tensor, value: number, opts: TensorOptions = {}) => full(t.shape, value, likeOpts(t, opts, 'fullLike'));
export const emptyLike = (t: Tensor, opts: TensorOptions = {}) => emptyTensor(t.shape, likeOpts(t, opts, 'emptyLike'));

/** A 0-dim tensor holding v, with t's dtype (promoted to float32 for non-integers) and device. */
export function scalarLike(v: number, t: Tensor): Tensor {
  const dtype: DType = !isFloating(t.dtype) && !Number.isInteger(v) ? 'float32' : t.dtype === 'bool' ? 'int64' : t.dtype;
  return fullNow([], v, { dtype, device: t.device });
}

/** Values start, start+step, ... below end (like torch.arange). int64 when all are integers. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (!Number.isFinite(start) || !Number.isFinite(end) || !Number.isFinite(step))
    throw new RangeError(`arange: start, end and step must be finite numbers, got (${start}, ${end}, ${step})`);
  if (step === 0) throw new RangeError('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const dtype = opts.dtype ?? (Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step) ? 'int64' : 'float32');
  const vals = new Array<number>(n);
  for (let i = 0; i < n; ++i) vals[i] = start + i * step;
  return tensor(vals, { ...opts, dtype, shape: [n] });
}

export function eye(n: number, opts: TensorOptions = {}): Tensor {
  const vals = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; ++i) vals[i * n + i] = 1;
  return tensor(vals, { ...opts, shape: [n, n] });
}

function randomFill(kind: number, shape: Shape, a: number, b: number, opts: RandomOptions, dflt: DType): Tensor {
  const g = opts.generator ?? defaultGenerator;
  const kinds = ['uniform', 'normal', 'randint'] as const;
  const d = deferredOrNull(shape, opts.dtype ?? dflt, opts.device, (n) => {
    const [seed, counter, k] = [g.seed, g.take(n), kinds[kind]!];
    return k === 'normal' ? { kind: k, seed, counter, mean: a, std: b } : { kind: k, seed, counter, low: a, high: b };
  });
  if (d) return finish(d, opts);
  const t = empty(shape, opts.dtype ?? dflt, opts.device ?? 'cpu');
  if (t.numel > 0) kernels.random(kind, t, g.seed, g.take(t.numel), a, b);
  return finish(t, opts);
}

/** Uniform [0, 1). */
export const rand = (shape: Shape, opts: RandomOptions = {}) => randomFill(0, shape, 0, 1, opts, 'float32');
/** Uniform [low, high). */
export function uniform(shape: Shape, low: number, high: number, opts: RandomOptions = {}): Tensor {
  if (!Number.isFinite(low) || !Number.isFinite(high) || low > high) throw new RangeError(`uniform: expected finite low <= high, got low ${low}, high ${high}`);
  return randomFill(0, shape, low, high, opts, 'float32');
}
/** Standard normal (or normal(mean, std)). */
export function randn(shape: Shape, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const mean = opts.mean ?? 0, std = opts.std ?? 1;
  if (!Number.isFinite(mean) || !(std >= 0) || !Number.isFinite(std)) throw new RangeError(`randn: expected a finite mean and a finite std >= 0, got mean ${mean}, std ${std}`);
  return randomFill(1, shape, mean, std, opts, 'float32');
}

/** Values each integer dtype can hold: randint's [low, high) must fit. */
const intRange: Partial<Record<DType, [number, number]>> = {
  bool: [0, 1], uint8: [0, 255], int32: [-(2 ** 31), 2 ** 31 - 1], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  float32: [-(2 ** 24), 2 ** 24], float64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: Shape, opts: RandomOptions = {}): Tensor {
  if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high)) throw new RangeError(`randint: low (${low}) and high (${high}) must be integers`);
  if (!(high > low)) throw new RangeError(`randint: high (${high}) must be greater than low (${low})`);
  const dtype = opts.dtype ?? 'int64';
  const [lo, hi] = intRange[dtype]!;
  if (low < lo || high - 1 > hi) throw new RangeError(`randint: [${low}, ${high}) does not fit dtype ${dtype} (values ${lo} .. ${hi})`);
  return randomFill(2, shape, low, high, opts, 'int64');
}
export const randLike = (t: Tensor, opts: RandomOptions = {}) => (t.check('randLike'), rand(t.shape, { dtype: t.dtype, device: t.device, ...opts }));
export const randnLike = (t: Tensor, opts: RandomOptions = {}) => (t.check('randnLike'), randn(t.shape, { dtype: t.dtype, device: t.device, ...opts }));
export const randintLike = (t: Tensor, low: number, high: number, opts: RandomOptions = {}) =>
  (t.check('randintLike'), randint(low, high, t.shape, { dtype: t.dtype, device: t.device, ...opts }));
