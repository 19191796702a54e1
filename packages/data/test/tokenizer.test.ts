/**
 * BertTokenizer against reference encodings made by the Rust HuggingFace `tokenizers` library
 * (test/fixtures/text/make_text_fixtures.py): a tokenizer trained by the Rust WordPieceTrainer
 * on real captions (bert-captions) and the tokenizer.json made by our own builder (builder-captions).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { BertTokenizer, DEFAULT_MAX_TEXT_LEN, TokenizerLoadError, createBertWordSplitter } from '../src/text/tokenizer.js';
import { buildWordPieceTokenizer, saveTokenizer } from '../src/text/wordpiece_builder.js';
import { TEXT_FIXTURES } from './fixtures/text/captions_corpus.js';

interface RustEncoding {
  ids: number[];
  tokens: string[];
  attention_mask: number[];
  special_tokens_mask: number[];
  word_ids: number[];
}
interface RustCase {
  text: string;
  padded: RustEncoding;
  truncated: RustEncoding;
  full: RustEncoding;
  plain: RustEncoding;
  decoded: string;
  decoded_with_specials: string;
}
interface RustFixture {
  max_length: number;
  cases: RustCase[];
  longest_batch: { texts: string[]; encodings: RustEncoding[] };
}

const BERT_DIR = join(TEXT_FIXTURES, 'bert-captions');
const BUILDER_DIR = join(TEXT_FIXTURES, 'builder-captions');

function loadFixture(dir: string): RustFixture {
  return JSON.parse(readFileSync(join(dir, 'encodings.json'), 'utf8')) as RustFixture;
}

const label = (text: string) => JSON.stringify(text.length > 48 ? `${text.slice(0, 45)}...` : text);

describe.each([
  ['Rust-trained bert-captions', BERT_DIR],
  ['our builder (builder-captions)', BUILDER_DIR],
])('BertTokenizer matches Rust tokenizers: %s', (_name, dir) => {
  const fixture = loadFixture(dir);
  const tok = BertTokenizer.fromFile(join(dir, 'tokenizer.json'));
  const cases = fixture.cases.map((c) => [label(c.text), c] as const);

  it('fixture is as expected', () => {
    expect(fixture.max_length).toBe(DEFAULT_MAX_TEXT_LEN);
    expect(fixture.cases.length).toBeGreaterThanOrEqual(60);
    // the fixture covers the cases it should: empty text, > 40 tokens, a word > 100 characters, [UNK]s
    expect(fixture.cases.some((c) => c.text === '')).toBe(true);
    expect(fixture.cases.some((c) => c.full.ids.length > 40)).toBe(true);
    expect(fixture.cases.some((c) => [...c.text].length > 100 && c.text.split(' ').some((w) => w.length > 100))).toBe(true);
    expect(fixture.cases.filter((c) => c.full.ids.includes(tok.unkId)).length).toBeGreaterThan(5);
  });

  it.each(cases)('padded to 40 + truncation (default options): %s', (_l, c) => {
    const e = tok.encode(c.text);
    expect(e.ids).toEqual(c.padded.ids);
    expect(e.attentionMask).toEqual(c.padded.attention_mask);
    expect(e.specialTokensMask).toEqual(c.padded.special_tokens_mask);
    expect(e.wordIds).toEqual(c.padded.word_ids);
  });

  it.each(cases)('no padding, no truncation, with and without special tokens: %s', (_l, c) => {
    const full = tok.encode(c.text, { padding: false, truncation: false });
    expect(full.ids).toEqual(c.full.ids);
    expect(full.attentionMask).toEqual(c.full.attention_mask);
    expect(full.specialTokensMask).toEqual(c.full.special_tokens_mask);
    expect(full.wordIds).toEqual(c.full.word_ids);
    const trunc = tok.encode(c.text, { padding: false });
    expect(trunc.ids).toEqual(c.truncated.ids);
    expect(trunc.wordIds).toEqual(c.truncated.word_ids);
    const plain = tok.encode(c.text, { padding: false, truncation: false, addSpecialTokens: false });
    expect(plain.ids).toEqual(c.plain.ids);
    expect(plain.wordIds).toEqual(c.plain.word_ids);
    expect(plain.specialTokensMask).toEqual(c.plain.special_tokens_mask);
    expect(tok.tokenize(c.text)).toEqual(c.plain.tokens);
    expect(c.full.ids.map((id) => tok.idToToken(id))).toEqual(c.full.tokens);
  });

  it.each(cases)('decode: %s', (_l, c) => {
    expect(tok.decode(c.full.ids)).toBe(c.decoded);
    expect(tok.decode(c.full.ids, false)).toBe(c.decoded_with_specials);
    expect(tok.decode(Int32Array.from(c.padded.ids))).toBe(tok.decode(c.padded.ids, true));
  });

  it('truncation to other lengths keeps [CLS] ... [SEP] and cuts the end of the text (Rust semantics)', () => {
    for (const c of fixture.cases) {
      for (const L of [2, 3, 8, 17]) {
        const e = tok.encode(c.text, { maxLength: L, padding: false });
        const body = c.plain.ids.slice(0, L - 2);
        expect(e.ids).toEqual([tok.clsId, ...body, tok.sepId]);
        expect(e.wordIds).toEqual([-1, ...c.plain.word_ids.slice(0, L - 2), -1]);
        const noSpecial = tok.encode(c.text, { maxLength: L, addSpecialTokens: false });
        expect(noSpecial.ids).toEqual([...c.plain.ids.slice(0, L), ...new Array(Math.max(0, L - c.plain.ids.length)).fill(tok.padId)]);
      }
    }
  });

  it('encodeBatch gives the Rust encodings as [B, 40] typed arrays', () => {
    const batch = tok.encodeBatch(fixture.cases.map((c) => c.text));
    expect(batch.batchSize).toBe(fixture.cases.length);
    expect(batch.length).toBe(40);
    expect(batch.inputIds).toBeInstanceOf(Int32Array);
    expect(batch.attentionMask).toBeInstanceOf(Uint8Array);
    expect(batch.specialTokensMask).toBeInstanceOf(Uint8Array);
    expect(batch.wordIds).toBeInstanceOf(Int32Array);
    fixture.cases.forEach((c, b) => {
      const row = (a: ArrayLike<number>) => Array.from(a as Int32Array).slice(b * 40, (b + 1) * 40);
      expect(row(batch.inputIds)).toEqual(c.padded.ids);
      expect(row(batch.attentionMask)).toEqual(c.padded.attention_mask);
      expect(row(batch.specialTokensMask)).toEqual(c.padded.special_tokens_mask);
      expect(row(batch.wordIds)).toEqual(c.padded.word_ids);
    });
  });

  it("padding 'longest' matches a Rust batch padded to its longest member", () => {
    const { texts, encodings } = fixture.longest_batch;
    const batch = tok.encodeBatch(texts, { padding: 'longest' });
    const L = encodings[0]!.ids.length;
    expect(batch.length).toBe(L);
    expect(L).toBe(40); // the batch holds a text longer than 40 tokens, truncated
    encodings.forEach((e, b) => {
      expect(Array.from(batch.inputIds.subarray(b * L, (b + 1) * L))).toEqual(e.ids);
      expect(Array.from(batch.attentionMask.subarray(b * L, (b + 1) * L))).toEqual(e.attention_mask);
      expect(Array.from(batch.wordIds.subarray(b * L, (b + 1) * L))).toEqual(e.word_ids);
    });
    const short = tok.encodeBatch(texts.slice(0, 3), { padding: 'longest' });
    const longest = Math.max(...texts.slice(0, 3).map((t) => tok.encode(t, { padding: false }).ids.length));
    expect(short.length).toBe(longest);
    expect(longest).toBeLessThan(40);
  });
});

describe('BertTokenizer (bert-captions)', () => {
  const tok = BertTokenizer.fromFile(join(BERT_DIR, 'tokenizer.json'));
  const fixture = loadFixture(BERT_DIR);
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'vlmoe-text-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads special token ids and sizes from the file', () => {
    const vocab = (JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => vocab[t]));
    expect(tok.numSpecialTokensToAdd).toBe(2);
    for (const [t, id] of Object.entries(vocab)) {
      expect(tok.tokenToId(t)).toBe(id);
      expect(tok.idToToken(id)).toBe(t);
    }
    expect(tok.tokenToId('definitely-not-a-token')).toBeUndefined();
    expect(() => tok.idToToken(tok.vocabSize)).toThrow(RangeError);
    expect(() => tok.idToToken(-1)).toThrow(RangeError);
  });

  it('agrees with the plain @huggingface/tokenizers encode on texts without its two known divergences', () => {
    const json = JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer.json'), 'utf8')) as object;
    const lib = new Tokenizer(json, {});
    let compared = 0;
    for (const c of fixture.cases) {
      if (/[\u{20000}-\u{3FFFF}]|Σ/u.test(c.text)) continue; // astral CJK and final sigma: fixed on our side
      expect(tok.encode(c.text, { padding: false, truncation: false }).ids).toEqual(lib.encode(c.text).ids);
      compared++;
    }
    expect(compared).toBeGreaterThan(55);
  });

  it('createBertWordSplitter gives the normalised words of BertNormalizer + BertPreTokenizer', () => {
    const split = createBertWordSplitter();
    expect(split('Café Déjà vu!')).toEqual(['cafe', 'deja', 'vu', '!']);
    expect(split('ΟΔΟΣ 中文x')).toEqual(['οδοσ', '中', '文', 'x']);
    expect(split('a\u{2B920}b')).toEqual(['a', '\u{2B920}', 'b']);
    expect(createBertWordSplitter({ lowercase: false })('Café U.S.')).toEqual(['Café', 'U', '.', 'S', '.']);
  });

  it('decode of an empty id list is empty, invalid ids throw', () => {
    expect(tok.decode([])).toBe('');
    expect(tok.decode([tok.clsId, tok.sepId, tok.padId])).toBe('');
    expect(() => tok.decode([tok.vocabSize])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
  });

  it('padding false: encode does not pad; encodeBatch needs equal lengths', () => {
    expect(tok.encode('a dog', { padding: false }).ids).toEqual([tok.clsId, tok.tokenToId('a'), tok.tokenToId('dog'), tok.sepId]);
    expect(tok.encode('a dog', { padding: 'longest' }).ids.length).toBe(4);
    const same = tok.encodeBatch(['a dog', 'a cat'], { padding: false });
    expect(same.length).toBe(4);
    expect(Array.from(same.attentionMask)).toEqual(new Array(8).fill(1));
    expect(() => tok.encodeBatch(['a dog', 'a black cat'], { padding: false })).toThrow(/lengths differ/);
    const empty = tok.encodeBatch([]);
    expect([empty.batchSize, empty.length, empty.inputIds.length]).toEqual([0, 40, 0]);
  });

  it('truncation false with max_length padding: longer texts keep all tokens and set the batch length', () => {
    const long = fixture.cases.find((c) => c.full.ids.length > 40)!;
    const e = tok.encode(long.text, { truncation: false });
    expect(e.ids).toEqual(long.full.ids);
    const batch = tok.encodeBatch(['a dog', long.text], { truncation: false });
    expect(batch.length).toBe(long.full.ids.length);
    expect(Array.from(batch.inputIds.subarray(batch.length))).toEqual(long.full.ids);
    expect(Array.from(batch.attentionMask.subarray(0, batch.length)).reduce((s, x) => s + x, 0)).toBe(4);
  });

  it('rejects bad options', () => {
    expect(() => tok.encode('a dog', { maxLength: 1 })).toThrow(/special tokens/);
    expect(() => tok.encode('a dog', { maxLength: 0 })).toThrow(RangeError);
    expect(() => tok.encode('a dog', { maxLength: 2.5 })).toThrow(RangeError);
    expect(() => tok.encode('a dog', { padding: 'yes' as never })).toThrow(RangeError);
    expect(tok.encode('a dog', { maxLength: 1, addSpecialTokens: false }).ids).toEqual([tok.tokenToId('a')]);
  });

  it('fromJSON works on a parsed tokenizer.json, and reads special token names from the config', () => {
    const json = JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer.json'), 'utf8')) as object;
    const a = BertTokenizer.fromJSON(json);
    expect(a.encode('a man on a bike').ids).toEqual(tok.encode('a man on a bike').ids);
    const b = BertTokenizer.fromJSON(json, { mask_token: '[UNK]' });
    expect(b.maskId).toBe(tok.unkId);
    expect(b.source).toBe('<json>');
    // config entries in AddedToken form
    expect(BertTokenizer.fromJSON(json, { mask_token: { content: '[PAD]' } }).maskId).toBe(tok.padId);
  });

  it('fromFile reads tokenizer_config.json beside tokenizer.json', () => {
    const dir = join(tmp, 'with-config');
    rmSync(dir, { recursive: true, force: true });
    saveTokenizer(join(dir, 'tokenizer.json'), JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer.json'), 'utf8')) as object);
    expect(BertTokenizer.fromFile(join(dir, 'tokenizer.json')).maskId).toBe(tok.maskId);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ mask_token: '[SEP]' }));
    expect(BertTokenizer.fromFile(join(dir, 'tokenizer.json')).maskId).toBe(tok.sepId);
    writeFileSync(join(dir, 'tokenizer_config.json'), '{ "mask_token": ');
    expect(() => BertTokenizer.fromFile(join(dir, 'tokenizer.json'))).toThrow(join(dir, 'tokenizer_config.json'));
  });

  it('loads a vocabulary made by the builder (fromJSON and via saveTokenizer + fromFile)', () => {
    const json = buildWordPieceTokenizer(['a small dog runs', 'a small cat sleeps', 'dogs and cats'], { vocabSize: 100, minFrequency: 1 });
    const a = BertTokenizer.fromJSON(json);
    saveTokenizer(join(tmp, 'built', 'tokenizer.json'), json);
    const b = BertTokenizer.fromFile(join(tmp, 'built', 'tokenizer.json'));
    expect([a.padId, a.unkId, a.clsId, a.sepId, a.maskId]).toEqual([0, 1, 2, 3, 4]);
    expect(b.encodeBatch(['A small dog!', 'cats'])).toEqual(a.encodeBatch(['A small dog!', 'cats']));
    expect(a.tokenize('A small dog')).toEqual(['a', 'small', 'dog']);
  });

  describe('loading errors name the file', () => {
    const bad = (name: string, content: string | object): string => {
      const dir = join(tmp, name);
      rmSync(dir, { recursive: true, force: true });
      const path = join(dir, 'tokenizer.json');
      saveTokenizer(path, {}); // creates the folder
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    };
    const base = () => JSON.parse(readFileSync(join(BERT_DIR, 'tokenizer.json'), 'utf8')) as {
      added_tokens: { content: string }[];
      model: { type: string; vocab: Record<string, number> };
      post_processor: unknown;
    };

    it('missing file', () => {
      const path = join(tmp, 'nowhere', 'tokenizer.json');
      expect(() => BertTokenizer.fromFile(path)).toThrow(TokenizerLoadError);
      expect(() => BertTokenizer.fromFile(path)).toThrow(`${path} does not exist (expected a tokenizer.json)`);
    });

    it('bad JSON and non-object JSON', () => {
      const p1 = bad('badjson', '{"model": ');
      expect(() => BertTokenizer.fromFile(p1)).toThrow(`${p1}: tokenizer.json is not valid JSON`);
      const p2 = bad('array', '[1, 2]');
      expect(() => BertTokenizer.fromFile(p2)).toThrow(`${p2}: tokenizer.json must contain a JSON object`);
    });

    it('missing [MASK] (and other specials)', () => {
      for (const special of ['[MASK]', '[PAD]', '[CLS]', '[SEP]', '[UNK]']) {
        const j = base();
        delete j.model.vocab[special];
        j.added_tokens = j.added_tokens.filter((t) => t.content !== special);
        const p = bad(`no-${special.slice(1, -1)}`, j);
        expect(() => BertTokenizer.fromFile(p)).toThrow(TokenizerLoadError);
        expect(() => BertTokenizer.fromFile(p)).toThrow(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*"\\[${special.slice(1, -1)}\\]"`));
      }
    });

    it('not a WordPiece tokenizer.json', () => {
      const j = base();
      j.model.type = 'BPE';
      const p = bad('bpe', j);
      expect(() => BertTokenizer.fromFile(p)).toThrow(`${p}: expected a WordPiece model, got "BPE"`);
      const p2 = bad('nomodel', { version: '1.0' });
      expect(() => BertTokenizer.fromFile(p2)).toThrow(`${p2}: not a tokenizer.json: no "model" object`);
      const j3 = base();
      j3.post_processor = { type: 'ByteLevel' };
      const p3 = bad('pp', j3);
      expect(() => BertTokenizer.fromFile(p3)).toThrow(`${p3}: unsupported post-processor "ByteLevel"`);
    });

    it('fromJSON errors name the source', () => {
      expect(() => BertTokenizer.fromJSON({ model: { type: 'WordPiece' } }, {}, 'my-vocab')).toThrow('my-vocab: model.vocab is missing');
    });
  });
});
