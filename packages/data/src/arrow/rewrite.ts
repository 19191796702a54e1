/**
 * Rewrite an Arrow IPC stream as an IPC file (random access), batch by batch.
 *
 * The DataLoader needs the file format (it reads record batch i through the footer); other
 * tools often write the stream format — Hugging Face `datasets` writes its cache files
 * (`data-00000-of-00001.arrow`, by `datasets.arrow_writer.ArrowWriter`, a
 * `pyarrow.RecordBatchStreamWriter`) as streams. The schema (with its metadata) and the record
 * batches are kept as they are; only the container changes. The output appears atomically
 * (temporary file + rename), so an interrupted rewrite leaves nothing half-written.
 */
import { createWriteStream, rmSync, renameSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { RecordBatchFileWriter } from 'apache-arrow';
import { ArrowReader, type ArrowFormat } from './reader.js';
import { tempPathFor } from '@vlmoe/util';

export interface RewriteReport {
  /** The file written. */
  out: string;
  /** The input's IPC format. */
  from: ArrowFormat;
  rows: number;
  batches: number;
}

/** Copy `input` (IPC stream or file) to `out` in the IPC file format. */
export async function rewriteAsArrowFile(input: string, out: string): Promise<RewriteReport> {
  if (resolve(input) === resolve(out)) throw new Error(`${out}: the output must not be the input file`);
  const reader = await ArrowReader.open(input, { kind: null });
  mkdirSync(dirname(out), { recursive: true });
  const tmp = tempPathFor(out);
  const writer = new RecordBatchFileWriter();
  const sink = createWriteStream(tmp);
  writer.toNodeStream().pipe(sink);
  const done = finished(sink);
  done.catch(() => {}); // awaited below
  let rows = 0;
  let batches = 0;
  try {
    for await (const view of reader.batches()) {
      writer.write(view.batch);
      rows += view.numRows;
      batches++;
    }
    if (batches === 0) writer.reset(undefined, reader.schema); // a file with the schema and no batches
    writer.finish();
    await done;
    renameSync(tmp, out);
  } catch (e) {
    sink.destroy();
    writer.close();
    await done.catch(() => {});
    rmSync(tmp, { force: true });
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(input) || msg.startsWith(out) ? msg : `${out}: ${msg}`, { cause: e });
  } finally {
    await reader.close();
  }
  return { out, from: reader.format, rows, batches };
}
