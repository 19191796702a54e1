/**
 * MLM masking: rates against their binomial expectations, invariants, whole-word grouping, seeding.
 *
 * Rate tolerances are 5 binomial standard deviations, sqrt(p(1-p)/n), of the count they test
 * (a false failure probability below 1e-6 per check), and the checks run for several seeds.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { MLM_IGNORE_INDEX, maskTokens, type MaskOptions } from '../src/text/mlm.js';
import { BertTokenizer, type EncodedBatch } from '../src/text/tokenizer.js';
import { TEXT_FIXTURES } from './fixtures/text/captions_corpus.js';

const VOCAB = 1000;
const MASK = 4;
const NUM_SPECIAL = 5;
const PAD = 0;
const CLS = 2;
const SEP = 3;

/** A random batch: [CLS] tokens [SEP] [PAD]..., words of 1-4 pieces, some all-pad rows. */
function randomBatch(B: number, L: number, seed: number): EncodedBatch {
  const rng = new Rng(seed);
  const inputIds = new Int32Array(B * L).fill(PAD);
  const attentionMask = new Uint8Array(B * L);
  const specialTokensMask = new Uint8Array(B * L).fill(1);
  const wordIds = new Int32Array(B * L).fill(-1);
  for (let b = 0; b < B; b++) {
    if (b % 50 === 7) continue; // all-pad row
    const n = rng.int(2, L + 1); // real tokens incl. [CLS]/[SEP]
    const off = b * L;
    inputIds[off] = CLS;
    attentionMask[off] = 1;
    let word = 0;
    let left = 0;
    for (let i = 1; i < n - 1; i++) {
      if (left === 0) {
        left = rng.int(1, 5);
        if (i > 1) word++;
      }
      left--;
      inputIds[off + i] = rng.int(NUM_SPECIAL, VOCAB);
      attentionMask[off + i] = 1;
      specialTokensMask[off + i] = 0;
      wordIds[off + i] = word;
    }
    inputIds[off + n - 1] = SEP;
    attentionMask[off + n - 1] = 1;
  }
  return { batchSize: B, length: L, inputIds, attentionMask, specialTokensMask, wordIds };
}

/** Byte equality of typed arrays (vitest's deep equality is slow on 30k-element arrays). */
function same(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.constructor === b.constructor && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const base = (seed: number, extra: Partial<MaskOptions> = {}): MaskOptions => ({ maskId: MASK, vocabSize: VOCAB, seed, numSpecialTokens: NUM_SPECIAL, ...extra });

/** |observed - expected| within `k` binomial standard deviations. */
function expectRate(hits: number, n: number, p: number, k = 5): void {
  const sd = Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(hits / n - p), `rate ${hits}/${n} vs ${p} (sd ${sd.toFixed(5)})`).toBeLessThan(k * sd);
}

interface Stats {
  candidates: number;
  selected: number;
  masked: number;
  random: number;
  kept: number;
}

function stats(batch: EncodedBatch, out: { inputIds: Int32Array; labels: Int32Array }): Stats {
  const s: Stats = { candidates: 0, selected: 0, masked: 0, random: 0, kept: 0 };
  const errors: string[] = [];
  for (let i = 0; i < batch.inputIds.length; i++) {
    const orig = batch.inputIds[i]!;
    const now = out.inputIds[i]!;
    const label = out.labels[i]!;
    if (batch.specialTokensMask[i]) {
      if (label !== MLM_IGNORE_INDEX || now !== orig) errors.push(`special/pad position ${i} selected or changed`);
      continue;
    }
    s.candidates++;
    if (label === MLM_IGNORE_INDEX) {
      if (now !== orig) errors.push(`unselected position ${i} changed`);
      continue;
    }
    if (label !== orig) errors.push(`label ${label} at ${i} is not the original id ${orig}`);
    s.selected++;
    if (now === MASK) s.masked++;
    else if (now === orig) s.kept++;
    else {
      s.random++;
      if (now < NUM_SPECIAL || now >= VOCAB) errors.push(`random id ${now} at ${i} outside [${NUM_SPECIAL}, ${VOCAB})`);
    }
  }
  expect(errors.slice(0, 5)).toEqual([]);
  return s;
}

describe('maskTokens (token level)', () => {
  const batch = randomBatch(512, 128, 1);

  it.each([11, 12, 13])('selects 15 percent of the non-special tokens, then 80/10/10 (seed %i)', (seed) => {
    const snapshot = Int32Array.from(batch.inputIds);
    const out = maskTokens(batch, base(seed));
    expect(same(batch.inputIds, snapshot)).toBe(true); // input untouched
    const s = stats(batch, out);
    expect(s.candidates).toBeGreaterThan(10_000);
    expectRate(s.selected, s.candidates, 0.15);
    // a random replacement equal to the original (probability 1/995) counts as kept
    const pSame = 1 / (VOCAB - NUM_SPECIAL);
    expectRate(s.masked, s.selected, 0.8);
    expectRate(s.random, s.selected, 0.1 * (1 - pSame));
    expectRate(s.kept, s.selected, 0.1 + 0.1 * pSame);
  });

  it('honours other probabilities', () => {
    const s = stats(batch, maskTokens(batch, base(5, { probability: 0.4, replaceProb: 0.5, randomProb: 0.3 })));
    expectRate(s.selected, s.candidates, 0.4);
    expectRate(s.masked, s.selected, 0.5);
    expectRate(s.random + s.kept, s.selected, 0.5);
    const all = stats(batch, maskTokens(batch, base(5, { probability: 1, replaceProb: 1, randomProb: 0 })));
    expect(all.selected).toBe(all.candidates);
    expect(all.masked).toBe(all.candidates);
    const none = maskTokens(batch, base(5, { probability: 0 }));
    expect(none.labels.every((x) => x === MLM_IGNORE_INDEX)).toBe(true);
    expect(same(none.inputIds, batch.inputIds)).toBe(true);
  });

  it('draws random replacements uniformly from [numSpecialTokens, vocabSize)', () => {
    const small = randomBatch(64, 64, 2);
    const out = maskTokens(small, { maskId: MASK, vocabSize: 8, seed: 3, numSpecialTokens: 5, probability: 1, replaceProb: 0, randomProb: 1 });
    const counts = new Map<number, number>();
    let n = 0;
    for (let i = 0; i < out.inputIds.length; i++) {
      if (small.specialTokensMask[i]) continue;
      counts.set(out.inputIds[i]!, (counts.get(out.inputIds[i]!) ?? 0) + 1);
      n++;
    }
    expect([...counts.keys()].sort()).toEqual([5, 6, 7]);
    for (const c of counts.values()) expectRate(c, n, 1 / 3);
    // numSpecialTokens defaults to 0: every id of the vocabulary can come out
    const out0 = maskTokens(small, { maskId: 1, vocabSize: 3, seed: 3, probability: 1, replaceProb: 0, randomProb: 1 });
    const seen = new Set(Array.from(out0.inputIds).filter((_, i) => !small.specialTokensMask[i]));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  it('is deterministic in seed and keys; different keys or seeds give different masks', () => {
    const a = maskTokens(batch, base(42, { keys: [3, 7] }));
    const b = maskTokens(batch, base(42, { keys: [3, 7] }));
    expect(same(b.inputIds, a.inputIds)).toBe(true);
    expect(same(b.labels, a.labels)).toBe(true);
    const differs = (x: Int32Array, y: Int32Array) => x.some((v, i) => v !== y[i]);
    expect(differs(maskTokens(batch, base(42, { keys: [3, 8] })).labels, a.labels)).toBe(true);
    expect(differs(maskTokens(batch, base(42, { keys: [4, 7] })).labels, a.labels)).toBe(true);
    expect(differs(maskTokens(batch, base(42, { keys: [7, 3] })).labels, a.labels)).toBe(true);
    expect(differs(maskTokens(batch, base(43, { keys: [3, 7] })).labels, a.labels)).toBe(true);
    expect(differs(maskTokens(batch, base(42)).labels, a.labels)).toBe(true);
  });

  it("a row's mask depends only on the seed, keys, row index and its own content", () => {
    const a = maskTokens(batch, base(9));
    const changed = { ...batch, inputIds: Int32Array.from(batch.inputIds) };
    for (let i = 0; i < batch.length; i++) if (!batch.specialTokensMask[i]) changed.inputIds[i] = NUM_SPECIAL; // row 0 only
    const b = maskTokens(changed, base(9));
    const L = batch.length;
    expect(same(b.labels.subarray(L), a.labels.subarray(L))).toBe(true);
    expect(same(b.inputIds.subarray(L), a.inputIds.subarray(L))).toBe(true);
    expect(same(b.labels.subarray(0, L), a.labels.subarray(0, L))).toBe(false);
  });

  it('rowKeys: a row keyed k is masked as row k of an unkeyed batch, wherever it sits', () => {
    const L = batch.length;
    const a = maskTokens(batch, base(9));
    // rows 5, 2, 9 taken out and keyed by their original index
    const rows = [5, 2, 9];
    const sub = { batchSize: 3, length: L, inputIds: new Int32Array(3 * L), specialTokensMask: new Uint8Array(3 * L) };
    rows.forEach((r, j) => {
      sub.inputIds.set(batch.inputIds.subarray(r * L, (r + 1) * L), j * L);
      sub.specialTokensMask.set(batch.specialTokensMask.subarray(r * L, (r + 1) * L), j * L);
    });
    const b = maskTokens(sub, base(9, { rowKeys: rows }));
    rows.forEach((r, j) => {
      expect(same(b.labels.subarray(j * L, (j + 1) * L), a.labels.subarray(r * L, (r + 1) * L))).toBe(true);
      expect(same(b.inputIds.subarray(j * L, (j + 1) * L), a.inputIds.subarray(r * L, (r + 1) * L))).toBe(true);
    });
    expect(() => maskTokens(sub, base(9, { rowKeys: [1, 2] }))).toThrow(/rowKeys has 2 entries for 3 rows/);
  });

  it('edge cases: all-pad rows, length 1, empty batch', () => {
    const out = maskTokens(batch, base(1, { probability: 1 }));
    for (let b = 7; b < batch.batchSize; b += 50) {
      expect(out.labels.subarray(b * batch.length, (b + 1) * batch.length).every((x) => x === MLM_IGNORE_INDEX)).toBe(true);
    }
    const allPad = { batchSize: 3, length: 4, inputIds: new Int32Array(12), specialTokensMask: new Uint8Array(12).fill(1), wordIds: new Int32Array(12).fill(-1) };
    const p = maskTokens(allPad, base(1, { probability: 1, wholeWord: true }));
    expect(p.labels.every((x) => x === MLM_IGNORE_INDEX)).toBe(true);
    expect(p.inputIds).toEqual(allPad.inputIds);
    const one = { batchSize: 2, length: 1, inputIds: Int32Array.of(17, 18), specialTokensMask: Uint8Array.of(0, 1), wordIds: Int32Array.of(0, -1) };
    const o = maskTokens(one, base(1, { probability: 1, replaceProb: 1, randomProb: 0 }));
    expect(Array.from(o.inputIds)).toEqual([MASK, 18]);
    expect(Array.from(o.labels)).toEqual([17, MLM_IGNORE_INDEX]);
    const empty = maskTokens({ batchSize: 0, length: 40, inputIds: new Int32Array(0), specialTokensMask: new Uint8Array(0) }, base(1));
    expect(empty.inputIds.length + empty.labels.length).toBe(0);
  });

  it('rejects inconsistent inputs and options', () => {
    const small = randomBatch(2, 8, 3);
    expect(() => maskTokens({ ...small, length: 9 }, base(1))).toThrow(/inputIds/);
    expect(() => maskTokens({ ...small, specialTokensMask: new Uint8Array(3) }, base(1))).toThrow(/specialTokensMask/);
    expect(() => maskTokens({ ...small, wordIds: undefined }, base(1, { wholeWord: true }))).toThrow(/wordIds/);
    expect(() => maskTokens(small, base(1, { probability: 1.5 }))).toThrow(RangeError);
    expect(() => maskTokens(small, base(1, { replaceProb: 0.8, randomProb: 0.3 }))).toThrow(RangeError);
    expect(() => maskTokens(small, base(1, { maskId: VOCAB }))).toThrow(RangeError);
    expect(() => maskTokens(small, base(1, { numSpecialTokens: VOCAB }))).toThrow(RangeError);
    expect(() => maskTokens(small, base(1.5))).toThrow(TypeError);
    // without wholeWord, wordIds are not needed
    expect(() => maskTokens({ ...small, wordIds: undefined }, base(1))).not.toThrow();
  });
});

describe('maskTokens (whole word)', () => {
  const batch = randomBatch(512, 128, 4);

  /** word selection per (row, word): all pieces share it */
  function wordSelections(b: EncodedBatch, labels: Int32Array): { words: number; selectedWords: number } {
    let words = 0;
    let selectedWords = 0;
    const errors: string[] = [];
    for (let r = 0; r < b.batchSize; r++) {
      const sel = new Map<number, boolean[]>();
      for (let i = r * b.length; i < (r + 1) * b.length; i++) {
        if (b.specialTokensMask[i]) {
          if (labels[i] !== MLM_IGNORE_INDEX) errors.push(`special position ${i} selected`);
          continue;
        }
        const w = b.wordIds[i]!;
        const list = sel.get(w) ?? [];
        list.push(labels[i] !== MLM_IGNORE_INDEX);
        sel.set(w, list);
      }
      for (const [w, list] of sel) {
        if (new Set(list).size !== 1) errors.push(`row ${r} word ${w}: pieces selected apart ${JSON.stringify(list)}`);
        words++;
        if (list[0]) selectedWords++;
      }
    }
    expect(errors.slice(0, 5)).toEqual([]);
    return { words, selectedWords };
  }

  it.each([21, 22, 23])('selects whole words with probability 0.15, then 80/10/10 per token (seed %i)', (seed) => {
    const snapshot = { ids: Int32Array.from(batch.inputIds), words: Int32Array.from(batch.wordIds), special: Uint8Array.from(batch.specialTokensMask) };
    const out = maskTokens(batch, base(seed, { wholeWord: true }));
    expect(same(batch.inputIds, snapshot.ids)).toBe(true);
    expect(same(batch.wordIds, snapshot.words)).toBe(true);
    expect(same(batch.specialTokensMask, snapshot.special)).toBe(true);
    const { words, selectedWords } = wordSelections(batch, out.labels);
    expect(words).toBeGreaterThan(4000);
    expectRate(selectedWords, words, 0.15);
    const s = stats(batch, out);
    expect(s.selected).toBeGreaterThan(selectedWords); // multi-piece words
    // per-token decisions; tokens of one word are not independent for selection, but are for the decision
    const pSame = 1 / (VOCAB - NUM_SPECIAL);
    expectRate(s.masked, s.selected, 0.8);
    expectRate(s.random, s.selected, 0.1 * (1 - pSame));
  });

  it('groups real word pieces from BertTokenizer', () => {
    const tok = BertTokenizer.fromFile(join(TEXT_FIXTURES, 'bert-captions', 'tokenizer.json'));
    const texts = [
      'A skateboarder performs a kickflip over the stairs.',
      'antidisestablishmentarianism photosynthesis xylophone',
      'Two giraffes and zebras graze near the watering hole.',
      '',
    ];
    const enc = tok.encodeBatch(texts);
    // the texts do contain multi-piece words
    let multi = 0;
    for (let i = 1; i < enc.wordIds.length; i++) if (enc.wordIds[i]! >= 0 && enc.wordIds[i] === enc.wordIds[i - 1]) multi++;
    expect(multi).toBeGreaterThan(5);
    for (let seed = 0; seed < 50; seed++) {
      const out = maskTokens(enc, { maskId: tok.maskId, vocabSize: tok.vocabSize, seed, wholeWord: true, probability: 0.3, numSpecialTokens: 5 });
      wordSelections(enc, out.labels);
      for (let i = 0; i < enc.inputIds.length; i++) if (enc.specialTokensMask[i]) expect(out.inputIds[i]).toBe(enc.inputIds[i]);
    }
    // the empty text row has only [CLS] [SEP] [PAD]...: nothing to predict
    const out = maskTokens(enc, { maskId: tok.maskId, vocabSize: tok.vocabSize, seed: 1, wholeWord: true, probability: 1 });
    expect(out.labels.subarray(3 * enc.length).every((x) => x === MLM_IGNORE_INDEX)).toBe(true);
  });

  it('non-special tokens without a word id are words of their own', () => {
    const b = { batchSize: 1, length: 6, inputIds: Int32Array.of(2, 10, 11, 12, 13, 3), specialTokensMask: Uint8Array.of(1, 0, 0, 0, 0, 1), wordIds: Int32Array.of(-1, -1, -1, 0, 0, -1) };
    let split = false;
    for (let seed = 0; seed < 100; seed++) {
      const { labels } = maskTokens(b, base(seed, { wholeWord: true, probability: 0.5 }));
      expect(labels[3] === MLM_IGNORE_INDEX).toBe(labels[4] === MLM_IGNORE_INDEX);
      if ((labels[1] === MLM_IGNORE_INDEX) !== (labels[2] === MLM_IGNORE_INDEX)) split = true;
    }
    expect(split).toBe(true);
  });

  it('is deterministic and differs between keys', () => {
    const a = maskTokens(batch, base(5, { wholeWord: true, keys: [1] }));
    const again = maskTokens(batch, base(5, { wholeWord: true, keys: [1] }));
    expect(same(again.inputIds, a.inputIds) && same(again.labels, a.labels)).toBe(true);
    expect(same(maskTokens(batch, base(5, { wholeWord: true, keys: [2] })).labels, a.labels)).toBe(false);
  });
});
