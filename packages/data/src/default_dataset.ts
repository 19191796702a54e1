/**
 * The embedded default dataset: the synthetic shapes world plus a WordPiece tokenizer
 * built from its training texts, generated on first use and reused afterwards (the
 * manifest's hashes say whether what is on disk is complete and current).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureShapesWorld, shapesWorldTexts, type ShapesWorldManifest, type ShapesWorldOptions } from './synthetic/index.js';
import { withFileLock } from './fs.js';
import { buildWordPieceTokenizer, saveTokenizer, tokenizerJsonToString } from './text/index.js';

export interface DefaultDataset {
  /** Folder with captions_/vqa_/nlvr2_{train,val,test}.arrow, answers.json, tokenizer.json. */
  dir: string;
  tokenizer: string;
  answers: string;
  files: { [kind in 'captions' | 'vqa' | 'nlvr2']: { train: string; val: string; test: string } };
  manifest: ShapesWorldManifest;
  /** True when this call generated the data (false: it was already there). */
  generated: boolean;
}

/**
 * Make sure the shapes world (and its tokenizer.json) exists in `dir`; generate what is
 * missing. Safe to call from several processes at once (ranks of one job, two commands): the
 * first generates while holding `<dir>.lock`, the others wait and then find it complete.
 */
export async function ensureDefaultDataset(dir: string, options: ShapesWorldOptions & { vocabSize?: number } = {}): Promise<DefaultDataset> {
  return withFileLock(dir.replace(/[\\/]+$/, ''), () => ensureUnlocked(dir, options));
}

async function ensureUnlocked(dir: string, options: ShapesWorldOptions & { vocabSize?: number }): Promise<DefaultDataset> {
  const { vocabSize, ...world } = options;
  const { generated, manifest } = await ensureShapesWorld(dir, world);
  const tokenizer = join(dir, 'tokenizer.json');
  const json = () => buildWordPieceTokenizer(shapesWorldTexts(world, ['train']), { vocabSize: vocabSize ?? 1000, minFrequency: 1 });
  if (generated || !existsSync(tokenizer)) {
    saveTokenizer(tokenizer, json());
  } else {
    // rebuild when the file differs from what the builder makes (e.g. an older builder wrote it)
    const want = tokenizerJsonToString(json());
    if (readFileSync(tokenizer, 'utf8') !== want) saveTokenizer(tokenizer, JSON.parse(want));
  }
  const f = (kind: string) => ({ train: join(dir, `${kind}_train.arrow`), val: join(dir, `${kind}_val.arrow`), test: join(dir, `${kind}_test.arrow`) });
  return { dir, tokenizer, answers: join(dir, 'answers.json'), files: { captions: f('captions'), vqa: f('vqa'), nlvr2: f('nlvr2') }, manifest, generated };
}
