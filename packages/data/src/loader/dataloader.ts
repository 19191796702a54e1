/**
 * `DataLoader`: batches of fixed-shape typed arrays from ViLT/VLMo Arrow files.
 *
 * - Samples: one per caption (captions files), per question (VQA) or per statement (NLVR2),
 *   as ViLT/VLMo enumerate them.
 * - Order: a seeded permutation per epoch shared by all ranks, sharded like torch's
 *   `DistributedSampler`; the same seed gives the same batches on any machine.
 * - Images are decoded and augmented in a worker pool (`ImagePool`); `prefetch` batches are
 *   assembled ahead, so a consumer that is slower than the pool never waits. Augmentation
 *   randomness comes from (seed, epoch, file, row, text index, image slot), never from which worker ran it.
 * - Text: tokenised to `maxTextLen` with attention masks; optional MLM masking (seeded).
 * - Resumable: `stateDict()` records the epoch and the batches consumed; `loadStateDict()`
 *   makes the next batch the one that would have come next.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ArrowReader, type BatchView } from '../arrow/reader.js';
import type { DatasetKind } from '../arrow/schemas.js';
import { AnswerVocab } from '../vqa/answers.js';
import { BatchCache } from './batch_cache.js';
import { DistributedSampler } from './sampler.js';
import { ImagePool, type ImageJob, type ImageTransformSpec } from '../image/index.js';
import type { EncodedBatch, EncodeOptions } from '../text/tokenizer.js';
import { maskTokens } from '../text/mlm.js';

/** What the loader needs from a tokenizer (`BertTokenizer` fits). */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly maskId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  encodeBatch(texts: readonly string[], options?: EncodeOptions): EncodedBatch;
}

export interface DataLoaderOptions {
  /** One or more Arrow IPC files (file format) of the same kind. */
  files: string | string[];
  batchSize: number;
  tokenizer: TextTokenizer;
  /** Image size and augmentation (default: 224, train augmentation when `shuffle`). */
  image?: Partial<ImageTransformSpec>;
  /** Tokens per text (default 40). */
  maxTextLen?: number;
  shuffle?: boolean;
  seed?: number;
  rank?: number;
  worldSize?: number;
  /** Drop the last incomplete batch (default: true when shuffling, else false). */
  dropLast?: boolean;
  /** Image worker threads (default min(4, cores); 0 decodes in this thread). */
  numWorkers?: number;
  /** Batches assembled ahead of the consumer (default 2). */
  prefetch?: number;
  /** MLM masking of the text (pretraining): probability (0.15) and whole-word masking. */
  mlm?: { probability?: number; wholeWord?: boolean } | false;
  /** VQA: number of answers (default: from the `<stem>_answers.json` or `answers.json` beside the first file). */
  numAnswers?: number;
  /** A corrupt image: `'throw'` (default) stops with the file/row; `'skip'` drops the sample and counts it. */
  onImageError?: 'throw' | 'skip';
  /** Upper bound on cached record batches, in bytes (default 512 MiB). */
  cacheBytes?: number;
  /**
   * What one sample is: `'text'` (default) — one per caption/question/statement, as training
   * uses; `'row'` — one per row with its first text (e.g. each image once, for retrieval).
   */
  unit?: 'text' | 'row';
}

export interface Batch {
  /** Samples in this batch (≤ batchSize; smaller for a final partial batch or skipped images). */
  size: number;
  /** Epoch and index of this batch within the epoch (for this rank). */
  epoch: number;
  index: number;
  /** `[size, 3, H, W]` normalised pixels (a Float32Array over a SharedArrayBuffer the workers wrote into). */
  images: Float32Array;
  imageShape: [number, number, number, number];
  /** NLVR2: the second image of each pair, `[size, 3, H, W]`. */
  images2?: Float32Array;
  /** `[size, L]` token ids, attention mask (1 = real token), special-token mask. */
  textIds: Int32Array;
  textMask: Uint8Array;
  specialTokensMask: Uint8Array;
  textShape: [number, number];
  /** Pretraining with `mlm`: masked ids and labels (-100 where not masked). */
  mlmIds?: Int32Array;
  mlmLabels?: Int32Array;
  /** VQA: `[size, numAnswers]` soft scores, and the question ids. */
  vqaTargets?: Float32Array;
  questionIds?: Float64Array;
  /** NLVR2: 1 for "True", 0 for "False". */
  labels?: Int32Array;
  /**
   * Where each row sits in the global batch — every rank's batch `index` of this epoch taken
   * together, dealt the way the sampler deals (row j of rank r is global row j·W + r) — and
   * that global batch's size. One process with batch B·W sees the same samples as W ranks
   * with batch B, with row i at global row i. Randomness that must not depend on the layout
   * (MLM masks, hard negatives, drop path) is keyed on it.
   */
  globalRow: Int32Array;
  globalSize: number;
  /** Where each sample came from: file index, global row, and caption/question index. */
  fileIndex: Int32Array;
  rowIndex: Int32Array;
  textIndex: Int32Array;
  /**
   * Give the image buffers back to the loader for reuse once you are done with them (e.g.
   * after copying them into tensors). Optional — without it each batch gets fresh memory —
   * but reuse saves the page faults of fresh buffers (≈ 30% of the CPU time per image here).
   * The batch's `images`/`images2` must not be read afterwards.
   */
  release?: () => void;
}

export interface DataLoaderState {
  epoch: number;
  /** Batches of `epoch` already consumed on this rank. */
  batchIndex: number;
  seed: number;
  numSamples: number;
  rank: number;
  worldSize: number;
  batchSize: number;
}

interface SampleIndex {
  file: Int32Array;
  row: Int32Array;
  sub: Int32Array;
}

const TEXT_COLUMN: Record<DatasetKind, string> = { captions: 'caption', vqa: 'questions', nlvr2: 'questions' };

function findAnswerCount(file: string): number {
  const stem = file.replace(/\.arrows?$/, '');
  for (const p of [`${stem}_answers.json`, join(dirname(file), 'answers.json')]) if (existsSync(p)) return AnswerVocab.load(p).size;
  throw new Error(`DataLoader: VQA needs the answer count: pass numAnswers, or put ${stem}_answers.json or answers.json beside ${file}`);
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly kind: DatasetKind;
  readonly files: string[];
  readonly numSamples: number;
  readonly batchSize: number;
  readonly sampler: DistributedSampler;
  readonly imageSpec: ImageTransformSpec;
  readonly maxTextLen: number;
  readonly numAnswers: number;
  private epochNow = 0;
  private consumed = 0;
  private closed = false;
  private readonly pool: ImagePool;
  private readonly cache: BatchCache;
  /** Released image buffers by byte length, reused by later batches. */
  private readonly freeBuffers = new Map<number, SharedArrayBuffer[]>();

  private constructor(
    private readonly options: DataLoaderOptions,
    private readonly readers: ArrowReader[],
    private readonly index: SampleIndex,
    kind: DatasetKind,
    numAnswers: number,
  ) {
    this.kind = kind;
    this.files = readers.map((r) => r.path);
    this.numSamples = index.file.length;
    this.batchSize = options.batchSize;
    const shuffle = options.shuffle ?? true;
    this.sampler = new DistributedSampler({ numSamples: this.numSamples, shuffle, seed: options.seed ?? 0, rank: options.rank, worldSize: options.worldSize, dropLast: false });
    this.imageSpec = { size: 224, train: shuffle, ...options.image } as ImageTransformSpec;
    this.maxTextLen = options.maxTextLen ?? 40;
    this.numAnswers = numAnswers;
    this.pool = new ImagePool({ numWorkers: options.numWorkers, spec: this.imageSpec, seed: options.seed ?? 0, onError: options.onImageError ?? 'throw' });
    this.cache = new BatchCache(readers, options.cacheBytes);
  }

  /** Open the files, check they hold one kind, and index their samples (one pass over each file's batches). */
  static async create(options: DataLoaderOptions): Promise<DataLoader> {
    const files = typeof options.files === 'string' ? [options.files] : [...options.files];
    if (files.length === 0) throw new Error('DataLoader: no files given');
    if (!(Number.isInteger(options.batchSize) && options.batchSize >= 1)) throw new RangeError(`DataLoader: batchSize must be an integer ≥ 1, got ${options.batchSize}`);
    if (!options.tokenizer) throw new Error('DataLoader: a tokenizer is required (BertTokenizer.fromFile(path))');
    if (options.unit !== undefined && options.unit !== 'text' && options.unit !== 'row') throw new Error(`DataLoader: unit must be 'text' or 'row', got '${String(options.unit)}'`);
    const readers: ArrowReader[] = [];
    try {
      for (const f of files) {
        const r = await ArrowReader.open(f);
        readers.push(r);
        if (r.format !== 'file') throw new Error(`${f}: the DataLoader needs random access, i.e. the Arrow IPC file format; this is a stream (rewrite it as a file: vlmoe-data convert --to-file ${f} <out.arrow>, or rewriteAsArrowFile() in code)`);
        if (!r.kind) throw new Error(`${f}: not a captions, vqa or nlvr2 file (columns: ${r.schema.fields.map((x) => x.name).join(', ')})`);
        if (r.kind !== readers[0]!.kind) throw new Error(`DataLoader: ${f} is a ${r.kind} file but ${files[0]} is a ${readers[0]!.kind} file`);
      }
      const kind = readers[0]!.kind!;
      const col = TEXT_COLUMN[kind];
      const file: number[] = [];
      const row: number[] = [];
      const sub: number[] = [];
      for (let fi = 0; fi < readers.length; fi++) {
        for await (const view of readers[fi]!.batches()) {
          for (let i = 0; i < view.numRows; i++) {
            const n = options.unit === 'row' ? 1 : view.listLength(col, i);
            for (let k = 0; k < n; k++) {
              file.push(fi);
              row.push(view.firstRow + i);
              sub.push(k);
            }
          }
        }
      }
      if (file.length === 0) throw new Error(`DataLoader: ${files.join(', ')} hold no samples`);
      const numAnswers = kind === 'vqa' ? options.numAnswers ?? findAnswerCount(files[0]!) : 0;
      return new DataLoader(options, readers, { file: Int32Array.from(file), row: Int32Array.from(row), sub: Int32Array.from(sub) }, kind, numAnswers);
    } catch (e) {
      await Promise.all(readers.map((r) => r.close()));
      throw e;
    }
  }

  get dropLast(): boolean {
    return this.options.dropLast ?? this.sampler.shuffle;
  }

  /** Batches per epoch on this rank. */
  get batchesPerEpoch(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  get epoch(): number {
    return this.epochNow;
  }

  /** Images skipped so far (with `onImageError: 'skip'`). */
  get skipped(): { count: number; examples: string[] } {
    return this.pool.skipped;
  }

  stateDict(): DataLoaderState {
    return {
      epoch: this.epochNow,
      batchIndex: this.consumed,
      seed: this.sampler.seed,
      numSamples: this.numSamples,
      rank: this.sampler.rank,
      worldSize: this.sampler.worldSize,
      batchSize: this.batchSize,
    };
  }

  /** Continue exactly where a saved loader stopped (same files, seed, world and batch size). */
  loadStateDict(s: DataLoaderState): void {
    const mismatch = (['seed', 'numSamples', 'rank', 'worldSize', 'batchSize'] as const).filter((k) => {
      const mine = k === 'batchSize' ? this.batchSize : k === 'numSamples' ? this.numSamples : this.sampler[k];
      return s[k] !== mine;
    });
    if (mismatch.length > 0) {
      throw new Error(`DataLoader.loadStateDict: the saved loader differs in ${mismatch.map((k) => `${k} (saved ${s[k]}, now ${k === 'batchSize' ? this.batchSize : k === 'numSamples' ? this.numSamples : this.sampler[k]})`).join(', ')}`);
    }
    if (!(Number.isInteger(s.epoch) && s.epoch >= 0 && Number.isInteger(s.batchIndex) && s.batchIndex >= 0 && s.batchIndex <= this.batchesPerEpoch)) {
      throw new RangeError(`DataLoader.loadStateDict: bad position epoch ${s.epoch} batch ${s.batchIndex} (batches per epoch: ${this.batchesPerEpoch})`);
    }
    this.epochNow = s.epoch;
    this.consumed = s.batchIndex;
  }

  /** Iterate the rest of the current epoch; afterwards the loader stands at the next epoch's start. */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    if (this.closed) throw new Error('DataLoader: closed');
    const epoch = this.epochNow;
    const order = this.sampler.indices(epoch);
    const nb = this.batchesPerEpoch;
    const depth = Math.max(1, this.options.prefetch ?? 2);
    const inflight: Promise<Batch>[] = [];
    let next = this.consumed;
    const launch = () => {
      while (inflight.length < depth && next < nb) {
        const b = next++;
        const p = this.assemble(order, epoch, b);
        p.catch(() => {}); // awaited in order below
        inflight.push(p);
      }
    };
    try {
      launch();
      while (inflight.length > 0) {
        const batch = await inflight.shift()!;
        launch();
        this.consumed = batch.index + 1;
        yield batch;
      }
      this.epochNow = epoch + 1;
      this.consumed = 0;
    } finally {
      // drain what was started so no work outlives an early break
      await Promise.allSettled(inflight);
    }
  }

  /** Build batch `b` of `epoch`. */
  private async assemble(order: Int32Array, epoch: number, b: number): Promise<Batch> {
    const start = b * this.batchSize;
    const end = Math.min(start + this.batchSize, order.length);
    const ids = order.subarray(start, end);
    const n = ids.length;
    const views: BatchView[] = [];
    const local: number[] = [];
    for (let k = 0; k < n; k++) {
      const s = ids[k]!;
      const fi = this.index.file[s]!;
      const { batch, offset } = this.readers[fi]!.locate(this.index.row[s]!);
      views.push(await this.cache.get(fi, batch));
      local.push(offset);
    }
    const kind = this.kind;
    const textCol = TEXT_COLUMN[kind];
    const texts: string[] = [];
    const jobs: ImageJob[] = [];
    const jobs2: ImageJob[] = [];
    for (let k = 0; k < n; k++) {
      const s = ids[k]!;
      const v = views[k]!;
      const i = local[k]!;
      const sub = this.index.sub[s]!;
      const captions = v.value(textCol, i) as string[];
      texts.push(captions[sub] ?? '');
      const keys = [epoch, this.index.file[s]!, this.index.row[s]!, sub];
      if (kind === 'nlvr2') {
        jobs.push({ bytes: v.binary('image_0', i), keys: [...keys, 0], source: v.where(i, 'image_0') });
        jobs2.push({ bytes: v.binary('image_1', i), keys: [...keys, 1], source: v.where(i, 'image_1') });
      } else {
        jobs.push({ bytes: v.binary('image', i), keys: [...keys, 0], source: v.where(i, 'image') });
      }
    }
    // workers write straight into shared batch buffers (no per-image result arrays, no copies)
    const size = this.imageSpec.size;
    const plane = 3 * size * size;
    const shared = (k: number) => new Float32Array(this.takeBuffer(k * plane * 4));
    const images0 = shared(n);
    const images1 = jobs2.length ? shared(n) : null;
    const [ok, ok2] = await Promise.all([this.pool.runInto(jobs, images0), images1 ? this.pool.runInto(jobs2, images1) : Promise.resolve(null)]);
    // samples whose image(s) were skipped leave the batch
    const keep: number[] = [];
    for (let k = 0; k < n; k++) if (ok[k] && (!ok2 || ok2[k])) keep.push(k);
    const m = keep.length;
    const compact = (buf: Float32Array): Float32Array => {
      if (m === n) return buf;
      keep.forEach((k, j) => {
        if (k !== j) buf.copyWithin(j * plane, k * plane, (k + 1) * plane);
      });
      return buf.subarray(0, m * plane);
    };
    const images = compact(images0);
    const images2 = images1 ? compact(images1) : undefined;
    const enc = this.options.tokenizer.encodeBatch(keep.map((k) => texts[k]!), { maxLength: this.maxTextLen, padding: 'max_length', truncation: true });
    const L = enc.length;
    const out: Batch = {
      size: m,
      epoch,
      index: b,
      images,
      imageShape: [m, 3, size, size],
      textIds: enc.inputIds,
      textMask: enc.attentionMask,
      specialTokensMask: enc.specialTokensMask,
      textShape: [m, L],
      globalRow: Int32Array.from(keep, (k) => k * this.sampler.worldSize + this.sampler.rank),
      globalSize: n * this.sampler.worldSize,
      fileIndex: Int32Array.from(keep, (k) => this.index.file[ids[k]!]!),
      rowIndex: Int32Array.from(keep, (k) => this.index.row[ids[k]!]!),
      textIndex: Int32Array.from(keep, (k) => this.index.sub[ids[k]!]!),
    };
    if (images2) out.images2 = images2;
    let released = false;
    out.release = () => {
      if (released) return;
      released = true;
      this.giveBuffer(images0.buffer as SharedArrayBuffer);
      if (images1) this.giveBuffer(images1.buffer as SharedArrayBuffer);
    };
    const mlm = this.options.mlm;
    if (mlm) {
      const t = this.options.tokenizer;
      const masked = maskTokens(enc, {
        probability: mlm.probability ?? 0.15,
        wholeWord: mlm.wholeWord ?? false,
        maskId: t.maskId,
        vocabSize: t.vocabSize,
        // a vocabulary with its special tokens first (ours) never draws them as random replacements
        numSpecialTokens: Math.max(t.padId, t.unkId, t.clsId, t.sepId, t.maskId) < 5 ? 5 : 0,
        seed: this.sampler.seed,
        // a sample's mask depends on its position in the epoch's order, not on its rank or batch
        keys: [epoch],
        rowKeys: Int32Array.from(keep, (k) => (start + k) * this.sampler.worldSize + this.sampler.rank),
      });
      out.mlmIds = masked.inputIds;
      out.mlmLabels = masked.labels;
    }
    if (kind === 'vqa') {
      const A = this.numAnswers;
      const targets = new Float32Array(m * A);
      const qids = new Float64Array(m);
      keep.forEach((k, j) => {
        const v = views[k]!;
        const i = local[k]!;
        const sub = this.index.sub[ids[k]!]!;
        const labels = (v.value('answer_labels', i) as number[][])[sub] ?? [];
        const scores = (v.value('answer_scores', i) as number[][])[sub] ?? [];
        labels.forEach((l, q) => {
          if (!(l >= 0 && l < A)) throw new Error(`${v.where(i, 'answer_labels')}: label ${l} is outside the ${A} answers`);
          targets[j * A + l] = scores[q] ?? 0;
        });
        qids[j] = (v.value('question_id', i) as number[])[sub] ?? -1;
      });
      out.vqaTargets = targets;
      out.questionIds = qids;
    }
    if (kind === 'nlvr2') {
      out.labels = Int32Array.from(keep, (k) => {
        const v = views[k]!;
        const i = local[k]!;
        const a = (v.value('answers', i) as string[])[this.index.sub[ids[k]!]!];
        if (a !== 'True' && a !== 'False') throw new Error(`${v.where(i, 'answers')}: answer must be "True" or "False", got ${JSON.stringify(a)}`);
        return a === 'True' ? 1 : 0;
      });
    }
    return out;
  }

  private takeBuffer(bytes: number): SharedArrayBuffer {
    return this.freeBuffers.get(bytes)?.pop() ?? new SharedArrayBuffer(bytes);
  }

  private giveBuffer(b: SharedArrayBuffer): void {
    let list = this.freeBuffers.get(b.byteLength);
    if (!list) this.freeBuffers.set(b.byteLength, (list = []));
    if (list.length < 8) list.push(b);
  }

  /** Stop the image workers and close the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    this.freeBuffers.clear();
    await this.pool.close();
    await Promise.all(this.readers.map((r) => r.close()));
  }
}
