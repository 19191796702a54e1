/**
 * Mixed precision, after torch.autocast: inside `autocast('bfloat16', fn)` (or 'float16')
 * every float32 matrix product — matmul, mm, bmm, linear, forward and the backward run in the
 * same scope — rounds its operands to the half dtype and multiplies them with float32
 * accumulation into a float32 result (cuBLAS GemmEx on CUDA). Everything else stays float32:
 * parameters (the master weights), activations, reductions, softmax, layer norm. The
 * training engine's `bf16` / `fp16` config keys run forward and backward in this scope.
 */
export type AutocastDType = 'bfloat16' | 'float16';

let current: AutocastDType | null = null;

/** Runs fn with float32 matrix products in `dtype` (null: full precision); scopes nest. */
export function autocast<R>(dtype: AutocastDType | null, fn: () => R): R {
  if (dtype !== null && dtype !== 'bfloat16' && dtype !== 'float16') throw new TypeError(`autocast: dtype must be 'bfloat16', 'float16' or null, got '${String(dtype)}'`);
  const prev = current;
  current = dtype;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** The dtype float32 products use now (null outside autocast). */
export function autocastDType(): AutocastDType | null {
  return current;
}
