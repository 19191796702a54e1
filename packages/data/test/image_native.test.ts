import { describe, expect, test } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { nativeImage } from '../src/image/native.js';
import { decodeImage } from '../src/image/decode.js';
import { resizeBicubicPillow } from '../src/image/transforms.js';
import { Rng } from '../src/rng.js';
import { SHARED_DATA } from './helpers.js';

const native = nativeImage();

function crop(data: Uint8Array, width: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) out.set(data.subarray(((y + r) * width + x) * 3, ((y + r) * width + x + w) * 3), r * w * 3);
  return out;
}

describe.runIf(native)('native JPEG path (libjpeg-turbo + Pillow-style bicubic)', () => {
  const dir = join(SHARED_DATA, 'coco-mini/train2017');
  const files = readdirSync(dir).slice(0, 6).map((f) => new Uint8Array(readFileSync(join(dir, f))));

  test('random crops match full decode + crop + Pillow bicubic (JS reference)', async () => {
    const rng = new Rng(11);
    for (const bytes of files) {
      const full = await decodeImage(bytes);
      for (let t = 0; t < 4; t++) {
        const w = rng.int(230, full.width + 1);
        const h = rng.int(230, full.height + 1);
        const x = rng.int(0, full.width - w + 1);
        const y = rng.int(0, full.height - h + 1);
        const got = native!.jpegResizedCrop(bytes, x, y, w, h, 224);
        const want = resizeBicubicPillow(crop(full.data, full.width, x, y, w, h), w, h, 224, 224);
        let sum = 0;
        let over3 = 0;
        for (let i = 0; i < got.length; i++) {
          const d = Math.abs(got[i]! - want[i]!);
          sum += d;
          if (d > 3) over3++;
        }
        // float intermediates vs Pillow's 8-bit intermediate (and its clipping of ringing at
        // hard edges): off by a level here and there, rarely more
        expect(sum / got.length, `box ${x},${y},${w},${h}`).toBeLessThan(0.6);
        expect(over3 / got.length, `box ${x},${y},${w},${h}`).toBeLessThan(0.002);
      }
    }
  });

  test('DCT-scaled decoding (crop ≥ 2× the output) stays close to the exact result', async () => {
    const bytes = files[0]!;
    const full = await decodeImage(bytes);
    const size = 96; // crops ≥ 192 px decode at 1/2, ≥ 384 at 1/4
    for (const [w, h] of [[full.width, full.height], [400, 400], [200, 250]] as const) {
      const got = native!.jpegResizedCrop(bytes, 0, 0, w, h, size);
      const want = resizeBicubicPillow(crop(full.data, full.width, 0, 0, w, h), w, h, size, size);
      let sum = 0;
      for (let i = 0; i < got.length; i++) sum += Math.abs(got[i]! - want[i]!);
      expect(sum / got.length).toBeLessThan(2.5);
    }
  });

  test('bad input is an error, not a crash', () => {
    expect(() => native!.jpegResizedCrop(new Uint8Array([1, 2, 3, 4]), 0, 0, 1, 1, 8)).toThrow(/JPEG header/);
    expect(() => native!.jpegResizedCrop(files[0]!, 0, 0, 100000, 10, 8)).toThrow(/crop box outside the image/);
    expect(() => native!.jpegResizedCrop(files[0]!, 0, 0, 10, 10, 0)).toThrow(/size out of range/);
  });
});
