/**
 * Seeded random number generation. A Generator is (seed, offset): each random op uses
 * Philox counters offset .. offset+n-1 and advances the offset, so a seed reproduces the
 * same tensors on every run, machine, thread count and device.
 */
export class Generator {
  private seedValue: number;
  private offsetValue = 0;

  constructor(seed = 0) {
    this.seedValue = Generator.checkSeed(seed);
  }

  private static checkSeed(seed: number): number {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    return seed;
  }

  manualSeed(seed: number): this {
    this.seedValue = Generator.checkSeed(seed);
    this.offsetValue = 0;
    return this;
  }

  get seed(): number {
    return this.seedValue;
  }

  get offset(): number {
    return this.offsetValue;
  }

  /** Reserves n counters and returns the first. @internal */
  take(n: number): number {
    const o = this.offsetValue;
    this.offsetValue += n;
    return o;
  }

  getState(): { seed: number; offset: number } {
    return { seed: this.seedValue, offset: this.offsetValue };
  }

  setState(s: { seed: number; offset: number }): void {
    if (!Number.isSafeInteger(s.offset) || s.offset < 0) throw new RangeError(`offset must be a non-negative safe integer, got ${s.offset}`);
    this.seedValue = Generator.checkSeed(s.seed);
    this.offsetValue = s.offset;
  }
}

/** The default generator used when an op is given none. */
export const defaultGenerator = new Generator(0);

/** Seeds the default generator (like torch.manual_seed). */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}
