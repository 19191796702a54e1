/** Shared helpers of the metrics: input checks with errors that name the argument, and Python's `round`. */

/** A numeric array: plain array or typed array. */
export type NumArray = ArrayLike<number>;

export function checkSameLength(fn: string, aName: string, a: { length: number }, bName: string, b: { length: number }): void {
  if (a.length !== b.length) throw new RangeError(`${fn}: ${aName} has ${a.length} entries but ${bName} has ${b.length}`);
}

export function checkNonEmpty(fn: string, name: string, a: { length: number }): void {
  if (a.length === 0) throw new RangeError(`${fn}: ${name} is empty`);
}

export function checkFinite(fn: string, name: string, a: NumArray): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (!Number.isFinite(v)) throw new RangeError(`${fn}: ${name}[${i}] is ${v}`);
  }
}

export function checkPositiveInt(fn: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${v}`);
}

/**
 * Python 3's `round(x, digits)` for finite doubles: the decimal with `digits` places nearest
 * to the exact binary value of `x`, ties (only possible when that value is exactly halfway)
 * to the even last digit; returned as the nearest double, as Python does.
 * (`Number.prototype.toFixed` is also correctly rounded, but breaks ties upwards.)
 */
export function pythonRound(x: number, digits = 2): number {
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return x;
  if (!Number.isInteger(digits) || digits < 0 || digits > 20) throw new RangeError(`pythonRound: digits must be an integer in [0, 20], got ${digits}`);
  const s = x.toFixed(digits); // exact value rounded to nearest, ties away from zero
  if (!isExactTie(x, digits)) return Number(s);
  // exact tie: toFixed went away from zero; go towards zero when that made the last digit odd
  const neg = s.startsWith('-');
  const digitsOnly = s.replace('-', '').replace('.', '');
  let n = BigInt(digitsOnly);
  if (n % 2n === 1n) n -= 1n;
  let t = n.toString().padStart(digits + 1, '0');
  if (digits > 0) t = `${t.slice(0, t.length - digits)}.${t.slice(t.length - digits)}`;
  const v = Number(t);
  return neg ? -v : v;
}

/** Whether |x|·10^digits has a fractional part of exactly 1/2 (exact binary arithmetic). */
function isExactTie(x: number, digits: number): boolean {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, Math.abs(x));
  const hi = buf.getUint32(0);
  const lo = buf.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e: number;
  if (exp === 0) e = -1074;
  else {
    mant |= 1n << 52n;
    e = exp - 1075;
  }
  if (mant === 0n || e >= 0) return false; // zero or an integer: never a tie
  // |x|·10^d = mant·10^d / 2^-e ; tie ⇔ 2·mant·10^d / 2^-e is an odd integer
  const num = 2n * mant * 10n ** BigInt(digits);
  const den = 1n << BigInt(-e);
  return num % den === 0n && (num / den) % 2n === 1n;
}
