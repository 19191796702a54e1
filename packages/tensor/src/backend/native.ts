/**
 * Writers for the addon's argument block. A kernel call writes its numbers into
 * `argBlock` (shared Float64Array) and passes only small integer codes; see
 * packages/native-cuda/src/args.h for the layout each entry point reads.
 */
import { argBlock } from '@vlmoe/native-cuda';
import type { Tensor } from '../tensor.js';

export const A = argBlock;

/** Writes an iteration space: ndim, shape, then per operand handle, offset, strides. */
export function writeIter(shape: readonly number[], ops: readonly { handle: number; offset: number; strides: readonly number[] }[], at = 0): number {
  const nd = shape.length;
  let i = at;
  A[i++] = nd;
  for (let d = 0; d < nd; ++d) A[i++] = shape[d]!;
  for (const o of ops) {
    A[i++] = o.handle;
    A[i++] = o.offset;
    for (let d = 0; d < nd; ++d) A[i++] = o.strides[d]!;
  }
  return i;
}

/** Operand of a tensor broadcast to `shape` (stride 0 on broadcast dims). */
export function operand(t: Tensor, shape: readonly number[]): { handle: number; offset: number; strides: number[] } {
  const nd = shape.length;
  const off = nd - t.shape.length;
  const strides = new Array<number>(nd);
  for (let d = 0; d < nd; ++d) {
    const td = d - off;
    strides[d] = td < 0 || t.shape[td] === 1 ? 0 : t.strides[td]!;
  }
  return { handle: t.storage.handle, offset: t.offset, strides };
}

export function writeTensorIter(shape: readonly number[], ts: readonly Tensor[], at = 0): number {
  if (shape.length > 12) return writeTensorIterSqueezed(shape, ts, at);
  const nd = shape.length;
  let i = at;
  A[i++] = nd;
  for (let d = 0; d < nd; ++d) A[i++] = shape[d]!;
  for (const t of ts) {
    A[i++] = t.storage.handle;
    A[i++] = t.offset;
    const off = nd - t.shape.length;
    if (off === 0 && t.shape === shape) {
      for (let d = 0; d < nd; ++d) A[i++] = t.strides[d]!;
    } else {
      for (let d = 0; d < nd; ++d) {
        const td = d - off;
        A[i++] = td < 0 || t.shape[td] === 1 ? 0 : t.strides[td]!;
      }
    }
  }
  return i;
}

/** The native side takes at most 12 dims: size-1 dims carry no iteration, so drop them. */
function writeTensorIterSqueezed(shape: readonly number[], ts: readonly Tensor[], at: number): number {
  const keep: number[] = [];
  for (let d = 0; d < shape.length; ++d) if (shape[d] !== 1) keep.push(d);
  if (keep.length > 12) throw new Error(`elementwise ops support at most 12 dims of size > 1, got shape [${shape.join(', ')}]`);
  return writeIter(keep.map((d) => shape[d]!), ts.map((t) => {
    const o = operand(t, shape);
    return { handle: o.handle, offset: o.offset, strides: keep.map((d) => o.strides[d]!) };
  }), at);
}

/** Writes a tensor operand (storage handle, element offset) at slot i; null writes nothing. */
export function put(i: number, t: Tensor | null | undefined): number {
  if (!t) return i;
  A[i] = t.storage.handle;
  A[i + 1] = t.offset;
  return i + 2;
}

/** Writes rows and cols of x seen as contiguous rows of its last dim; returns the next slot. */
export function rowHeader(x: Tensor): number {
  const cols = x.shape[x.shape.length - 1] ?? 1;
  A[0] = cols === 0 ? 0 : x.numel / cols;
  A[1] = cols;
  return 2;
}
