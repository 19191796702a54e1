/**
 * PyTorch checkpoints: files written by `torch.save` (a state dict, or any nesting of dicts,
 * OrderedDicts, lists and tuples of tensors, numbers, strings, bools and None), read without
 * running Python or unpickling arbitrary objects, and written so `torch.load` reads them.
 *
 * Format (torch ≥ 1.6, the default): a zip archive (zip.ts) of stored entries
 * `<archive>/data.pkl` (the object, pickled with protocol 2), `<archive>/data/<key>` (one
 * entry per storage: its raw bytes), `<archive>/version`, and since torch 2.1
 * `<archive>/byteorder` ('little' or 'big'; absent means little). In the pickle, a tensor is
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks)` and a storage the persistent id `('storage', torch.<T>Storage, key,
 * location, numel)`. Tensors that share a storage (views, tied weights) load as views of one
 * storage here too, with their offsets and strides. The legacy format (torch < 1.6, or
 * `_use_new_zipfile_serialization=False`: pickles back to back, then the storages' bytes)
 * is read as well; the tar format of torch < 0.4 and TorchScript archives are refused by name.
 *
 * The pickle reader (pickle.ts) accepts plain data and, by exact name, only these globals:
 * `torch._utils _rebuild_tensor_v2` / `_rebuild_tensor` / `_rebuild_parameter`,
 * `torch Size`, the storage types below, `collections OrderedDict`, `builtins set` /
 * `frozenset` and `_codecs encode`. Anything else (`os system`, `builtins eval`, a module's
 * class, a numpy array) is an error naming the file and the global.
 *
 * dtypes: Float/Double/Half/BFloat16/Long/Int/Byte/BoolStorage load as float32, float64,
 * float16, bfloat16, int64, int32, uint8, bool; Short/CharStorage (int16 / int8) load as
 * int32 (exact). Complex and quantized storages are refused by name. `requires_grad` and
 * device locations are not restored: tensors load on the CPU (or `device`), without grad.
 * Writing stores every dtype as itself, location 'cpu', little-endian, entries aligned to
 * 64 bytes (as PyTorch writes them); `savePth` replaces the target atomically.
 */
import * as fs from 'node:fs';
import { native } from '@vlmoe/native-cuda';
import { dtypeSize, type DType } from '../dtype.js';
import { emptyTensor } from '../ops/creation.js';
import { contiguous } from '../ops/elementwise.js';
import { toDevice } from '../ops/device.js';
import { Tensor, contiguousStrides, fmtShape } from '../tensor.js';
import { writeFileAtomicSync } from '@vlmoe/util';
import { PickleError, PyDict, PyGlobal, PyPersistent, PyReduce, PyTuple, describe, pickle, unpickle, type AllowedGlobal, type PyKey } from './pickle.js';
import { ZipError, ZipWriter, bytesSource, fileSource, looksLikeZip, readZipDirectory, readZipEntry, type ByteSource, type ZipEntry } from './zip.js';

export { PyDict, PyTuple, PickleError, type PyKey } from './pickle.js';

/** An invalid, unsupported or unsafe checkpoint, naming the file. */
export class PthError extends Error {
  override name = 'PthError';
  constructor(readonly source: string, detail: string) {
    super(`pth ${source}: ${detail}`);
  }
}

export interface PthLoadOptions {
  /** Device of the loaded tensors ('cpu' by default; elsewhere each tensor is copied, so views stop sharing). */
  device?: string;
}

export interface PthStateDictOptions extends PthLoadOptions {
  /**
   * Where the state dict sits in the saved object: a top-level key such as 'module'
   * (DeepSpeed's `mp_rank_00_model_states.pt`), 'state_dict' (Lightning) or 'model'.
   * Default: the saved object itself.
   */
  key?: string;
}

export interface PthSaveOptions {
  /** Write ZIP64 records even when the archive does not need them (for tests). */
  forceZip64?: boolean;
}

// ---- storages and tensors -----------------------------------------------------------------------

interface StorageType {
  /** torch's class name, e.g. FloatStorage. */
  name: string;
  /** Bytes per element in the file. */
  itemsize: number;
  /** dtype of the loaded tensor. */
  dtype: DType;
  /** Integer types widened to int32 on load. */
  widen?: 'int16' | 'int8';
}

const STORAGE_TYPES: readonly StorageType[] = [
  { name: 'FloatStorage', itemsize: 4, dtype: 'float32' },
  { name: 'DoubleStorage', itemsize: 8, dtype: 'float64' },
  { name: 'HalfStorage', itemsize: 2, dtype: 'float16' },
  { name: 'BFloat16Storage', itemsize: 2, dtype: 'bfloat16' },
  { name: 'LongStorage', itemsize: 8, dtype: 'int64' },
  { name: 'IntStorage', itemsize: 4, dtype: 'int32' },
  { name: 'ShortStorage', itemsize: 2, dtype: 'int32', widen: 'int16' },
  { name: 'CharStorage', itemsize: 1, dtype: 'int32', widen: 'int8' },
  { name: 'ByteStorage', itemsize: 1, dtype: 'uint8' },
  { name: 'BoolStorage', itemsize: 1, dtype: 'bool' },
];

/** The storage class each dtype is saved as. */
const SAVE_TYPE: Record<DType, string> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int64: 'LongStorage', int32: 'IntStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

/** Storage classes torch has that this reader refuses, with what they hold. */
const REFUSED_STORAGE: Record<string, string> = {
  ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128', QInt8Storage: 'quantized int8', QUInt8Storage: 'quantized uint8',
  QInt32Storage: 'quantized int32', QUInt4x2Storage: 'quantized uint4x2', QUInt2x4Storage: 'quantized uint2x4', UntypedStorage: 'untyped bytes',
  ComplexHalfStorage: 'complex32',
};

/** A storage class torch has and this reader refuses (named when a tensor uses it). */
class RefusedStorage {
  constructor(readonly name: string, readonly what: string) {}
}

/** A storage named by a persistent id; its bytes are read when tensors are built. */
class StorageRef {
  constructor(readonly key: string, readonly type: StorageType, readonly numel: number) {}
}

/** A tensor as the pickle describes it, before its storage is read. */
class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly size: number[], readonly stride: number[]) {}
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isSize(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function intList(x: unknown, what: string): number[] {
  if (!Array.isArray(x) || !x.every(isSize)) throw new Error(`${what} must be a tuple of non-negative integers, got ${describe(x)}`);
  return [...x];
}

function rebuildTensor(args: unknown[], fn: string): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new Error(`${fn}: the first argument must be a storage, got ${describe(storage)}`);
  if (!isSize(offset)) throw new Error(`${fn}: storage_offset must be a non-negative integer, got ${String(offset)}`);
  const sz = intList(size, 'size'), st = intList(stride, 'stride');
  if (sz.length !== st.length) throw new Error(`${fn}: size ${fmtShape(sz)} and stride ${fmtShape(st)} differ in length`);
  return new TensorRef(storage, offset, sz, st);
}

/** The torch globals a checkpoint may use (see the file comment). */
function torchGlobals(): Map<string, AllowedGlobal> {
  const g = new Map<string, AllowedGlobal>();
  g.set('torch._utils _rebuild_tensor_v2', {
    call: (args) => {
      if (args.length < 6 || args.length > 7) throw new Error(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
      const [, , , , requiresGrad, hooks, metadata] = args;
      if (typeof requiresGrad !== 'boolean') throw new Error('_rebuild_tensor_v2: requires_grad must be a bool');
      if (!(hooks instanceof PyDict) || hooks.size) throw new Error('_rebuild_tensor_v2: backward hooks are not supported (the tensor was saved with hooks)');
      if (metadata !== undefined && metadata !== null && !(metadata instanceof PyDict && metadata.size === 0))
        throw new Error('_rebuild_tensor_v2: tensor metadata is not supported');
      return rebuildTensor(args, '_rebuild_tensor_v2');
    },
  });
  g.set('torch._utils _rebuild_tensor', {
    call: (args) => {
      if (args.length !== 4) throw new Error(`_rebuild_tensor takes 4 arguments, got ${args.length}`);
      return rebuildTensor(args, '_rebuild_tensor');
    },
  });
  g.set('torch._utils _rebuild_parameter', {
    call: (args) => {
      const [data, , hooks] = args;
      if (args.length !== 3 || !(data instanceof TensorRef)) throw new Error('_rebuild_parameter expects (tensor, requires_grad, backward_hooks)');
      if (!(hooks instanceof PyDict) || hooks.size) throw new Error('_rebuild_parameter: backward hooks are not supported');
      return data;
    },
  });
  g.set('torch Size', { call: (args) => PyTuple.fromItems(intList(args[0], 'torch.Size')) });
  for (const t of STORAGE_TYPES) g.set(`torch ${t.name}`, { value: t });
  // known storage classes this reader cannot hold: refused by name when a tensor uses them
  for (const [name, what] of Object.entries(REFUSED_STORAGE)) {
    g.set(`torch ${name}`, { value: new RefusedStorage(name, what) });
    g.set(`torch.storage ${name}`, { value: new RefusedStorage(name, what) });
  }
  return g;
}

const TORCH_GLOBALS = torchGlobals();
const ALLOWED_TEXT = 'torch._utils _rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter, torch Size, torch <Float|Double|Half|BFloat16|Long|Int|Short|Char|Byte|Bool>Storage, collections OrderedDict, builtins set / frozenset, _codecs encode';

interface Parsed {
  value: unknown;
  storages: Map<string, StorageRef>;
}

/** Unpickles a torch.save object pickle, collecting its storages (persistent ids). */
function parseObject(data: Uint8Array, source: string, legacy: boolean, start = 0): Parsed & { end: number } {
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown) => {
    const n = legacy ? 6 : 5;
    if (!(pid instanceof PyTuple) || pid[0] !== 'storage' || pid.length !== n)
      throw new Error(`expected ('storage', type, key, location, numel${legacy ? ', view_metadata' : ''}), got a ${describe(pid)}${pid instanceof PyTuple ? ` of ${pid.length}` : ''}`);
    const [, type, key, location, numel] = pid;
    if (type instanceof RefusedStorage) throw new Error(`storage type torch.${type.name} (${type.what}) is not supported`);
    if (!STORAGE_TYPES.includes(type as StorageType)) throw new Error(`storage type ${describe(type)} is not a storage class`);
    if (typeof key !== 'string' || typeof location !== 'string' || !isSize(numel)) throw new Error('storage key, location or numel has the wrong type');
    if (legacy && pid[5] !== null) throw new Error('storage views of the legacy format (view_metadata) are not supported');
    const prev = storages.get(key);
    if (prev) {
      if (prev.type !== type || prev.numel !== numel) throw new Error(`storage '${key}' is described twice, differently`);
      return prev;
    }
    const ref = new StorageRef(key, type as StorageType, numel);
    storages.set(key, ref);
    return ref;
  };
  try {
    const r = unpickle(data, { source: 'data.pkl', globals: TORCH_GLOBALS, persistentLoad, allowedText: ALLOWED_TEXT }, start);
    return { value: r.value, end: r.end, storages };
  } catch (e) {
    if (e instanceof PickleError) throw new PthError(source, e.message);
    throw e;
  }
}

/** Host-order bytes for a storage of `type` from its file bytes (byte order `bigEndian`). */
function hostBytes(raw: Uint8Array, type: StorageType, bigEndian: boolean): ArrayBufferView {
  const size = type.itemsize;
  let b = raw;
  if (size > 1 && bigEndian === LITTLE_ENDIAN) {
    b = raw.slice();
    for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
  } else if (raw.byteOffset % size !== 0) b = raw.slice();
  if (type.widen === 'int16') return Int32Array.from(new Int16Array(b.buffer, b.byteOffset, b.length / 2));
  if (type.widen === 'int8') return Int32Array.from(new Int8Array(b.buffer, b.byteOffset, b.length));
  if (type.dtype === 'bool') return b.every((x) => x <= 1) ? b : b.map((x) => (x !== 0 ? 1 : 0));
  return b;
}

/** A 1-D tensor holding a storage's elements. */
function storageTensor(raw: Uint8Array, ref: StorageRef, bigEndian: boolean, source: string): Tensor {
  const want = ref.numel * ref.type.itemsize;
  if (raw.length !== want)
    throw new PthError(source, `storage '${ref.key}' (${ref.type.name}, ${ref.numel} elements) should hold ${want} bytes, the file has ${raw.length}`);
  const t = emptyTensor([ref.numel], { dtype: ref.type.dtype });
  try {
    if (ref.numel > 0) native.write(t.storage.handle, 0, hostBytes(raw, ref.type, bigEndian));
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/**
 * Replaces every TensorRef in `value` by a Tensor (views of one storage tensor per storage;
 * one Tensor per TensorRef, so a tensor saved twice loads as one object).
 */
function materialize(value: unknown, readStorage: (ref: StorageRef) => Tensor, source: string, device: string): unknown {
  const bases = new Map<StorageRef, Tensor>();
  const made = new Map<TensorRef, Tensor>();
  const build = (r: TensorRef): Tensor => {
    let t = made.get(r);
    if (t) return t;
    let base = bases.get(r.storage);
    if (!base) bases.set(r.storage, (base = readStorage(r.storage)));
    const numel = r.size.reduce((a, b) => a * b, 1);
    if (numel > 0) {
      const last = r.offset + r.size.reduce((acc, s, i) => acc + (s - 1) * r.stride[i]!, 0);
      if (last >= r.storage.numel)
        throw new PthError(source, `a tensor of size ${fmtShape(r.size)}, stride ${fmtShape(r.stride)}, offset ${r.offset} reaches element ${last} of storage '${r.storage.key}', which has ${r.storage.numel}`);
    }
    t = base.viewAs(r.size, r.stride, r.offset);
    if (device !== 'cpu') {
      const moved = toDevice(t, device);
      t.dispose();
      t = moved;
    }
    made.set(r, t);
    return t;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > 1000) throw new PthError(source, 'the saved object is nested more than 1000 levels deep');
    if (v instanceof TensorRef) return build(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = walk(v[i], depth + 1);
    } else if (v instanceof PyDict) {
      for (const [k, x] of v) v.set(k, walk(x, depth + 1));
      if (v.attributes) walk(v.attributes, depth + 1);
    }
    return v;
  };
  try {
    return walk(value, 0);
  } catch (e) {
    for (const t of made.values()) t.dispose();
    throw e;
  } finally {
    for (const b of bases.values()) b.dispose();
  }
}

// ---- reading ------------------------------------------------------------------------------------

/** The zip format: find the archive's records, unpickle data.pkl, read the storages it names. */
function loadZip(src: ByteSource, source: string, device: string): unknown {
  let entries: ZipEntry[];
  try {
    entries = readZipDirectory(src, source);
  } catch (e) {
    if (e instanceof ZipError) throw new PthError(source, e.message.replace(/^zip [^:]*: /, ''));
    throw e;
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  const pkl = entries.filter((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (pkl.length === 0) {
    if (entries.some((e) => e.name.endsWith('/constants.pkl') || e.name.includes('/code/')))
      throw new PthError(source, 'this is a TorchScript archive (torch.jit.save), not a torch.save file');
    throw new PthError(source, 'a zip archive without data.pkl: not a torch.save file');
  }
  if (pkl.length > 1) throw new PthError(source, `the archive has ${pkl.length} data.pkl records (${pkl.map((e) => e.name).join(', ')})`);
  const prefix = pkl[0]!.name.slice(0, -'data.pkl'.length);
  const read = (e: ZipEntry) => {
    try {
      return readZipEntry(src, e, source);
    } catch (err) {
      if (err instanceof ZipError) throw new PthError(source, err.message.replace(/^zip [^:]*: /, ''));
      throw err;
    }
  };
  let bigEndian = false;
  const bo = byName.get(`${prefix}byteorder`);
  if (bo) {
    const s = new TextDecoder().decode(read(bo)).trim();
    if (s !== 'little' && s !== 'big') throw new PthError(source, `byteorder record says '${s}', expected 'little' or 'big'`);
    bigEndian = s === 'big';
  }
  const version = byName.get(`${prefix}version`) ?? byName.get(`${prefix}.data/version`);
  if (version) {
    const v = new TextDecoder().decode(read(version)).trim();
    if (!/^\d+$/.test(v)) throw new PthError(source, `version record says '${v}', expected an integer`);
  }
  const { value } = parseObject(read(pkl[0]!), source, false);
  return materialize(value, (ref) => {
    const e = byName.get(`${prefix}data/${ref.key}`);
    if (!e) throw new PthError(source, `storage '${ref.key}' has no record '${prefix}data/${ref.key}' in the archive`);
    return storageTensor(read(e), ref, bigEndian, source);
  }, source, device);
}

/** torch's legacy magic number (the first pickle of a legacy file). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** The legacy format: magic, protocol version, sys info, the object, the storage keys, then each storage's numel and bytes. */
function loadLegacy(data: Uint8Array, source: string, device: string): unknown {
  const small = (start: number, what: string) => {
    try {
      return unpickle(data, { source: what }, start);
    } catch (e) {
      if (e instanceof PickleError) throw new PthError(source, e.message);
      throw e;
    }
  };
  const magic = small(0, 'legacy header');
  if (magic.value !== LEGACY_MAGIC) throw new PthError(source, 'not a torch.save file (neither a zip archive nor a legacy torch pickle with its magic number)');
  const proto = small(magic.end, 'legacy header');
  if (proto.value !== 1001) throw new PthError(source, `legacy protocol version ${String(proto.value)} is not supported (expected 1001)`);
  const info = small(proto.end, 'legacy sys info');
  const le = info.value instanceof PyDict ? info.value.get('little_endian') : undefined;
  if (typeof le !== 'boolean') throw new PthError(source, 'legacy sys info has no little_endian flag');
  const obj = parseObject(data, source, true, info.end);
  const keys = small(obj.end, 'legacy storage keys');
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new PthError(source, 'legacy storage key list is not a list of strings');
  const raws = new Map<string, Uint8Array>();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = keys.end;
  for (const key of keys.value as string[]) {
    const ref = obj.storages.get(key);
    if (!ref) throw new PthError(source, `legacy storage '${key}' is not used by any tensor`);
    if (p + 8 > data.length) throw new PthError(source, `legacy storage '${key}': the file is truncated`);
    const n = dv.getBigInt64(p, !le ? false : true);
    if (n !== BigInt(ref.numel)) throw new PthError(source, `legacy storage '${key}' has ${n} elements in the file, ${ref.numel} in the pickle`);
    const nbytes = ref.numel * ref.type.itemsize;
    if (p + 8 + nbytes > data.length) throw new PthError(source, `legacy storage '${key}': the file is truncated`);
    raws.set(key, data.subarray(p + 8, p + 8 + nbytes));
    p += 8 + nbytes;
  }
  return materialize(obj.value, (ref) => {
    const raw = raws.get(ref.key);
    if (!raw) throw new PthError(source, `legacy storage '${ref.key}' has no data in the file`);
    return storageTensor(raw, ref, !le, source);
  }, source, device);
}

function isTar(first: Uint8Array): boolean {
  return first.length >= 262 && new TextDecoder('latin1').decode(first.subarray(257, 262)) === 'ustar';
}

/**
 * Everything a torch.save file holds, from its bytes: dicts as `PyDict` (a Map), lists as
 * arrays, tuples as `PyTuple`, tensors as `Tensor`, ints / floats as numbers (bigint past
 * 2^53), str, bool, None (null), bytes (Uint8Array), sets (Set).
 */
export function deserializePth(bytes: Uint8Array, opts: PthLoadOptions & { source?: string } = {}): unknown {
  const source = opts.source ?? '<bytes>';
  const device = opts.device ?? 'cpu';
  if (looksLikeZip(bytes)) return loadZip(bytesSource(bytes), source, device);
  if (isTar(bytes)) throw new PthError(source, 'the tar format of torch < 0.4 is not supported: load and re-save it with a newer torch');
  return loadLegacy(bytes, source, device);
}

/** Everything a torch.save file holds (see deserializePth); zip archives are read entry by entry. */
export function loadPthObject(path: string, opts: PthLoadOptions = {}): unknown {
  const fd = fs.openSync(path, 'r');
  try {
    const src = fileSource(fd);
    const first = src.read(0, Math.min(src.length, 512));
    if (looksLikeZip(first)) return loadZip(src, path, opts.device ?? 'cpu');
    return deserializePth(src.read(0, src.length), { ...opts, source: path });
  } finally {
    fs.closeSync(fd);
  }
}

function article(what: string): string {
  return `${/^[aeiouAEIOU]/.test(what) ? 'an' : 'a'} ${what}`;
}

function disposeAll(v: unknown, keepSet: Set<Tensor>): void {
  if (v instanceof Tensor) {
    if (!keepSet.has(v)) v.dispose();
  } else if (Array.isArray(v)) for (const x of v) disposeAll(x, keepSet);
  else if (v instanceof PyDict) {
    for (const x of v.values()) disposeAll(x, keepSet);
    if (v.attributes) disposeAll(v.attributes, keepSet);
  }
}

/** The state dict (name → Tensor) in a loaded object; other tensors in it are disposed. */
export function stateDictFromPth(obj: unknown, opts: { key?: string; source?: string } = {}): Record<string, Tensor> {
  const source = opts.source ?? '<object>';
  const out: Record<string, Tensor> = {};
  const kept = new Set<Tensor>();
  try {
    let sd = obj;
    if (opts.key !== undefined) {
      if (!(obj instanceof PyDict)) throw new PthError(source, `the saved object is a ${describe(obj)}, so it has no key '${opts.key}'`);
      if (!obj.has(opts.key)) throw new PthError(source, `the saved dict has no key '${opts.key}' (keys: ${[...obj.keys()].map(String).join(', ')})`);
      sd = obj.get(opts.key);
    }
    if (!(sd instanceof PyDict)) throw new PthError(source, `expected a state dict (a dict of tensors), got a ${describe(sd)}${opts.key !== undefined ? ` at key '${opts.key}'` : ''}`);
    for (const [k, v] of sd) {
      if (typeof k !== 'string') throw new PthError(source, `state dict key ${String(k)} is a ${describe(k)}, not a str`);
      if (!(v instanceof Tensor)) {
        const dicts = opts.key === undefined ? [...sd].filter(([, x]) => x instanceof PyDict).map(([kk]) => String(kk)) : [];
        throw new PthError(source, `'${k}' is ${article(describe(v))}, not a tensor: this is not a plain state dict${dicts.length ? `; pass { key } to pick the state dict inside it (keys holding a dict: ${dicts.join(', ')})` : ''}; loadPthObject returns everything`);
      }
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      kept.add(v);
    }
  } catch (e) {
    kept.clear();
    throw e;
  } finally {
    disposeAll(obj, kept);
  }
  return out;
}

/**
 * Loads a `torch.save(state_dict)` file as a record of name → Tensor (`key` picks the state
 * dict inside a bigger checkpoint, e.g. 'module' for DeepSpeed). Tensors that shared a
 * storage in PyTorch are views of one storage here.
 */
export function loadPth(path: string, opts: PthStateDictOptions = {}): Record<string, Tensor> {
  return stateDictFromPth(loadPthObject(path, opts), { key: opts.key, source: path });
}

// ---- writing ------------------------------------------------------------------------------------

interface SavePlan {
  pickle: Uint8Array;
  /** Records in key order: the bytes of each storage. */
  storages: { key: string; bytes: () => Uint8Array }[];
}

/** The raw little-endian element bytes of `t` (a contiguous copy when needed). */
function tensorBytes(t: Tensor): Uint8Array {
  const c = contiguous(t);
  try {
    const out = new Uint8Array(c.numel * dtypeSize[c.dtype]);
    if (out.length) native.read(c.storage.handle, c.offset * dtypeSize[c.dtype], out);
    return littleEndian(out, dtypeSize[c.dtype]);
  } finally {
    if (c !== t) c.dispose();
  }
}

function littleEndian(b: Uint8Array, size: number): Uint8Array {
  if (LITTLE_ENDIAN || size === 1) return b;
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
  return b;
}

function plan(value: unknown, source: string): SavePlan {
  // every tensor, once, in the order the pickle meets it
  const tensors: Tensor[] = [];
  const seenT = new Set<Tensor>();
  const collect = (v: unknown, path: string, depth: number): void => {
    if (depth > 1000) throw new PthError(source, `${path}: nesting is too deep`);
    if (v instanceof Tensor) {
      if (v.disposed) throw new PthError(source, `${path}: tensor of shape ${fmtShape(v.shape)} was disposed`);
      if (!seenT.has(v)) (seenT.add(v), tensors.push(v));
    } else if (Array.isArray(v)) v.forEach((x, i) => collect(x, `${path}[${i}]`, depth + 1));
    else if (v instanceof Map) for (const [k, x] of v) collect(x, `${path}.${String(k)}`, depth + 1);
    else if (v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null))
      for (const [k, x] of Object.entries(v)) collect(x, path ? `${path}.${k}` : k, depth + 1);
  };
  collect(value, '', 0);
  // tensors sharing a storage keep sharing it (the whole storage is written once); a tensor
  // alone on its storage is written compactly (its own elements, contiguous)
  const byStorage = new Map<unknown, Tensor[]>();
  for (const t of tensors) {
    const g = byStorage.get(t.storage);
    if (g) g.push(t);
    else byStorage.set(t.storage, [t]);
  }
  const storages: SavePlan['storages'] = [];
  const refs = new Map<Tensor, { key: string; numel: number; offset: number; strides: number[] }>();
  for (const group of byStorage.values()) {
    const shared = group.length > 1 && group.every((t) => t.dtype === group[0]!.dtype);
    if (shared) {
      const t0 = group[0]!, size = dtypeSize[t0.dtype];
      const key = String(storages.length);
      const numel = Math.floor(t0.storage.nbytes / size);
      storages.push({
        key,
        bytes: () => {
          const out = new Uint8Array(numel * size);
          if (out.length) native.read(t0.storage.handle, 0, out);
          return littleEndian(out, size);
        },
      });
      for (const t of group) refs.set(t, { key, numel, offset: t.offset, strides: t.strides.slice() });
    } else {
      for (const t of group) {
        const key = String(storages.length);
        storages.push({ key, bytes: () => tensorBytes(t) });
        refs.set(t, { key, numel: t.numel, offset: 0, strides: contiguousStrides(t.shape) });
      }
    }
  }
  const rebuild = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
  const convert = (v: unknown): unknown => {
    if (!(v instanceof Tensor)) return v;
    const r = refs.get(v)!;
    const hooks = new PyDict();
    hooks.ordered = true;
    const pid = PyTuple.fromItems(['storage', new PyGlobal('torch', SAVE_TYPE[v.dtype]), r.key, 'cpu', r.numel]);
    return new PyReduce(rebuild, [new PyPersistent(pid), r.offset, PyTuple.fromItems(v.shape), PyTuple.fromItems(r.strides), false, hooks]);
  };
  let bytes: Uint8Array;
  try {
    bytes = pickle(value, convert);
  } catch (e) {
    throw new PthError(source, (e as Error).message);
  }
  return { pickle: bytes, storages };
}

function writeArchive(p: SavePlan, write: (b: Uint8Array) => void, opts: PthSaveOptions): void {
  const z = new ZipWriter(write, { align: 64, forceZip64: opts.forceZip64 });
  const text = (s: string) => new TextEncoder().encode(s);
  z.add('archive/data.pkl', p.pickle);
  z.add('archive/byteorder', text('little'));
  for (const s of p.storages) z.add(`archive/data/${s.key}`, s.bytes());
  z.add('archive/version', text('3\n'));
  z.finish();
}

/**
 * torch.save bytes of `value`: a record of tensors (a state dict), or any nesting of plain
 * objects / PyDict / Map (dicts), arrays (lists), PyTuple (tuples), tensors, numbers, bigints,
 * strings, booleans, null, Uint8Array (bytes) and Sets. Integral numbers become Python ints.
 */
export function serializePth(value: unknown, opts: PthSaveOptions = {}): Uint8Array {
  const p = plan(value, 'serialize');
  const chunks: Uint8Array[] = [];
  writeArchive(p, (b) => chunks.push(b), opts);
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) (out.set(c, o), (o += c.length));
  return out;
}

/** Writes `value` (see serializePth) to `path` atomically, one storage at a time. */
export function savePth(path: string, value: unknown, opts: PthSaveOptions = {}): void {
  const p = plan(value, path);
  writeFileAtomicSync(path, (write) => writeArchive(p, write, opts));
}
