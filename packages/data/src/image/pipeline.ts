/** The per-image pipeline: decode → (random resized) crop + bicubic resize → flip → RandAugment → normalise. */
import { Rng } from '../rng.js';
import { readHeader, resizedCrop } from './decode.js';
import { randAugment, type AppliedOp } from './randaugment.js';
import { resolveSpec, type ImageTransformSpec, type ResolvedSpec } from './spec.js';
import { flipHorizontalInPlace, normalizeToChw, sampleResizedCropBox, type CropBox } from './transforms.js';

/** The random choices made for one image (for tests and debugging). */
export interface TransformTrace {
  width: number;
  height: number;
  box: CropBox;
  flip: boolean;
  ops: AppliedOp[];
}

/** Everything random about one image, drawn from `Rng.forKey(seed, ...keys)` in a fixed order: crop box, flip, RandAugment. */
export function samplePlan(spec: ResolvedSpec, width: number, height: number, rng: Rng): { box: CropBox; flip: boolean } {
  if (!spec.train) return { box: { x: 0, y: 0, w: width, h: height }, flip: false };
  const box = sampleResizedCropBox(rng, width, height, spec.scale, spec.ratio);
  const flip = rng.random() < spec.hflip;
  return { box, flip };
}

/**
 * Runs the pipeline for one encoded image and writes `[3, size, size]` float32 CHW into `out`
 * at element `offset`. Randomness comes only from `Rng.forKey(seed, ...keys)`.
 */
export async function transformInto(
  bytes: Uint8Array,
  spec: ResolvedSpec,
  seed: number,
  keys: readonly number[],
  out: Float32Array,
  offset = 0,
): Promise<TransformTrace> {
  const rng = Rng.forKey(seed, ...keys);
  const header = await readHeader(bytes);
  const { box, flip } = samplePlan(spec, header.width, header.height, rng);
  const size = spec.size;
  let pixels = await resizedCrop(bytes, header, box, size);
  let ops: AppliedOp[] = [];
  let flipInNormalize = flip;
  if (spec.train && spec.randAugment && spec.randAugment.n > 0) {
    if (flip) flipHorizontalInPlace(pixels, size, size);
    flipInNormalize = false;
    const r = randAugment(pixels, size, size, rng, spec.randAugment);
    pixels = r.image;
    ops = r.applied;
  }
  normalizeToChw(pixels, size, size, spec.mean, spec.std, flipInNormalize, out, offset);
  return { width: header.width, height: header.height, box, flip, ops };
}

/**
 * One image → `[3, size, size]` float32 CHW, normalised with `spec.mean`/`spec.std`.
 * Bit-identical for the same bytes, spec, seed and keys (on any thread).
 */
export async function transformImage(bytes: Uint8Array, spec: ImageTransformSpec, seed: number, keys: readonly number[] = []): Promise<Float32Array> {
  const s = resolveSpec(spec);
  const out = new Float32Array(3 * s.size * s.size);
  await transformInto(bytes, s, seed, keys, out, 0);
  return out;
}

/** Like {@link transformImage}, also returning the random choices made. */
export async function transformImageTraced(bytes: Uint8Array, spec: ImageTransformSpec, seed: number, keys: readonly number[] = []): Promise<{ image: Float32Array; trace: TransformTrace }> {
  const s = resolveSpec(spec);
  const image = new Float32Array(3 * s.size * s.size);
  const trace = await transformInto(bytes, s, seed, keys, image, 0);
  return { image, trace };
}
