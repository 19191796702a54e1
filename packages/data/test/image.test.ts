/**
 * Image decode, transforms and RandAugment against references: Pillow (fixtures made by
 * test/fixtures/image/make_fixtures.py with /usr/bin/python3) and plain float64 JS
 * implementations written here.
 */
import { nativeImage } from '../src/image/native.js';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import {
  applyOp,
  dctScaledGeometry,
  decodeImage,
  flipHorizontalInPlace,
  ImageDecodeError,
  normalizeToChw,
  opArgument,
  probeImage,
  RAND_AUGMENT_OPS,
  randAugment,
  readHeader,
  resizeBicubicPillow,
  resizedCrop,
  resolveSpec,
  roundHalfEven,
  sampleResizedCropBox,
  transformImage,
  transformImageTraced,
  VLMO_RAND_AUGMENT_OPS,
  type RandAugmentOp,
} from '../src/image/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'fixtures', 'image');
const repoRoot = resolve(here, '..', '..', '..');
const dataRoot = resolve(repoRoot, '..', 'shared', 'data');

interface Stats { width: number; height: number; mean: [number, number, number]; samples: [number, number, [number, number, number]][] }
interface RealRef { path: string; mode: string; decode: Stats; resize224: Stats; crop: [number, number, number, number]; cropResize224: Stats }
interface Reference {
  real: Record<string, RealRef>;
  randaugment: { width: number; height: number; image: string; ops: Record<string, string> };
  rrc: { width: number; height: number; scale: [number, number]; ratio: [number, number]; u: number[]; box: { x: number; y: number; w: number; h: number } }[];
  modes: { width: number; height: number; expected: Record<string, string> };
}
const ref = JSON.parse(readFileSync(join(fixtures, 'pillow_reference.json'), 'utf8')) as Reference;
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const readData = (rel: string) => new Uint8Array(readFileSync(join(dataRoot, rel)));
const cocoJpeg = () => readData(ref.real.coco!.path);

function channelMeans(data: Uint8Array, n: number): [number, number, number] {
  const m: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) m[c] += data[i * 3 + c]!;
  return m.map((v) => v / n) as [number, number, number];
}

/** max and mean |ours − Pillow| over the sampled pixels. */
function sampleDiff(data: Uint8Array, width: number, st: Stats): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (const [x, y, v] of st.samples) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(data[(y * width + x) * 3 + c]! - v[c]!);
      max = Math.max(max, d);
      sum += d;
      n++;
    }
  }
  return { max, mean: sum / n };
}

function cropHwc(data: Uint8Array, width: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) out.set(data.subarray(((y + r) * width + x) * 3, ((y + r) * width + x + w) * 3), r * w * 3);
  return out;
}

/**
 * Plain float64 Pillow-style bicubic (a = −0.5, antialiased), horizontal then vertical, uint8
 * rounding between. `box` = Pillow's `resize(..., box=)`: a fractional source region whose
 * filter support may reach outside it (clamped to the image).
 */
function bicubicRef(src: Uint8Array, W: number, H: number, outW: number, outH: number, box: [number, number, number, number] = [0, 0, W, H]): Uint8Array {
  const cubic = (t: number) => {
    t = Math.abs(t);
    if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * -0.5;
    return 0;
  };
  const coeffs = (inSize: number, in0: number, in1: number, outSize: number) => {
    const scale = (in1 - in0) / outSize;
    const fs = Math.max(1, scale);
    return Array.from({ length: outSize }, (_, o) => {
      const center = in0 + (o + 0.5) * scale;
      const lo = Math.max(0, Math.trunc(center - 2 * fs + 0.5));
      const hi = Math.min(inSize, Math.trunc(center + 2 * fs + 0.5));
      const k: number[] = [];
      for (let i = lo; i < hi; i++) k.push(cubic((i - center + 0.5) / fs));
      const s = k.reduce((a, b) => a + b, 0);
      return { lo, k: k.map((v) => v / s) };
    });
  };
  const clamp = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  const [bx, by, bw, bh] = box;
  const ch = coeffs(W, bx, bx + bw, outW);
  const tmp = new Uint8Array(H * outW * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < outW; x++)
      for (let c = 0; c < 3; c++) {
        const { lo, k } = ch[x]!;
        tmp[(y * outW + x) * 3 + c] = clamp(k.reduce((a, w, i) => a + w * src[(y * W + lo + i) * 3 + c]!, 0));
      }
  const cv = coeffs(H, by, by + bh, outH);
  const out = new Uint8Array(outH * outW * 3);
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++)
      for (let c = 0; c < 3; c++) {
        const { lo, k } = cv[y]!;
        out[(y * outW + x) * 3 + c] = clamp(k.reduce((a, w, i) => a + w * tmp[((lo + i) * outW + x) * 3 + c]!, 0));
      }
  return out;
}

describe('decodeImage', () => {
  for (const key of ['coco', 'coco2', 'easyvqa', 'nlvr1'] as const) {
    it(`decodes ${key} (${ref.real[key]!.path}, ${ref.real[key]!.mode}) exactly like Pillow convert('RGB')`, async () => {
      const r = ref.real[key]!;
      const img = await decodeImage(readData(r.path));
      expect(img.channels).toBe(3);
      expect([img.width, img.height]).toEqual([r.decode.width, r.decode.height]);
      expect(img.data.length).toBe(img.width * img.height * 3);
      const means = channelMeans(img.data, img.width * img.height);
      for (let c = 0; c < 3; c++) expect(means[c]).toBeCloseTo(r.decode.mean[c]!, 6);
      expect(sampleDiff(img.data, img.width, r.decode).max).toBe(0);
    });
  }

  for (const name of Object.keys(ref.modes.expected)) {
    it(`decodes ${name} to 8-bit RGB`, async () => {
      const img = await decodeImage(new Uint8Array(readFileSync(join(fixtures, name))));
      expect([img.width, img.height]).toEqual([ref.modes.width, ref.modes.height]);
      expect(Buffer.from(img.data).equals(Buffer.from(b64(ref.modes.expected[name]!)))).toBe(true);
    });
  }

  it('reads JPEG and PNG sizes from the header', () => {
    expect(probeImage(cocoJpeg())).toEqual({ format: 'jpeg', width: 427, height: 640 });
    expect(probeImage(readData(ref.real.nlvr1!.path))).toEqual({ format: 'png', width: 400, height: 100 });
    expect(probeImage(new Uint8Array([1, 2, 3, 4, 5]))).toBeNull();
  });

  it('rejects corrupt input with the decoder message', async () => {
    const jpeg = cocoJpeg();
    await expect(decodeImage(jpeg.subarray(0, jpeg.length >> 1))).rejects.toThrow(/truncated JPEG/);
    await expect(decodeImage(jpeg.subarray(0, 300))).rejects.toThrow(ImageDecodeError);
    const noise = new Rng(5);
    const junk = Uint8Array.from({ length: 2000 }, () => noise.int(0, 256));
    await expect(decodeImage(junk)).rejects.toThrow(/unsupported image format/);
    const png = readData(ref.real.easyvqa!.path);
    await expect(decodeImage(png.subarray(0, png.length - 40))).rejects.toThrow(ImageDecodeError);
  });
});

describe('bicubic resize', () => {
  it('the float64 reference reproduces Pillow BICUBIC (checks the reference itself)', async () => {
    for (const key of ['coco', 'easyvqa', 'nlvr1'] as const) {
      const r = ref.real[key]!;
      const img = await decodeImage(readData(r.path));
      const out = bicubicRef(img.data, img.width, img.height, 224, 224);
      expect(sampleDiff(out, 224, r.resize224).max).toBe(0);
    }
  });

  for (const key of ['coco', 'coco2', 'easyvqa', 'nlvr1'] as const) {
    it(`resize and crop+resize of ${key} to 224 are close to Pillow BICUBIC and the reference`, async () => {
      const r = ref.real[key]!;
      const bytes = readData(r.path);
      const header = await readHeader(bytes);
      const img = await decodeImage(bytes);
      const [x, y, w, h] = r.crop;
      const cases = [
        { ours: await resizedCrop(bytes, header, null, 224), pillow: r.resize224, reference: bicubicRef(img.data, img.width, img.height, 224, 224) },
        { ours: await resizedCrop(bytes, header, { x, y, w, h }, 224), pillow: r.cropResize224, reference: bicubicRef(cropHwc(img.data, img.width, x, y, w, h), w, h, 224, 224) },
      ];
      for (const c of cases) {
        expect(c.ours.length).toBe(224 * 224 * 3);
        const d = sampleDiff(c.ours, 224, c.pillow);
        expect(d.max).toBeLessThanOrEqual(3);
        expect(d.mean).toBeLessThan(0.5);
        const means = channelMeans(c.ours, 224 * 224);
        for (let k = 0; k < 3; k++) expect(Math.abs(means[k]! - c.pillow.mean[k]!)).toBeLessThan(0.1);
        let sum = 0;
        for (let i = 0; i < c.ours.length; i++) sum += Math.abs(c.ours[i]! - c.reference[i]!);
        expect(sum / c.ours.length).toBeLessThan(0.5);
      }
    });
  }

  it('upscaled axes (done in JS with Pillow fixed-point arithmetic) are exactly Pillow', async () => {
    // easy-VQA 64x64 → 224 grows both axes; NLVR 400x100 → 224 grows the vertical one
    for (const key of ['easyvqa', 'nlvr1'] as const) {
      const r = ref.real[key]!;
      const bytes = readData(r.path);
      expect(sampleDiff(await resizedCrop(bytes, await readHeader(bytes), null, 224), 224, r.resize224).max).toBe(0);
    }
    const img = await decodeImage(readData(ref.real.easyvqa!.path));
    const [x, y, w, h] = ref.real.easyvqa!.crop;
    expect(sampleDiff(resizeBicubicPillow(cropHwc(img.data, 64, x, y, w, h), w, h, 224, 224), 224, ref.real.easyvqa!.cropResize224).max).toBe(0);
    // on noise, fixed point vs float64 differs by at most one level, rarely
    const rng = new Rng(3);
    const src = Uint8Array.from({ length: 37 * 23 * 3 }, () => rng.int(0, 256));
    for (const [ow, oh] of [[224, 224], [50, 90], [20, 60], [37, 23]] as const) {
      const a = resizeBicubicPillow(src, 37, 23, ow, oh);
      const b = bicubicRef(src, 37, 23, ow, oh);
      let off = 0;
      for (let i = 0; i < a.length; i++) {
        expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1);
        if (a[i] !== b[i]) off++;
      }
      expect(off).toBeLessThan(a.length / 50);
    }
  });
});

describe('random resized crop box', () => {
  it('equals torchvision RandomResizedCrop.get_params for the same random numbers', () => {
    expect(ref.rrc.length).toBeGreaterThan(50);
    let fallbacks = 0;
    for (const c of ref.rrc) {
      let k = 0;
      const next = () => c.u[k++]!;
      const fake = { uniform: (lo: number, hi: number) => lo + (hi - lo) * next(), int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo)) };
      const box = sampleResizedCropBox(fake, c.width, c.height, c.scale, c.ratio);
      expect(box, JSON.stringify({ w: c.width, h: c.height, scale: c.scale, ratio: c.ratio })).toEqual(c.box);
      if (k === 20) fallbacks++;
    }
    expect(fallbacks).toBeGreaterThan(0); // the centre-crop fallback is exercised
  });

  it('rounds like Python (half to even)', () => {
    expect([0.5, 1.5, 2.5, 2.4999, 2.5001, 3.5, 7].map(roundHalfEven)).toEqual([0, 2, 2, 2, 3, 4, 7]);
  });

  it('stays inside the image and within the scale/ratio bounds', () => {
    const rng = new Rng(11);
    for (let i = 0; i < 500; i++) {
      const W = rng.int(50, 900);
      const H = rng.int(50, 900);
      const b = sampleResizedCropBox(rng, W, H, [0.5, 1], [3 / 4, 4 / 3]);
      expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= W && b.y + b.h <= H && b.w > 0 && b.h > 0).toBe(true);
    }
  });
});

describe('flip and normalise', () => {
  const rng = new Rng(9);
  const W = 13;
  const H = 7;
  const src = Uint8Array.from({ length: W * H * 3 }, () => rng.int(0, 256));

  it('flip mirrors columns exactly', () => {
    const f = flipHorizontalInPlace(src.slice(), W, H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) expect(f[(y * W + x) * 3 + c]).toBe(src[(y * W + W - 1 - x) * 3 + c]);
    expect(Buffer.from(flipHorizontalInPlace(f, W, H)).equals(Buffer.from(src))).toBe(true);
  });

  it('normalise = fround((v/255 − mean)/std) in CHW order, with and without the fused flip', () => {
    const mean: [number, number, number] = [0.485, 0.456, 0.406];
    const std: [number, number, number] = [0.229, 0.224, 0.225];
    for (const flip of [false, true]) {
      const out = normalizeToChw(src, W, H, mean, std, flip);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const sx = flip ? W - 1 - x : x;
            expect(out[c * W * H + y * W + x]).toBe(Math.fround((src[(y * W + sx) * 3 + c]! / 255 - mean[c]!) / std[c]!));
          }
    }
    const big = new Float32Array(3 * W * H + 5).fill(7);
    normalizeToChw(src, W, H, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], false, big, 5);
    expect(big[4]).toBe(7);
    expect(big[5]).toBe(Math.fround(src[0]! / 255 / 0.5 - 1));
  });
});

describe('RandAugment ops', () => {
  const ra = ref.randaugment;
  const W = ra.width;
  const H = ra.height;
  const img = b64(ra.image);

  it('the synthetic image matches the generator', () => {
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) expect(img[(y * W + x) * 3 + c]).toBe(40 + ((x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 7) % 150));
  });

  for (const [name, expected] of Object.entries(ra.ops)) {
    it(`${name} equals Pillow`, () => {
      const [op, argText] = name.split(' ') as [RandAugmentOp, string | undefined];
      const out = applyOp(img, W, H, op, argText === undefined ? null : Number(argText));
      expect(Buffer.from(out).equals(Buffer.from(b64(expected)))).toBe(true);
    });
  }

  /** Bilinear warp reference: output (x, y) samples source (sx, sy) = inverse(x, y); outside = 128. */
  function warpRef(src: Uint8Array, inverse: (x: number, y: number) => [number, number]): Uint8Array {
    const out = new Uint8Array(src.length);
    const at = (x: number, y: number, c: number) => (x >= 0 && x < W && y >= 0 && y < H ? src[(y * W + x) * 3 + c]! : 128);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const [sx, sy] = inverse(x, y);
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        for (let c = 0; c < 3; c++) {
          const v = at(x0, y0, c) * (1 - fx) * (1 - fy) + at(x0 + 1, y0, c) * fx * (1 - fy) + at(x0, y0 + 1, c) * (1 - fx) * fy + at(x0 + 1, y0 + 1, c) * fx * fy;
          out[(y * W + x) * 3 + c] = Math.min(255, Math.max(0, Math.floor(v + 0.5)));
        }
      }
    return out;
  }

  function closeTo(a: Uint8Array, b: Uint8Array): void {
    let max = 0;
    let off = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      max = Math.max(max, d);
      if (d) off++;
    }
    expect(max).toBeLessThanOrEqual(1); // float rounding at exact .5 ties only
    expect(off).toBeLessThan(a.length / 100);
  }

  const geo: [RandAugmentOp, number, (x: number, y: number) => [number, number]][] = [];
  for (const deg of [-21, 9, 30]) {
    const t = (deg * Math.PI) / 180;
    // cv2.getRotationMatrix2D((W/2, H/2), deg): counter-clockwise about the centre; inverse = rotate back
    geo.push(['Rotate', deg, (x, y) => {
      const dx = x - W / 2;
      const dy = y - H / 2;
      return [W / 2 + Math.cos(t) * dx - Math.sin(t) * dy, H / 2 + Math.sin(t) * dx + Math.cos(t) * dy];
    }]);
  }
  for (const f of [-0.3, 0.21]) {
    geo.push(['ShearX', f, (x, y) => [x - f * y, y]]);
    geo.push(['ShearY', f, (x, y) => [x, y - f * x]]);
  }
  for (const o of [-7, 3.5, 10]) {
    geo.push(['TranslateX', o, (x, y) => [x + o, y]]);
    geo.push(['TranslateY', o, (x, y) => [x, y + o]]);
  }
  for (const [op, arg, inverse] of geo) {
    it(`${op} ${arg} matches the bilinear reference (grey fill)`, () => {
      closeTo(applyOp(img, W, H, op, arg), warpRef(img, inverse));
    });
  }

  it('integer translation is an exact shift with grey fill; zero-size geometry is the identity', () => {
    const t = applyOp(img, W, H, 'TranslateX', 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) expect(t[(y * W + x) * 3 + c]).toBe(x + 3 < W ? img[(y * W + x + 3) * 3 + c] : 128);
    for (const op of ['Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Identity'] as const) expect(Buffer.from(applyOp(img, W, H, op, 0)).equals(Buffer.from(img))).toBe(true);
  });

  it('magnitudes follow VLMo/BLIP level_to_args (MAX_LEVEL 10)', () => {
    const pos = { random: () => 0.25, int: () => 0 };
    const neg = { random: () => 0.75, int: () => 0 };
    expect(opArgument('Brightness', 7, pos)).toBeCloseTo(1.36, 12);
    expect(opArgument('Sharpness', 0, pos)).toBeCloseTo(0.1, 12);
    expect(opArgument('ShearX', 7, pos)).toBeCloseTo(0.21, 12);
    expect(opArgument('ShearX', 7, neg)).toBeCloseTo(-0.21, 12);
    expect(opArgument('TranslateY', 7, neg)).toBeCloseTo(-7, 12);
    expect(opArgument('Rotate', 7, pos)).toBeCloseTo(-21, 12);
    expect(opArgument('Rotate', 7, neg)).toBeCloseTo(21, 12);
    expect(opArgument('Solarize', 7, pos)).toBe(179);
    expect(opArgument('Posterize', 7, pos)).toBe(2);
    expect(opArgument('Equalize', 7, pos)).toBeNull();
  });

  it('draws ops first (with replacement), then per op a 0.5 coin and its argument', () => {
    const ops = RAND_AUGMENT_OPS;
    // scripted: choose Rotate, Posterize, ShearX; coins: apply, skip, apply; Rotate sign draw < 0.5 → negative; ShearX sign > 0.5 → negative
    const ints = [ops.indexOf('Rotate'), ops.indexOf('Posterize'), ops.indexOf('ShearX')];
    const reals = [0.1, 0.2, 0.9, 0.3, 0.8];
    const rng = { int: () => ints.shift()!, random: () => reals.shift()! };
    const { image, applied } = randAugment(img, W, H, rng, { n: 3, m: 5, ops });
    expect(applied).toEqual([{ op: 'Rotate', arg: -15 }, { op: 'ShearX', arg: -0.15 }]);
    expect(Buffer.from(image).equals(Buffer.from(applyOp(applyOp(img, W, H, 'Rotate', -15), W, H, 'ShearX', -0.15)))).toBe(true);
    expect(reals.length).toBe(0);
  });

  it('defaults to the VLMo op list and validates the spec', () => {
    expect(resolveSpec({ size: 224, train: true, randAugment: { n: 2, m: 7 } }).randAugment!.ops).toEqual(VLMO_RAND_AUGMENT_OPS);
    expect(() => resolveSpec({ size: 224, train: true, randAugment: { n: 2, m: 11 } })).toThrow(/randAugment.m/);
    expect(() => resolveSpec({ size: 224, train: true, randAugment: { n: 2, m: 5, ops: ['Cutout' as RandAugmentOp] } })).toThrow(/unknown RandAugment op/);
  });
});

describe('transformImage', () => {
  const spec = { size: 224, train: true };

  it('gives [3, size, size] float32 in [−1, 1] with the default mean = std = 0.5', async () => {
    const x = await transformImage(cocoJpeg(), spec, 1, [0, 0]);
    expect(x).toBeInstanceOf(Float32Array);
    expect(x.length).toBe(3 * 224 * 224);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
  });

  it('is deterministic: same seed + keys → bit-identical; other keys or seed → different', async () => {
    const bytes = cocoJpeg();
    const a = await transformImage(bytes, spec, 42, [3, 17, 0]);
    const b = await transformImage(bytes, spec, 42, [3, 17, 0]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const c = await transformImage(bytes, spec, 42, [3, 18, 0]);
    const d = await transformImage(bytes, spec, 43, [3, 17, 0]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    expect(Buffer.from(a.buffer).equals(Buffer.from(d.buffer))).toBe(false);
    const ra = { ...spec, randAugment: { n: 2, m: 9, ops: RAND_AUGMENT_OPS } };
    const e = await transformImage(bytes, ra, 42, [3, 17, 0]);
    const f = await transformImage(bytes, ra, 42, [3, 17, 0]);
    expect(Buffer.from(e.buffer).equals(Buffer.from(f.buffer))).toBe(true);
  });

  it('train = the RRC box and flip drawn from Rng.forKey(seed, ...keys), resized and normalised', async () => {
    const bytes = cocoJpeg();
    const s = resolveSpec(spec);
    let flips = 0;
    for (let k = 0; k < 6; k++) {
      const { image, trace } = await transformImageTraced(bytes, spec, 7, [k]);
      const rng = Rng.forKey(7, k);
      const box = sampleResizedCropBox(rng, 427, 640, s.scale, s.ratio);
      const flip = rng.random() < 0.5;
      expect(trace.box).toEqual(box);
      expect(trace.flip).toBe(flip);
      flips += flip ? 1 : 0;
      const px = await resizedCrop(bytes, await readHeader(bytes), box, 224);
      const expected = normalizeToChw(flip ? flipHorizontalInPlace(px, 224, 224) : px, 224, 224, s.mean, s.std, false);
      expect(Buffer.from(image.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(6);
  });

  it('eval = plain bicubic resize of the whole image, no randomness', async () => {
    const bytes = readData(ref.real.nlvr1!.path);
    const a = await transformImage(bytes, { size: 224, train: false }, 1, [0]);
    const b = await transformImage(bytes, { size: 224, train: false }, 2, [5]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const px = await resizedCrop(bytes, await readHeader(bytes), null, 224);
    expect(Buffer.from(a.buffer).equals(Buffer.from(normalizeToChw(px, 224, 224, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).buffer))).toBe(true);
  });

  it('RandAugment runs on the flipped crop with the same stream', async () => {
    const bytes = readData(ref.real.easyvqa!.path);
    const rspec = { size: 96, train: true, randAugment: { n: 3, m: 6, ops: RAND_AUGMENT_OPS } };
    const s = resolveSpec(rspec);
    for (let k = 0; k < 4; k++) {
      const { image, trace } = await transformImageTraced(bytes, rspec, 5, [k]);
      const rng = Rng.forKey(5, k);
      const box = sampleResizedCropBox(rng, 64, 64, s.scale, s.ratio);
      const flip = rng.random() < 0.5;
      let px = await resizedCrop(bytes, await readHeader(bytes), box, 96);
      if (flip) flipHorizontalInPlace(px, 96, 96);
      const r = randAugment(px, 96, 96, rng, s.randAugment!);
      expect(trace.ops).toEqual(r.applied);
      px = r.image;
      expect(Buffer.from(image.buffer).equals(Buffer.from(normalizeToChw(px, 96, 96, s.mean, s.std).buffer))).toBe(true);
    }
  });

  it('large JPEG crops use DCT-scaled decoding and stay close to the exact crop', async () => {
    const sharp = (await import('sharp')).default;
    const src = await decodeImage(cocoJpeg());
    const big = new Uint8Array(await sharp(src.data, { raw: { width: src.width, height: src.height, channels: 3 } }).resize(1708, 2560, { kernel: 'cubic' }).jpeg({ quality: 95 }).toBuffer());
    const header = await readHeader(big);
    const box = { x: 101, y: 333, w: 1400, h: 1900 };
    const g = dctScaledGeometry(header, box, 224);
    // the box moves by at most half an output pixel and keeps its size up to rounding
    expect(Math.abs(g.effective.x - box.x)).toBeLessThanOrEqual((0.5 * box.w) / 224 + 1e-9);
    expect(Math.abs(g.effective.y - box.y)).toBeLessThanOrEqual((0.5 * box.h) / 224 + 1e-9);
    expect(Math.abs(g.effective.w / box.w - 1)).toBeLessThan(0.01);
    expect(Math.abs(g.effective.h / box.h - 1)).toBeLessThan(0.01);
    const fast = await resizedCrop(big, header, box, 224);
    const full = await decodeImage(big);
    // the native path (libjpeg-turbo) keeps the exact box; sharp's shrink-on-load moves it to g.effective
    const e = nativeImage() ? box : g.effective;
    const exact = bicubicRef(full.data, full.width, full.height, 224, 224, [e.x, e.y, e.w, e.h]);
    let sum = 0;
    for (let i = 0; i < fast.length; i++) sum += Math.abs(fast[i]! - exact[i]!);
    expect(sum / fast.length).toBeLessThan(1);
  });
});
