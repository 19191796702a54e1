/**
 * safetensors files (https://github.com/huggingface/safetensors), byte-compatible with the
 * reference writer: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}`
 * padded with spaces to a multiple of 8, then the tensors' raw little-endian row-major
 * bytes, back to back (offsets count from the start of that data section). Tensors are laid
 * out like the reference writer lays them out: by descending dtype alignment, then by name,
 * so every tensor's data is aligned to its element size.
 *
 * Reading validates everything (header length, UTF-8, JSON, dtypes, shapes, offsets: in
 * range, no overlaps, no gaps, size = numel × itemsize) and names the file and the tensor
 * in every error. F16/BF16 load as float32 (exactly), I16/I8 as int32, BOOL as bool.
 * Writing can store float32 tensors as BF16 or F16 (round to nearest, ties to even).
 * `saveFile` replaces the target atomically (@vlmoe/util's writeFileAtomicSync).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { native } from '@vlmoe/native-cuda';
import type { DType } from '../dtype.js';
import { emptyTensor } from '../ops/creation.js';
import { Tensor, fmtShape } from '../tensor.js';
import { writeFileAtomic, writeFileAtomicSync } from '@vlmoe/util';


/** dtype strings of the safetensors format that this library reads and writes. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** What a tensor may be stored as: its own dtype or a narrower one (see `SerializeOptions.dtypes`). */
export type StorageDType = DType | 'bfloat16' | 'float16' | 'int16' | 'int8';

export interface SerializeOptions {
  /** The header's `__metadata__` (string to string, like the reference). */
  metadata?: Record<string, string>;
  /**
   * Per tensor name, the dtype to store it as. Allowed: float32 → bfloat16 | float16
   * (round to nearest even), float64 → float32, int32 → int16 | int8 (range-checked), and
   * every dtype as itself (the default).
   */
  dtypes?: Record<string, StorageDType>;
}

export interface DeserializeOptions {
  /** Device of the loaded tensors ('cpu' by default). */
  device?: string;
  /** Name used in error messages (loadFile passes the path). */
  source?: string;
}

export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  /** Sorted by offset. */
  tensors: SafetensorsEntry[];
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
}

/** An invalid file or an invalid request, naming the file (or 'serialize') and the tensor. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly source: string,
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`safetensors ${source}${tensor === undefined ? '' : `: tensor '${tensor}'`}: ${detail}`);
  }
}

/** The reference reader refuses headers over 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;

const ITEMSIZE: Record<SafetensorsDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const ST_DTYPES = Object.keys(ITEMSIZE) as SafetensorsDType[];

const ST_OF: Record<StorageDType, SafetensorsDType> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

/** The tensor dtype each stored dtype loads as. */
const LOADS_AS: Record<SafetensorsDType, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float32', BF16: 'float32', I64: 'int64', I32: 'int32', I16: 'int32', I8: 'int32', U8: 'uint8', BOOL: 'bool',
};

/** Storage dtypes each tensor dtype may be written as. */
const CONVERSIONS: Record<DType, readonly StorageDType[]> = {
  float32: ['float32', 'bfloat16', 'float16'],
  float64: ['float64', 'float32'],
  int32: ['int32', 'int16', 'int8'],
  int64: ['int64'],
  uint8: ['uint8'],
  bool: ['bool'],
  bfloat16: ['bfloat16', 'float32'],
  float16: ['float16', 'float32'],
};

/**
 * The reference writer's order: descending position in its `Dtype` enum (which lists dtypes
 * by increasing alignment: BOOL, U8, I8, I16, F16, BF16, I32, F32, F64, I64), then by name.
 */
const WRITE_RANK: Record<SafetensorsDType, number> = { I64: 0, F64: 1, F32: 2, I32: 3, BF16: 4, F16: 5, I16: 6, I8: 7, U8: 8, BOOL: 9 };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---- float16 / bfloat16 ----------------------------------------------------------------------

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** float32 → bfloat16 bits, rounding to nearest, ties to even; NaN stays NaN (quiet, sign kept). */
export function float32ToBfloat16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const u = u32View(src);
  for (let i = 0; i < u.length; ++i) {
    const f = u[i]!;
    if ((f & 0x7fffffff) > 0x7f800000) out[i] = (f >>> 16) | 0x0040;
    // f + 0x7fff + lsb stays below 2^32 for every non-NaN f (at most 0xff807fff)
    else out[i] = (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bits → float32 (exact). */
export function bfloat16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const u = u32View(out);
  for (let i = 0; i < src.length; ++i) u[i] = src[i]! << 16;
  return out;
}

/**
 * float32 → IEEE binary16 bits, rounding to nearest, ties to even: values from 65520 up
 * become ±inf, tiny values become subnormals or ±0, NaN stays NaN (quiet, sign and top
 * payload bits kept).
 */
export function float32ToFloat16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const u = u32View(src);
  for (let i = 0; i < u.length; ++i) {
    const f = u[i]!;
    const sign = (f >>> 16) & 0x8000;
    const exp = (f >>> 23) & 0xff;
    const mant = f & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
      continue;
    }
    const e = exp - 112; // rebias 127 → 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e >= 1) {
      let h = sign | (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry rolls into the exponent (up to inf): still right
      out[i] = h;
    } else if (e >= -10) {
      // subnormal half: value = m × 2^-24 with m = full mantissa >> (14 - e)
      const full = mant | 0x800000;
      const shift = 14 - e; // 14 ..= 24
      let m = full >>> shift;
      const rem = full & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (m & 1) !== 0)) m++; // m may reach 0x400: the smallest normal, correctly
      out[i] = sign | m;
    } else {
      out[i] = sign; // below half the smallest subnormal (float32 subnormals included): ±0
    }
  }
  return out;
}

let f16Table: Float32Array | undefined;

/** All 65536 float16 values as float32 (exact), built on first use. */
function float16Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const u = u32View(t);
  for (let h = 0; h < 65536; ++h) {
    const s = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) u[h] = (s | 0x7f800000 | (m << 13)) >>> 0;
    else if (e !== 0) u[h] = (s | ((e + 112) << 23) | (m << 13)) >>> 0;
    else t[h] = (s ? -m : m) * 2 ** -24; // zero or subnormal (exact in float32)
  }
  return (f16Table = t);
}

/** IEEE binary16 bits → float32 (exact). */
export function float16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = float16Table();
  for (let i = 0; i < src.length; ++i) out[i] = t[src[i]!]!;
  return out;
}

// ---- bytes -----------------------------------------------------------------------------------

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A copy of `b` with every `size`-byte element reversed (for big-endian hosts). */
function swapped(b: Uint8Array, size: number): Uint8Array {
  const out = b.slice();
  if (size > 1) for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  return out;
}

/** Host-order bytes of little-endian `raw`, at an offset aligned for `size`-byte elements. */
function hostAligned(raw: Uint8Array, size: number): Uint8Array {
  if (!LITTLE_ENDIAN) return swapped(raw, size);
  return raw.byteOffset % size === 0 ? raw : raw.slice();
}

/** Little-endian bytes of host-order `b`. */
function toLittleEndian(b: Uint8Array, size: number): Uint8Array {
  return LITTLE_ENDIAN ? b : swapped(b, size);
}

/** Byte-wise comparison of UTF-8 encodings (Rust's String ordering, used by the reference). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function fmtRange(r: readonly [number, number]): string {
  return `[${r[0]}, ${r[1]}]`;
}

// ---- writing ---------------------------------------------------------------------------------

interface PlannedTensor {
  name: string;
  tensor: Tensor;
  st: SafetensorsDType;
  begin: number;
  end: number;
}

interface Plan {
  /** The 8-byte length plus the padded JSON header. */
  head: Uint8Array;
  entries: PlannedTensor[];
  dataBytes: number;
}

function plan(tensors: Record<string, Tensor>, opts: SerializeOptions, source: string): Plan {
  if (tensors === null || typeof tensors !== 'object') throw new SafetensorsError(source, undefined, `expected a record of tensors, got ${tensors === null ? 'null' : typeof tensors}`);
  const metadata = opts.metadata;
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') throw new SafetensorsError(source, undefined, 'metadata must be a record of strings');
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new SafetensorsError(source, undefined, `metadata '${k}' must be a string, got ${typeof v} (the format stores string → string only)`);
  }
  const dtypes = opts.dtypes ?? {};
  for (const k of Object.keys(dtypes))
    if (!Object.hasOwn(tensors, k)) throw new SafetensorsError(source, k, `dtypes names a tensor that is not being saved`);

  const entries: PlannedTensor[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SafetensorsError(source, name, `'__metadata__' is reserved by the format for metadata`);
    if (!(t instanceof Tensor)) throw new SafetensorsError(source, name, `expected a Tensor, got ${t === null ? 'null' : typeof t}`);
    if (t.disposed) throw new SafetensorsError(source, name, `tensor of shape ${fmtShape(t.shape)} was disposed`);
    const want = Object.hasOwn(dtypes, name) ? dtypes[name]! : t.dtype;
    if (!CONVERSIONS[t.dtype].includes(want))
      throw new SafetensorsError(source, name, `cannot store a ${t.dtype} tensor as ${want} (allowed: ${CONVERSIONS[t.dtype].join(', ')})`);
    entries.push({ name, tensor: t, st: ST_OF[want], begin: 0, end: 0 });
  }
  entries.sort((a, b) => WRITE_RANK[a.st] - WRITE_RANK[b.st] || compareUtf8(a.name, b.name));

  let offset = 0;
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const e of entries) {
    e.begin = offset;
    e.end = offset += e.tensor.numel * ITEMSIZE[e.st];
    parts.push(`${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.st, shape: e.tensor.shape, data_offsets: [e.begin, e.end] })}`);
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, entries, dataBytes: offset };
}

/** The little-endian bytes of one planned tensor (a view of its memory when nothing needs converting). */
function encode(e: PlannedTensor, source: string): Uint8Array {
  const t = e.tensor;
  // a view for contiguous CPU tensors, else a contiguous copy (non-contiguous, CUDA); half
  // precision as float32 values (re-rounding them to bfloat16 / float16 is exact)
  const src = t.dtype === 'bfloat16' || t.dtype === 'float16' ? t.dataSync() : t.data();
  const expected = e.end - e.begin;
  let out: Uint8Array;
  switch (e.st) {
    case 'BF16':
    case 'F16': {
      const h = e.st === 'BF16' ? float32ToBfloat16(src as Float32Array) : float32ToFloat16(src as Float32Array);
      out = toLittleEndian(bytesOf(h), 2);
      break;
    }
    case 'F32':
      out = toLittleEndian(bytesOf(t.dtype === 'float64' ? Float32Array.from(src as Float64Array) : src), 4);
      break;
    case 'I16':
    case 'I8': {
      const [lo, hi, Arr] = e.st === 'I16' ? [-32768, 32767, Int16Array] as const : [-128, 127, Int8Array] as const;
      const s = src as Int32Array;
      const n = new Arr(s.length);
      for (let i = 0; i < s.length; ++i) {
        const v = s[i]!;
        if (v < lo || v > hi) throw new SafetensorsError(source, e.name, `element ${i} (${v}) does not fit ${e.st === 'I16' ? 'int16' : 'int8'} [${lo}, ${hi}]`);
        n[i] = v;
      }
      out = toLittleEndian(bytesOf(n), ITEMSIZE[e.st]);
      break;
    }
    default:
      out = toLittleEndian(bytesOf(src), ITEMSIZE[e.st]);
  }
  if (out.byteLength !== expected) throw new SafetensorsError(source, e.name, `internal error: ${out.byteLength} bytes encoded, ${expected} planned`);
  return out;
}

/**
 * The safetensors bytes of `tensors` (any device, any layout: CUDA and non-contiguous
 * tensors are copied). Layout and header match the reference writer byte for byte.
 */
export function serialize(tensors: Record<string, Tensor>, opts: SerializeOptions = {}): Uint8Array {
  const p = plan(tensors, opts, 'serialize');
  const out = new Uint8Array(p.head.length + p.dataBytes);
  out.set(p.head);
  for (const e of p.entries) out.set(encode(e, 'serialize'), p.head.length + e.begin);
  return out;
}

/**
 * Writes `tensors` to `path` atomically: a temporary file beside it is written tensor by
 * tensor, fsynced and renamed over `path`, then the directory is fsynced. On any error the
 * previous file is untouched and the temporary file is removed.
 */
export function saveFile(path: string, tensors: Record<string, Tensor>, opts: SerializeOptions = {}): void {
  const p = plan(tensors, opts, path);
  writeFileAtomicSync(path, (write) => {
    write(p.head);
    for (const e of p.entries) write(encode(e, path));
  });
}

/** Async twin of saveFile (same atomicity). */
export async function saveFileAsync(path: string, tensors: Record<string, Tensor>, opts: SerializeOptions = {}): Promise<void> {
  const p = plan(tensors, opts, path);
  await writeFileAtomic(path, async (write) => {
    await write(p.head);
    for (const e of p.entries) await write(encode(e, path));
  });
}

// ---- reading ---------------------------------------------------------------------------------

function isRecord(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function isSize(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Length N of the JSON header from the first 8 bytes, checked against the limit and the file size. */
function headerLength(first8: Uint8Array, fileLength: number, source: string): number {
  if (fileLength < 8) throw new SafetensorsError(source, undefined, `file is truncated: ${fileLength} bytes, but a safetensors file starts with an 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(source, undefined, `header length ${n} is over the 100 MB limit (not a safetensors file, or a corrupt one)`);
  if (8 + Number(n) > fileLength)
    throw new SafetensorsError(source, undefined, `header length ${n} runs past the end of the file (${fileLength} bytes): the file is truncated or not a safetensors file`);
  return Number(n);
}

/**
 * Parses and validates the header. `bytes` must hold at least the first 8 + N bytes of a
 * file of `fileLength` bytes (default: all of it is in `bytes`).
 */
export function readSafetensorsHeader(bytes: Uint8Array, opts: { source?: string; fileLength?: number } = {}): SafetensorsHeader {
  const source = opts.source ?? '<bytes>';
  if (!(bytes instanceof Uint8Array)) throw new SafetensorsError(source, undefined, 'expected a Uint8Array of file bytes');
  const fileLength = opts.fileLength ?? bytes.length;
  const n = headerLength(bytes.subarray(0, 8), fileLength, source);
  if (bytes.length < 8 + n) throw new SafetensorsError(source, undefined, `only ${bytes.length} bytes given, the header needs ${8 + n}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError(source, undefined, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(source, undefined, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) throw new SafetensorsError(source, undefined, 'header must be a JSON object');

  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(info)) throw new SafetensorsError(source, undefined, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new SafetensorsError(source, undefined, `__metadata__ '${k}' must be a string, got ${JSON.stringify(v)}`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const bad = (detail: string) => new SafetensorsError(source, name, detail);
    if (!isRecord(info)) throw bad('entry must be an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEMSIZE, dtype))
      throw bad(`unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${ST_DTYPES.join(', ')})`);
    if (!Array.isArray(shape) || !shape.every(isSize)) throw bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSize)) throw bad(`data_offsets must be [begin, end] (non-negative integers), got ${JSON.stringify(offs)}`);
    const [begin, end] = offs as [number, number];
    if (end < begin) throw bad(`data_offsets ${fmtRange([begin, end])} end before they begin`);
    const st = dtype as SafetensorsDType;
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const nbytes = numel * ITEMSIZE[st];
    if (!Number.isSafeInteger(nbytes)) throw bad(`shape ${fmtShape(shape as number[])} is too large`);
    if (nbytes !== end - begin)
      throw bad(`shape ${fmtShape(shape as number[])} × ${ITEMSIZE[st]} bytes (${st}) = ${nbytes} bytes, but data_offsets ${fmtRange([begin, end])} hold ${end - begin}`);
    entries.push({ name, dtype: st, shape: (shape as number[]).slice(), dataOffsets: [begin, end] });
  }

  const dataLength = fileLength - 8 - n;
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  for (const e of entries)
    if (e.dataOffsets[1] > dataLength)
      throw new SafetensorsError(source, e.name, `data_offsets ${fmtRange(e.dataOffsets)} run past the end of the data section (${dataLength} bytes): the file is truncated`);
  let pos = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin < pos) throw new SafetensorsError(source, e.name, `data_offsets ${fmtRange(e.dataOffsets)} overlap tensor '${prev!.name}' ${fmtRange(prev!.dataOffsets)}`);
    if (begin > pos)
      throw new SafetensorsError(source, e.name, `data_offsets ${fmtRange(e.dataOffsets)} leave a gap of ${begin - pos} bytes ${prev ? `after tensor '${prev.name}'` : 'at the start of the data section'}`);
    pos = end;
    prev = e;
  }
  if (pos !== dataLength)
    throw new SafetensorsError(source, undefined, `${dataLength - pos} bytes after the last tensor are not described by the header (corrupt header or trailing data)`);
  return { metadata, tensors: entries, dataStart: 8 + n };
}

/** One tensor from its stored little-endian bytes (exactly the entry's byte range). */
function decode(raw: Uint8Array, e: SafetensorsEntry, device: string): Tensor {
  const t = emptyTensor(e.shape, { dtype: LOADS_AS[e.dtype], device });
  if (raw.length === 0) return t;
  try {
    let host: ArrayBufferView;
    switch (e.dtype) {
      case 'F16':
      case 'BF16': {
        const a = hostAligned(raw, 2);
        const u = new Uint16Array(a.buffer, a.byteOffset, a.length / 2);
        host = e.dtype === 'F16' ? float16ToFloat32(u) : bfloat16ToFloat32(u);
        break;
      }
      case 'I16': {
        const a = hostAligned(raw, 2);
        host = Int32Array.from(new Int16Array(a.buffer, a.byteOffset, a.length / 2));
        break;
      }
      case 'I8':
        host = Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.length));
        break;
      case 'BOOL':
        // the kernels need 0/1 bytes; any non-zero byte means true
        host = raw.every((b) => b <= 1) ? raw : raw.map((b) => (b !== 0 ? 1 : 0));
        break;
      default:
        host = LITTLE_ENDIAN ? raw : swapped(raw, ITEMSIZE[e.dtype]);
    }
    native.write(t.storage.handle, 0, host);
  } catch (err) {
    t.dispose();
    throw err;
  }
  return t;
}

function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  // defineProperty, so a tensor named '__proto__' is an ordinary entry
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Loads every tensor, disposing the ones already made if a later one fails. */
function loadAll(h: SafetensorsHeader, bytesOfEntry: (e: SafetensorsEntry) => Uint8Array, device: string): SafetensorsContents {
  const tensors: Record<string, Tensor> = {};
  const made: Tensor[] = [];
  try {
    for (const e of h.tensors) {
      const t = decode(bytesOfEntry(e), e, device);
      made.push(t);
      setOwn(tensors, e.name, t);
    }
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
  return { tensors, metadata: h.metadata };
}

/** Tensors and metadata from safetensors bytes (validated; see readSafetensorsHeader). */
export function deserialize(bytes: Uint8Array, opts: DeserializeOptions = {}): SafetensorsContents {
  const h = readSafetensorsHeader(bytes, { source: opts.source });
  const data = bytes.subarray(h.dataStart);
  return loadAll(h, (e) => data.subarray(e.dataOffsets[0], e.dataOffsets[1]), opts.device ?? 'cpu');
}

function readFully(fd: number, length: number, position: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const k = fs.readSync(fd, buf, done, length - done, position + done);
    if (k === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += k;
  }
  return buf;
}

/**
 * Loads a safetensors file, reading the header first and then one tensor at a time (so
 * peak host memory is the largest tensor, and files over 2 GB work).
 */
export function loadFile(path: string, opts: Omit<DeserializeOptions, 'source'> = {}): SafetensorsContents {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const first = readFully(fd, Math.min(8, size), 0);
    const n = headerLength(first, size, path);
    const head = new Uint8Array(8 + n);
    head.set(first);
    head.set(readFully(fd, n, 8), 8);
    const h = readSafetensorsHeader(head, { source: path, fileLength: size });
    return loadAll(h, (e) => readFully(fd, e.dataOffsets[1] - e.dataOffsets[0], h.dataStart + e.dataOffsets[0]), opts.device ?? 'cpu');
  } finally {
    fs.closeSync(fd);
  }
}

/** Async twin of loadFile: reads the file without blocking, then builds the tensors. */
export async function loadFileAsync(path: string, opts: Omit<DeserializeOptions, 'source'> = {}): Promise<SafetensorsContents> {
  const bytes = await fsp.readFile(path);
  return deserialize(bytes, { ...opts, source: path });
}
