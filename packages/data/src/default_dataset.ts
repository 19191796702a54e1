/**
 * The embedded default dataset: the synthetic shapes world plus a WordPiece tokenizer
 * built from its training texts, generated on first use and reused afterwards (the
 * manifest's hashes say whether what is on disk is complete and current).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureShapesWorld, readShapesWorldManifest, shapesWorldTexts, type ShapesWorldManifest, type ShapesWorldOptions } from './synthetic/index.js';
import { withFileLock } from './file_lock.js';
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

export interface DefaultDatasetOptions extends ShapesWorldOptions {
  /** Tokens of the WordPiece vocabulary built from the train texts (default 1000). */
  vocabSize?: number;
  /**
   * What to do when `dir` already holds a shapes world of the other concept set (standard vs
   * rich): 'regenerate' it (the default, like any other mismatch with the manifest) or throw
   * an error naming both and leave it alone ('error').
   */
  otherConcepts?: 'regenerate' | 'error';
}

/**
 * Make sure the shapes world (and its tokenizer.json) exists in `dir`; generate what is
 * missing. Safe to call from several processes at once (ranks of one job, two commands): the
 * first generates while holding `<dir>.lock`, the others wait and then find it complete.
 */
export async function ensureDefaultDataset(dir: string, options: DefaultDatasetOptions = {}): Promise<DefaultDataset> {
  return withFileLock(dir.replace(/[\\/]+$/, ''), () => ensureUnlocked(dir, options));
}

async function ensureUnlocked(dir: string, options: DefaultDatasetOptions): Promise<DefaultDataset> {
  const { vocabSize, otherConcepts, ...world } = options;
  if (otherConcepts === 'error') {
    const m = readShapesWorldManifest(dir);
    const have = m ? (m.options?.concepts ?? 'standard') : null;
    const want = world.concepts ?? 'standard';
    if (have !== null && have !== want) {
      throw new Error(
        `${dir} holds the ${have} shapes world (see its manifest.json), not the ${want} one asked for; ` +
          `give the ${want} world its own folder, or remove ${dir} to regenerate it there`,
      );
    }
  }
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
