/**
 * BERT-style WordPiece tokenisation on top of `@huggingface/tokenizers` (pure JS).
 *
 * `BertTokenizer` loads a HuggingFace `tokenizer.json` (bert-base-uncased layout: BertNormalizer,
 * BertPreTokenizer, WordPiece model, TemplateProcessing post-processor, WordPiece decoder) and
 * encodes text into fixed-shape typed arrays: input ids, attention mask, special-tokens mask and
 * word ids (for whole-word masking).
 *
 * The normaliser, pre-tokeniser, WordPiece model and decoder of `@huggingface/tokenizers` do the
 * work; this module drives them word by word (the JS library does not report word ids), applies
 * the post-processor template, truncation and padding itself, and corrects two places where the
 * JS library differs from the reference Rust implementation for BertNormalizer (see
 * `rustCompatiblePrePass`). The result is checked token for token against encodings made by the
 * Rust `tokenizers` library (test/fixtures/text).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { readJsonFile as readJson } from '@vlmoe/util';

/**
 * The parts of the `@huggingface/tokenizers` Tokenizer used here. (Its 0.2.0 type declarations use
 * extensionless relative imports, which do not resolve under NodeNext, so TypeScript sees the
 * class as `any`; this interface pins down what we rely on.)
 */
interface HfTokenizer {
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string, options?: { section_index?: number }) => string[]) | null;
  model: ((words: string[]) => string[]) | null;
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
}

function createHfTokenizer(json: object, config: object): HfTokenizer {
  return new Tokenizer(json, config) as HfTokenizer;
}

export interface EncodeOptions {
  /** Maximum sequence length, special tokens included (default 40). */
  maxLength?: number;
  /** 'max_length': pad to maxLength; 'longest': pad to the longest sequence of the batch; false: no padding (default 'max_length'). */
  padding?: 'max_length' | 'longest' | false;
  /** Cut sequences to maxLength (default true); tokens are removed from the end of the text, the special tokens are kept. */
  truncation?: boolean;
  /** Add the post-processor's special tokens ("[CLS] $A [SEP]") (default true). */
  addSpecialTokens?: boolean;
}

export interface EncodedBatch {
  /** Shape of every array below: [batchSize, length], row-major. */
  batchSize: number;
  length: number;
  /** Token ids, padded with padId. */
  inputIds: Int32Array;
  /** 1 for real tokens (including [CLS]/[SEP]), 0 for padding. */
  attentionMask: Uint8Array;
  /** 1 for tokens added by the post-processor ([CLS]/[SEP]) and for padding. */
  specialTokensMask: Uint8Array;
  /** Index of the word each token came from within its text, -1 for special tokens and padding. */
  wordIds: Int32Array;
}

/** One encoded text (`BertTokenizer.encode`). */
export interface TextEncoding {
  ids: number[];
  attentionMask: number[];
  specialTokensMask: number[];
  wordIds: number[];
}

/** The default maximum text length (ViLT/VLMo use 40). */
export const DEFAULT_MAX_TEXT_LEN = 40;

/** Thrown when a tokenizer.json cannot be read, parsed or used; the message names the file. */
export class TokenizerLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerLoadError';
  }
}

/** @internal an added token of a tokenizer.json (shared with the vocabulary builder). */
export interface AddedTokenInfo {
  id: number;
  content: string;
  normalized: boolean;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

interface Piece {
  token: string;
  id: number;
  word: number;
}

/** @internal */
export type Section = { text: string; added: AddedTokenInfo | null };

const DEFAULT_SPECIALS = {
  pad: '[PAD]',
  unk: '[UNK]',
  cls: '[CLS]',
  sep: '[SEP]',
  mask: '[MASK]',
} as const;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** CJK ideograph ranges of the Rust BertNormalizer (`is_chinese_char`), astral planes included. */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * Works around two differences between the JS BertNormalizer and the Rust one: the JS version
 * does not isolate astral-plane CJK ideographs (it looks at UTF-16 code units), and it lowercases
 * the whole string (so a word-final 'Σ' becomes 'ς'), where Rust lowercases each character.
 * Both fixes are idempotent with the library's own normalisation, which runs afterwards.
 */
function rustCompatiblePrePass(text: string, bn: { lowercase: boolean; chinese: boolean }): string {
  let out = '';
  let changed = false;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (bn.chinese && cp > 0xffff && isChineseChar(cp)) {
      out += ` ${ch} `;
      changed = true;
    } else if (bn.lowercase && cp === 0x3a3 /* Σ */) {
      out += '\u03c3';
      changed = true;
    } else out += ch;
  }
  return changed ? out : text;
}

export interface BertNormalizerOptions {
  /** Lowercase (default true). */
  lowercase?: boolean;
  /** Strip accents (NFD, drop non-spacing marks); null (default) follows lowercase. */
  stripAccents?: boolean | null;
  /** Drop control characters and map whitespace to ' ' (default true). */
  cleanText?: boolean;
  /** Put spaces around CJK ideographs (default true). */
  handleChineseChars?: boolean;
}

/**
 * The words BERT sees: BertNormalizer then BertPreTokenizer (split on whitespace and punctuation),
 * as in `@huggingface/tokenizers` with the Rust-compatibility fixes. Used by the vocabulary builder.
 */
export function createBertWordSplitter(options: BertNormalizerOptions = {}): (text: string) => string[] {
  const normalizer = {
    type: 'BertNormalizer',
    clean_text: options.cleanText ?? true,
    handle_chinese_chars: options.handleChineseChars ?? true,
    strip_accents: options.stripAccents ?? null,
    lowercase: options.lowercase ?? true,
  };
  // the library's BertNormalizer and BertPreTokenizer, by way of a Tokenizer with an empty vocabulary
  const hf = createHfTokenizer(
    {
      added_tokens: [],
      normalizer,
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', vocab: { '[UNK]': 0 } },
    },
    {},
  );
  const fixes = { lowercase: normalizer.lowercase, chinese: normalizer.handle_chinese_chars };
  return (text: string) => hf.pre_tokenizer!(hf.normalizer!(rustCompatiblePrePass(text, fixes)));
}

/** @internal Splits `text` at the added tokens of `tokens` (leftmost-longest match, like the Rust aho-corasick matcher). */
export function splitOnAddedTokens(text: string, byFirstChar: Map<string, AddedTokenInfo[]>): Section[] {
  if (byFirstChar.size === 0 || text.length === 0) return text.length ? [{ text, added: null }] : [];
  const out: Section[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const candidates = byFirstChar.get(text[i]!);
    let match: AddedTokenInfo | undefined;
    if (candidates) for (const c of candidates) if (text.startsWith(c.content, i)) { match = c; break; } // sorted longest first
    if (match) {
      if (i > start) out.push({ text: text.slice(start, i), added: null });
      out.push({ text: match.content, added: match });
      i += match.content.length;
      start = i;
    } else i++;
  }
  if (start < text.length) out.push({ text: text.slice(start), added: null });
  // lstrip / rstrip: the token swallows the whitespace next to it
  for (let k = 0; k < out.length; k++) {
    const a = out[k]!.added;
    if (!a) continue;
    if (a.lstrip && k > 0 && !out[k - 1]!.added) out[k - 1]!.text = out[k - 1]!.text.trimEnd();
    if (a.rstrip && k + 1 < out.length && !out[k + 1]!.added) out[k + 1]!.text = out[k + 1]!.text.trimStart();
  }
  return out.filter((s) => s.text.length > 0);
}

/** @internal Added tokens by first character, longest first. */
export function indexAddedTokens(tokens: AddedTokenInfo[], contentOf: (t: AddedTokenInfo) => string): Map<string, AddedTokenInfo[]> {
  const m = new Map<string, AddedTokenInfo[]>();
  for (const t of tokens) {
    const content = contentOf(t);
    if (!content) continue;
    const entry = { ...t, content };
    const list = m.get(content[0]!) ?? [];
    list.push(entry);
    m.set(content[0]!, list);
  }
  for (const list of m.values()) list.sort((a, b) => b.content.length - a.content.length || (a.content < b.content ? -1 : 1));
  return m;
}

/** Template items before and after sequence $A, as token ids. */
interface SingleTemplate {
  prefix: number[];
  suffix: number[];
}

export class BertTokenizer {
  /** One past the largest token id (size of an embedding table for this vocabulary). */
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  /** Where the tokenizer came from (a path, or '<json>'), used in error messages. */
  readonly source: string;

  private readonly hf: HfTokenizer;
  private readonly idToTokenTable: (string | undefined)[];
  private readonly tokenToIdMap: Map<string, number>;
  private readonly rawAdded: Map<string, AddedTokenInfo[]>;
  private readonly normalizedAdded: Map<string, AddedTokenInfo[]>;
  private readonly template: SingleTemplate;
  private readonly bertNormalizer: { lowercase: boolean; chinese: boolean } | null;

  private constructor(json: Json, config: Json, source: string) {
    this.source = source;
    const fail = (msg: string, cause?: unknown): never => {
      throw new TokenizerLoadError(`${source}: ${msg}`, cause === undefined ? undefined : { cause });
    };

    const model = json.model;
    if (!isObject(model)) fail('not a tokenizer.json: no "model" object');
    const m = model as Json;
    if (m.type !== 'WordPiece') fail(`expected a WordPiece model, got ${JSON.stringify(m.type ?? null)}`);
    if (!isObject(m.vocab)) fail('model.vocab is missing or not an object');
    const addedRaw = json.added_tokens ?? [];
    if (!Array.isArray(addedRaw)) fail('"added_tokens" is not an array');
    const added: AddedTokenInfo[] = [];
    for (const t of addedRaw as unknown[]) {
      if (!isObject(t) || typeof t.content !== 'string' || !Number.isInteger(t.id)) fail(`bad added token ${JSON.stringify(t)}`);
      const tt = t as Json;
      const special = tt.special === true;
      added.push({
        id: tt.id as number,
        content: tt.content as string,
        special,
        normalized: typeof tt.normalized === 'boolean' ? tt.normalized : !special,
        lstrip: tt.lstrip === true,
        rstrip: tt.rstrip === true,
      });
    }

    // The JS library needs all five top-level keys and an added_tokens array; WordPiece needs continuing_subword_prefix.
    const hfJson: Json = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...json,
      added_tokens: addedRaw,
      model: { continuing_subword_prefix: '##', unk_token: DEFAULT_SPECIALS.unk, max_input_chars_per_word: 100, ...m },
    };
    const hf = ((): HfTokenizer => {
      try {
        return createHfTokenizer(hfJson, config);
      } catch (e) {
        return fail(`cannot build tokenizer: ${(e as Error).message}`, e);
      }
    })();
    this.hf = hf;

    // id <-> token tables (model vocab + added tokens)
    this.tokenToIdMap = new Map();
    for (const [tok, id] of Object.entries(m.vocab as Json)) {
      if (!Number.isInteger(id) || (id as number) < 0) fail(`model.vocab[${JSON.stringify(tok)}] is not a non-negative integer`);
      this.tokenToIdMap.set(tok, id as number);
    }
    for (const a of added) this.tokenToIdMap.set(a.content, a.id);
    let maxId = -1;
    for (const id of this.tokenToIdMap.values()) if (id > maxId) maxId = id;
    if (maxId < 0) fail('empty vocabulary');
    this.vocabSize = maxId + 1;
    this.idToTokenTable = new Array<string | undefined>(this.vocabSize);
    for (const [tok, id] of this.tokenToIdMap) if (this.idToTokenTable[id] === undefined || added.some((a) => a.id === id && a.content === tok)) this.idToTokenTable[id] = tok;

    // special tokens: names from tokenizer_config.json when present, else the BERT defaults
    const name = (key: string, dflt: string): string => {
      const v = config[key];
      if (typeof v === 'string') return v;
      if (isObject(v) && typeof v.content === 'string') return v.content; // AddedToken-style entry
      return dflt;
    };
    const idOf = (what: string, token: string): number => {
      const id = this.tokenToIdMap.get(token);
      if (id === undefined) fail(`${what} token ${JSON.stringify(token)} is not in the vocabulary`);
      return id!;
    };
    const unkToken = typeof m.unk_token === 'string' ? m.unk_token : name('unk_token', DEFAULT_SPECIALS.unk);
    this.unkId = idOf('unknown', unkToken);
    this.padId = idOf('padding', name('pad_token', DEFAULT_SPECIALS.pad));
    this.clsId = idOf('classifier', name('cls_token', DEFAULT_SPECIALS.cls));
    this.sepId = idOf('separator', name('sep_token', DEFAULT_SPECIALS.sep));
    this.maskId = idOf('mask', name('mask_token', DEFAULT_SPECIALS.mask));

    this.rawAdded = indexAddedTokens(added.filter((a) => !a.normalized || hf.normalizer === null), (a) => a.content);
    this.normalizedAdded = indexAddedTokens(added.filter((a) => a.normalized && hf.normalizer !== null), (a) => hf.normalizer!(a.content));

    this.template = this.parseTemplate(json.post_processor, fail);

    const norm = json.normalizer;
    this.bertNormalizer =
      isObject(norm) && norm.type === 'BertNormalizer'
        ? { lowercase: norm.lowercase === true, chinese: norm.handle_chinese_chars === true } // the JS library's own (truthy) reading
        : null;
  }

  private parseTemplate(pp: unknown, fail: (msg: string) => never): SingleTemplate {
    if (pp === null || pp === undefined) return { prefix: [], suffix: [] };
    if (!isObject(pp)) fail('"post_processor" is not an object');
    const p = pp as Json;
    const idsOf = (name: string, explicit?: unknown): number[] => {
      if (Array.isArray(explicit) && explicit.every((x) => Number.isInteger(x))) return explicit as number[];
      const id = this.tokenToIdMap.get(name);
      if (id === undefined) fail(`post-processor token ${JSON.stringify(name)} is not in the vocabulary`);
      return [id!];
    };
    if (p.type === 'TemplateProcessing') {
      if (!Array.isArray(p.single)) fail('TemplateProcessing without a "single" template');
      const specials = isObject(p.special_tokens) ? p.special_tokens : {};
      const prefix: number[] = [];
      const suffix: number[] = [];
      let seenA = false;
      for (const item of p.single as unknown[]) {
        if (isObject(item) && isObject(item.SpecialToken)) {
          const name = String(item.SpecialToken.id);
          const spec = (specials as Json)[name];
          const ids = idsOf(name, isObject(spec) ? spec.ids : undefined);
          (seenA ? suffix : prefix).push(...ids);
        } else if (isObject(item) && isObject(item.Sequence)) {
          if (item.Sequence.id !== 'A') fail(`single template refers to sequence ${JSON.stringify(item.Sequence.id)}`);
          seenA = true;
        } else fail(`bad template item ${JSON.stringify(item)}`);
      }
      if (!seenA) fail('single template has no $A');
      return { prefix, suffix };
    }
    if (p.type === 'BertProcessing') {
      const cls = p.cls as [string, number];
      const sep = p.sep as [string, number];
      return { prefix: [cls[1]], suffix: [sep[1]] };
    }
    return fail(`unsupported post-processor ${JSON.stringify(p.type)} (expected TemplateProcessing or BertProcessing)`);
  }

  /** Reads `tokenizer.json` (and `tokenizer_config.json` beside it, if present). */
  static fromFile(path: string): BertTokenizer {
    const json = readJsonFile(path, 'tokenizer.json');
    const configPath = join(dirname(path), 'tokenizer_config.json');
    const config = existsSync(configPath) ? readJsonFile(configPath, 'tokenizer_config.json') : {};
    return new BertTokenizer(json, config, path);
  }

  /** From an already parsed tokenizer.json object (e.g. the output of `buildWordPieceTokenizer`). */
  static fromJSON(json: object, config: object = {}, source = '<json>'): BertTokenizer {
    if (!isObject(json)) throw new TokenizerLoadError(`${source}: tokenizer.json must be a JSON object`);
    if (!isObject(config)) throw new TokenizerLoadError(`${source}: tokenizer config must be a JSON object`);
    return new BertTokenizer(json, config, source);
  }

  /** Number of special tokens the post-processor adds to one sequence ([CLS] and [SEP]: 2). */
  get numSpecialTokensToAdd(): number {
    return this.template.prefix.length + this.template.suffix.length;
  }

  /** Word pieces of one text, without special tokens, each with its word index. */
  private pieces(text: string): Piece[] {
    const hf = this.hf;
    const out: Piece[] = [];
    let word = 0;
    const sections = splitOnAddedTokens(text, this.rawAdded);
    sections.forEach((section, sectionIndex) => {
      if (section.added) {
        out.push({ token: section.added.content, id: section.added.id, word: word++ });
        return;
      }
      let normalized = this.bertNormalizer ? rustCompatiblePrePass(section.text, this.bertNormalizer) : section.text;
      if (hf.normalizer) normalized = hf.normalizer(normalized);
      for (const sub of splitOnAddedTokens(normalized, this.normalizedAdded)) {
        if (sub.added) {
          out.push({ token: sub.added.content, id: sub.added.id, word: word++ });
          continue;
        }
        const words: string[] = hf.pre_tokenizer ? hf.pre_tokenizer(sub.text, { section_index: sectionIndex }) : [sub.text];
        for (const w of words) {
          if (w.length === 0) continue;
          const toks: string[] = hf.model!([w]);
          for (const t of toks) out.push({ token: t, id: this.tokenToIdMap.get(t) ?? this.unkId, word });
          word++;
        }
      }
    });
    return out;
  }

  /** WordPiece tokens of `text` (normalised, no special tokens), e.g. ['a', 'play', '##house']. */
  tokenize(text: string): string[] {
    return this.pieces(text).map((p) => p.token);
  }

  /** Encodes one text; padding 'max_length' pads to maxLength, 'longest' and false do not pad. */
  encode(text: string, options: EncodeOptions = {}): TextEncoding {
    const { maxLength, padding, truncation, addSpecialTokens } = resolveOptions(options);
    const e = this.encodeOne(text, maxLength, truncation, addSpecialTokens);
    if (padding === 'max_length' && e.ids.length < maxLength) {
      const n = maxLength - e.ids.length;
      for (let i = 0; i < n; i++) {
        e.ids.push(this.padId);
        e.attentionMask.push(0);
        e.specialTokensMask.push(1);
        e.wordIds.push(-1);
      }
    }
    return e;
  }

  private encodeOne(text: string, maxLength: number, truncation: boolean, addSpecialTokens: boolean): TextEncoding {
    if (typeof text !== 'string') throw new TypeError(`BertTokenizer.encode: expected a string, got ${typeof text}`);
    let pieces = this.pieces(text);
    const { prefix, suffix } = addSpecialTokens ? this.template : { prefix: [], suffix: [] };
    if (truncation) {
      const budget = maxLength - prefix.length - suffix.length;
      if (budget < 0) throw new RangeError(`maxLength ${maxLength} is smaller than the ${prefix.length + suffix.length} special tokens`);
      if (pieces.length > budget) pieces = pieces.slice(0, budget);
    }
    const n = prefix.length + pieces.length + suffix.length;
    const ids: number[] = new Array(n);
    const specialTokensMask: number[] = new Array(n);
    const wordIds: number[] = new Array(n);
    let k = 0;
    for (const id of prefix) { ids[k] = id; specialTokensMask[k] = 1; wordIds[k++] = -1; }
    for (const p of pieces) { ids[k] = p.id; specialTokensMask[k] = 0; wordIds[k++] = p.word; }
    for (const id of suffix) { ids[k] = id; specialTokensMask[k] = 1; wordIds[k++] = -1; }
    return { ids, attentionMask: new Array<number>(n).fill(1), specialTokensMask, wordIds };
  }

  /**
   * Encodes a batch into [batchSize, length] typed arrays. length is maxLength for 'max_length'
   * padding (or the longest sequence, if truncation is off and one is longer), the longest
   * sequence for 'longest', and the common length for padding false (an error if lengths differ).
   */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): EncodedBatch {
    const { maxLength, padding, truncation, addSpecialTokens } = resolveOptions(options);
    const encs = texts.map((t) => this.encodeOne(t, maxLength, truncation, addSpecialTokens));
    let longest = 0;
    for (const e of encs) longest = Math.max(longest, e.ids.length);
    let length: number;
    if (padding === 'max_length') length = Math.max(maxLength, longest);
    else if (padding === 'longest') length = longest;
    else {
      length = encs.length ? encs[0]!.ids.length : 0;
      const bad = encs.findIndex((e) => e.ids.length !== length);
      if (bad >= 0) throw new RangeError(`encodeBatch: padding is off but sequence lengths differ (${length} vs ${encs[bad]!.ids.length} at index ${bad}); use padding 'longest' or 'max_length'`);
    }
    const B = encs.length;
    const inputIds = new Int32Array(B * length).fill(this.padId);
    const attentionMask = new Uint8Array(B * length);
    const specialTokensMask = new Uint8Array(B * length).fill(1);
    const wordIds = new Int32Array(B * length).fill(-1);
    for (let b = 0; b < B; b++) {
      const e = encs[b]!;
      const off = b * length;
      inputIds.set(e.ids, off);
      attentionMask.fill(1, off, off + e.ids.length);
      specialTokensMask.set(e.specialTokensMask, off);
      wordIds.set(e.wordIds, off);
    }
    return { batchSize: B, length, inputIds, attentionMask, specialTokensMask, wordIds };
  }

  /**
   * Text from token ids through the WordPiece decoder ('##' pieces joined, cleanup of spaces
   * before punctuation), like Rust `Tokenizer.decode`. skipSpecialTokens (default true) drops every
   * special added token ([PAD], [UNK], [CLS], [SEP], [MASK]).
   */
  decode(ids: ArrayLike<number>, skipSpecialTokens = true): string {
    const list: number[] = Array.from(ids, (x) => Number(x));
    for (const id of list) if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idToTokenTable[id] === undefined) throw new RangeError(`decode: invalid token id ${id} (vocabulary size ${this.vocabSize})`);
    if (list.length === 0) return '';
    return this.hf.decode(list, { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  idToToken(id: number): string {
    const t = Number.isInteger(id) && id >= 0 ? this.idToTokenTable[id] : undefined;
    if (t === undefined) throw new RangeError(`idToToken: invalid token id ${id} (vocabulary size ${this.vocabSize})`);
    return t;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }
}

function resolveOptions(o: EncodeOptions): Required<EncodeOptions> {
  const maxLength = o.maxLength ?? DEFAULT_MAX_TEXT_LEN;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
  const padding = o.padding ?? 'max_length';
  if (padding !== 'max_length' && padding !== 'longest' && padding !== false) throw new RangeError(`padding must be 'max_length', 'longest' or false, got ${String(padding)}`);
  return { maxLength, padding, truncation: o.truncation ?? true, addSpecialTokens: o.addSpecialTokens ?? true };
}

function readJsonFile(path: string, what: string): Json {
  let parsed: unknown;
  try {
    parsed = readJson(path, what);
  } catch (e) {
    throw new TokenizerLoadError((e as Error).message, { cause: e });
  }
  if (!isObject(parsed)) throw new TokenizerLoadError(`${path}: ${what} must contain a JSON object`);
  return parsed;
}
