/**
 * The WordPiece vocabulary builder on the real caption corpus (COCO-mini + Flickr8k-mini).
 *
 * The committed fixture test/fixtures/text/builder-captions/tokenizer.json is the builder's output
 * for that corpus; make_text_fixtures.py records how the Rust `tokenizers` library encodes with it
 * (checked in tokenizer.test.ts). Regenerate it with
 *   UPDATE_TEXT_FIXTURES=1 npx vitest run test/wordpiece_builder.test.ts
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { BertTokenizer } from '../src/text/tokenizer.js';
import {
  DEFAULT_SPECIAL_TOKENS,
  buildWordPieceTokenizer,
  countWords,
  saveTokenizer,
  tokenizerJsonToString,
} from '../src/text/wordpiece_builder.js';
import { BUILDER_FIXTURE_OPTIONS, TEXT_FIXTURES, readCaptionCorpus } from './fixtures/text/captions_corpus.js';

interface TokJson {
  added_tokens: { id: number; content: string }[];
  normalizer: Record<string, unknown>;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type: string; unk_token: string; continuing_subword_prefix: string; max_input_chars_per_word: number; vocab: Record<string, number> };
}

const BUILDER_FILE = join(TEXT_FIXTURES, 'builder-captions', 'tokenizer.json');
const RUST_FILE = join(TEXT_FIXTURES, 'bert-captions', 'tokenizer.json');

const corpus = readCaptionCorpus();
const built = buildWordPieceTokenizer(corpus, BUILDER_FIXTURE_OPTIONS) as TokJson;
const builtText = tokenizerJsonToString(built);
const vocabOf = (j: object) => (j as TokJson).model.vocab;
const tokensById = (j: object) => Object.entries(vocabOf(j)).sort((a, b) => a[1] - b[1]).map(([t]) => t);

if (process.env.UPDATE_TEXT_FIXTURES) saveTokenizer(BUILDER_FILE, built);

const tmp = mkdtempSync(join(tmpdir(), 'vlmoe-wp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('buildWordPieceTokenizer on the caption corpus', () => {
  it('reads the real corpus', () => {
    expect(corpus.length).toBe(650 + 3765);
  });

  it('reproduces the committed fixture byte for byte', () => {
    expect(readFileSync(BUILDER_FILE, 'utf8')).toBe(builtText);
  });

  it('is deterministic and independent of the corpus order', () => {
    expect(tokenizerJsonToString(buildWordPieceTokenizer(corpus, BUILDER_FIXTURE_OPTIONS))).toBe(builtText);
    const shuffled = new Rng(7).shuffle([...corpus]) as string[];
    expect(tokenizerJsonToString(buildWordPieceTokenizer(shuffled, BUILDER_FIXTURE_OPTIONS))).toBe(builtText);
    // an iterable (generator) works as well as an array
    function* gen() {
      yield* corpus;
    }
    expect(tokenizerJsonToString(buildWordPieceTokenizer(gen(), BUILDER_FIXTURE_OPTIONS))).toBe(builtText);
  });

  it('has the layout of a Rust-saved bert tokenizer.json (only the vocabulary differs)', () => {
    const rust = JSON.parse(readFileSync(RUST_FILE, 'utf8')) as TokJson;
    expect(Object.keys(built)).toEqual(Object.keys(rust));
    expect(built.added_tokens).toEqual(rust.added_tokens);
    expect(built.normalizer).toEqual(rust.normalizer);
    expect(built.pre_tokenizer).toEqual(rust.pre_tokenizer);
    expect(built.post_processor).toEqual(rust.post_processor); // same special ids: [CLS]=2, [SEP]=3
    expect(built.decoder).toEqual(rust.decoder);
    const { vocab: _v1, ...modelRest } = built.model;
    const { vocab: _v2, ...rustModelRest } = rust.model;
    expect(Object.keys(built.model)).toEqual(Object.keys(rust.model));
    expect(modelRest).toEqual(rustModelRest);
    expect(built.normalizer).toEqual({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true });
    expect(modelRest).toEqual({ type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100 });
  });

  it('serialises exactly like the Rust library (pretty, vocabulary in id order)', () => {
    const rustText = readFileSync(RUST_FILE, 'utf8');
    expect(tokenizerJsonToString(JSON.parse(rustText) as object)).toBe(rustText);
    expect(JSON.parse(builtText)).toEqual(built);
    const ids = [...builtText.slice(builtText.indexOf('"vocab": {')).matchAll(/^ {6}"(?:[^"\\]|\\.)*": (\d+),?$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual(tokensById(built).map((_, i) => i)); // written in id order, integer-like keys ("1") included
  });

  it('puts the special tokens first, then the alphabet, with contiguous ids', () => {
    const tokens = tokensById(built);
    expect(tokens.length).toBe(BUILDER_FIXTURE_OPTIONS.vocabSize); // the corpus is big enough to fill it
    expect(tokens.slice(0, 5)).toEqual([...DEFAULT_SPECIAL_TOKENS]);
    expect(Object.values(vocabOf(built)).sort((a, b) => a - b)).toEqual(tokens.map((_, i) => i));
    const chars = new Set<string>();
    for (const w of countWords(corpus).keys()) for (const c of w) chars.add(c);
    const alphabet = [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    expect(tokens.slice(5, 5 + alphabet.length)).toEqual(alphabet);
    expect(tokens.slice(5 + alphabet.length, 5 + 2 * alphabet.length)).toEqual(alphabet.map((c) => `##${c}`));
  });

  it('tokenises every corpus word without [UNK]', () => {
    const tok = BertTokenizer.fromJSON(built);
    const words = [...countWords(corpus).keys()];
    expect(words.length).toBeGreaterThan(2500);
    for (const w of words) {
      const pieces = tok.tokenize(w);
      expect(pieces).not.toContain('[UNK]');
      expect(pieces.map((p, i) => (i === 0 ? p : p.replace(/^##/, ''))).join('')).toBe(w);
    }
    // and whole captions
    const batch = tok.encodeBatch(corpus.slice(0, 500), { truncation: false, padding: 'longest' });
    expect(batch.inputIds.includes(tok.unkId)).toBe(false);
  });

  it('makes frequent words single tokens', () => {
    const tok = BertTokenizer.fromJSON(built);
    const byFreq = [...countWords(corpus)].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [w] of byFreq.slice(0, 300)) expect(tok.tokenize(w)).toEqual([w]);
    for (const w of ['dog', 'man', 'woman', 'playing', 'street', 'skateboard', 'snow', 'frisbee']) expect(tok.tokenize(w)).toEqual([w]);
    // a rare word is split into pieces
    expect(tok.tokenize('pterodactyl').length).toBeGreaterThan(1);
  });

  it('respects the vocabulary size cap', () => {
    for (const vocabSize of [5, 6, 40, 120, 300, 1000]) {
      const j = buildWordPieceTokenizer(corpus, { vocabSize });
      const n = Object.keys(vocabOf(j)).length;
      expect(n).toBeLessThanOrEqual(vocabSize);
      const tokens = tokensById(j);
      expect(tokens.slice(0, 5)).toEqual([...DEFAULT_SPECIAL_TOKENS]);
      const tok = BertTokenizer.fromJSON(j);
      expect(tok.vocabSize).toBe(n);
      if (vocabSize >= 300) {
        expect(n).toBe(vocabSize);
        expect(tok.tokenize('a dog runs')).not.toContain('[UNK]');
      }
    }
    // a cap below the alphabet keeps the most frequent characters
    const small = tokensById(buildWordPieceTokenizer(corpus, { vocabSize: 25 }));
    expect(small.length).toBe(25);
    for (const c of ['a', 'e', '##a', '##e']) expect(small).toContain(c);
  });

  it('minFrequency stops the merges', () => {
    const alphabetOnly = tokensById(buildWordPieceTokenizer(corpus, { minFrequency: 1e12 }));
    expect(alphabetOnly.every((t, i) => i < 5 || [...t.replace(/^##/, '')].length === 1)).toBe(true);
    const tiny = ['the cat sat', 'the cat ran', 'a dog'];
    const m2 = tokensById(buildWordPieceTokenizer(tiny, { minFrequency: 2 }));
    expect(m2).toContain('the');
    expect(m2).toContain('cat');
    expect(m2).not.toContain('dog');
    const m1 = tokensById(buildWordPieceTokenizer(tiny, { minFrequency: 1 }));
    expect(m1).toContain('dog');
  });

  it('limitAlphabet keeps the most frequent characters', () => {
    const j = buildWordPieceTokenizer(['aaa bbb ab', 'aab abz', 'q'], { limitAlphabet: 2, minFrequency: 1 });
    const tokens = tokensById(j);
    expect(tokens.slice(5, 9)).toEqual(['a', 'b', '##a', '##b']);
    expect(tokens).not.toContain('z');
    const tok = BertTokenizer.fromJSON(j);
    expect(tok.tokenize('abz q ab')).toEqual(['[UNK]', '[UNK]', 'ab']);
  });

  it('supports cased vocabularies and custom special tokens', () => {
    const j = buildWordPieceTokenizer(['The Dog and the dog', 'Café café'], {
      lowercase: false,
      minFrequency: 1,
      specialTokens: ['[CLS]', '[SEP]', '[UNK]', '[PAD]', '[MASK]', '[unused0]'],
    }) as TokJson;
    expect(j.normalizer.lowercase).toBe(false);
    expect(tokensById(j).slice(0, 6)).toEqual(['[CLS]', '[SEP]', '[UNK]', '[PAD]', '[MASK]', '[unused0]']);
    const tok = BertTokenizer.fromJSON(j);
    expect([tok.clsId, tok.sepId, tok.unkId, tok.padId, tok.maskId]).toEqual([0, 1, 2, 3, 4]);
    expect(tok.tokenize('Dog dog Café')).toEqual(['Dog', 'dog', 'Café']);
    expect(tok.encode('The dog', { padding: false }).ids).toEqual([0, tok.tokenToId('The'), tok.tokenToId('dog'), 1]);
  });

  it('special tokens in the corpus are not counted as words; words over 100 characters are skipped', () => {
    const counts = countWords(['a [MASK] dog [SEP]', 'x'.repeat(150)]);
    expect([...counts.keys()]).toEqual(['a', 'dog', 'x'.repeat(150)]);
    const tokens = tokensById(buildWordPieceTokenizer(['a [MASK] dog', 'y'.repeat(150)], { minFrequency: 1 }));
    expect(tokens).not.toContain('y');
    expect(tokens).toContain('dog');
  });

  it('an empty corpus gives the special tokens only', () => {
    const j = buildWordPieceTokenizer([]);
    expect(tokensById(j)).toEqual([...DEFAULT_SPECIAL_TOKENS]);
    const tok = BertTokenizer.fromJSON(j);
    expect(tok.encode('hello', { padding: false }).ids).toEqual([2, 1, 3]);
  });

  it('rejects bad options and inputs', () => {
    expect(() => buildWordPieceTokenizer([], { specialTokens: ['[PAD]', '[CLS]', '[SEP]'] })).toThrow(/\[UNK\]/);
    expect(() => buildWordPieceTokenizer([], { specialTokens: ['[UNK]', '[UNK]', '[CLS]', '[SEP]'] })).toThrow(/duplicates/);
    expect(() => buildWordPieceTokenizer([], { vocabSize: 3 })).toThrow(/smaller than/);
    expect(() => buildWordPieceTokenizer([], { vocabSize: 0 })).toThrow(RangeError);
    expect(() => buildWordPieceTokenizer([], { minFrequency: -1 })).toThrow(RangeError);
    expect(() => buildWordPieceTokenizer([], { continuingSubwordPrefix: '' })).toThrow(RangeError);
    expect(() => buildWordPieceTokenizer(['ok', 3 as unknown as string])).toThrow(/corpus item 1/);
  });

  it('saveTokenizer writes atomically and the file loads', () => {
    const path = join(tmp, 'vocab', 'tokenizer.json');
    saveTokenizer(path, built);
    expect(readFileSync(path, 'utf8')).toBe(builtText);
    expect(readdirSync(join(tmp, 'vocab'))).toEqual(['tokenizer.json']); // no temp file left behind
    const tok = BertTokenizer.fromFile(path);
    expect(tok.encode('A dog.').ids).toEqual(BertTokenizer.fromJSON(built).encode('A dog.').ids);
    expect(existsSync(BUILDER_FILE)).toBe(true);
  });
});
