/**
 * RandAugment on uint8 HWC RGB images, with the semantics of VLMo's `RandomAugment`
 * (the ALBEF/BLIP `randaugment.py`): `n` ops are drawn with replacement from the op list,
 * each is applied with probability 0.5 at magnitude `m` out of MAX_LEVEL = 10:
 *
 * | op | argument from m |
 * |---|---|
 * | Brightness, Contrast, Sharpness | factor = m/10 · 1.8 + 0.1 |
 * | ShearX/Y | ±m/10 · 0.3 (sign: random() > 0.5 → negative) |
 * | TranslateX/Y | ±m/10 · 10 px (sign: random() > 0.5 → negative) |
 * | Rotate | ±m/10 · 30° (sign: random() < 0.5 → negative) |
 * | Solarize | threshold ⌊m/10 · 256⌋ |
 * | Posterize | keep ⌊m/10 · 4⌋ bits |
 * | Identity, AutoContrast, Equalize | — |
 *
 * The colour ops reproduce Pillow (ImageOps.autocontrast/equalize/posterize/solarize and
 * ImageEnhance.Brightness/Contrast/Sharpness, including Pillow's float32 blend arithmetic);
 * the geometric ops are cv2.warpAffine-style bilinear warps about the image centre (W/2, H/2)
 * with grey (128) fill, computed in float64 (cv2 itself quantises to 1/32 px).
 */
import type { RandAugmentOp } from './spec.js';

export const MAX_LEVEL = 10;
const FILL = 128;

export interface RandAugmentRng {
  random(): number;
  int(lo: number, hi: number): number;
}

const fr = Math.fround;

function applyLut3(img: Uint8Array, lut: Uint8Array, perChannel: boolean): Uint8Array {
  const out = new Uint8Array(img.length);
  if (perChannel) {
    for (let p = 0; p < img.length; p += 3) {
      out[p] = lut[img[p]!]!;
      out[p + 1] = lut[256 + img[p + 1]!]!;
      out[p + 2] = lut[512 + img[p + 2]!]!;
    }
  } else {
    for (let p = 0; p < img.length; p++) out[p] = lut[img[p]!]!;
  }
  return out;
}

function histograms(img: Uint8Array): Int32Array {
  const h = new Int32Array(768);
  for (let p = 0; p < img.length; p += 3) {
    h[img[p]!]!++;
    h[256 + img[p + 1]!]!++;
    h[512 + img[p + 2]!]!++;
  }
  return h;
}

/** Pillow `ImageOps.autocontrast(img)` (cutoff 0): per channel, stretch [min, max] to [0, 255]. */
export function autoContrast(img: Uint8Array): Uint8Array {
  const hist = histograms(img);
  const lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const h = hist.subarray(c * 256, c * 256 + 256);
    let lo = 0;
    while (lo < 256 && h[lo] === 0) lo++;
    let hi = 255;
    while (hi >= 0 && h[hi] === 0) hi--;
    for (let v = 0; v < 256; v++) {
      if (hi <= lo) lut[c * 256 + v] = v;
      else {
        const scale = 255 / (hi - lo);
        const ix = Math.trunc(v * scale + -lo * scale);
        lut[c * 256 + v] = ix < 0 ? 0 : ix > 255 ? 255 : ix;
      }
    }
  }
  return applyLut3(img, lut, true);
}

/** Pillow `ImageOps.equalize(img)`: per-channel histogram equalisation. */
export function equalize(img: Uint8Array): Uint8Array {
  const hist = histograms(img);
  const lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const h = hist.subarray(c * 256, c * 256 + 256);
    let total = 0;
    let last = 0;
    let nonZero = 0;
    for (let v = 0; v < 256; v++) if (h[v]! > 0) { total += h[v]!; last = h[v]!; nonZero++; }
    const step = nonZero <= 1 ? 0 : Math.floor((total - last) / 255);
    if (step === 0) {
      for (let v = 0; v < 256; v++) lut[c * 256 + v] = v;
      continue;
    }
    let n = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      const q = Math.floor(n / step);
      lut[c * 256 + v] = q > 255 ? 255 : q;
      n += h[v]!;
    }
  }
  return applyLut3(img, lut, true);
}

/** Pillow `Image.blend(degenerate, img, factor)` per byte: float32 arithmetic, truncate, clip. */
function blendValue(d: number, v: number, alpha32: number): number {
  const t = fr(d + fr(alpha32 * (v - d)));
  return t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
}

/** Pillow `ImageEnhance.Brightness(img).enhance(factor)`: blend with black. */
export function brightness(img: Uint8Array, factor: number): Uint8Array {
  const a = fr(factor);
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = blendValue(0, v, a);
  return applyLut3(img, lut, false);
}

/** Pillow `ImageEnhance.Contrast(img).enhance(factor)`: blend with the rounded mean of the L (luma) image. */
export function contrast(img: Uint8Array, factor: number): Uint8Array {
  let sum = 0;
  const n = img.length / 3;
  for (let p = 0; p < img.length; p += 3) sum += (img[p]! * 19595 + img[p + 1]! * 38470 + img[p + 2]! * 7471 + 0x8000) >>> 16;
  const mean = Math.trunc(sum / n + 0.5);
  const a = fr(factor);
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = blendValue(mean, v, a);
  return applyLut3(img, lut, false);
}

const K1 = fr(1 / 13);
const K5 = fr(5 / 13);

/**
 * Pillow `ImageFilter.SMOOTH` ([[1,1,1],[1,5,1],[1,1,1]] / 13, float32, rounded), border
 * pixels copied — the degenerate image of `ImageEnhance.Sharpness`.
 */
export function smooth(img: Uint8Array, width: number, height: number): Uint8Array {
  const out = img.slice();
  if (width < 3 || height < 3) return out;
  const row = width * 3;
  for (let y = 1; y < height - 1; y++) {
    const r0 = (y + 1) * row;
    const r1 = y * row;
    const r2 = (y - 1) * row;
    for (let x = 1; x < width - 1; x++) {
      for (let c = 0; c < 3; c++) {
        const i = x * 3 + c;
        let ss = 0.5;
        ss = fr(ss + fr(fr(fr(img[r0 + i - 3]! * K1) + fr(img[r0 + i]! * K1)) + fr(img[r0 + i + 3]! * K1)));
        ss = fr(ss + fr(fr(fr(img[r1 + i - 3]! * K1) + fr(img[r1 + i]! * K5)) + fr(img[r1 + i + 3]! * K1)));
        ss = fr(ss + fr(fr(fr(img[r2 + i - 3]! * K1) + fr(img[r2 + i]! * K1)) + fr(img[r2 + i + 3]! * K1)));
        out[r1 + i] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss);
      }
    }
  }
  return out;
}

/** Pillow `ImageEnhance.Sharpness(img).enhance(factor)`: blend with the SMOOTH-filtered image. */
export function sharpness(img: Uint8Array, width: number, height: number, factor: number): Uint8Array {
  const deg = smooth(img, width, height);
  const a = fr(factor);
  const out = new Uint8Array(img.length);
  for (let p = 0; p < img.length; p++) out[p] = blendValue(deg[p]!, img[p]!, a);
  return out;
}

/** Pillow `ImageOps.posterize(img, bits)`: keep the top `bits` bits. */
export function posterize(img: Uint8Array, bits: number): Uint8Array {
  const mask = (0xff << (8 - bits)) & 0xff;
  const out = new Uint8Array(img.length);
  for (let p = 0; p < img.length; p++) out[p] = img[p]! & mask;
  return out;
}

/** Pillow `ImageOps.solarize(img, threshold)`: invert values ≥ threshold. */
export function solarize(img: Uint8Array, threshold: number): Uint8Array {
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v < threshold ? v : 255 - v;
  return applyLut3(img, lut, false);
}

/**
 * Affine warp with bilinear sampling: output pixel (x, y) samples the source at
 * (a·x + b·y + c, d·x + e·y + f) (pixel centres at integer coordinates); source pixels outside
 * the image read as `fill`; results rounded half up.
 */
export function warpAffine(img: Uint8Array, width: number, height: number, inv: readonly [number, number, number, number, number, number], fill = FILL): Uint8Array {
  const [a, b, c, d, e, f] = inv;
  const out = new Uint8Array(img.length);
  const row = width * 3;
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++, o += 3) {
      const sx = a * x + b * y + c;
      const sy = d * x + e * y + f;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const in00 = x0 >= 0 && x0 < width && y0 >= 0 && y0 < height;
      const in01 = x0 + 1 >= 0 && x0 + 1 < width && y0 >= 0 && y0 < height;
      const in10 = x0 >= 0 && x0 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const in11 = x0 + 1 >= 0 && x0 + 1 < width && y0 + 1 >= 0 && y0 + 1 < height;
      const p00 = y0 * row + x0 * 3;
      for (let ch = 0; ch < 3; ch++) {
        const v00 = in00 ? img[p00 + ch]! : fill;
        const v01 = in01 ? img[p00 + 3 + ch]! : fill;
        const v10 = in10 ? img[p00 + row + ch]! : fill;
        const v11 = in11 ? img[p00 + row + 3 + ch]! : fill;
        const v = Math.floor(v00 * w00 + v01 * w01 + v10 * w10 + v11 * w11 + 0.5);
        out[o + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/** Inverse of the forward 2×3 affine map [[m0, m1, m2], [m3, m4, m5]]. */
export function invertAffine(m: readonly [number, number, number, number, number, number]): [number, number, number, number, number, number] {
  const [m0, m1, m2, m3, m4, m5] = m;
  const det = m0 * m4 - m1 * m3;
  const a = m4 / det;
  const b = -m1 / det;
  const d = -m3 / det;
  const e = m0 / det;
  return [a, b, -(a * m2 + b * m5), d, e, -(d * m2 + e * m5)];
}

/** cv2.getRotationMatrix2D((W/2, H/2), degrees, 1) — positive degrees rotate counter-clockwise. */
export function rotationMatrix(width: number, height: number, degrees: number): [number, number, number, number, number, number] {
  const t = (degrees * Math.PI) / 180;
  const al = Math.cos(t);
  const be = Math.sin(t);
  const cx = width / 2;
  const cy = height / 2;
  return [al, be, (1 - al) * cx - be * cy, -be, al, be * cx + (1 - al) * cy];
}

export function rotate(img: Uint8Array, width: number, height: number, degrees: number): Uint8Array {
  return warpAffine(img, width, height, invertAffine(rotationMatrix(width, height, degrees)));
}
/** Forward map x' = x + factor·y. */
export function shearX(img: Uint8Array, width: number, height: number, factor: number): Uint8Array {
  return warpAffine(img, width, height, invertAffine([1, factor, 0, 0, 1, 0]));
}
/** Forward map y' = y + factor·x. */
export function shearY(img: Uint8Array, width: number, height: number, factor: number): Uint8Array {
  return warpAffine(img, width, height, invertAffine([1, 0, 0, factor, 1, 0]));
}
/** Forward map x' = x − offset (the content moves left for offset > 0, as in BLIP). */
export function translateX(img: Uint8Array, width: number, height: number, offset: number): Uint8Array {
  return warpAffine(img, width, height, invertAffine([1, 0, -offset, 0, 1, 0]));
}
/** Forward map y' = y − offset. */
export function translateY(img: Uint8Array, width: number, height: number, offset: number): Uint8Array {
  return warpAffine(img, width, height, invertAffine([1, 0, 0, 0, 1, -offset]));
}

/** One op with its argument already resolved (what `randAugment` applied; for logging/tests). */
export interface AppliedOp {
  op: RandAugmentOp;
  arg: number | null;
}

/** Draws the argument for `op` at magnitude `m` (consuming sign draws as BLIP does). */
export function opArgument(op: RandAugmentOp, m: number, rng: RandAugmentRng): number | null {
  const level = m / MAX_LEVEL;
  switch (op) {
    case 'Brightness':
    case 'Contrast':
    case 'Sharpness':
      return level * 1.8 + 0.1;
    case 'ShearX':
    case 'ShearY': {
      const v = level * 0.3;
      return rng.random() > 0.5 ? -v : v;
    }
    case 'TranslateX':
    case 'TranslateY': {
      const v = level * 10;
      return rng.random() > 0.5 ? -v : v;
    }
    case 'Rotate': {
      const v = level * 30;
      return rng.random() < 0.5 ? -v : v;
    }
    case 'Solarize':
      return Math.trunc(level * 256);
    case 'Posterize':
      return Math.trunc(level * 4);
    default:
      return null;
  }
}

/** Applies one op with a resolved argument. */
export function applyOp(img: Uint8Array, width: number, height: number, op: RandAugmentOp, arg: number | null): Uint8Array {
  switch (op) {
    case 'Identity':
      return img;
    case 'AutoContrast':
      return autoContrast(img);
    case 'Equalize':
      return equalize(img);
    case 'Brightness':
      return brightness(img, arg!);
    case 'Contrast':
      return contrast(img, arg!);
    case 'Sharpness':
      return sharpness(img, width, height, arg!);
    case 'Posterize':
      return posterize(img, arg!);
    case 'Solarize':
      return solarize(img, arg!);
    case 'Rotate':
      return rotate(img, width, height, arg!);
    case 'ShearX':
      return shearX(img, width, height, arg!);
    case 'ShearY':
      return shearY(img, width, height, arg!);
    case 'TranslateX':
      return translateX(img, width, height, arg!);
    case 'TranslateY':
      return translateY(img, width, height, arg!);
  }
}

/**
 * RandAugment: draws `n` ops (with replacement) from `ops`, then for each one skips it when
 * random() > 0.5, else draws its argument and applies it. Returns the (possibly new) image and
 * the ops applied. `img` is uint8 HWC RGB, width×height.
 */
export function randAugment(
  img: Uint8Array,
  width: number,
  height: number,
  rng: RandAugmentRng,
  spec: { n: number; m: number; ops: readonly RandAugmentOp[] },
): { image: Uint8Array; applied: AppliedOp[] } {
  const chosen: RandAugmentOp[] = [];
  for (let i = 0; i < spec.n; i++) chosen.push(spec.ops[rng.int(0, spec.ops.length)]!);
  const applied: AppliedOp[] = [];
  let out = img;
  for (const op of chosen) {
    if (rng.random() > 0.5) continue;
    const arg = opArgument(op, spec.m, rng);
    out = applyOp(out, width, height, op, arg);
    applied.push({ op, arg });
  }
  return { image: out, applied };
}
