/**
 * COCO captions → captions Arrow file.
 *
 * Two input layouts:
 * - official COCO captions JSON (`captions_train2017.json`: `images[{id, file_name}]`,
 *   `annotations[{image_id, caption}]`) with an image folder;
 * - Karpathy split JSON (`dataset_coco.json`, `dataset_flickr30k.json`:
 *   `images[{filepath?, filename, split, sentences[{raw}]}]`), filtered to one split
 *   (`restval` counts as `train`, as ViLT/VLMo do).
 * One row per image: `image` (file bytes), `caption` (all its captions, in file order),
 * `image_id` (the file name, as ViLT writes it), `split`.
 */
import { join, dirname } from 'node:path';
import { ConvertSession, field, withWriter, type ConvertOptions, type ConvertReport } from './common.js';
import { readJsonFile } from '@vlmoe/util';

export interface CocoCaptionsInput {
  /** `captions_*.json` in the official COCO layout. */
  annotations: string;
  /** Folder holding the images named by `file_name`. */
  imageDir: string;
  /** Value of the `split` column (default: `train` when the file name says train, `val` for val, else `train`). */
  split?: string;
}

export async function convertCocoCaptions(input: CocoCaptionsInput, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const json = readJsonFile(input.annotations);
  const where = input.annotations;
  const images = field<unknown[]>(json, 'images', 'array', where);
  const anns = field<unknown[]>(json, 'annotations', 'array', where);
  const captions = new Map<number, string[]>();
  anns.forEach((a, i) => {
    const w = `${where} annotations[${i}]`;
    const id = field<number>(a, 'image_id', 'number', w);
    const c = field<string>(a, 'caption', 'string', w);
    let list = captions.get(id);
    if (!list) captions.set(id, (list = []));
    list.push(c.trim());
  });
  const split = input.split ?? (/val/.test(input.annotations) ? 'val' : 'train');
  const s = new ConvertSession(out, `coco ${split}`, images.length, options);
  await withWriter(out, 'captions', options, async (w) => {
    for (let i = 0; i < images.length; i++) {
      const im = images[i];
      const wi = `${where} images[${i}]`;
      const id = field<number>(im, 'id', 'number', wi);
      const file = field<string>(im, 'file_name', 'string', wi);
      const caps = captions.get(id) ?? [];
      s.progress.tick();
      if (caps.length === 0) continue; // an image without captions is no training pair
      await s.captionRow(w, join(input.imageDir, file), wi, caps, file, split);
    }
  });
  return s.finish();
}

export interface KarpathyInput {
  /** `dataset_coco.json` / `dataset_flickr30k.json` (Karpathy splits). */
  json: string;
  /** Image root; each image is at `<imageRoot>/<filepath>/<filename>` (filepath may be absent). Default: the JSON's folder. */
  imageRoot?: string;
  /** Which split to write: `train` (includes `restval`), `val` or `test`. */
  split: string;
}

export async function convertKarpathy(input: KarpathyInput, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const json = readJsonFile(input.json);
  const where = input.json;
  const images = field<unknown[]>(json, 'images', 'array', where);
  const root = input.imageRoot ?? dirname(input.json);
  const want = input.split;
  const picked = images.filter((im, i) => {
    const sp = field<string>(im, 'split', 'string', `${where} images[${i}]`);
    return sp === want || (want === 'train' && sp === 'restval');
  });
  if (picked.length === 0) {
    const seen = [...new Set(images.map((im) => (im as { split?: string }).split))].join(', ');
    throw new Error(`${where}: no image has split '${want}' (splits present: ${seen || 'none'})`);
  }
  const s = new ConvertSession(out, `karpathy ${want}`, picked.length, options);
  await withWriter(out, 'captions', options, async (w) => {
    for (const im of picked) {
      const wi = `${where} image ${(im as { filename?: string }).filename ?? '?'}`;
      const file = field<string>(im, 'filename', 'string', wi);
      const fp = (im as { filepath?: unknown }).filepath;
      const sentences = field<unknown[]>(im, 'sentences', 'array', wi);
      const caps = sentences.map((t, k) => field<string>(t, 'raw', 'string', `${wi} sentences[${k}]`).trim());
      s.progress.tick();
      await s.captionRow(w, typeof fp === 'string' ? join(root, fp, file) : join(root, file), wi, caps, file, want);
    }
  });
  return s.finish();
}
