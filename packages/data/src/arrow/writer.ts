/**
 * Streaming Arrow IPC writer for the ViLT/VLMo schemas.
 *
 * Rows are buffered and flushed as one record batch every `batchRows` rows (or once the
 * buffered binary payload passes `batchBytes`), so a converter never holds a whole dataset.
 * The output goes to a temporary file beside the target and is renamed into place by
 * `close()`: a crash or an error leaves no half-written `.arrow` file behind.
 */
import { createWriteStream, mkdirSync, rmSync, renameSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  makeBuilder,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Struct,
  Type,
  type Builder,
  type DataType,
  type Schema,
} from 'apache-arrow';
import { SCHEMAS, type DatasetKind, type RowTypes } from './schemas.js';
import { tempPathFor } from '@vlmoe/util';

export interface ArrowWriterOptions {
  /** IPC file format (`.arrow`, random access; default) or stream format (`.arrows`). */
  format?: 'file' | 'stream';
  /** Rows per record batch (default 256). */
  batchRows?: number;
  /** Flush early once the buffered binary/string payload passes this many bytes (default 64 MiB). */
  batchBytes?: number;
}

/** Convert a JS value to what the builder for `type` wants (int64 → bigint, nested lists). */
function coerce(type: DataType, value: unknown, column: string, row: number): unknown {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case Type.Int: {
      const bits = (type as unknown as { bitWidth: number }).bitWidth;
      if (bits === 64) {
        if (typeof value === 'bigint') return value;
        if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
        throw new TypeError(`column '${column}', row ${row}: expected an integer, got ${String(value)}`);
      }
      return value;
    }
    case Type.List: {
      if (!Array.isArray(value)) throw new TypeError(`column '${column}', row ${row}: expected an array, got ${typeof value}`);
      const child = type.children[0]!.type as DataType;
      return value.map((v) => coerce(child, v, column, row));
    }
    case Type.Binary:
    case Type.LargeBinary:
      if (!(value instanceof Uint8Array)) throw new TypeError(`column '${column}', row ${row}: expected bytes (Uint8Array), got ${typeof value}`);
      return value;
    case Type.Utf8:
    case Type.LargeUtf8:
      if (typeof value !== 'string') throw new TypeError(`column '${column}', row ${row}: expected a string, got ${typeof value}`);
      return value;
    default:
      return value;
  }
}

function payloadBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) n += payloadBytes(v);
    return n;
  }
  return 8;
}

/** Writes rows of any schema (the generic layer under `ArrowWriter`). */
export class SchemaWriter<Row extends object = object> {
  readonly path: string;
  readonly schema: Schema;
  private readonly tmp: string;
  private readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  private readonly sink: WriteStream;
  private readonly done: Promise<void>;
  private builders: Builder[];
  private buffered = 0;
  private bufferedBytes = 0;
  private rowsWritten = 0;
  private batchesWritten = 0;
  private closed = false;
  private readonly batchRows: number;
  private readonly batchBytes: number;

  constructor(path: string, schema: Schema, options: ArrowWriterOptions = {}) {
    this.path = path;
    this.schema = schema;
    this.batchRows = options.batchRows ?? 256;
    this.batchBytes = options.batchBytes ?? 64 * 1024 * 1024;
    if (!(this.batchRows >= 1)) throw new RangeError(`ArrowWriter(${path}): batchRows must be ≥ 1, got ${this.batchRows}`);
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = tempPathFor(path);
    this.writer = options.format === 'stream' ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    this.sink = createWriteStream(this.tmp);
    this.writer.toNodeStream().pipe(this.sink);
    this.done = finished(this.sink);
    this.done.catch(() => {}); // surfaced by close()
    this.builders = this.newBuilders();
  }

  private newBuilders(): Builder[] {
    return this.schema.fields.map((f) => makeBuilder({ type: f.type, nullValues: [null, undefined] }));
  }

  get rows(): number {
    return this.rowsWritten + this.buffered;
  }

  get batches(): number {
    return this.batchesWritten;
  }

  /** Append one row (an object with one property per column). */
  write(row: Row): void {
    if (this.closed) throw new Error(`ArrowWriter(${this.path}): write after close`);
    const r = row as Record<string, unknown>;
    const index = this.rows;
    this.schema.fields.forEach((f, i) => {
      if (!(f.name in r)) throw new TypeError(`ArrowWriter(${this.path}): row ${index} has no column '${f.name}'`);
      const v = coerce(f.type, r[f.name], f.name, index);
      this.builders[i]!.append(v);
      this.bufferedBytes += payloadBytes(v);
    });
    this.buffered++;
    if (this.buffered >= this.batchRows || this.bufferedBytes >= this.batchBytes) this.flush();
  }

  /** Write the buffered rows as one record batch. */
  flush(): void {
    if (this.buffered === 0) return;
    const children = this.builders.map((b) => b.finish().flush());
    const data = makeData({ type: new Struct(this.schema.fields), length: this.buffered, nullCount: 0, children });
    this.writer.write(new RecordBatch(this.schema, data));
    this.rowsWritten += this.buffered;
    this.batchesWritten++;
    this.buffered = 0;
    this.bufferedBytes = 0;
    this.builders = this.newBuilders();
  }

  /** Flush, write the footer, and move the file into place. Returns the row count. */
  async close(): Promise<number> {
    if (this.closed) return this.rowsWritten;
    this.flush();
    this.closed = true;
    if (this.batchesWritten === 0) {
      // an empty file still carries the schema
      this.writer.reset(undefined, this.schema);
    }
    this.writer.finish();
    try {
      await this.done;
      renameSync(this.tmp, this.path);
    } catch (e) {
      rmSync(this.tmp, { force: true });
      throw new Error(`ArrowWriter(${this.path}): ${(e as Error).message}`);
    }
    return this.rowsWritten;
  }

  /** Drop everything written so far; the target file is not touched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // close (not abort: arrow's abort() rejects its node stream with an unhandled {done: true})
    this.sink.destroy();
    this.writer.close();
    await this.done.catch(() => {});
    rmSync(this.tmp, { force: true });
  }
}

/** Writer for one of the ViLT/VLMo dataset kinds (`captions`, `vqa`, `nlvr2`). */
export class ArrowWriter<K extends DatasetKind> extends SchemaWriter<RowTypes[K]> {
  readonly kind: K;
  constructor(path: string, kind: K, options: ArrowWriterOptions = {}) {
    super(path, SCHEMAS[kind], options);
    this.kind = kind;
  }
}

/** Write all rows to `path` and return the row count (atomic: the file appears only when complete). */
export async function writeArrowFile<K extends DatasetKind>(
  path: string,
  kind: K,
  rows: Iterable<RowTypes[K]> | AsyncIterable<RowTypes[K]>,
  options: ArrowWriterOptions = {},
): Promise<number> {
  const w = new ArrowWriter(path, kind, options);
  try {
    for await (const row of rows) w.write(row);
  } catch (e) {
    await w.abort();
    throw e;
  }
  return w.close();
}
