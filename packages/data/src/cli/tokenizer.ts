/** `vlmoe-data tokenizer`: a WordPiece tokenizer.json built from the texts of Arrow files. */
import { ArrowReader } from '../arrow/reader.js';
import { buildWordPieceTokenizer, saveTokenizer } from '../text/index.js';
import { DEFAULT_SPECIAL_TOKENS } from '../text/wordpiece_builder.js';
import { intOption, parseCommand, type CliIO } from './command_line.js';

export const TOKENIZER_USAGE = `usage: vlmoe-data tokenizer <out tokenizer.json> <file.arrow>... [--vocab-size N] [--min-frequency N]

Builds a BERT WordPiece vocabulary (HuggingFace tokenizer.json layout) from the captions,
questions or statements of captions / vqa / nlvr2 Arrow files.
  --vocab-size N      tokens in the vocabulary, the 5 special tokens included (default 30522)
  --min-frequency N   least count of a merged pair (default 2)
`;

const TEXT_COLUMN = { captions: 'caption', vqa: 'questions', nlvr2: 'questions' } as const;

export async function tokenizerCommand(argv: string[], io: CliIO): Promise<void> {
  const options = { 'vocab-size': { type: 'string' }, 'min-frequency': { type: 'string' } } as const;
  const a = parseCommand(argv, { name: 'tokenizer', usage: TOKENIZER_USAGE, options, positionals: { min: 2, max: Infinity, what: '<out tokenizer.json> and at least one Arrow file' } }, io);
  if (!a) return;
  const { values: v, usage: fail } = a;
  // at least the special tokens; the builder's keys hold ids below 2^26
  const vocabSize = intOption(v['vocab-size'], 'vocab-size', fail, DEFAULT_SPECIAL_TOKENS.length, 2 ** 26 - 1);
  const minFrequency = intOption(v['min-frequency'], 'min-frequency', fail, 0);
  const [out, ...files] = a.positionals as [string, ...string[]];
  const texts: string[] = [];
  for (const f of files) {
    const r = await ArrowReader.open(f);
    try {
      if (!r.kind) throw new Error(`${f}: not a captions, vqa or nlvr2 file (columns: ${r.schema.fields.map((x) => x.name).join(', ')})`);
      const col = TEXT_COLUMN[r.kind];
      for await (const b of r.batches()) for (let i = 0; i < b.numRows; i++) texts.push(...(b.value(col, i) as string[]));
    } finally {
      await r.close();
    }
  }
  const json = buildWordPieceTokenizer(texts, { vocabSize, minFrequency });
  saveTokenizer(out, json);
  const vocab = (json as { model?: { vocab?: Record<string, number> } }).model?.vocab ?? {};
  io.out(`${out}: WordPiece vocabulary of ${Object.keys(vocab).length} tokens from ${texts.length} texts\n`);
}
