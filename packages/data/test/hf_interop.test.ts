/**
 * Files written by Hugging Face `datasets`, rebuilt with apache-arrow in the exact layout it
 * uses (pyarrow is not installable here):
 * - the `Image()` feature is stored as `struct<bytes: binary, path: string>` (datasets
 *   docs, "Image" feature / datasets/features/image.py `Image.pa_type`), the bytes being the
 *   encoded image file;
 * - `Value('string')` is `string`, `Value('large_string')` is `large_string`,
 *   `Sequence(...)` / `List(...)` is `list<item: …>`, `LargeList(...)` is `large_list<item: …>`;
 * - the features are also kept as JSON in the schema metadata under the key `huggingface`;
 * - cache files (`data-00000-of-00001.arrow`, written by `datasets.arrow_writer.ArrowWriter`
 *   with a `pyarrow.RecordBatchStreamWriter`) are in the Arrow IPC *stream* format.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  Binary,
  Field,
  Float64,
  Int64,
  LargeList,
  LargeUtf8,
  List,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  makeBuilder,
  makeData,
  type DataType,
} from 'apache-arrow';
import { ArrowReader } from '../src/arrow/reader.js';
import { writeArrowFile } from '../src/arrow/writer.js';
import { rewriteAsArrowFile } from '../src/arrow/rewrite.js';
import type { CaptionRow } from '../src/arrow/schemas.js';
import { DataLoader, type Batch } from '../src/loader/index.js';
import { BertTokenizer } from '../src/text/index.js';
import { runCli } from '../src/cli/main.js';
import { SHARED_DATA, tempDir } from './helpers.js';

process.env.VLMOE_PROGRESS = '0';
const tmp = tempDir();
afterAll(() => tmp.cleanup());

const IMAGE = new Struct([new Field('bytes', new Binary(), true), new Field('path', new Utf8(), true)]);
const listOf = (t: DataType) => new List(new Field('item', t, true));
const largeListOf = (t: DataType) => new LargeList(new Field('item', t, true));

/** Write `rows` as a `datasets` cache file: IPC stream, `huggingface` schema metadata, `batchRows` rows per batch. */
async function writeHfStream(path: string, fields: Field[], features: object, rows: Record<string, unknown>[], batchRows: number): Promise<void> {
  const schema = new Schema(fields, new Map([['huggingface', JSON.stringify({ info: { features } })]]));
  const writer = new RecordBatchStreamWriter();
  const sink = createWriteStream(path);
  writer.toNodeStream().pipe(sink);
  for (let start = 0; start < rows.length; start += batchRows) {
    const chunk = rows.slice(start, start + batchRows);
    const children = fields.map((f) => {
      const b = makeBuilder({ type: f.type, nullValues: [null, undefined] });
      for (const r of chunk) b.append(r[f.name] as never);
      return b.finish().flush();
    });
    writer.write(new RecordBatch(schema, makeData({ type: new Struct(fields), length: chunk.length, nullCount: 0, children })));
  }
  writer.finish();
  await finished(sink);
}

const CAPTION_FIELDS = [
  new Field('image', IMAGE, true),
  new Field('caption', listOf(new LargeUtf8()), true),
  new Field('image_id', new LargeUtf8(), true),
  new Field('split', new Utf8(), true),
];
const CAPTION_FEATURES = {
  image: { _type: 'Image' },
  caption: { _type: 'List', feature: { dtype: 'large_string', _type: 'Value' } },
  image_id: { dtype: 'large_string', _type: 'Value' },
  split: { dtype: 'string', _type: 'Value' },
};

let ours: CaptionRow[] = [];
let hfFile = '';
let ownFile = '';
let tokenizer: BertTokenizer;

beforeAll(async () => {
  tokenizer = BertTokenizer.fromFile(new URL('./fixtures/text/bert-captions/tokenizer.json', import.meta.url).pathname);
  const coco = JSON.parse(readFileSync(join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), 'utf8'));
  const dir = join(SHARED_DATA, 'coco-mini/train2017');
  const files = readdirSync(dir).sort().slice(0, 10);
  ours = files.map((f) => {
    const id = coco.images.find((im: { file_name: string }) => im.file_name === f).id;
    const caption = coco.annotations.filter((a: { image_id: number }) => a.image_id === id).map((a: { caption: string }) => a.caption.trim());
    return { image: new Uint8Array(readFileSync(join(dir, f))), caption, image_id: f, split: 'train' };
  });
  hfFile = join(tmp.path, 'hf', 'data-00000-of-00001.arrow');
  mkdirSync(join(tmp.path, 'hf'), { recursive: true });
  await writeHfStream(hfFile, CAPTION_FIELDS, CAPTION_FEATURES, ours.map((r) => ({ ...r, image: { bytes: r.image, path: r.image_id } })), 4);
  ownFile = join(tmp.path, 'own.arrow');
  await writeArrowFile(ownFile, 'captions', ours, { batchRows: 4 });
});

describe('Hugging Face datasets files', () => {
  test('an image struct reads as its bytes, large_string as string: the rows are ours', async () => {
    const r = await ArrowReader.open(hfFile);
    expect(r.format).toBe('stream');
    expect(r.kind).toBe('captions');
    const rows: CaptionRow[] = [];
    for await (const { row } of r.rows()) rows.push(row as CaptionRow);
    await r.close();
    expect(rows).toHaveLength(ours.length);
    rows.forEach((row, i) => {
      expect(Buffer.from(row.image).equals(Buffer.from(ours[i]!.image))).toBe(true);
      expect(row.caption).toEqual(ours[i]!.caption);
      expect(row.image_id).toBe(ours[i]!.image_id);
    });
  });

  test('the DataLoader refuses the stream with the remedy; `convert --to-file` rewrites it; then it loads like our own file', async () => {
    await expect(DataLoader.create({ files: hfFile, batchSize: 4, tokenizer, numWorkers: 0 })).rejects.toThrow(
      `${hfFile}: the DataLoader needs random access, i.e. the Arrow IPC file format; this is a stream (rewrite it as a file: vlmoe-data convert --to-file ${hfFile} <out.arrow>`,
    );
    const out = join(tmp.path, 'hf_file.arrow');
    let stdout = '';
    let stderr = '';
    const code = await runCli(['convert', '--to-file', hfFile, out], { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toBe(`${out}: Arrow IPC file, ${ours.length} rows in 3 record batches (from an IPC stream)\n`);
    const r = await ArrowReader.open(out);
    expect(r.format).toBe('file');
    expect(r.numRows).toBe(ours.length);
    expect(r.schema.metadata.get('huggingface')).toBe(JSON.stringify({ info: { features: CAPTION_FEATURES } }));
    await r.close();

    const load = async (file: string) => {
      const loader = await DataLoader.create({ files: file, batchSize: 8, tokenizer, image: { size: 32 }, numWorkers: 0, seed: 5 });
      const batches: Batch[] = [];
      for await (const b of loader) batches.push(b);
      await loader.close();
      return batches;
    };
    const [a, b] = [await load(out), await load(ownFile)];
    expect(a.length).toBeGreaterThan(0);
    expect(a.length).toBe(b.length);
    a.forEach((x, i) => {
      expect(x.images).toEqual(b[i]!.images);
      expect(x.textIds).toEqual(b[i]!.textIds);
      expect(x.rowIndex).toEqual(b[i]!.rowIndex);
    });
  });

  test('inspect shows the struct and the image size', async () => {
    let stdout = '';
    const code = await runCli(['inspect', hfFile], { out: (t) => void (stdout += t), err: () => {} });
    expect(code).toBe(0);
    expect(stdout).toContain(`format: IPC stream, kind: captions, rows: ${ours.length}, record batches: 3`);
    expect(stdout).toContain('image: struct<bytes: binary, path: string>, caption: list<large_string>, image_id: large_string');
    expect(stdout).toContain(`image: <${ours[0]!.image.byteLength} bytes>`);
  });

  test('VQA layout with large_list, large_string and int64 ids', async () => {
    const p = join(tmp.path, 'hf_vqa.arrow');
    const fields = [
      new Field('image', IMAGE, true),
      new Field('questions', largeListOf(new LargeUtf8()), true),
      new Field('answers', largeListOf(largeListOf(new LargeUtf8())), true),
      new Field('answer_labels', listOf(listOf(new Int64())), true),
      new Field('answer_scores', listOf(listOf(new Float64())), true),
      new Field('image_id', new Int64(), true),
      new Field('question_id', listOf(new Int64()), true),
      new Field('split', new LargeUtf8(), true),
    ];
    const row = { image: { bytes: ours[0]!.image, path: null }, questions: ['what is it?'], answers: [['dog']], answer_labels: [[3n]], answer_scores: [[1]], image_id: 7n, question_id: [70n], split: 'val' };
    await writeHfStream(p, fields, {}, [row], 1);
    const r = await ArrowReader.open(p, { kind: 'vqa' });
    const rows = [];
    for await (const x of r.rows()) rows.push(x.row);
    await r.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ questions: ['what is it?'], answers: [['dog']], answer_labels: [[3]], answer_scores: [[1]], image_id: 7, question_id: [70], split: 'val' });
    expect(Buffer.from(rows[0]!.image).equals(Buffer.from(ours[0]!.image))).toBe(true);
  });

  test('an image stored only as a path (no bytes) is an error naming file, row, column and the path', async () => {
    const p = join(tmp.path, 'hf_paths.arrow');
    await writeHfStream(p, CAPTION_FIELDS, CAPTION_FEATURES, [
      { image: { bytes: ours[0]!.image, path: 'a.jpg' }, caption: ['x'], image_id: 'a', split: 'train' },
      { image: { bytes: null, path: '/data/coco/b.jpg' }, caption: ['y'], image_id: 'b', split: 'train' },
    ], 2);
    const r = await ArrowReader.open(p);
    const consume = async () => {
      for await (const v of r.batches()) for (let i = 0; i < v.numRows; i++) v.binary('image', i);
    };
    await expect(consume()).rejects.toThrow(`${p} batch 0 row 1 column 'image': value is null (a Hugging Face image that holds only its path '/data/coco/b.jpg', not the image bytes`);
    await r.close();
  });

  test('a struct that is not an image is still refused by the schema check', async () => {
    const p = join(tmp.path, 'hf_other.arrow');
    const other = new Struct([new Field('bytes', new Binary(), true), new Field('width', new Int64(), true)]);
    await writeHfStream(p, [new Field('image', other, true), ...CAPTION_FIELDS.slice(1)], {}, [{ image: { bytes: ours[0]!.image, width: 3n }, caption: ['x'], image_id: 'a', split: 's' }], 1);
    await expect(ArrowReader.open(p, { kind: 'captions' })).rejects.toThrow(`${p}: column 'image' has type struct<bytes: binary, width: int64>, but a captions file needs binary`);
  });
});

/**
 * Parquet as `datasets` writes it (`Dataset.to_parquet`, the Hub's Parquet exports): pyarrow
 * writes the dataset's Arrow table, so the columns are those above (image as struct<bytes, path>);
 * here the same Arrow table is written by a real Parquet writer (polars' Rust writer), with
 * snappy pages (pyarrow's default) and with zstd.
 */
describe('Hugging Face datasets Parquet files', () => {
  const toParquet = async (arrowStream: string, out: string, compression: 'snappy' | 'zstd') => {
    const { default: pl } = await import('nodejs-polars');
    const asFile = join(tmp.path, `${compression}-in.arrow`);
    await rewriteAsArrowFile(arrowStream, asFile);
    pl.readIPC(readFileSync(asFile)).writeParquet(out, { compression });
  };
  const cli = async (...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
    return { code, stdout, stderr };
  };

  for (const compression of ['snappy', 'zstd'] as const) {
    test(`convert --to-file: a ${compression} Parquet captions file → our Arrow file, row for row`, async () => {
      const pq = join(tmp.path, `captions-${compression}.parquet`);
      await toParquet(hfFile, pq, compression);
      const out = join(tmp.path, `from-${compression}.arrow`);
      const r = await cli('convert', '--to-file', pq, out);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^${out}: Arrow IPC file \\(captions\\), ${ours.length} rows from 1 Parquet row group\\(s\\)`));
      const reader = await ArrowReader.open(out, { kind: 'captions' });
      const rows: CaptionRow[] = [];
      for await (const { row } of reader.rows()) rows.push(row as CaptionRow);
      await reader.close();
      expect(rows.map((x) => [x.caption, x.image_id, x.split])).toEqual(ours.map((x) => [x.caption, x.image_id, x.split]));
      rows.forEach((x, i) => expect(Buffer.from(x.image).equals(Buffer.from(ours[i]!.image))).toBe(true));
    });
  }

  test('errors name the file: other columns, an image without bytes', async () => {
    const { default: pl } = await import('nodejs-polars');
    const other = join(tmp.path, 'other.parquet');
    pl.DataFrame({ text: ['a', 'b'], label: [0, 1] }).writeParquet(other);
    const r = await cli('convert', '--to-file', other, join(tmp.path, 'x.arrow'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${other}: its columns (text, label) are none of the dataset kinds captions, vqa, nlvr2`);
    const paths = join(tmp.path, 'paths.arrow');
    await writeHfStream(paths, CAPTION_FIELDS, CAPTION_FEATURES, [{ image: { bytes: null, path: '/data/b.jpg' }, caption: ['y'], image_id: 'b', split: 'train' }], 1);
    const pq = join(tmp.path, 'paths.parquet');
    await toParquet(paths, pq, 'snappy');
    const p = await cli('convert', '--to-file', pq, join(tmp.path, 'y.arrow'));
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(`${pq}: row 0, column 'image': the image has only a path ("/data/b.jpg"), no bytes`);
    expect(existsSync(join(tmp.path, 'y.arrow'))).toBe(false);
  });
});
