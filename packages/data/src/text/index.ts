/**
 * ## Text: WordPiece tokenizer, vocabulary builder, MLM masking
 *
 * ```ts
 * import { BertTokenizer, buildWordPieceTokenizer, saveTokenizer, maskTokens } from '@vlmoe/data';
 *
 * // 1. A BERT tokenizer from a HuggingFace tokenizer.json (bert-base-uncased or compatible).
 * //    tokenizer_config.json next to it, if present, names the special tokens.
 * const tok = BertTokenizer.fromFile('models/bert-base-uncased/tokenizer.json');
 *
 * // 2. Or build a WordPiece vocabulary from your own captions (small and synthetic datasets).
 * const json = buildWordPieceTokenizer(captions, { vocabSize: 2000, minFrequency: 2 });
 * saveTokenizer('data/my-vocab/tokenizer.json', json);   // atomic; loadable by Rust/Python tokenizers too
 * const tok2 = BertTokenizer.fromJSON(json);
 *
 * // 3. Encode a batch: [CLS] ... [SEP], truncated and padded to maxLength (default 40).
 * const batch = tok.encodeBatch(['A dog runs on the beach.', 'Two cats.']);
 * // batch.inputIds: Int32Array [B*L], batch.attentionMask / specialTokensMask: Uint8Array,
 * // batch.wordIds: Int32Array (word index within the text, -1 for [CLS]/[SEP]/[PAD])
 *
 * // 4. MLM: 15% of the tokens, 80% [MASK] / 10% random / 10% unchanged, seeded.
 * const { inputIds, labels } = maskTokens(batch, {
 *   maskId: tok.maskId, vocabSize: tok.vocabSize, seed: 42, keys: [epoch, step], wholeWord: true,
 *   numSpecialTokens: 5, // random replacements avoid ids [0, 5) (the special tokens of a built vocabulary)
 * });
 * // labels: original id where selected, -100 elsewhere (CrossEntropyLoss ignore_index)
 * ```
 *
 * **BertTokenizer** uses `@huggingface/tokenizers` (pure JS) for normalisation
 * (BertNormalizer: clean text, CJK characters apart, lowercase, strip accents), pre-tokenisation
 * (whitespace and punctuation), the WordPiece model and decoding; it adds the post-processor's
 * special tokens, truncation (from the end of the text, [CLS]/[SEP] kept), padding (`'max_length'`,
 * `'longest'` or none) and word ids itself. Its output is tested id for id against the Rust
 * `tokenizers` library (ids, attention mask, special-tokens mask, word ids, decoded text) on 60+
 * sentences with accents, punctuation, emoji, CJK, control characters, over-long words and texts.
 * `specialTokensMask` is 1 for the tokens the template adds and for padding, as in Rust; a literal
 * "[MASK]" typed in the text is encoded as the [MASK] token but is not marked special. `vocabSize`
 * is one past the largest id. `decode` drops every special token by default ([UNK] included, as in
 * Rust) and does not apply the extra Python-side `clean_up_tokenization_spaces` pass.
 *
 * **buildWordPieceTokenizer** trains like HuggingFace's WordPieceTrainer: BERT normalisation and
 * pre-tokenisation, word counts, an alphabet of every character both as a word start and as a
 * '##' continuation, then BPE merges of the most frequent adjacent pair (pair counts of at least
 * `minFrequency`, ties broken lexicographically) until `vocabSize`. Special tokens get ids 0..n-1.
 * The result is deterministic (same corpus and options → byte-identical JSON, whatever the order
 * of the corpus), in the exact bert-base-uncased tokenizer.json layout, and tokenises identically
 * in Rust and in `BertTokenizer`. Every corpus word (up to 100 characters, the WordPiece limit)
 * tokenises without [UNK] unless `limitAlphabet` or a tiny `vocabSize` drops characters.
 *
 * **maskTokens** follows DataCollatorForLanguageModeling / DataCollatorForWholeWordMask: tokens
 * (or, with `wholeWord`, words: all pieces sharing a word id) are selected independently with
 * probability `probability`; each selected token is then independently [MASK] / random / kept.
 * Special tokens and padding are never selected; the inputs are not modified. Row b draws from
 * `Rng.forKey(seed, ...keys, b)`, so masks are reproducible and do not depend on the other rows.
 */
export {
  BertTokenizer,
  TokenizerLoadError,
  DEFAULT_MAX_TEXT_LEN,
  createBertWordSplitter,
  type EncodeOptions,
  type EncodedBatch,
  type TextEncoding,
  type BertNormalizerOptions,
} from './tokenizer.js';
export {
  buildWordPieceTokenizer,
  saveTokenizer,
  tokenizerJsonToString,
  DEFAULT_SPECIAL_TOKENS,
  type WordPieceBuilderOptions,
} from './wordpiece_builder.js';
export { maskTokens, MLM_IGNORE_INDEX, type MaskOptions, type MaskableBatch, type MaskedBatch } from './mlm.js';
