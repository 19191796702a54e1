/**
 * The order in which a rank visits samples in an epoch: a seeded permutation of all samples
 * (the same on every rank), padded by wrapping around to a multiple of `worldSize` unless
 * `dropLast`, then every `worldSize`-th sample from `rank` — torch's `DistributedSampler`.
 */
import { Rng } from '../rng.js';
import { checkShard } from '../arrow/reader.js';

export interface SamplerOptions {
  numSamples: number;
  shuffle?: boolean;
  seed?: number;
  rank?: number;
  worldSize?: number;
  /** Drop the tail that does not divide evenly among ranks instead of padding it (default false). */
  dropLast?: boolean;
}

export class DistributedSampler {
  readonly numSamples: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly dropLast: boolean;

  constructor(options: SamplerOptions) {
    if (!(Number.isInteger(options.numSamples) && options.numSamples >= 0)) throw new RangeError(`DistributedSampler: numSamples must be an integer ≥ 0, got ${options.numSamples}`);
    const { rank, worldSize } = checkShard(options, 'DistributedSampler');
    this.numSamples = options.numSamples;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    this.rank = rank;
    this.worldSize = worldSize;
    this.dropLast = options.dropLast ?? false;
  }

  /** Samples this rank sees per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.numSamples / this.worldSize) : Math.ceil(this.numSamples / this.worldSize);
  }

  /** This rank's sample indices for `epoch`. */
  indices(epoch: number): Int32Array {
    const n = this.numSamples;
    const order = this.shuffle ? Rng.forKey(this.seed, 0x5a3b1e, epoch).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const per = this.length;
    const out = new Int32Array(per);
    for (let k = 0; k < per; k++) out[k] = order[(this.rank + k * this.worldSize) % Math.max(n, 1)]!;
    return out;
  }
}
