/**
 * Pure pixel transforms on uint8 HWC RGB images: random-resized-crop box sampling (the
 * torchvision algorithm), horizontal flip, and normalisation to float32 CHW.
 */

/** A crop box in source pixels: columns [x, x + w), rows [y, y + h). */
export interface CropBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The random numbers the crop sampler needs (an `Rng` satisfies it). */
export interface UniformSource {
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Uniform integer in [lo, hi) (hi exclusive). */
  int(lo: number, hi: number): number;
}

/** Python's `round()`: to nearest, ties to even (torchvision rounds crop sizes with it). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision `RandomResizedCrop.get_params`: up to 10 tries of
 * area = W·H·U(scale), aspect = exp(U(log ratio)), w = round(√(area·aspect)),
 * h = round(√(area/aspect)); accepted when 0 < w ≤ W and 0 < h ≤ H, then the top-left corner
 * is drawn as y = int[0, H-h], x = int[0, W-w]. Otherwise a centre crop with the aspect ratio
 * clamped to `ratio`. Random numbers are drawn in exactly that order.
 */
export function sampleResizedCropBox(rng: UniformSource, width: number, height: number, scale: readonly [number, number], ratio: readonly [number, number]): CropBox {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const y = rng.int(0, height - h + 1);
      const x = rng.int(0, width - w + 1);
      return { x, y, w, h };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), w, h };
}

/** Mirrors a uint8 HWC image left–right in place. */
export function flipHorizontalInPlace(data: Uint8Array, width: number, height: number, channels = 3): Uint8Array {
  const row = width * channels;
  for (let y = 0; y < height; y++) {
    let a = y * row;
    let b = a + row - channels;
    while (a < b) {
      for (let c = 0; c < channels; c++) {
        const t = data[a + c]!;
        data[a + c] = data[b + c]!;
        data[b + c] = t;
      }
      a += channels;
      b -= channels;
    }
  }
  return data;
}

const lutCache = new Map<string, Float32Array>();

/**
 * Per-channel lookup table: `lut[c * 256 + v] = fround((v / 255 - mean[c]) / std[c])`,
 * computed in float64 and rounded once to float32.
 */
export function normalizeLut(mean: readonly [number, number, number], std: readonly [number, number, number]): Float32Array {
  const key = `${mean.join(',')}|${std.join(',')}`;
  let lut = lutCache.get(key);
  if (!lut) {
    lut = new Float32Array(768);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - mean[c]!) / std[c]!;
    if (lutCache.size > 64) lutCache.clear();
    lutCache.set(key, lut);
  }
  return lut;
}

/**
 * uint8 HWC RGB (`size`×`size`) → float32 CHW normalised, written to `out` at element `offset`,
 * optionally mirrored left–right on the way (the flip costs nothing here).
 */
export function normalizeToChw(
  src: Uint8Array,
  width: number,
  height: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
  flip = false,
  out: Float32Array = new Float32Array(3 * width * height),
  offset = 0,
): Float32Array {
  const lut = normalizeLut(mean, std);
  const plane = width * height;
  if (out.length - offset < 3 * plane) throw new RangeError(`normalizeToChw: output has room for ${out.length - offset} values, needs ${3 * plane}`);
  if (src.length < 3 * plane) throw new RangeError(`normalizeToChw: input has ${src.length} bytes, needs ${3 * plane}`);
  let o0 = offset;
  const o1 = plane;
  const o2 = 2 * plane;
  if (!flip) {
    for (let p = 0, n = 3 * plane; p < n; p += 3, o0++) {
      out[o0] = lut[src[p]!]!;
      out[o0 + o1] = lut[256 + src[p + 1]!]!;
      out[o0 + o2] = lut[512 + src[p + 2]!]!;
    }
  } else {
    const row = 3 * width;
    for (let y = 0; y < height; y++) {
      for (let p = y * row + row - 3, end = y * row; p >= end; p -= 3, o0++) {
        out[o0] = lut[src[p]!]!;
        out[o0 + o1] = lut[256 + src[p + 1]!]!;
        out[o0 + o2] = lut[512 + src[p + 2]!]!;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bicubic resampling with Pillow's exact arithmetic (used where libvips' convention differs:
// upscaling; libvips handles every axis that shrinks).

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  /** first source index per output index */
  start: Int32Array;
  /** taps per output index */
  count: Int32Array;
  /** fixed-point weights, `taps` per output index */
  weights: Float64Array;
  taps: number;
}

const coeffCache = new Map<string, Coeffs>();

/** Pillow `precompute_coeffs` + `normalize_coeffs_8bpc` for BICUBIC (support 2, antialiased when shrinking). */
function bicubicCoeffs(inSize: number, outSize: number): Coeffs {
  const key = `${inSize}:${outSize}`;
  const hit = coeffCache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = 2 * filterscale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  const ss = 1 / filterscale;
  const tmp = new Float64Array(taps);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      tmp[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww === 0 ? 0 : tmp[x]! / ww;
      weights[xx * taps + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  const c = { start, count, weights, taps };
  if (coeffCache.size > 256) coeffCache.clear();
  coeffCache.set(key, c);
  return c;
}

function clip8fixed(ss: number): number {
  if (ss <= 0) return 0;
  if (ss >= 255 * ONE + ONE) return 255;
  const v = Math.floor(ss / ONE);
  return v > 255 ? 255 : v;
}

/**
 * Resizes uint8 HWC RGB with Pillow's BICUBIC arithmetic (fixed-point weights, horizontal pass
 * then vertical, uint8 rounding in between) — bit-identical to `Image.resize(size, BICUBIC)`.
 */
export function resizeBicubicPillow(src: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  let cur = src;
  let curW = width;
  if (outW !== width) {
    const c = bicubicCoeffs(width, outW);
    const out = new Uint8Array(height * outW * 3);
    for (let y = 0; y < height; y++) {
      const rowIn = y * width * 3;
      const rowOut = y * outW * 3;
      for (let x = 0; x < outW; x++) {
        const s = c.start[x]!;
        const n = c.count[x]!;
        const wo = x * c.taps;
        let s0 = ONE / 2;
        let s1 = ONE / 2;
        let s2 = ONE / 2;
        for (let i = 0; i < n; i++) {
          const k = c.weights[wo + i]!;
          const p = rowIn + (s + i) * 3;
          s0 += cur[p]! * k;
          s1 += cur[p + 1]! * k;
          s2 += cur[p + 2]! * k;
        }
        out[rowOut + x * 3] = clip8fixed(s0);
        out[rowOut + x * 3 + 1] = clip8fixed(s1);
        out[rowOut + x * 3 + 2] = clip8fixed(s2);
      }
    }
    cur = out;
    curW = outW;
  }
  if (outH !== height) {
    const c = bicubicCoeffs(height, outH);
    const row = curW * 3;
    const out = new Uint8Array(outH * row);
    for (let y = 0; y < outH; y++) {
      const s = c.start[y]!;
      const n = c.count[y]!;
      const wo = y * c.taps;
      const rowOut = y * row;
      for (let i = 0; i < row; i++) {
        let acc = ONE / 2;
        for (let t = 0; t < n; t++) acc += cur[(s + t) * row + i]! * c.weights[wo + t]!;
        out[rowOut + i] = clip8fixed(acc);
      }
    }
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}
