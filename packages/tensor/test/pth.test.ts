/**
 * PyTorch checkpoints (src/serialization/pth.ts, pickle.ts, zip.ts) against files PyTorch
 * wrote (test/fixtures/make_pth.py → test/fixtures/pth/): every dtype, views sharing a
 * storage with offsets / strides / zero strides, a 0-d and empty tensors, nested dict /
 * OrderedDict / list / tuple, Python scalars, strings, bytes, sets; the legacy format, a
 * big-endian archive and a deflated one; malicious pickles refused by name; corrupt and
 * foreign files refused clearly; our writer read back by us and, when /usr/bin/python3 has
 * torch, by torch.load (make_pth.py --check).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { PyDict, PyGlobal, PyPersistent, PyReduce, PyTuple, pickle } from '../src/serialization/pickle.js';
import { ZipWriter, bytesSource, readZipDirectory, readZipEntry } from '../src/serialization/zip.js';

const FIX = decodeURIComponent(new URL('./fixtures/pth/', import.meta.url).pathname);
const SCRIPT = decodeURIComponent(new URL('./fixtures/make_pth.py', import.meta.url).pathname);
type Desc = Record<string, Record<string, unknown>>;
const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8')) as { torch: string; state: Desc; legacy: Desc };

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-pth-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- a description of a loaded object in make_pth.py's format -----------------------------------

function encFloat(x: number): number | string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Object.is(x, -0)) return '-0';
  return x;
}

function values(t: T.Tensor): unknown[] {
  const d = t.dataSync();
  if (t.dtype === 'int64') return Array.from(d as BigInt64Array, (v) => v.toString());
  if (t.dtype === 'bool') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (T.isFloating(t.dtype)) return Array.from(d as Float32Array, encFloat);
  return Array.from(d as Int32Array);
}

/** Flattens a loaded object like make_pth.py's describe(): path → description. */
function describeObj(obj: unknown): Desc {
  const out: Desc = {};
  const storages = new Map<unknown, number>();
  const walk = (v: unknown, p: string): void => {
    if (v instanceof T.Tensor) {
      if (!storages.has(v.storage)) storages.set(v.storage, storages.size);
      out[p] = { kind: 'tensor', dtype: v.dtype, shape: v.shape, values: values(v), storage: storages.get(v.storage) };
    } else if (v instanceof Map || (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)) {
      const entries: [unknown, unknown][] = v instanceof Map ? [...v] : Object.entries(v);
      out[p] = { kind: v instanceof PyDict && v.ordered ? 'OrderedDict' : 'dict', keys: entries.map(([k]) => k) };
      for (const [k, x] of entries) walk(x, p ? `${p}.${String(k)}` : String(k));
    } else if (Array.isArray(v)) {
      out[p] = { kind: v instanceof PyTuple ? 'tuple' : 'list', length: v.length };
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
    } else if (typeof v === 'boolean') out[p] = { kind: 'bool', value: v };
    else if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) out[p] = { kind: 'int', value: v.toString() };
    else if (typeof v === 'number') out[p] = { kind: 'float', value: encFloat(v) };
    else if (typeof v === 'string') out[p] = { kind: 'str', value: v };
    else if (v === null) out[p] = { kind: 'None' };
    else if (v instanceof Uint8Array) out[p] = { kind: 'bytes', value: [...v] };
    else if (v instanceof Set) out[p] = { kind: 'set', value: [...v].sort((a, b) => Number(a) - Number(b)) };
    else throw new Error(`${p}: unexpected ${String(v)}`);
  };
  walk(obj, '');
  return out;
}

/** Groups of paths that share a storage (ids differ between sides; the partition must not). */
function partition(d: Desc): string[][] {
  const g = new Map<unknown, string[]>();
  for (const [p, v] of Object.entries(d)) if (v.kind === 'tensor') g.set(v.storage, [...(g.get(v.storage) ?? []), p]);
  return [...g.values()].map((x) => x.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** PyTorch's int16 / int8 load as int32 here (exact). */
function asLoaded(want: Desc): Desc {
  const out: Desc = {};
  for (const [p, v] of Object.entries(want)) out[p] = v.kind === 'tensor' && (v.dtype === 'int16' || v.dtype === 'int8') ? { ...v, dtype: 'int32' } : v;
  return out;
}

function expectSame(got: Desc, want: Desc): void {
  const strip = (d: Desc) => Object.fromEntries(Object.entries(d).map(([p, v]) => [p, { ...v, storage: undefined }]));
  expect(strip(got)).toEqual(strip(asLoaded(want)));
  expect(partition(got)).toEqual(partition(want));
}

function disposeDeep(v: unknown): void {
  if (v instanceof T.Tensor) v.dispose();
  else if (Array.isArray(v)) v.forEach(disposeDeep);
  else if (v instanceof Map) for (const x of v.values()) disposeDeep(x);
}

// ---- reading PyTorch's files ---------------------------------------------------------------------

describe('loadPthObject reads what torch.save wrote', () => {
  it(`state.pth (torch ${expected.torch}): every dtype, views with offsets/strides, 0-d, empty, nested containers, scalars`, () => {
    const obj = T.loadPthObject(path.join(FIX, 'state.pth'));
    expectSame(describeObj(obj), expected.state);
    const o = obj as PyDict;
    // views of one storage are views here too, with torch's offsets and strides
    const views = o.get('views') as PyDict<T.Tensor>;
    const base = views.get('base')!, tr = views.get('transposed')!, bc = views.get('broadcast')!;
    expect(tr.storage).toBe(base.storage);
    expect(tr.strides).toEqual([1, 6]);
    expect(views.get('strided')!.offset).toBe(6);
    expect(views.get('strided')!.strides).toEqual([6, 2]);
    expect(bc.strides).toEqual([0, 0]);
    expect(bc.offset).toBe(3);
    // a tensor saved twice is one tensor
    const twice = o.get('twice') as T.Tensor[];
    expect(twice[0]).toBe(twice[1]);
    // dtypes kept as saved (half types too); int16 / int8 widened to int32
    const dt = o.get('dtypes') as PyDict<T.Tensor>;
    expect(dt.get('bf16')!.dtype).toBe('bfloat16');
    expect(dt.get('f16')!.dtype).toBe('float16');
    expect(dt.get('i8')!.dtype).toBe('int32');
    // the state dict's _metadata (set by BUILD) is kept as the dict's attributes
    const meta = (o.get('module') as PyDict).attributes!.get('_metadata') as PyDict;
    expect([...meta.keys()]).toEqual(['', '0', '1']);
    expect((o.get('tuple') as PyTuple)[6]).toBe(-(2n ** 70n));
    disposeDeep(obj);
  });

  it('deflated entries (method 8) read the same', () => {
    const obj = T.loadPthObject(path.join(FIX, 'deflate.pth'));
    expectSame(describeObj(obj), expected.state);
    disposeDeep(obj);
  });

  it("a 'byteorder: big' archive is byte-swapped on load", () => {
    const obj = T.loadPthObject(path.join(FIX, 'big_endian.pth'));
    expectSame(describeObj(obj), expected.state);
    disposeDeep(obj);
  });

  it('the legacy (non-zip) format, storage sharing included', () => {
    const obj = T.loadPthObject(path.join(FIX, 'legacy.pth'));
    expectSame(describeObj(obj), expected.legacy);
    disposeDeep(obj);
  });

  it('pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE)', () => {
    const obj = T.loadPthObject(path.join(FIX, 'proto4.pth'));
    expectSame(describeObj(obj), expected.legacy);
    disposeDeep(obj);
  });

  it('loading frees every storage it does not return', () => {
    const before = T.memory().cpu.live;
    const sd = T.loadPth(path.join(FIX, 'state.pth'), { key: 'module' });
    expect(T.memory().cpu.live).toBeGreaterThan(before);
    for (const t of Object.values(sd)) t.dispose();
    expect(T.memory().cpu.live).toBe(before);
    expect(() => T.loadPthObject(path.join(FIX, 'evil_system.pth'))).toThrow();
    expect(T.memory().cpu.live).toBe(before);
  });

  it('deserializePth(bytes) equals loadPthObject(path)', () => {
    const obj = T.deserializePth(fs.readFileSync(path.join(FIX, 'state.pth')));
    expectSame(describeObj(obj), expected.state);
    disposeDeep(obj);
  });

  it('loadPth gives a record of tensors: the saved dict, or the one at `key`', () => {
    expect(() => T.loadPth(path.join(FIX, 'state.pth'))).toThrow(/state\.pth: 'module' is an OrderedDict, not a tensor.*pass \{ key \}.*keys holding a dict: module, dtypes, views/);
    const sd = T.loadPth(path.join(FIX, 'state.pth'), { key: 'module' });
    expect(Object.keys(sd)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(Array.from(sd['0.bias']!.dataSync() as Float32Array)).toEqual(expected.state['module.0.bias']!.values);
    expect(() => T.loadPth(path.join(FIX, 'state.pth'), { key: 'modul' })).toThrow(/has no key 'modul' \(keys: module, dtypes/);
    expect(() => T.loadPth(path.join(FIX, 'legacy.pth'))).toThrow(/legacy\.pth: 'step' is an int, not a tensor: this is not a plain state dict; loadPthObject returns everything/);
  });
});

describe('refuses what it must not run or cannot read', () => {
  it.each([
    ['evil_system.pth', 'posix system'],
    ['evil_eval.pth', '__builtin__ eval'],
    ['evil_numpy.pth', 'numpy.core.multiarray _reconstruct'],
  ])('%s: the global %s is refused by name, naming the file', (file, global) => {
    const marker = '/tmp/vlmoe-pwned';
    const before = fs.existsSync(marker);
    const p = path.join(FIX, file);
    expect(() => T.loadPthObject(p)).toThrow(new RegExp(`^pth ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: data\\.pkl: global '${global.replace('.', '\\.')}' is not allowed`));
    expect(fs.existsSync(marker)).toBe(before);
  });

  it('opcodes that build objects are refused by name', () => {
    // GLOBAL collections OrderedDict, EMPTY_TUPLE, NEWOBJ, STOP
    const bytes = Uint8Array.from([0x80, 2, ...Buffer.from('ccollections\nOrderedDict\n'), 0x29, 0x81, 0x2e]);
    expect(() => archive(bytes, [])).toThrow(/opcode NEWOBJ \(0x81\) is not supported/);
  });

  it('a TorchScript archive, a tar file, random bytes, a truncated and a corrupted file: clear errors', () => {
    const chunks: Uint8Array[] = [];
    const z = new ZipWriter((b) => chunks.push(b));
    z.add('model/constants.pkl', new Uint8Array([0x80, 2, 0x4e, 0x2e]));
    z.add('model/code/__torch__.py', new TextEncoder().encode('x'));
    z.finish();
    expect(() => T.deserializePth(Buffer.concat(chunks))).toThrow(/TorchScript archive/);
    const tar = new Uint8Array(600);
    tar.set(new TextEncoder().encode('ustar'), 257);
    expect(() => T.deserializePth(tar)).toThrow(/tar format of torch < 0\.4/);
    expect(() => T.deserializePth(new TextEncoder().encode('hello world, not a checkpoint'))).toThrow(/pth <bytes>: /);
    const good = fs.readFileSync(path.join(FIX, 'state.pth'));
    expect(() => T.deserializePth(good.subarray(0, good.length - 100), { source: 'cut.pth' })).toThrow(/pth cut\.pth: .*(truncated|end-of-central-directory)/);
    // flip one byte of storage data/3: the CRC check names the entry
    const bad = Uint8Array.from(good);
    const e = readZipDirectory(bytesSource(bad), 'x').find((x) => x.name.endsWith('/data/3'))!;
    const h = new DataView(bad.buffer, e.localHeaderOffset, 30);
    bad[e.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true)]! ^= 0xff;
    expect(() => T.deserializePth(bad, { source: 'bad.pth' })).toThrow(/pth bad\.pth: entry '[^']*\/data\/3': CRC-32 .* does not match/);
  });

  it('a tensor reaching past its storage is refused, naming both', () => {
    const hooks = new PyDict();
    hooks.ordered = true;
    const pid = PyTuple.fromItems(['storage', new PyGlobal('torch', 'FloatStorage'), '0', 'cpu', 4]);
    const obj = { w: new PyReduce(new PyGlobal('torch._utils', '_rebuild_tensor_v2'), [new PyPersistent(pid), 2, PyTuple.fromItems([3]), PyTuple.fromItems([1]), false, hooks]) };
    expect(() => archive(pickle(obj), [['0', new Uint8Array(16)]])).toThrow(/size \[3\], stride \[1\], offset 2 reaches element 4 of storage '0', which has 4/);
    expect(() => archive(pickle(obj), [['0', new Uint8Array(12)]])).toThrow(/storage '0' \(FloatStorage, 4 elements\) should hold 16 bytes, the file has 12/);
    const complex = { w: new PyReduce(new PyGlobal('torch._utils', '_rebuild_tensor_v2'), [new PyPersistent(PyTuple.fromItems(['storage', new PyGlobal('torch', 'ComplexFloatStorage'), '0', 'cpu', 1])), 0, PyTuple.fromItems([1]), PyTuple.fromItems([1]), false, hooks]) };
    expect(() => archive(pickle(complex), [['0', new Uint8Array(8)]])).toThrow(/storage type torch\.ComplexFloatStorage \(complex64\) is not supported/);
  });
});

/** Loads a hand-made archive: data.pkl = `pkl`, data/<key> = bytes. */
function archive(pkl: Uint8Array, storages: [string, Uint8Array][]): unknown {
  const chunks: Uint8Array[] = [];
  const z = new ZipWriter((b) => chunks.push(b));
  z.add('archive/data.pkl', pkl);
  for (const [k, b] of storages) z.add(`archive/data/${k}`, b);
  z.add('archive/version', new TextEncoder().encode('3\n'));
  z.finish();
  return T.deserializePth(Buffer.concat(chunks));
}

// ---- writing ------------------------------------------------------------------------------------

/** An object exercising the writer: every dtype, shared storages, non-contiguous, 0-d, empty, containers, scalars. */
function saveCase(): Record<string, unknown> {
  const base = T.sub(T.mul(T.arange(0, 24, 1, { dtype: 'float32' }), 0.5), 3).reshape(4, 6);
  const alone = T.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' });
  const od = new PyDict();
  od.ordered = true;
  od.set('b', T.tensor([1, -2], { dtype: 'int64' }));
  od.set('a', 1.5);
  return {
    f32: T.tensor([Infinity, -Infinity, NaN, -0, 1e-45, 3.25]),
    f64: T.tensor([Math.PI, -5e-324, 1e308], { dtype: 'float64' }),
    f16: T.cast(T.tensor([65504, -6e-8, 1 / 3, NaN]), 'float16'),
    bf16: T.cast(T.tensor([1, -2.5, 3.140625, Infinity]), 'bfloat16'),
    i64: T.tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]), { dtype: 'int64' }),
    i32: T.tensor([-(2 ** 31), 2 ** 31 - 1, 0], { dtype: 'int32' }),
    u8: T.tensor([0, 1, 255], { dtype: 'uint8' }),
    bool: T.tensor([1, 0, 1], { dtype: 'bool' }),
    views: { base, t: base.t(), slice: base.narrow(0, 1, 2), row: base.select(0, 3) },
    transposedAlone: alone.t(),
    scalar: T.tensor(2.5),
    empty: T.zeros([0, 3]),
    nested: [od, PyTuple.fromItems([1, 'two', null, true, 2n ** 70n]), new Set([3, 1]), new Uint8Array([0, 255])],
    text: 'ü → ✓',
  };
}

describe('savePth / serializePth', () => {
  it('our reader reads back what we wrote, sharing included', () => {
    const value = saveCase();
    const want = describeObj(value);
    const back = T.deserializePth(T.serializePth(value));
    const got = describeObj(back);
    // plain objects come back as (non-ordered) dicts
    expectSame(got, want);
    const views = (back as PyDict).get('views') as PyDict<T.Tensor>;
    expect(views.get('t')!.storage).toBe(views.get('base')!.storage);
    expect(views.get('t')!.strides).toEqual([1, 6]);
    disposeDeep(back);
  });

  it('entries are stored, 64-byte aligned, with records torch expects', () => {
    const bytes = T.serializePth({ w: T.ones([3]) });
    const src = bytesSource(bytes);
    const entries = readZipDirectory(src, 'x');
    expect(entries.map((e) => e.name)).toEqual(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/version']);
    for (const e of entries) {
      expect(e.method).toBe(0);
      const h = new DataView(bytes.buffer, bytes.byteOffset + e.localHeaderOffset, 30);
      expect((e.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true)) % 64).toBe(0);
    }
    expect(new TextDecoder().decode(readZipEntry(src, entries[3]!, 'x'))).toBe('3\n');
  });

  it('savePth writes atomically and names what it cannot write', () => {
    const p = path.join(dir, 'x.pth');
    T.savePth(p, { w: T.ones([2]) });
    expect(Object.keys(T.loadPth(p))).toEqual(['w']);
    expect(() => T.savePth(p, { w: T.ones([2]), f: () => 1 })).toThrow(/pth .*x\.pth: pickle: f: cannot write a function/);
    expect(Object.keys(T.loadPth(p))).toEqual(['w']); // the old file is intact
    const gone = T.ones([2]);
    gone.dispose();
    expect(() => T.savePth(p, { a: { b: gone } })).toThrow(/a\.b: tensor of shape \[2\] was disposed/);
  });
});

// ---- PyTorch reads our files --------------------------------------------------------------------

const TORCH_PY = '/usr/bin/python3';
const hasTorch = fs.existsSync(TORCH_PY) &&
  spawnSync(TORCH_PY, ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasTorch)('torch.load reads what savePth wrote (make_pth.py --check)', () => {
  it.each([false, true])('values, dtypes, shapes, containers and storage sharing (forceZip64 %s)', (forceZip64) => {
    const value = saveCase();
    const p = path.join(dir, `ours${forceZip64 ? '64' : ''}.pth`), j = `${p}.json`;
    T.savePth(p, value, { forceZip64 });
    fs.writeFileSync(j, JSON.stringify(describeObj(value)));
    const r = spawnSync(TORCH_PY, [SCRIPT, '--check', p, j], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('OK\n');
    expect(r.status).toBe(0);
  });
});
