/**
 * # Images: decode, augment, normalise — in a pool of worker threads
 *
 * ```ts
 * import { ImagePool, transformImage, decodeImage } from '@vlmoe/data';
 *
 * const spec = { size: 224, train: true };           // RRC(0.5–1) + flip, mean = std = 0.5
 * const x = await transformImage(jpegBytes, spec, seed, [epoch, row]); // Float32Array [3, 224, 224]
 *
 * const pool = new ImagePool({ spec, seed, numWorkers: 2, onError: 'skip' });
 * const batch = await pool.run(jobs);                // jobs: { bytes, keys, source? }[] → (Float32Array | null)[]
 * console.log(pool.skipReport());
 * await pool.close();
 * ```
 *
 * **Decoding** (`decodeImage(bytes)` → `{ data, height, width, channels: 3 }`, uint8 HWC RGB)
 * uses sharp/libvips and matches Pillow's `Image.open(f).convert('RGB')`: JPEG and PNG
 * (grey, grey+alpha, palette, RGBA, 16-bit → 8-bit RGB; also WebP/GIF/TIFF/AVIF), EXIF
 * orientation and ICC profiles ignored, alpha dropped. A truncated JPEG (no end-of-image
 * marker) is an error whatever part of it a crop would need.
 *
 * **Transform** (`transformImage(bytes, spec, seed, keys?)` → `Float32Array` `[3, size, size]`),
 * with `ImageTransformSpec`:
 * - `size` (224): output height = width.
 * - `train`: true → random resized crop (`scale` [0.5, 1] of the area, `ratio` [3/4, 4/3];
 *   torchvision's sampling algorithm, including its 10 tries and centre-crop fallback), then a
 *   horizontal flip with probability `hflip` (0.5), then RandAugment when `randAugment` is set;
 *   false → plain bicubic resize of the whole image to size×size (ViLT/VLMo eval: squash, no crop).
 * - Resizing is one libvips pipeline per image (crop + bicubic Catmull-Rom resize,
 *   antialiased when shrinking, like Pillow's BICUBIC); big JPEGs are decoded at 1/2–1/8 scale
 *   (libjpeg DCT scaling) when that still leaves at least the output resolution.
 * - `randAugment: { n, m, ops? }` (default null): VLMo's `RandomAugment(n, m)` — `n` ops drawn with
 *   replacement, each applied with probability 0.5 at magnitude `m` ∈ [0, 10]; ops from
 *   {@link RAND_AUGMENT_OPS} (Identity, AutoContrast, Equalize, Brightness, Contrast, Sharpness,
 *   Posterize, Solarize, Rotate, TranslateX/Y, ShearX/Y), default VLMo's list
 *   {@link VLMO_RAND_AUGMENT_OPS}. Runs on the uint8 size×size crop (after the flip).
 * - `mean`, `std` ([0.5, 0.5, 0.5] each): output = fround((v / 255 − mean) / std), planar CHW.
 * - Randomness comes only from `Rng.forKey(seed, ...keys)` (drawn in the order crop, flip,
 *   RandAugment), so the same bytes + spec + seed + keys give bit-identical output on any thread
 *   or worker, in any order. Use keys such as `[epoch, row, imageSlot]`.
 *
 * **Pool** (`new ImagePool({ spec, seed, numWorkers?, onError?, jobsPerWorker? })`):
 * - `numWorkers` defaults to min(4, cores); 0 runs everything in the calling thread.
 * - `run(jobs)` resolves to results in job order; any number of runs may be in flight (a loader
 *   prefetches by keeping several); their jobs share one FIFO queue and each worker holds
 *   `jobsPerWorker` (2) jobs so it never waits for the next message.
 * - `runInto(jobs, out, offset?)` writes image i at `out[offset + i·3·size·size]`; with a
 *   SharedArrayBuffer-backed `out` the workers write straight into it. Resolves to ok flags.
 * - `onError: 'throw'` (default): the run rejects with
 *   `image pool: cannot decode <source>: <decoder message>` (`<source>` is the job's `source`, else
 *   `job <index>`) once none of its jobs is still in a worker (so nothing writes into a runInto
 *   buffer after the rejection); its queued jobs are dropped and the pool stays usable.
 *   `'skip'`: the image is null (zeros for runInto), `skipped.count` / `skipped.examples` (first
 *   10 messages) / `skipReport()` report it. A worker that dies fails its in-flight jobs'
 *   runs and is replaced.
 * - Job bytes are copied (tight) to the worker, never detached; results come back as transferred
 *   ArrayBuffers (no copy).
 * - `close()` terminates the workers; idle workers are unref'd, so an idle pool never keeps the
 *   process alive.
 * - Workers run compiled JavaScript: the worker script is `./worker.js` next to the pool module,
 *   or, when running from TypeScript sources (vitest), the package's `dist/image/worker.js` — so
 *   build the package (`npm run build`) before using a pool with workers from sources.
 *
 * Lower-level pieces are exported for tests and tools: `resizedCrop`, `probeImage`,
 * `sampleResizedCropBox`, `normalizeToChw`, `flipHorizontalInPlace`, the RandAugment ops, and
 * `transformImageTraced` (returns the crop box, flip and ops applied).
 */
export { decodeImage, probeImage, readHeader, resizedCrop, dctScaledGeometry, ImageDecodeError, type DecodedImage, type ImageHeader } from './decode.js';
export {
  resolveSpec,
  RAND_AUGMENT_OPS,
  VLMO_RAND_AUGMENT_OPS,
  type ImageTransformSpec,
  type RandAugmentOp,
  type RandAugmentSpec,
  type ResolvedSpec,
} from './spec.js';
export { sampleResizedCropBox, roundHalfEven, flipHorizontalInPlace, normalizeToChw, normalizeLut, resizeBicubicPillow, type CropBox, type UniformSource } from './transforms.js';
export {
  randAugment,
  applyOp,
  opArgument,
  autoContrast,
  equalize,
  brightness,
  contrast,
  sharpness,
  smooth,
  posterize,
  solarize,
  rotate,
  shearX,
  shearY,
  translateX,
  translateY,
  warpAffine,
  invertAffine,
  rotationMatrix,
  MAX_LEVEL,
  type AppliedOp,
} from './randaugment.js';
export { transformImage, transformImageTraced, transformInto, samplePlan, type TransformTrace } from './pipeline.js';
export { ImagePool, resolveWorkerScript, type ImageJob, type ImagePoolOptions } from './pool.js';
