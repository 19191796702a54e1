/** Image transform specification, its defaults and validation. */

/** RandAugment operation names (VLMo/ALBEF/BLIP `RandomAugment` semantics, see randaugment.ts). */
export type RandAugmentOp =
  | 'Identity'
  | 'AutoContrast'
  | 'Equalize'
  | 'Brightness'
  | 'Contrast'
  | 'Sharpness'
  | 'Posterize'
  | 'Solarize'
  | 'Rotate'
  | 'TranslateX'
  | 'TranslateY'
  | 'ShearX'
  | 'ShearY';

export const RAND_AUGMENT_OPS: readonly RandAugmentOp[] = [
  'Identity', 'AutoContrast', 'Equalize', 'Brightness', 'Contrast', 'Sharpness', 'Posterize', 'Solarize',
  'Rotate', 'TranslateX', 'TranslateY', 'ShearX', 'ShearY',
];

/** The op list VLMo trains with: `RandomAugment(2, 7, isPIL=True, augs=[...])`. */
export const VLMO_RAND_AUGMENT_OPS: readonly RandAugmentOp[] = [
  'Identity', 'AutoContrast', 'Equalize', 'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate',
];

export interface RandAugmentSpec {
  /** Number of ops drawn (with replacement) per image; each is applied with probability 0.5. */
  n: number;
  /** Magnitude in [0, 10] (MAX_LEVEL = 10). VLMo uses n = 2, m = 7. */
  m: number;
  /** Ops to draw from (default: VLMo's list, {@link VLMO_RAND_AUGMENT_OPS}). */
  ops?: readonly RandAugmentOp[];
}

export interface ImageTransformSpec {
  /** Output height = width (default 224). */
  size: number;
  /** true: random resized crop + horizontal flip (+ RandAugment when set); false: plain bicubic resize to size×size. */
  train: boolean;
  /** Random-resized-crop area scale (default [0.5, 1]). */
  scale?: [number, number];
  /** Random-resized-crop aspect ratio w/h (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Horizontal flip probability (default 0.5; train only). */
  hflip?: number;
  /** RandAugment on the cropped uint8 image (default null = off; train only). */
  randAugment?: RandAugmentSpec | null;
  /** Per-channel mean (default [0.5, 0.5, 0.5]) on the [0, 1] scale. */
  mean?: [number, number, number];
  /** Per-channel std (default [0.5, 0.5, 0.5]) on the [0, 1] scale. */
  std?: [number, number, number];
}

export interface ResolvedSpec {
  size: number;
  train: boolean;
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  randAugment: { n: number; m: number; ops: readonly RandAugmentOp[] } | null;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Fills defaults and validates; throws a RangeError/TypeError that names the bad field. */
export function resolveSpec(spec: Partial<ImageTransformSpec> & { train?: boolean }): ResolvedSpec {
  const size = spec.size ?? 224;
  if (!Number.isInteger(size) || size < 1 || size > 16384) throw new RangeError(`image spec: size must be an integer in [1, 16384], got ${size}`);
  const scale = spec.scale ?? [0.5, 1];
  if (!(scale[0] > 0 && scale[0] <= scale[1])) throw new RangeError(`image spec: scale must satisfy 0 < scale[0] <= scale[1], got [${scale}]`);
  const ratio = spec.ratio ?? [3 / 4, 4 / 3];
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1])) throw new RangeError(`image spec: ratio must satisfy 0 < ratio[0] <= ratio[1], got [${ratio}]`);
  const hflip = spec.hflip ?? 0.5;
  if (!(hflip >= 0 && hflip <= 1)) throw new RangeError(`image spec: hflip must be a probability, got ${hflip}`);
  const mean = spec.mean ?? [0.5, 0.5, 0.5];
  const std = spec.std ?? [0.5, 0.5, 0.5];
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0))) throw new RangeError(`image spec: mean/std must have 3 entries and std > 0`);
  let randAugment: ResolvedSpec['randAugment'] = null;
  if (spec.randAugment) {
    const { n, m } = spec.randAugment;
    const ops = spec.randAugment.ops ?? VLMO_RAND_AUGMENT_OPS;
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`image spec: randAugment.n must be an integer >= 0, got ${n}`);
    if (!(m >= 0 && m <= 10)) throw new RangeError(`image spec: randAugment.m must be in [0, 10], got ${m}`);
    if (ops.length === 0) throw new RangeError('image spec: randAugment.ops is empty');
    for (const op of ops) if (!RAND_AUGMENT_OPS.includes(op)) throw new RangeError(`image spec: unknown RandAugment op '${op}' (known: ${RAND_AUGMENT_OPS.join(', ')})`);
    randAugment = { n, m, ops: [...ops] };
  }
  return {
    size,
    train: spec.train ?? false,
    scale: [scale[0], scale[1]],
    ratio: [ratio[0], ratio[1]],
    hflip,
    randAugment,
    mean: [mean[0], mean[1], mean[2]],
    std: [std[0], std[1], std[2]],
  };
}
