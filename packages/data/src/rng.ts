/**
 * Seeded pseudo-random numbers for data pipelines.
 *
 * `Rng` is a small counter-free generator (SplitMix64 seeding into xoshiro128**), so the
 * same seed gives the same sequence on every machine, thread and worker. `Rng.forKey(seed,
 * ...keys)` derives an independent stream from a seed and integer keys (epoch, sample index,
 * augmentation slot...), which is how data pipelines stay deterministic no matter which
 * worker processes which sample, or in which order.
 */

const MASK64 = (1n << 64n) - 1n;

function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

function checkInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v)) throw new TypeError(`Rng: ${name} must be a safe integer, got ${v}`);
}

/** Mix a seed and integer keys into one 64-bit state (order-sensitive). */
export function mixSeed(seed: number, ...keys: number[]): bigint {
  checkInt('seed', seed);
  let state = BigInt.asUintN(64, BigInt(seed));
  let out: bigint;
  [state, out] = splitmix64(state);
  for (let i = 0; i < keys.length; i++) {
    checkInt(`key ${i}`, keys[i]!);
    [state, out] = splitmix64((out ^ BigInt.asUintN(64, BigInt(keys[i]!))) & MASK64);
  }
  return out!;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number | bigint = 0) {
    let state = typeof seed === 'bigint' ? BigInt.asUintN(64, seed) : (checkInt('seed', seed), BigInt.asUintN(64, BigInt(seed)));
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      let z: bigint;
      [state, z] = splitmix64(state);
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** An independent stream for `(seed, ...keys)`, e.g. `Rng.forKey(seed, epoch, index)`. */
  static forKey(seed: number, ...keys: number[]): Rng {
    return new Rng(mixSeed(seed, ...keys));
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Uniform integer in [lo, hi) (hi exclusive), unbiased. */
  int(lo: number, hi: number): number {
    const span = hi - lo;
    if (!(span > 0) || !Number.isSafeInteger(span)) throw new RangeError(`Rng.int: empty or invalid range [${lo}, ${hi})`);
    if (span <= 0x100000000) {
      const limit = 0x100000000 - (0x100000000 % span);
      let x: number;
      do x = this.nextU32();
      while (x >= limit);
      return lo + (x % span);
    }
    return lo + Math.floor(this.random() * span);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** One element of a non-empty array. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.choice: empty array');
    return items[this.int(0, items.length)]!;
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[] | Int32Array | Uint32Array | Float64Array): typeof items {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t as never;
    }
    return items;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
