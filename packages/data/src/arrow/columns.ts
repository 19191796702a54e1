/**
 * Direct, allocation-light accessors over the Arrow `Data` of one record batch column.
 *
 * `binaryAt` returns a view of the batch's own buffer (zero-copy); strings decode once per
 * access. All accessors handle 32-bit and 64-bit offsets (`string`/`large_string`,
 * `binary`/`large_binary`, `list`/`large_list`), the view layouts (`string_view`,
 * `binary_view`, as Polars writes), slice offsets and null bitmaps (a null
 * value reads as `null`, a null list as `[]`). A Hugging Face image struct
 * (`struct<bytes, path>`, see `isImageStruct`) reads as its bytes.
 */
import type { Data, Struct } from 'apache-arrow';
import { Type } from 'apache-arrow';
import { isImageStruct } from './schemas.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

type Offsets = Int32Array | BigInt64Array;

function offsetsOf(d: Data): Offsets {
  return d.valueOffsets as unknown as Offsets;
}

function off(o: Offsets, i: number): number {
  return typeof o[i] === 'bigint' ? Number(o[i]) : (o[i] as number);
}

export function isNull(d: Data, i: number): boolean {
  if (d.nullCount === 0 || !d.nullBitmap || d.nullBitmap.length === 0) return false;
  const j = d.offset + i;
  return ((d.nullBitmap[j >> 3]! >> (j & 7)) & 1) === 0;
}

/** [start, end) of value `i` in the child/values buffer. */
export function rangeAt(d: Data, i: number): [number, number] {
  const o = offsetsOf(d);
  const j = d.offset + i;
  return [off(o, j), off(o, j + 1)];
}

/** Bytes of a `binary_view`/`string_view` value (16-byte view: inline ≤ 12 bytes, else buffer index + offset). */
function viewBytesAt(d: Data, i: number): Uint8Array {
  const views = d.values as Uint8Array;
  const at = (d.offset + i) * 16;
  if (at + 16 > views.length) throw new RangeError(`view buffer too short for element ${i}`);
  const dv = new DataView(views.buffer, views.byteOffset + at, 16);
  const size = dv.getInt32(0, true);
  if (size <= 0) return views.subarray(at, at);
  if (size <= 12) return views.subarray(at + 4, at + 4 + size);
  const buf = (d as unknown as { variadicBuffers?: Uint8Array[] }).variadicBuffers?.[dv.getInt32(8, true)];
  if (!buf) throw new RangeError(`view data buffer ${dv.getInt32(8, true)} missing`);
  const offset = dv.getInt32(12, true);
  return buf.subarray(offset, offset + size);
}

/** The child column `name` of a struct column, or null. */
function structChild(d: Data, name: string): Data | null {
  const k = (d.type as Struct).children.findIndex((f) => f.name === name);
  return k < 0 ? null : (d.children[k] ?? null);
}

/** Bytes of a binary value (or of an image struct's `bytes`): a view of the batch buffer, not a copy. */
export function binaryAt(d: Data, i: number): Uint8Array | null {
  if (isNull(d, i)) return null;
  if (d.typeId === Type.Struct) {
    const bytes = structChild(d, 'bytes');
    if (!bytes) throw new TypeError(`a struct without a 'bytes' field is not an image`);
    return binaryAt(bytes, i);
  }
  if (d.typeId === Type.BinaryView || d.typeId === Type.Utf8View) return viewBytesAt(d, i);
  const [s, e] = rangeAt(d, i);
  return (d.values as Uint8Array).subarray(s, e);
}

/** The `path` of a Hugging Face image struct value (null when absent or not such a struct). */
export function imagePathAt(d: Data, i: number): string | null {
  if (d.typeId !== Type.Struct || isNull(d, i)) return null;
  const path = structChild(d, 'path');
  return path ? stringAt(path, i) : null;
}

export function stringAt(d: Data, i: number): string | null {
  const b = binaryAt(d, i);
  return b === null ? null : utf8.decode(b);
}

/** An integer (int8..int64) as a JS number; int64 beyond 2^53 throws. */
export function intAt(d: Data, i: number): number | null {
  if (isNull(d, i)) return null;
  const v = (d.values as ArrayLike<number | bigint>)[d.offset + i]!;
  if (typeof v === 'bigint') {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new RangeError(`int64 value ${v} does not fit a JS number`);
    return n;
  }
  return v;
}

export function floatAt(d: Data, i: number): number | null {
  if (isNull(d, i)) return null;
  return (d.values as Float64Array | Float32Array)[d.offset + i]!;
}

/** Read element `i` of any supported type: strings, bytes, ints, floats and (nested) lists of them. */
export function valueAt(d: Data, i: number): unknown {
  switch (d.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Utf8View:
      return stringAt(d, i);
    case Type.Binary:
    case Type.LargeBinary:
    case Type.BinaryView:
      return binaryAt(d, i);
    case Type.Int:
      return intAt(d, i);
    case Type.Float:
      return floatAt(d, i);
    case Type.Bool: {
      if (isNull(d, i)) return null;
      const j = d.offset + i;
      return (((d.values as Uint8Array)[j >> 3]! >> (j & 7)) & 1) === 1;
    }
    case Type.Struct: {
      if (isImageStruct(d.type)) return binaryAt(d, i);
      if (isNull(d, i)) return null;
      const out: Record<string, unknown> = {};
      (d.type as Struct).children.forEach((f, k) => (out[f.name] = valueAt(d.children[k]!, i)));
      return out;
    }
    case Type.List:
    case Type.LargeList: {
      if (isNull(d, i)) return [];
      const [s, e] = rangeAt(d, i);
      const child = d.children[0]!;
      const out: unknown[] = new Array(e - s);
      for (let k = s; k < e; k++) out[k - s] = valueAt(child, k);
      return out;
    }
    default:
      throw new TypeError(`unsupported Arrow type ${String(d.type)}`);
  }
}

/** Number of elements of list value `i` (0 for null). */
export function listLengthAt(d: Data, i: number): number {
  if (isNull(d, i)) return 0;
  const [s, e] = rangeAt(d, i);
  return e - s;
}
