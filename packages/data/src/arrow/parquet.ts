/**
 * Parquet files as Hugging Face `datasets` writes them (`Dataset.to_parquet`, the Hub's
 * `refs/convert/parquet` exports) → our Arrow IPC files, row group by row group.
 *
 * The columns must carry our names (`image`, `caption`, … — the same rule as for Arrow files
 * from `datasets`); the `Image()` feature, stored as `struct<bytes: binary, path: string>`, becomes
 * its bytes. Read with hyparquet (pure JavaScript; snappy, gzip, zstd, brotli and lz4 pages through
 * hyparquet-compressors). The output appears atomically (ArrowWriter: temporary file + rename).
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { closeSync, openSync, readSync } from 'node:fs';
import { ArrowWriter } from './writer.js';
import { DATASET_KINDS, SCHEMAS, detectKindFromNames, type DatasetKind, type RowTypes } from './schemas.js';

const MAGIC = 'PAR1';

/** Whether `path` starts with Parquet's magic bytes. */
export function isParquetFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === MAGIC;
  } finally {
    closeSync(fd);
  }
}

export interface ParquetConvertReport {
  out: string;
  kind: DatasetKind;
  rows: number;
  rowGroups: number;
}

/** A `datasets` image cell (struct with bytes and path, or plain bytes) as its bytes. */
function imageBytes(v: unknown, input: string, row: number, column: string): Uint8Array | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'object' && 'bytes' in v) {
    const { bytes, path } = v as { bytes: unknown; path?: unknown };
    if (bytes instanceof Uint8Array) return bytes;
    if (bytes === null || bytes === undefined) {
      throw new Error(`${input}: row ${row}, column '${column}': the image has only a path (${JSON.stringify(path)}), no bytes; embed the images first (datasets: cast_column(..., Image(decode=True)) then save)`);
    }
  }
  throw new Error(`${input}: row ${row}, column '${column}' is not an image (bytes, or datasets' struct<bytes, path>): ${JSON.stringify(v)?.slice(0, 80)}`);
}

/** Parquet INT64 cells come as bigint; our rows hold numbers (ids, labels). */
const num = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : Array.isArray(v) ? v.map(num) : v);

function toRow(kind: DatasetKind, r: Record<string, unknown>, input: string, row: number): RowTypes[DatasetKind] {
  const out: Record<string, unknown> = {};
  for (const f of SCHEMAS[kind].fields) {
    const v = r[f.name];
    out[f.name] = f.name === 'image' || f.name === 'image_0' || f.name === 'image_1' ? imageBytes(v, input, row, f.name) : num(v);
  }
  return out as unknown as RowTypes[DatasetKind];
}

/**
 * Converts a Parquet file to an Arrow IPC file of one of our dataset kinds (detected from the
 * column names unless given). Columns we do not use are left out; a missing column is an error
 * naming it.
 */
export async function parquetToArrowFile(input: string, out: string, o: { kind?: DatasetKind; rowsPerRead?: number } = {}): Promise<ParquetConvertReport> {
  let file: AsyncBuffer;
  let meta: FileMetaData;
  try {
    file = await asyncBufferFromFile(input);
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    throw new Error(`${input}: not a readable Parquet file: ${(e as Error).message}`, { cause: e });
  }
  const columns = parquetSchema(meta).children.map((c) => c.element.name);
  const kind = o.kind ?? detectKindFromNames(columns);
  if (!kind) {
    throw new Error(`${input}: its columns (${columns.join(', ')}) are none of the dataset kinds ${DATASET_KINDS.join(', ')} (captions: image, caption; vqa: image, questions, …; nlvr2: image_0, image_1, …); rename them to ours first`);
  }
  const need = SCHEMAS[kind].fields.map((f) => f.name);
  const missing = need.filter((n) => !columns.includes(n));
  if (missing.length) throw new Error(`${input}: a ${kind} file needs the column(s) ${missing.join(', ')} (it has ${columns.join(', ')})`);
  const total = Number(meta.num_rows);
  const step = o.rowsPerRead ?? 512;
  const w = new ArrowWriter(out, kind);
  try {
    for (let start = 0; start < total; start += step) {
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, columns: need, rowStart: start, rowEnd: Math.min(total, start + step), utf8: false, compressors });
      } catch (e) {
        throw new Error(`${input}: rows ${start}–${Math.min(total, start + step) - 1}: ${(e as Error).message}`, { cause: e });
      }
      rows.forEach((r, i) => w.write(toRow(kind, r, input, start + i) as never));
    }
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return { out, kind, rows: total, rowGroups: meta.row_groups.length };
}
