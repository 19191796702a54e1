/**
 * Decoding with sharp (libvips): JPEG/PNG (and whatever else libvips reads) → uint8 HWC RGB,
 * optionally cropped and bicubic-resized in the same libvips pipeline.
 *
 * Conventions (chosen to match Pillow's `Image.open(f).convert('RGB')`, which torchvision uses):
 * EXIF orientation is ignored, embedded ICC profiles are ignored, alpha is dropped (not
 * composited), grey is replicated to RGB, 16-bit samples keep their high byte.
 */
import { nativeImage } from './native.js';
import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { resizeBicubicPillow, type CropBox } from './transforms.js';

export interface DecodedImage {
  /** HWC RGB, `height * width * 3` bytes. */
  data: Uint8Array;
  height: number;
  width: number;
  channels: 3;
}

/** What the header says, read without decoding. */
export interface ImageHeader {
  format: 'jpeg' | 'png' | 'other';
  width: number;
  height: number;
}

/** An image that cannot be decoded; `message` is the decoder's. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
}

/** sharp input options used everywhere (see the file comment). */
export const SHARP_INPUT = { failOn: 'error', ignoreIcc: true, sequentialRead: true, autoOrient: false } as const;

function u16be(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}
function u32be(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) >>> 0) + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!);
}

/**
 * Reads the size from a JPEG (SOFn segment) or PNG (IHDR) header in a few microseconds;
 * null for other formats. Throws ImageDecodeError for a JPEG with no end-of-image marker after
 * its scan data (a truncated file — libvips would only notice when a crop reaches the missing
 * rows, so the error would depend on the random crop).
 */
export function probeImage(bytes: Uint8Array): ImageHeader | null {
  const n = bytes.length;
  if (n >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 && u32be(bytes, 12) === 0x49484452) {
    const width = u32be(bytes, 16);
    const height = u32be(bytes, 20);
    return width > 0 && height > 0 ? { format: 'png', width, height } : null;
  }
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let i = 2;
  let width = 0;
  let height = 0;
  let sawScan = false;
  while (i + 4 <= n) {
    if (bytes[i] !== 0xff) return null; // not a marker: let libvips decide
    const marker = bytes[i + 1]!;
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { i += 2; continue; }
    if (marker === 0xd9) return null; // EOI before any scan: let libvips report it
    const len = u16be(bytes, i + 2);
    if (len < 2) return null;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > n) break;
      height = u16be(bytes, i + 5);
      width = u16be(bytes, i + 7);
    }
    if (marker === 0xda) {
      // start of scan: the entropy-coded data follows; a complete file ends with FFD9 after it
      let j = n - 2;
      while (j > i && !(bytes[j] === 0xff && bytes[j + 1] === 0xd9)) j--;
      if (j <= i) throw new ImageDecodeError('truncated JPEG: no end-of-image marker after the scan data');
      sawScan = true;
      break;
    }
    i += 2 + len;
  }
  if (!sawScan) throw new ImageDecodeError('truncated JPEG: the file ends before the image data');
  return width > 0 && height > 0 ? { format: 'jpeg', width, height } : null;
}

/** Image size and format: the JS header parser, else libvips' header reader. */
export async function readHeader(bytes: Uint8Array): Promise<ImageHeader> {
  const h = probeImage(bytes);
  if (h) return h;
  const meta = await sharp(bytes, SHARP_INPUT).metadata();
  if (!meta.width || !meta.height) throw new ImageDecodeError('image has no size');
  return { format: meta.format === 'jpeg' ? 'jpeg' : meta.format === 'png' ? 'png' : 'other', width: meta.width, height: meta.height };
}

/** Converts a raw libvips result with 1–4 channels to tight RGB. */
function toRgb(data: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  if (channels === 3) return data;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i * channels]!;
  } else {
    for (let i = 0; i < n; i++) {
      out[3 * i] = data[i * channels]!;
      out[3 * i + 1] = data[i * channels + 1]!;
      out[3 * i + 2] = data[i * channels + 2]!;
    }
  }
  return out;
}

async function run(pipeline: Sharp): Promise<{ data: Uint8Array; width: number; height: number }> {
  let res: { data: Buffer; info: OutputInfo };
  try {
    res = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageDecodeError((e as Error).message.trim());
  }
  const { data, info } = res;
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { data: toRgb(view, info.width, info.height, info.channels), width: info.width, height: info.height };
}

/** Decodes JPEG/PNG (grey, alpha, palette, 16-bit → 8-bit RGB) to uint8 HWC RGB. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  probeImage(bytes); // truncation check
  const r = await run(sharp(bytes, SHARP_INPUT));
  return { data: r.data, height: r.height, width: r.width, channels: 3 };
}

/**
 * How a large-JPEG crop is done (see {@link resizedCrop}): the whole image is resized to
 * `resizeWidth`×`resizeHeight` (libjpeg decodes at 1/2, 1/4 or 1/8 on the way) and a
 * `size`×`size` window at (`left`, `top`) is cut out. That is exactly a bicubic resize of the
 * fractional source box `effective` — the requested box snapped to the resized grid (moved by
 * at most half an output pixel; same area up to rounding).
 */
export function dctScaledGeometry(header: { width: number; height: number }, box: CropBox, size: number) {
  const { width: W, height: H } = header;
  const resizeWidth = Math.max(size, Math.round((W * size) / box.w));
  const resizeHeight = Math.max(size, Math.round((H * size) / box.h));
  const left = Math.min(Math.round((box.x * size) / box.w), resizeWidth - size);
  const top = Math.min(Math.round((box.y * size) / box.h), resizeHeight - size);
  const sx = W / resizeWidth;
  const sy = H / resizeHeight;
  return { resizeWidth, resizeHeight, left, top, effective: { x: left * sx, y: top * sy, w: size * sx, h: size * sy } };
}

/**
 * Crop `box` (null = whole image) and resize to `size`×`size` with a bicubic (Catmull-Rom,
 * antialiased when shrinking) kernel in one libvips pipeline → uint8 HWC RGB.
 *
 * Axes that grow (a crop smaller than `size`) are resampled in JS with Pillow's exact
 * bicubic arithmetic ({@link resizeBicubicPillow}); libvips shrinks the others.
 *
 * A large JPEG whose crop is at least 3× the output on both sides is resized whole and then
 * cropped, which lets libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT scaling, still ≥ the output
 * resolution; sharp only scales when the shrink is ≥ 3). The box is then snapped to the resized
 * grid ({@link dctScaledGeometry}: ≤ half an output pixel); for a random crop that is just a
 * slightly different random box.
 */
export async function resizedCrop(bytes: Uint8Array, header: ImageHeader, box: CropBox | null, size: number): Promise<Uint8Array> {
  const { width: W, height: H } = header;
  const b = box ?? { x: 0, y: 0, w: W, h: H };
  const full = b.x === 0 && b.y === 0 && b.w === W && b.h === H;
  let p = sharp(bytes, SHARP_INPUT);
  if (b.w < size || b.h < size) {
    // Upscaling: libvips samples upscaled axes with a different pixel-centre convention from
    // Pillow's, so libvips only shrinks the axes that shrink and the rest is done in JS with
    // Pillow's exact arithmetic.
    const tw = Math.min(b.w, size);
    const th = Math.min(b.h, size);
    if (!full) p = p.extract({ left: b.x, top: b.y, width: b.w, height: b.h });
    if (tw !== b.w || th !== b.h) p = p.resize(tw, th, { fit: 'fill', kernel: 'cubic' });
    const r = await run(p);
    if (r.width !== tw || r.height !== th) throw new ImageDecodeError(`crop produced ${r.width}x${r.height}, expected ${tw}x${th}`);
    return resizeBicubicPillow(r.data, tw, th, size, size);
  }
  const native = header.format === 'jpeg' ? nativeImage() : null;
  if (native) {
    try {
      return native.jpegResizedCrop(bytes, b.x, b.y, b.w, b.h, size);
    } catch (e) {
      throw new ImageDecodeError((e as Error).message);
    }
  }
  if (full) {
    p = p.resize(size, size, { fit: 'fill', kernel: 'cubic' });
  } else if (header.format === 'jpeg' && b.w >= 3 * size && b.h >= 3 * size) {
    const g = dctScaledGeometry(header, b, size);
    p = p.resize(g.resizeWidth, g.resizeHeight, { fit: 'fill', kernel: 'cubic' }).extract({ left: g.left, top: g.top, width: size, height: size });
  } else {
    p = p.extract({ left: b.x, top: b.y, width: b.w, height: b.h }).resize(size, size, { fit: 'fill', kernel: 'cubic' });
  }
  const r = await run(p);
  if (r.width !== size || r.height !== size) throw new ImageDecodeError(`resize produced ${r.width}x${r.height}, expected ${size}x${size}`);
  return r.data;
}
