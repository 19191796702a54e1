import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (packages/data/test → ../../..). */
export const REPO_ROOT = resolve(here, '../../..');
/** Real datasets shared beside the checkout (never copied into the repo). */
export const SHARED_DATA = resolve(REPO_ROOT, '../shared/data');

export function tempDir(prefix = 'vlmoe-data-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Fully decode every image (not just headers); returns sizes. Runs a few at a time. */
export async function decodeAll(images: Uint8Array[], concurrency = 8): Promise<{ width: number; height: number }[]> {
  const out: { width: number; height: number }[] = new Array(images.length);
  let next = 0;
  const worker = async () => {
    while (next < images.length) {
      const i = next++;
      const { info } = await sharp(images[i]!).raw().toBuffer({ resolveWithObject: true });
      out[i] = { width: info.width, height: info.height };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}
