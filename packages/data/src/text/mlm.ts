/**
 * Masked-language-modelling inputs, as HuggingFace's DataCollatorForLanguageModeling /
 * DataCollatorForWholeWordMask make them, but seeded and on typed arrays.
 *
 * Every non-special token is selected with probability `probability` (0.15); with `wholeWord`,
 * every word is selected with that probability and all of its pieces go together. Each selected
 * token is, independently, replaced by [MASK] (replaceProb, 0.8), by a random token id from
 * [numSpecialTokens, vocabSize) (randomProb, 0.1), or kept (the rest, 0.1). Labels hold the
 * original id at selected positions and -100 elsewhere. Special tokens and padding
 * (specialTokensMask = 1) are never selected.
 *
 * Randomness: row b uses `Rng.forKey(seed, ...keys, rowKeys?.[b] ?? b)`, so a row's masking depends only on the
 * seed, the keys and the row's own content (not on the other rows of the batch). Draw order within
 * a row: for each position left to right, one uniform for the selection (per word in whole-word
 * mode, drawn at the word's first piece) and, for a selected token, one uniform for the
 * [MASK]/random/keep decision, plus one integer for a random replacement.
 */
import { Rng } from '../rng.js';
import type { EncodedBatch } from './tokenizer.js';

/** Label value of positions that are not predicted (PyTorch CrossEntropyLoss ignore_index). */
export const MLM_IGNORE_INDEX = -100;

export interface MaskOptions {
  /** Probability that a token (or, with wholeWord, a word) is selected (default 0.15). */
  probability?: number;
  maskId: number;
  vocabSize: number;
  /** Select whole words (all pieces with the same word id) together (default false). */
  wholeWord?: boolean;
  seed: number;
  /** Extra integers mixed into the seed, e.g. [epoch, batchIndex]. */
  keys?: number[];
  /**
   * One integer per row that replaces the row's index as the last key (e.g. the sample's
   * position in the epoch's order), so a row's masking does not depend on which batch or
   * rank it landed in.
   */
  rowKeys?: ArrayLike<number>;
  /** Share of selected tokens replaced by [MASK] (default 0.8). */
  replaceProb?: number;
  /** Share of selected tokens replaced by a random token (default 0.1); the rest are kept. */
  randomProb?: number;
  /** Random replacement ids are drawn from [numSpecialTokens, vocabSize) (default 0). */
  numSpecialTokens?: number;
}

export type MaskableBatch = Pick<EncodedBatch, 'batchSize' | 'length' | 'inputIds' | 'specialTokensMask'> & {
  /** Needed for wholeWord; tokens with word id -1 that are not special count as words of their own. */
  wordIds?: Int32Array;
};

export interface MaskedBatch {
  /** A copy of the input ids with the selected positions replaced. */
  inputIds: Int32Array;
  /** Original ids at selected positions, MLM_IGNORE_INDEX (-100) elsewhere. */
  labels: Int32Array;
}

function checkProb(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`maskTokens: ${name} must be in [0, 1], got ${p}`);
}

export function maskTokens(batch: MaskableBatch, options: MaskOptions): MaskedBatch {
  const { batchSize: B, length: L, inputIds, specialTokensMask, wordIds } = batch;
  const p = options.probability ?? 0.15;
  const replaceProb = options.replaceProb ?? 0.8;
  const randomProb = options.randomProb ?? 0.1;
  const numSpecial = options.numSpecialTokens ?? 0;
  const wholeWord = options.wholeWord ?? false;
  const { maskId, vocabSize, seed } = options;
  const keys = options.keys ?? [];

  if (!Number.isInteger(B) || B < 0 || !Number.isInteger(L) || L < 0) throw new RangeError(`maskTokens: bad shape [${B}, ${L}]`);
  const n = B * L;
  if (inputIds.length !== n) throw new RangeError(`maskTokens: inputIds has ${inputIds.length} elements, expected ${B}x${L}=${n}`);
  if (specialTokensMask.length !== n) throw new RangeError(`maskTokens: specialTokensMask has ${specialTokensMask.length} elements, expected ${n}`);
  if (wholeWord && !wordIds) throw new RangeError('maskTokens: wholeWord needs wordIds');
  const rowKeys = options.rowKeys;
  if (rowKeys && rowKeys.length !== B) throw new RangeError(`maskTokens: rowKeys has ${rowKeys.length} entries for ${B} rows`);
  if (wordIds && wordIds.length !== n) throw new RangeError(`maskTokens: wordIds has ${wordIds.length} elements, expected ${n}`);
  checkProb('probability', p);
  checkProb('replaceProb', replaceProb);
  checkProb('randomProb', randomProb);
  if (replaceProb + randomProb > 1 + 1e-12) throw new RangeError(`maskTokens: replaceProb + randomProb must be <= 1, got ${replaceProb + randomProb}`);
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`maskTokens: vocabSize must be a positive integer, got ${vocabSize}`);
  if (!Number.isInteger(maskId) || maskId < 0 || maskId >= vocabSize) throw new RangeError(`maskTokens: maskId ${maskId} is not a token id of a vocabulary of ${vocabSize}`);
  if (!Number.isInteger(numSpecial) || numSpecial < 0 || (randomProb > 0 && numSpecial >= vocabSize)) throw new RangeError(`maskTokens: numSpecialTokens must be an integer in [0, vocabSize), got ${numSpecial}`);

  const outIds = Int32Array.from(inputIds);
  const labels = new Int32Array(n).fill(MLM_IGNORE_INDEX);
  const selectedWords = new Map<number, boolean>();

  for (let b = 0; b < B; b++) {
    const rng = Rng.forKey(seed, ...keys, rowKeys ? rowKeys[b]! : b);
    const off = b * L;
    selectedWords.clear();
    for (let i = off; i < off + L; i++) {
      if (specialTokensMask[i]) continue;
      let selected: boolean;
      const w = wholeWord ? wordIds![i]! : -1;
      if (w >= 0) {
        const known = selectedWords.get(w);
        if (known === undefined) {
          selected = rng.random() < p;
          selectedWords.set(w, selected);
        } else selected = known;
      } else selected = rng.random() < p;
      if (!selected) continue;
      labels[i] = inputIds[i]!;
      const r = rng.random();
      if (r < replaceProb) outIds[i] = maskId;
      else if (r < replaceProb + randomProb) outIds[i] = rng.int(numSpecial, vocabSize);
      // else: keep the original token
    }
  }
  return { inputIds: outIds, labels };
}
