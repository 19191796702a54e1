/**
 * Flickr8k / Flickr30k token files → captions Arrow file.
 *
 * Input: the token file (`Flickr8k.token.txt`, `results_20130124.token`: lines
 * `<image file>#<n>\t<caption>`), optionally a split list (`Flickr_8k.trainImages.txt`: one
 * file name per line) that selects and orders the images, and the image folder.
 * One row per image with its captions ordered by `n`; `image_id` = file name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConvertSession, withWriter, type ConvertOptions, type ConvertReport } from './common.js';

export interface FlickrInput {
  tokens: string;
  imageDir: string;
  /** A file listing the images of the split (one name per line); default: every image in the token file. */
  splitList?: string;
  /** Value of the `split` column (default: from the split list's name — train/dev→val/test — else `train`). */
  split?: string;
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split(/\r?\n/);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Parse a Flickr token file into file name → captions (ordered by their `#n`). */
export function parseFlickrTokens(path: string): Map<string, string[]> {
  const byImage = new Map<string, [number, string][]>();
  readLines(path).forEach((line, i) => {
    if (line.trim() === '') return;
    const tab = line.indexOf('\t');
    const hash = line.lastIndexOf('#', tab);
    if (tab < 0 || hash < 0) throw new Error(`${path} line ${i + 1}: expected '<image>#<n>\\t<caption>', got '${line.slice(0, 80)}'`);
    const file = line.slice(0, hash);
    const n = Number(line.slice(hash + 1, tab));
    if (!Number.isInteger(n)) throw new Error(`${path} line ${i + 1}: caption number '${line.slice(hash + 1, tab)}' is not an integer`);
    let list = byImage.get(file);
    if (!list) byImage.set(file, (list = []));
    list.push([n, line.slice(tab + 1).trim()]);
  });
  const out = new Map<string, string[]>();
  for (const [file, list] of byImage) out.set(file, list.sort((a, b) => a[0] - b[0]).map(([, c]) => c));
  return out;
}

export async function convertFlickr(input: FlickrInput, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const captions = parseFlickrTokens(input.tokens);
  let files: string[];
  if (input.splitList) {
    files = readLines(input.splitList).map((l) => l.trim()).filter((l) => l !== '');
    const missing = files.filter((f) => !captions.has(f));
    if (missing.length > 0) throw new Error(`${input.splitList}: ${missing.length} image(s) have no captions in ${input.tokens} (first: ${missing[0]})`);
  } else {
    files = [...captions.keys()];
  }
  const split = input.split ?? (input.splitList ? (/train/i.test(input.splitList) ? 'train' : /dev|val/i.test(input.splitList) ? 'val' : /test/i.test(input.splitList) ? 'test' : 'train') : 'train');
  const s = new ConvertSession(out, `flickr ${split}`, files.length, options);
  await withWriter(out, 'captions', options, async (w) => {
    for (const file of files) {
      s.progress.tick();
      await s.captionRow(w, join(input.imageDir, file), `${input.splitList ?? input.tokens}: '${file}'`, captions.get(file)!, file, split);
    }
  });
  return s.finish();
}
