/** Element types. Codes come from the addon (`native.dtypes`), never hard-coded. */
import { native } from '@vlmoe/native-cuda';

/**
 * `bfloat16` and `float16` are storage dtypes: casts to and from them, fill, matmul /
 * linear (float32 accumulation; see `autocast`) and data moves take them; other kernels
 * refuse them by name (cast to float32 first). Their `dataSync()` gives float32 values.
 */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'bool' | 'uint8' | 'bfloat16' | 'float16';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int64', 'bool', 'uint8', 'bfloat16', 'float16'];

export const dtypeCode: Record<DType, number> = {
  float32: native.dtypes.float32!,
  float64: native.dtypes.float64!,
  int32: native.dtypes.int32!,
  int64: native.dtypes.int64!,
  bool: native.dtypes.bool!,
  uint8: native.dtypes.uint8!,
  bfloat16: native.dtypes.bfloat16!,
  float16: native.dtypes.float16!,
};

export const dtypeSize: Record<DType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, bool: 1, uint8: 1, bfloat16: 2, float16: 2 };

/** Uint16Array: the raw bits of a bfloat16 / float16 storage. */
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

export function typedArrayFor(dtype: DType, buf: ArrayBuffer, byteOffset: number, length: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(buf, byteOffset, length);
    case 'float64': return new Float64Array(buf, byteOffset, length);
    case 'int32': return new Int32Array(buf, byteOffset, length);
    case 'int64': return new BigInt64Array(buf, byteOffset, length);
    case 'bool':
    case 'uint8': return new Uint8Array(buf, byteOffset, length);
    case 'bfloat16':
    case 'float16': return new Uint16Array(buf, byteOffset, length);
  }
}

/** bfloat16 / float16. */
export function isHalf(d: DType): boolean {
  return d === 'bfloat16' || d === 'float16';
}

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'bfloat16' || d === 'float16';
}

const rank: Record<DType, number> = { bool: 0, uint8: 1, int32: 2, int64: 3, bfloat16: 4, float16: 4, float32: 5, float64: 6 };

/** Result type of a binary op (PyTorch's promotion for these types: bfloat16 with float16 gives float32). */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  if (isHalf(a) && isHalf(b)) return 'float32';
  return rank[a] >= rank[b] ? a : b;
}

export function assertDType(d: string, where: string): DType {
  if (!(DTYPES as readonly string[]).includes(d)) throw new TypeError(`${where}: unknown dtype '${d}' (expected one of ${DTYPES.join(', ')})`);
  return d as DType;
}
