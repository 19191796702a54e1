/**
 * Streaming reader for Arrow IPC files (file format `.arrow` and stream format `.arrows`).
 *
 * - Batch by batch: the file format is read through a file handle with random access
 *   (`readBatch(i)`), the stream format as a stream; neither loads the whole file.
 * - Image bytes are views of the batch buffer (`BatchView.binary`), never copies.
 * - `rows({rank, worldSize})` shards rows (row r belongs to rank r mod worldSize).
 * - Every error names the file, and where known the batch and column.
 */
import { createReadStream, promises as fsp, type ReadStream } from 'node:fs';
import {
  Message,
  RecordBatchReader,
  type Data,
  type RecordBatch,
  type Schema,
} from 'apache-arrow';
import { checkSchema, detectKind, type DatasetKind, type RowTypes } from './schemas.js';
import { binaryAt, imagePathAt, listLengthAt, stringAt, valueAt } from './columns.js';

export type ArrowFormat = 'file' | 'stream';

const FILE_MAGIC = Buffer.from('ARROW1');

export interface ArrowReaderOptions<K extends DatasetKind = DatasetKind> {
  /**
   * The dataset kind to validate against: a kind, `'auto'` (default: detect from the column
   * names and validate; a file of no known kind is still readable, untyped) or `null` (no check).
   */
  kind?: K | 'auto' | null;
}

/** Where something is, for error messages: "coco.arrow batch 3 row 770 column 'image'". */
function at(file: string, batch?: number, row?: number, column?: string): string {
  let s = file;
  if (batch !== undefined) s += ` batch ${batch}`;
  if (row !== undefined) s += ` row ${row}`;
  if (column !== undefined) s += ` column '${column}'`;
  return s;
}

/** One record batch with typed accessors; `firstRow` is the global index of its first row. */
export class BatchView<K extends DatasetKind = DatasetKind> {
  private readonly cols = new Map<string, Data>();

  constructor(
    readonly file: string,
    readonly index: number,
    readonly firstRow: number,
    readonly batch: RecordBatch,
    readonly kind: K | null,
  ) {
    batch.schema.fields.forEach((f, i) => {
      const child = batch.getChildAt(i);
      if (child) this.cols.set(f.name, child.data.length === 1 ? child.data[0]! : child.data[0]!);
    });
  }

  get numRows(): number {
    return this.batch.numRows;
  }

  /** The column's Arrow data; throws naming file, batch and column when it is missing. */
  column(name: string): Data {
    const d = this.cols.get(name);
    if (!d) throw new Error(`${at(this.file, this.index, undefined, name)}: no such column (columns: ${[...this.cols.keys()].join(', ')})`);
    return d;
  }

  has(name: string): boolean {
    return this.cols.has(name);
  }

  /** Where row `i` (batch-local) of `column` is, for error messages. */
  where(i: number, column?: string): string {
    return at(this.file, this.index, this.firstRow + i, column);
  }

  private checkRow(i: number): void {
    if (!(i >= 0 && i < this.numRows)) throw new RangeError(`${at(this.file, this.index)}: row ${i} out of range [0, ${this.numRows})`);
  }

  /** Bytes of a binary cell: a zero-copy view of the batch buffer. Null → error. */
  binary(column: string, i: number): Uint8Array {
    this.checkRow(i);
    const d = this.column(column);
    let b: Uint8Array | null;
    try {
      b = binaryAt(d, i);
    } catch (e) {
      throw new Error(`${this.where(i, column)}: ${(e as Error).message}`);
    }
    if (b === null) {
      const path = imagePathAt(d, i);
      const hf = path === null ? '' : ` (a Hugging Face image that holds only its path '${path}', not the image bytes: save the dataset with its images embedded, as datasets' Dataset.save_to_disk does)`;
      throw new Error(`${this.where(i, column)}: value is null${hf}`);
    }
    return b;
  }

  string(column: string, i: number): string {
    this.checkRow(i);
    const s = stringAt(this.column(column), i);
    if (s === null) throw new Error(`${this.where(i, column)}: value is null`);
    return s;
  }

  /** Number of elements of a list cell. */
  listLength(column: string, i: number): number {
    this.checkRow(i);
    return listLengthAt(this.column(column), i);
  }

  /** Any cell as plain JS (strings, Uint8Array views, numbers, nested arrays). */
  value(column: string, i: number): unknown {
    this.checkRow(i);
    try {
      return valueAt(this.column(column), i);
    } catch (e) {
      throw new Error(`${this.where(i, column)}: ${(e as Error).message}`);
    }
  }

  /** Row `i` as a plain object of the dataset kind (binary columns are views). */
  row(i: number): RowTypes[K] {
    this.checkRow(i);
    const out: Record<string, unknown> = {};
    for (const name of this.cols.keys()) out[name] = this.value(name, i);
    return out as unknown as RowTypes[K];
  }
}

/** Read an IPC file footer block's record-batch row count from its metadata only (no body read). */
async function blockRowCount(fh: fsp.FileHandle, offset: number, metaLength: number, file: string, b: number): Promise<number> {
  const buf = Buffer.alloc(metaLength);
  const { bytesRead } = await fh.read(buf, 0, metaLength, offset);
  if (bytesRead !== metaLength) throw new Error(`${at(file, b)}: truncated file (record batch metadata cut short)`);
  let start = 4;
  if (buf.readInt32LE(0) === -1) start = 8; // continuation marker + length
  const len = buf.readInt32LE(start - 4);
  let msg: Message;
  try {
    if (!(len > 0 && start + len <= metaLength)) throw new Error(`metadata length ${len} does not fit the block's ${metaLength} bytes`);
    msg = Message.decode(buf.subarray(start, start + len));
  } catch (e) {
    throw new Error(`${at(file, b)}: corrupt Arrow IPC file (the footer points at no valid record batch: ${(e as Error).message})`);
  }
  if (!msg.isRecordBatch()) throw new Error(`${at(file, b)}: corrupt Arrow IPC file (a footer block is not a record batch)`);
  return Number(msg.header().length);
}

export class ArrowReader<K extends DatasetKind = DatasetKind> {
  private fileReader: Awaited<ReturnType<typeof RecordBatchReader.from>> | null = null;
  private handle: fsp.FileHandle | null = null;
  private rowCounts: number[] | null = null;
  private rowStarts: number[] | null = null;
  private streamInUse = false;
  /** apache-arrow's file reader keeps one read position: reads are queued, one at a time. */
  private readQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    readonly format: ArrowFormat,
    readonly schema: Schema,
    readonly kind: K | null,
  ) {}

  /** Short name used in messages. */
  get name(): string {
    return this.path;
  }

  /** Open a file of either IPC format (detected by its magic bytes) and check its schema. */
  static async open<K extends DatasetKind = DatasetKind>(path: string, options: ArrowReaderOptions<K> = {}): Promise<ArrowReader<K>> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (e) {
      throw new Error(`${path}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const name = path;
    let reader: ArrowReader<K>;
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new Error(`${path}: is a directory, not an Arrow file`);
      const { size } = st;
      const head = Buffer.alloc(Math.min(8, size));
      await fh.read(head, 0, head.length, 0);
      const isFile = head.subarray(0, 6).equals(FILE_MAGIC);
      if (isFile) {
        const tail = Buffer.alloc(6);
        if (size >= 12) await fh.read(tail, 0, 6, size - 6);
        if (size < 12 || !tail.equals(FILE_MAGIC)) {
          throw new Error(`${path}: truncated Arrow IPC file (no footer: the file ends before the closing 'ARROW1' magic; was the writer interrupted?)`);
        }
        const lengthBytes = Buffer.alloc(4);
        await fh.read(lengthBytes, 0, 4, size - 10);
        const footerLength = lengthBytes.readInt32LE(0);
        if (!(footerLength > 0 && footerLength <= size - 18)) {
          throw new Error(`${path}: corrupt Arrow IPC file (its footer length ${footerLength} does not fit in a file of ${size} bytes)`);
        }
        let r: Awaited<ReturnType<typeof RecordBatchReader.from>>;
        try {
          r = await RecordBatchReader.from(fh);
          await r.open();
          if (!r.isFile() || !r.schema || !r.footer) throw new Error('no footer found');
        } catch (e) {
          throw new Error(`${path}: corrupt Arrow IPC file (cannot read its footer and schema: ${(e as Error).message})`);
        }
        const kind = resolveKind(options.kind, r.schema, name);
        reader = new ArrowReader<K>(path, 'file', r.schema, kind as K | null);
        reader.fileReader = r;
        reader.handle = fh;
        // Row counts from the footer blocks' metadata (a few bytes per batch).
        const counts: number[] = [];
        let b = 0;
        for (const block of r.footer!.recordBatches()) {
          counts.push(await blockRowCount(fh, Number(block.offset), Number(block.metaDataLength), name, b++));
        }
        reader.setRowCounts(counts);
        return reader;
      }
      if (size === 0) throw new Error(`${path}: empty file (not an Arrow IPC file or stream)`);
      // A stream starts with a schema message: continuation marker 0xFFFFFFFF + metadata length
      // (or, before Arrow 0.15, the length alone); a length past the end is not Arrow at all.
      const metaLength = head.length >= 8 && head.readInt32LE(0) === -1 ? head.readInt32LE(4) : head.length >= 4 ? head.readInt32LE(0) : -1;
      if (!(metaLength > 0 && metaLength <= size)) {
        throw new Error(`${path}: not an Arrow IPC file or stream (starts with bytes ${head.toString('hex')})`);
      }
      // Stream format: read the schema message, then hand batches out as a stream.
      await fh.close();
      const stream = createReadStream(path);
      const r = await openStream(stream, path);
      const kind = resolveKind(options.kind, r.schema, name);
      reader = new ArrowReader<K>(path, 'stream', r.schema, kind as K | null);
      stream.destroy();
      await r.cancel().catch(() => {});
      return reader;
    } catch (e) {
      await fh.close().catch(() => {});
      throw namingFile(path, e);
    }
  }

  private setRowCounts(counts: number[]): void {
    this.rowCounts = counts;
    const starts: number[] = [];
    let s = 0;
    for (const c of counts) {
      starts.push(s);
      s += c;
    }
    starts.push(s);
    this.rowStarts = starts;
  }

  /** Number of record batches (file format; null for a stream until it has been read once). */
  get numBatches(): number | null {
    return this.rowCounts?.length ?? null;
  }

  /** Total rows (file format: from the footer; stream: after one full pass, else null). */
  get numRows(): number | null {
    return this.rowStarts ? this.rowStarts[this.rowStarts.length - 1]! : null;
  }

  /** Rows per batch (file format). */
  get batchRowCounts(): readonly number[] | null {
    return this.rowCounts;
  }

  /** The batch holding global row `row` and the row's index within it (file format). */
  locate(row: number): { batch: number; offset: number } {
    const starts = this.rowStarts;
    if (!starts || this.format !== 'file') throw new Error(`${this.name}: random access needs the IPC file format (this is a ${this.format})`);
    if (!(row >= 0 && row < starts[starts.length - 1]!)) throw new RangeError(`${this.name}: row ${row} out of range [0, ${starts[starts.length - 1]})`);
    let lo = 0;
    let hi = starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return { batch: lo, offset: row - starts[lo]! };
  }

  /** Read record batch `i` (file format, random access; only that batch's bytes are read). */
  async readBatch(i: number): Promise<BatchView<K>> {
    if (this.format !== 'file' || !this.fileReader) throw new Error(`${this.name}: readBatch needs the IPC file format (this is a ${this.format}); iterate batches() instead`);
    const n = this.rowCounts!.length;
    if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new RangeError(`${this.name}: batch ${i} out of range [0, ${n})`);
    let rb: RecordBatch | null;
    const fr = this.fileReader as unknown as { readRecordBatch(i: number): Promise<RecordBatch | null> };
    const read = this.readQueue.then(() => fr.readRecordBatch(i));
    this.readQueue = read.catch(() => {});
    try {
      rb = await read;
    } catch (e) {
      throw new Error(`${at(this.name, i)}: cannot read record batch: ${(e as Error).message}`);
    }
    if (!rb) throw new Error(`${at(this.name, i)}: record batch missing (truncated file?)`);
    if (rb.numRows !== this.rowCounts![i]) throw new Error(`${at(this.name, i)}: batch has ${rb.numRows} rows but its metadata says ${this.rowCounts![i]}`);
    return new BatchView<K>(this.name, i, this.rowStarts![i]!, rb, this.kind);
  }

  /** All record batches in order, one at a time. */
  async *batches(): AsyncGenerator<BatchView<K>> {
    if (this.format === 'file') {
      for (let i = 0; i < this.rowCounts!.length; i++) yield await this.readBatch(i);
      return;
    }
    if (this.streamInUse) throw new Error(`${this.name}: a stream can be iterated by one consumer at a time`);
    this.streamInUse = true;
    const stream = createReadStream(this.path);
    const counts: number[] = [];
    let first = 0;
    let b = 0;
    let complete = false;
    try {
      const r = await openStream(stream, this.path);
      const it = r[Symbol.asyncIterator]();
      for (;;) {
        let res: IteratorResult<RecordBatch>;
        try {
          res = await it.next();
        } catch (e) {
          throw new Error(`${at(this.name, b)}: cannot read record batch: ${(e as Error).message}`);
        }
        if (res.done) break;
        const view = new BatchView<K>(this.name, b, first, res.value, this.kind);
        counts.push(res.value.numRows);
        first += res.value.numRows;
        b++;
        yield view;
      }
      if (stream.bytesRead < (await fsp.stat(this.path)).size - 8) {
        throw new Error(`${at(this.name, b)}: truncated Arrow stream (reading stopped at byte ${stream.bytesRead})`);
      }
      complete = true;
    } finally {
      stream.destroy();
      this.streamInUse = false;
      if (complete && !this.rowCounts) this.setRowCounts(counts);
    }
  }

  /**
   * Rows as plain objects with their global index, optionally sharded: rank `rank` of
   * `worldSize` gets rows `rank, rank + worldSize, …`.
   */
  async *rows(options: { rank?: number; worldSize?: number } = {}): AsyncGenerator<{ index: number; row: RowTypes[K] }> {
    const { rank, worldSize } = checkShard(options, this.name);
    for await (const view of this.batches()) {
      let i = (rank - (view.firstRow % worldSize) + worldSize) % worldSize;
      for (; i < view.numRows; i += worldSize) yield { index: view.firstRow + i, row: view.row(i) };
    }
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    this.fileReader = null;
    if (h) await h.close().catch(() => {});
  }
}

export function checkShard(options: { rank?: number; worldSize?: number }, where: string): { rank: number; worldSize: number } {
  const worldSize = options.worldSize ?? 1;
  const rank = options.rank ?? 0;
  if (!(Number.isInteger(worldSize) && worldSize >= 1)) throw new RangeError(`${where}: worldSize must be an integer ≥ 1, got ${worldSize}`);
  if (!(Number.isInteger(rank) && rank >= 0 && rank < worldSize)) throw new RangeError(`${where}: rank must be an integer in [0, ${worldSize}), got ${rank}`);
  return { rank, worldSize };
}

async function openStream(stream: ReadStream, path: string) {
  try {
    const r = await RecordBatchReader.from(stream);
    await r.open();
    if (!r.schema) throw new Error('no schema message');
    return r;
  } catch (e) {
    stream.destroy();
    throw new Error(`${path}: not an Arrow IPC file or stream (${(e as Error).message})`);
  }
}

/** `e` as an Error whose message starts with the file name. */
function namingFile(path: string, e: unknown): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.message.startsWith(path)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new Error(`${path}: ${code ? `cannot read (${code}): ` : ''}${err.message}`, { cause: err });
}

function resolveKind(kind: DatasetKind | 'auto' | null | undefined, schema: Schema, name: string): DatasetKind | null {
  if (kind === null) return null;
  if (kind === undefined || kind === 'auto') {
    const k = detectKind(schema);
    if (k) checkSchema(k, schema, name);
    return k;
  }
  checkSchema(kind, schema, name);
  return kind;
}
