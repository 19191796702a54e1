/**
 * Builds a WordPiece vocabulary from a corpus and returns it as a HuggingFace `tokenizer.json`
 * object in the bert-base-uncased layout, loadable by `BertTokenizer.fromJSON` / `fromFile` and
 * by the Rust `tokenizers` library.
 *
 * Training follows HuggingFace's WordPieceTrainer, which is a BPE trainer whose continuation
 * symbols carry the '##' prefix:
 *  1. normalise and pre-tokenise every text exactly as BERT does (BertNormalizer + BertPreTokenizer:
 *     lowercase, strip accents, split on whitespace and punctuation, CJK characters apart), and
 *     count words;
 *  2. the alphabet is every character of the counted words (optionally the `limitAlphabet` most
 *     frequent ones); each character enters the vocabulary both as a word start ('a') and as a
 *     continuation ('##a'), so every word made of alphabet characters tokenises without [UNK];
 *  3. each word is split into symbols ['w', '##o', '##r', '##d'] and the most frequent adjacent
 *     pair (counted over word frequencies) is merged, repeatedly, into one symbol ('w' + '##o' →
 *     'wo'), until the vocabulary reaches `vocabSize` or no pair occurs `minFrequency` times.
 *     Ties are broken by the lexicographic (UTF-16 code unit) order of the pair's left then right
 *     symbol, so the result depends only on the word counts: it is deterministic and independent
 *     of the order of the corpus.
 * Frequent words end up as single tokens; at inference the WordPiece model matches greedily
 * (longest vocabulary entry first).
 *
 * The vocabulary is: special tokens (ids 0..n-1, in the given order), the alphabet sorted by code
 * point, the '##' alphabet in the same order, then merged symbols in merge order.
 */
import { writeFileAtomicSync } from '@vlmoe/util';
import { createBertWordSplitter, indexAddedTokens, splitOnAddedTokens, type AddedTokenInfo } from './tokenizer.js';

export interface WordPieceBuilderOptions {
  /** Maximum vocabulary size, special tokens included (default 30522; the result may be smaller). */
  vocabSize?: number;
  /** Minimum (frequency-weighted) count of a pair for it to be merged (default 2). */
  minFrequency?: number;
  /** Lowercase and strip accents, like bert-base-uncased (default true). */
  lowercase?: boolean;
  /** Special tokens, given ids 0..n-1 (default ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']); must include [UNK], [CLS] and [SEP]. */
  specialTokens?: string[];
  /** Keep only this many characters (the most frequent) in the alphabet; words with other characters become [UNK]. */
  limitAlphabet?: number;
  /** Prefix of continuation pieces (default '##'). */
  continuingSubwordPrefix?: string;
}

export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/** Words longer than this (in characters) become [UNK] (WordPiece `max_input_chars_per_word`). */
export const MAX_INPUT_CHARS_PER_WORD = 100;

/** Pair keys pack two token ids into one safe integer. */
const KEY_BASE = 2 ** 26;

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpCodePoints(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

/** Max-heap of pair entries: larger count first, then smaller left symbol, then smaller right symbol. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];
  constructor(private readonly before: (countA: number, keyA: number, countB: number, keyB: number) => boolean) {}
  get size(): number {
    return this.keys.length;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(this.counts[i]!, this.keys[i]!, this.counts[p]!, this.keys[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }
  peek(): [number, number] | undefined {
    return this.keys.length ? [this.counts[0]!, this.keys[0]!] : undefined;
  }
  pop(): void {
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    const n = this.keys.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && this.before(this.counts[l]!, this.keys[l]!, this.counts[best]!, this.keys[best]!)) best = l;
      if (r < n && this.before(this.counts[r]!, this.keys[r]!, this.counts[best]!, this.keys[best]!)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }
}

interface ResolvedOptions {
  vocabSize: number;
  minFrequency: number;
  lowercase: boolean;
  specialTokens: string[];
  limitAlphabet: number | undefined;
  prefix: string;
}

function resolve(options: WordPieceBuilderOptions): ResolvedOptions {
  const vocabSize = options.vocabSize ?? 30522;
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize >= KEY_BASE) throw new RangeError(`vocabSize must be an integer in [1, ${KEY_BASE}), got ${vocabSize}`);
  const minFrequency = options.minFrequency ?? 2;
  if (!(minFrequency >= 0) || !Number.isFinite(minFrequency)) throw new RangeError(`minFrequency must be a non-negative number, got ${minFrequency}`);
  const specialTokens = [...(options.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  if (new Set(specialTokens).size !== specialTokens.length) throw new RangeError(`specialTokens has duplicates: ${JSON.stringify(specialTokens)}`);
  for (const t of specialTokens) if (typeof t !== 'string' || t.length === 0) throw new RangeError(`special tokens must be non-empty strings: ${JSON.stringify(specialTokens)}`);
  for (const req of ['[UNK]', '[CLS]', '[SEP]']) if (!specialTokens.includes(req)) throw new RangeError(`specialTokens must include ${req} (the WordPiece unknown token and the [CLS] $A [SEP] template): ${JSON.stringify(specialTokens)}`);
  if (specialTokens.length > vocabSize) throw new RangeError(`vocabSize ${vocabSize} is smaller than the ${specialTokens.length} special tokens`);
  const limitAlphabet = options.limitAlphabet;
  if (limitAlphabet !== undefined && (!Number.isInteger(limitAlphabet) || limitAlphabet < 0)) throw new RangeError(`limitAlphabet must be a non-negative integer, got ${limitAlphabet}`);
  const prefix = options.continuingSubwordPrefix ?? '##';
  if (prefix.length === 0) throw new RangeError('continuingSubwordPrefix must not be empty');
  return { vocabSize, minFrequency, lowercase: options.lowercase ?? true, specialTokens, limitAlphabet, prefix };
}

/** Word counts of a corpus after BERT normalisation and pre-tokenisation (special tokens in the text are not words). */
export function countWords(corpus: Iterable<string>, options: { lowercase?: boolean; specialTokens?: readonly string[] } = {}): Map<string, number> {
  const split = createBertWordSplitter({ lowercase: options.lowercase ?? true });
  const specials: AddedTokenInfo[] = (options.specialTokens ?? DEFAULT_SPECIAL_TOKENS).map((content, id) => ({ id, content, normalized: false, special: true, lstrip: false, rstrip: false }));
  const index = indexAddedTokens(specials, (t) => t.content);
  const counts = new Map<string, number>();
  let n = 0;
  for (const text of corpus) {
    if (typeof text !== 'string') throw new TypeError(`buildWordPieceTokenizer: corpus item ${n} is not a string (${typeof text})`);
    n++;
    for (const section of splitOnAddedTokens(text, index)) {
      if (section.added) continue;
      for (const w of split(section.text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/** Builds a WordPiece tokenizer.json object (bert-base-uncased layout) from a corpus. */
export function buildWordPieceTokenizer(corpus: Iterable<string>, options: WordPieceBuilderOptions = {}): object {
  const o = resolve(options);
  const wordCounts = countWords(corpus, { lowercase: o.lowercase, specialTokens: o.specialTokens });

  // words usable for training: not longer than max_input_chars_per_word (longer ones are [UNK] anyway)
  const words: { chars: string[]; count: number }[] = [];
  const charCounts = new Map<string, number>();
  for (const [w, c] of wordCounts) {
    const chars = [...w];
    if (chars.length > MAX_INPUT_CHARS_PER_WORD) continue;
    words.push({ chars, count: c });
    for (const ch of chars) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
  }

  // alphabet: most frequent characters first when limited (by limitAlphabet or by the vocabulary size)
  let alphabet = [...charCounts.keys()];
  const room = Math.floor((o.vocabSize - o.specialTokens.length) / 2);
  const keep = Math.min(o.limitAlphabet ?? Infinity, room);
  if (alphabet.length > keep) {
    alphabet.sort((a, b) => charCounts.get(b)! - charCounts.get(a)! || cmpCodePoints(a, b));
    alphabet = alphabet.slice(0, keep);
  }
  alphabet.sort(cmpCodePoints);

  const tokens: string[] = [];
  const ids = new Map<string, number>();
  const add = (t: string): number => {
    let id = ids.get(t);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(t);
      ids.set(t, id);
    }
    return id;
  };
  for (const t of o.specialTokens) add(t);
  for (const ch of alphabet) add(ch);
  for (const ch of alphabet) add(o.prefix + ch);

  // symbols of every trainable word (words with characters outside the alphabet are skipped)
  const inAlphabet = new Set(alphabet);
  const wordSyms: number[][] = [];
  const wordFreq: number[] = [];
  for (const { chars, count } of words) {
    if (!chars.every((c) => inAlphabet.has(c))) continue;
    wordSyms.push(chars.map((c, i) => ids.get(i === 0 ? c : o.prefix + c)!));
    wordFreq.push(count);
  }

  // pair statistics
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, syms: number[], sign: 1 | -1, touched: Set<number>): void => {
    for (let i = 0; i + 1 < syms.length; i++) {
      const key = syms[i]! * KEY_BASE + syms[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * wordFreq[w]!);
      touched.add(key);
      if (sign > 0) {
        let s = pairWords.get(key);
        if (!s) pairWords.set(key, (s = new Set()));
        s.add(w);
      }
    }
  };
  const initial = new Set<number>();
  for (let w = 0; w < wordSyms.length; w++) addPairs(w, wordSyms[w]!, 1, initial);

  const before = (ca: number, ka: number, cb: number, kb: number): boolean => {
    if (ca !== cb) return ca > cb;
    const la = tokens[Math.floor(ka / KEY_BASE)]!;
    const lb = tokens[Math.floor(kb / KEY_BASE)]!;
    if (la !== lb) return la < lb;
    return tokens[ka % KEY_BASE]! < tokens[kb % KEY_BASE]!;
  };
  const heap = new PairHeap(before);
  for (const key of initial) heap.push(pairCount.get(key)!, key);

  const prefixLen = o.prefix.length;
  while (tokens.length < o.vocabSize) {
    const top = heap.peek();
    if (!top) break;
    const [count, key] = top;
    heap.pop();
    if (pairCount.get(key) !== count || count <= 0) continue; // stale entry; a fresh one was pushed when it changed
    if (count < o.minFrequency) break;
    const a = Math.floor(key / KEY_BASE);
    const b = key % KEY_BASE;
    const right = tokens[b]!;
    const merged = add(tokens[a]! + (right.startsWith(o.prefix) ? right.slice(prefixLen) : right));

    const touched = new Set<number>();
    const affected = [...(pairWords.get(key) ?? [])].sort((x, y) => x - y);
    for (const w of affected) {
      const old = wordSyms[w]!;
      const next: number[] = [];
      for (let i = 0; i < old.length; i++) {
        if (i + 1 < old.length && old[i] === a && old[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(old[i]!);
      }
      if (next.length === old.length) continue;
      addPairs(w, old, -1, touched);
      addPairs(w, next, 1, touched);
      wordSyms[w] = next;
      // drop the word from the pair index of pairs it no longer contains
      const present = new Set<number>();
      for (let i = 0; i + 1 < next.length; i++) present.add(next[i]! * KEY_BASE + next[i + 1]!);
      for (let i = 0; i + 1 < old.length; i++) {
        const k = old[i]! * KEY_BASE + old[i + 1]!;
        if (!present.has(k)) pairWords.get(k)?.delete(w);
      }
    }
    for (const k of touched) {
      const c = pairCount.get(k)!;
      if (c <= 0) {
        pairCount.delete(k);
        pairWords.delete(k);
      } else heap.push(c, k);
    }
  }

  return tokenizerJson(tokens, o);
}

/** The tokenizer.json object, keys in the order the Rust library writes them. */
function tokenizerJson(tokens: string[], o: ResolvedOptions): object {
  const id = (t: string): number => tokens.indexOf(t);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const special = (t: string, typeId: number) => ({ SpecialToken: { id: t, type_id: typeId } });
  const sequence = (s: 'A' | 'B', typeId: number) => ({ Sequence: { id: s, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: o.specialTokens.map((t) => ({ id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: o.lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]', 0), sequence('A', 0), special('[SEP]', 0)],
      pair: [special('[CLS]', 0), sequence('A', 0), special('[SEP]', 0), sequence('B', 1), special('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [id('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [id('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: o.prefix, cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: o.prefix, max_input_chars_per_word: MAX_INPUT_CHARS_PER_WORD, vocab },
  };
}

/**
 * Pretty JSON like the Rust library's `Tokenizer.save(path, pretty=true)` (2-space indent, no
 * trailing newline), with `model.vocab` written in id order (plain JSON.stringify would move
 * integer-like keys such as "1" to the front).
 */
export function tokenizerJsonToString(tokenizerJson: object): string {
  const write = (v: unknown, indent: string, path: string): string => {
    if (v === null || typeof v !== 'object') {
      const s = JSON.stringify(v);
      if (s === undefined) throw new TypeError(`tokenizerJsonToString: cannot serialise ${typeof v} at ${path || '<root>'}`);
      return s;
    }
    const inner = indent + '  ';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((x, i) => inner + write(x, inner, `${path}[${i}]`)).join(',\n')}\n${indent}]`;
    }
    let entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    if (path === '.model.vocab') entries = entries.sort((x, y) => Number(x[1]) - Number(y[1]));
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, inner, `${path}.${k}`)}`).join(',\n')}\n${indent}}`;
  };
  return write(tokenizerJson, '', '');
}

/** Writes a tokenizer.json atomically (see `tokenizerJsonToString` for the format). */
export function saveTokenizer(path: string, tokenizerJson: object): void {
  writeFileAtomicSync(path, tokenizerJsonToString(tokenizerJson), { mkdir: true });
}
