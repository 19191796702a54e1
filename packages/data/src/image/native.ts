/**
 * The optional native JPEG path (packages/data/native): libjpeg-turbo decode with DCT scaling
 * fused with crop + Pillow-style bicubic resize. Built by `npm run build` when libjpeg-turbo's
 * TurboJPEG headers are installed (Debian: libturbojpeg0-dev); absent, sharp does the work.
 * `VLMOE_IMAGE_NATIVE=0` turns it off.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface NativeImage {
  /** `[size, size, 3]` RGB of the box `(x, y, w, h)` of the JPEG, resized to size×size. */
  jpegResizedCrop(bytes: Uint8Array, x: number, y: number, w: number, h: number, size: number): Uint8Array;
}

let cached: NativeImage | null | undefined;

/** The native addon, or null when it is not built (or turned off). */
export function nativeImage(): NativeImage | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.VLMOE_IMAGE_NATIVE === '0') return cached;
  const path = fileURLToPath(new URL('../../native/build/Release/vlmoe_data_native.node', import.meta.url));
  if (!existsSync(path)) return cached;
  cached = createRequire(import.meta.url)(path) as NativeImage;
  return cached;
}
