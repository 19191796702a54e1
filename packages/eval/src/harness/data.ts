/** Shared plumbing of the harnesses: opening a split, sidecars, batches of text only. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BertTokenizer, DataLoader, type Batch, type DataLoaderOptions } from '@vlmoe/data';

export interface EvalDataOptions {
  /** The Arrow split to evaluate (IPC file format). */
  file: string;
  /** A tokenizer or the path of its tokenizer.json. */
  tokenizer: BertTokenizer | string;
  /** Image side the model expects (default 224). */
  imageSize?: number;
  batchSize?: number;
  maxTextLen?: number;
  /** Image decoding threads (default: the loader's). */
  numWorkers?: number;
  /** Evaluate only the first N batches (smoke runs). */
  limitBatches?: number;
  /** Progress bar (default on; VLMOE_PROGRESS=0 silences). */
  progress?: boolean;
}

export function resolveTokenizer(t: BertTokenizer | string): BertTokenizer {
  return typeof t === 'string' ? BertTokenizer.fromFile(t) : t;
}

/** An evaluation loader: file order, eval transform (plain resize), every sample kept. */
export function openEvalLoader(o: EvalDataOptions, extra: Partial<DataLoaderOptions> = {}): Promise<DataLoader> {
  return DataLoader.create({
    files: o.file,
    batchSize: o.batchSize ?? 32,
    tokenizer: resolveTokenizer(o.tokenizer),
    image: { size: o.imageSize ?? 224, train: false },
    maxTextLen: o.maxTextLen,
    numWorkers: o.numWorkers,
    shuffle: false,
    dropLast: false,
    ...extra,
  });
}

/** `<stem>_<suffix>` beside the file, else `<fallback>` in its folder, else null. */
export function findSidecar(file: string, suffix: string, fallback?: string): string | null {
  const stem = file.replace(/\.arrows?$/, '');
  const a = `${stem}_${suffix}`;
  if (existsSync(a)) return a;
  if (fallback) {
    const b = join(dirname(file), fallback);
    if (existsSync(b)) return b;
  }
  return null;
}

/** A batch holding only tokenised texts (for `encodeTexts`): images are empty. */
export function textOnlyBatch(tokenizer: BertTokenizer, texts: string[], maxTextLen: number | undefined, index: number): Batch {
  const enc = tokenizer.encodeBatch(texts, { maxLength: maxTextLen ?? 40, padding: 'max_length', truncation: true });
  const n = texts.length;
  return {
    size: n,
    epoch: 0,
    index,
    images: new Float32Array(0),
    imageShape: [n, 3, 0, 0],
    textIds: enc.inputIds,
    textMask: enc.attentionMask,
    specialTokensMask: enc.specialTokensMask,
    textShape: [n, enc.length],
    globalRow: Int32Array.from({ length: n }, (_, i) => i),
    globalSize: n,
    fileIndex: new Int32Array(n),
    rowIndex: new Int32Array(n),
    textIndex: new Int32Array(n),
  };
}
