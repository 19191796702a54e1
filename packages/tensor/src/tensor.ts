/**
 * The Tensor: a strided view {storage, shape, strides, offset, dtype, device} of native
 * memory, plus autograd fields. Methods are thin wrappers over the functional ops in
 * ops/ (each op's backward lives beside its forward there).
 */
import { native } from '@vlmoe/native-cuda';
import { Node, runBackward, type BackwardOptions } from './autograd.js';
import { dtypeSize, typedArrayFor, type DType, type TypedArray } from './dtype.js';
import { deviceCode, normalizeDevice } from './device.js';
import { keep, track, untrackFinalizer } from './scope.js';
import { Storage } from './storage.js';
import { takeTensorId } from './tensor_id.js';

export type Shape = readonly number[];

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; --d) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

export function shapeNumel(shape: Shape): number {
  let n = 1;
  for (let d = 0; d < shape.length; ++d) n *= shape[d]!;
  return n;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly _isTensor = true;
  /** @internal creation order (see tensor_id.ts). */
  readonly _id = takeTensorId();
  readonly numel: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: Node | null = null;
  /** @internal */ _disposed = false;
  /** @internal */ _kept = false;
  /** @internal */ _finalizable = false;
  /** @internal */ _hooks: ((t: Tensor) => void)[] | undefined;

  /** @internal use the creation functions (zeros, tensor, ...) instead. */
  constructor(
    readonly storage: Storage,
    readonly shape: number[],
    readonly strides: number[],
    readonly offset: number,
    readonly dtype: DType,
  ) {
    this.numel = shapeNumel(shape);
    storage.retain();
    track(this);
  }

  get device(): string {
    return this.storage.device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get disposed(): boolean {
    return this._disposed;
  }

  /** Size of one dim (negative counts from the end), or the whole shape. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number | number[] {
    if (dim === undefined) return this.shape.slice();
    return this.shape[this.dim(dim, 'size')]!;
  }

  /** @internal normalises a dim index, naming the op on error. */
  dim(d: number, op: string, ndim = this.shape.length): number {
    const n = Math.max(ndim, 1);
    if (!Number.isInteger(d) || d < -n || d >= n) throw new RangeError(`${op}: dim ${d} is out of range for a tensor of shape ${fmtShape(this.shape)}`);
    return d < 0 ? d + n : d;
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let d = this.shape.length - 1; d >= 0; --d) {
      const s = this.shape[d]!;
      if (s !== 1 && this.strides[d] !== acc) return false;
      acc *= s;
    }
    return true;
  }

  /** @internal throws if disposed. */
  check(op: string): this {
    if (this._disposed) throw new Error(`${op}: tensor of shape ${fmtShape(this.shape)} was disposed`);
    return this;
  }

  /** Frees this tensor now (its storage when no other view holds it). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    untrackFinalizer(this);
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A new tensor viewing the same storage (no copy). @internal */
  viewAs(shape: number[], strides: number[], offset: number): Tensor {
    return new Tensor(this.storage, shape, strides, offset, this.dtype);
  }

  // ---- data access --------------------------------------------------------------------

  /**
   * The elements as a typed array. For a contiguous CPU tensor this is a view of the
   * native memory (no copy; valid until the tensor is disposed, then empty); otherwise a
   * contiguous copy.
   */
  data(): TypedArray {
    this.check('data');
    if (this.device === 'cpu' && this.isContiguous()) {
      const view = typedArrayFor(this.dtype, this.storage.arrayBuffer(), this.offset * dtypeSize[this.dtype], this.numel);
      // The view holds its tensor, so garbage collection cannot free the memory under it
      // (an explicit dispose() still does, and then the view is empty).
      Object.defineProperty(view, 'tensor', { value: this, enumerable: false });
      return view;
    }
    return readContiguous(this);
  }

  /** A fresh copy of the elements (a typed array that outlives the tensor; bfloat16 / float16 come back as Float32Array). */
  dataSync(): TypedArray {
    this.check('dataSync');
    return readContiguous(this);
  }

  /** Nested JS arrays of numbers (bigint for int64 is converted to number). */
  toArray(): unknown {
    const flat = this.dataSync();
    const get = (i: number): number | boolean => {
      const v = flat[i]!;
      if (typeof v === 'bigint') return Number(v);
      return this.dtype === 'bool' ? v !== 0 : (v as number);
    };
    if (this.shape.length === 0) return get(0);
    let pos = 0;
    const build = (d: number): unknown[] => {
      const n = this.shape[d]!;
      const out = new Array(n);
      for (let i = 0; i < n; ++i) out[i] = d === this.shape.length - 1 ? get(pos++) : build(d + 1);
      return out;
    };
    return build(0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    this.check('item');
    if (this.numel !== 1) throw new Error(`item: expected a tensor with one element, got shape ${fmtShape(this.shape)}`);
    const v = this.dataSync()[0]!;
    return typeof v === 'bigint' ? Number(v) : (v as number);
  }

  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- autograd -------------------------------------------------------------------------

  /** Sets requiresGrad on a leaf (returns this, like PyTorch's requires_grad_). */
  requiresGrad_(flag = true): this {
    if (!this.isLeaf && !flag) throw new Error('requiresGrad_: cannot turn off gradients of a non-leaf tensor; use detach()');
    if (flag && this.dtype !== 'float32' && this.dtype !== 'float64')
      throw new Error(`requiresGrad_: only floating tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = flag;
    return this;
  }

  /** A view of the same data cut from the graph. */
  detach(): Tensor {
    this.check('detach');
    return this.viewAs(this.shape, this.strides, this.offset);
  }

  /** Computes gradients of this tensor with respect to every leaf that requires grad. */
  backward(grad?: Tensor, opts: BackwardOptions = {}): void {
    this.check('backward');
    runBackward(this, grad, opts, (t) => hooks.onesLike(t), accumulateGrad, (a, b) => hooks.add(a, b));
  }

  /** Calls fn(tensor) each time this leaf's .grad has been fully accumulated in a backward. */
  registerPostAccumulateGradHook(fn: (t: Tensor) => void): () => void {
    if (!this.isLeaf) throw new Error('registerPostAccumulateGradHook: only leaf tensors have accumulated gradients');
    (this._hooks ??= []).push(fn);
    return () => {
      const i = this._hooks?.indexOf(fn) ?? -1;
      if (i >= 0) this._hooks!.splice(i, 1);
    };
  }

  /** Clears .grad (disposing it). */
  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }
}

/** Functions the core needs from ops (set by index.ts to avoid import cycles). @internal */
export const hooks = {
  onesLike: (_t: Tensor): Tensor => {
    throw new Error('ops not loaded');
  },
  add: (_a: Tensor, _b: Tensor): Tensor => {
    throw new Error('ops not loaded');
  },
  accumulateInto: (_grad: Tensor, _g: Tensor): void => {
    throw new Error('ops not loaded');
  },
  cloneDetached: (_g: Tensor): Tensor => {
    throw new Error('ops not loaded');
  },
  cast: (_t: Tensor, _d: DType): Tensor => {
    throw new Error('ops not loaded');
  },
  contiguous: (_t: Tensor): Tensor => {
    throw new Error('ops not loaded');
  },
};

/**
 * Adds g into leaf.grad, or makes it leaf.grad. `owned`: g is a gradient this backward made
 * and nothing else references (see runBackward), so it becomes .grad itself instead of a copy
 * (as PyTorch steals a gradient whose use count is 1). Returns whether g was taken.
 */
function accumulateGrad(leaf: Tensor, g: Tensor, owned: boolean): boolean {
  let taken = false;
  if (leaf.grad && !leaf.grad.disposed) hooks.accumulateInto(leaf.grad, g);
  else if (owned && g.dtype === leaf.dtype && g.device === leaf.device && !g.requiresGrad) {
    leaf.grad = keep(g);
    taken = true;
  } else leaf.grad = hooks.cloneDetached(g);
  if (leaf._hooks) for (const h of leaf._hooks) h(leaf);
  return taken;
}

function checkedNumel(shape: Shape, dtype: DType): number {
  for (const s of shape) if (!Number.isInteger(s) || s < 0) throw new RangeError(`invalid shape ${fmtShape(shape)}: sizes must be non-negative integers`);
  const n = shapeNumel(shape);
  if (n * dtypeSize[dtype] > 2 ** 52) throw new RangeError(`invalid shape ${fmtShape(shape)}: ${n} elements of ${dtype} is more memory than any device has`);
  return n;
}

/** A zero-filled contiguous CPU tensor backed by a scratch file in `dir` (Storage.mapFile). @internal */
export function emptyFileBacked(shape: Shape, dtype: DType, dir: string): Tensor {
  const n = checkedNumel(shape, dtype);
  return new Tensor(Storage.mapFile(n * dtypeSize[dtype], dir), shape.slice(), contiguousStrides(shape), 0, dtype);
}

/** Allocates an uninitialised contiguous tensor. @internal */
export function empty(shape: Shape, dtype: DType = 'float32', device = 'cpu'): Tensor {
  const n = checkedNumel(shape, dtype);
  let dev = device;
  let code = -1;
  if (device !== 'cpu') {
    dev = normalizeDevice(device);
    code = deviceCode(dev);
  }
  const storage = Storage.allocate(n * dtypeSize[dtype], dev, code);
  return new Tensor(storage, shape.slice(), contiguousStrides(shape), 0, dtype);
}

function readContiguous(t: Tensor): TypedArray {
  if (t.dtype === 'bfloat16' || t.dtype === 'float16') {
    // half precision reads back as float32 values (the cast runs where the tensor lives)
    const f = hooks.cast(t, 'float32');
    const out = readContiguous(f);
    f.dispose();
    return out;
  }
  const src = t.isContiguous() ? t : hooks.contiguous(t);
  const bytes = src.numel * dtypeSize[t.dtype];
  const buf = new ArrayBuffer(bytes);
  const out = typedArrayFor(t.dtype, buf, 0, src.numel);
  if (bytes > 0) native.read(src.storage.handle, src.offset * dtypeSize[t.dtype], out);
  if (src !== t) src.dispose();
  return out;
}
