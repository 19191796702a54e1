import { afterAll, describe, expect, test } from 'vitest';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Field, LargeBinary, LargeUtf8, List, Schema, Utf8, Binary, Int32, tableFromIPC } from 'apache-arrow';
import pl from 'nodejs-polars';
import { ArrowReader } from '../src/arrow/reader.js';
import { ArrowWriter, SchemaWriter, writeArrowFile } from '../src/arrow/writer.js';
import { SCHEMAS, checkSchema } from '../src/arrow/schemas.js';
import type { CaptionRow, VqaRow } from '../src/arrow/schemas.js';
import { Rng } from '../src/rng.js';
import { SHARED_DATA, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 256);
  return b;
}

function captionRows(n: number, seed = 1): CaptionRow[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    image: randomBytes(rng, rng.int(0, 300)),
    caption: Array.from({ length: rng.int(0, 4) }, (_, k) => `caption ${k} of image ${i} — ünïcode ✓`),
    image_id: `img_${i}.jpg`,
    split: i % 3 === 0 ? 'val' : 'train',
  }));
}

async function readAll(path: string, opts: { rank?: number; worldSize?: number } = {}) {
  const r = await ArrowReader.open(path);
  const out: { index: number; row: Record<string, unknown> }[] = [];
  for await (const x of r.rows(opts)) out.push({ index: x.index, row: { ...(x.row as object) } });
  await r.close();
  return out;
}

describe('ArrowWriter / ArrowReader', () => {
  for (const format of ['file', 'stream'] as const) {
    test(`${format} format: rows round-trip in batches, counts known`, async () => {
      const rows = captionRows(103);
      const p = join(tmp.path, `caps.${format === 'file' ? 'arrow' : 'arrows'}`);
      expect(await writeArrowFile(p, 'captions', rows, { format, batchRows: 10 })).toBe(103);
      const r = await ArrowReader.open(p);
      expect(r.format).toBe(format);
      expect(r.kind).toBe('captions');
      if (format === 'file') {
        expect(r.numBatches).toBe(11);
        expect(r.numRows).toBe(103);
        expect(r.batchRowCounts).toEqual([...Array(10).fill(10), 3]);
        expect(r.locate(57)).toEqual({ batch: 5, offset: 7 });
        const b = await r.readBatch(10);
        expect(b.firstRow).toBe(100);
        expect(b.string('image_id', 2)).toBe('img_102.jpg');
      } else {
        expect(r.numRows).toBeNull(); // unknown until one pass
      }
      const seen: number[] = [];
      let i = 0;
      for await (const b of r.batches()) {
        seen.push(b.numRows);
        for (let k = 0; k < b.numRows; k++, i++) {
          expect(Array.from(b.binary('image', k))).toEqual(Array.from(rows[i]!.image));
          expect(b.value('caption', k)).toEqual(rows[i]!.caption);
          expect((b.row(k) as CaptionRow).split).toBe(rows[i]!.split);
        }
      }
      expect(i).toBe(103);
      expect(seen).toEqual([...Array(10).fill(10), 3]);
      expect(r.numRows).toBe(103);
      await r.close();
    });
  }

  test('image bytes are views of the batch buffer, not copies', async () => {
    const p = join(tmp.path, 'views.arrow');
    await writeArrowFile(p, 'captions', captionRows(20), { batchRows: 8 });
    const r = await ArrowReader.open(p);
    const b = await r.readBatch(1);
    const values = b.column('image').values as Uint8Array;
    for (let k = 0; k < b.numRows; k++) {
      const img = b.binary('image', k);
      expect(img.buffer).toBe(values.buffer);
      expect(img.byteOffset).toBeGreaterThanOrEqual(values.byteOffset);
    }
    await r.close();
  });

  test('VQA rows keep nested lists, int64 ids and float64 scores', async () => {
    const row: VqaRow = {
      image: new Uint8Array([1, 2, 3]),
      questions: ['what?', 'how many?'],
      answers: [['red', 'blue'], []],
      answer_labels: [[3, 7], []],
      answer_scores: [[1, 0.3], []],
      image_id: 2 ** 40 + 3,
      question_id: [9007199254740991, 0],
      split: 'test',
    };
    const p = join(tmp.path, 'vqa.arrow');
    await writeArrowFile(p, 'vqa', [row]);
    const [got] = await readAll(p);
    expect(got!.row).toEqual({ ...row, image: new Uint8Array([1, 2, 3]) });
    // our schema is the reference schema exactly
    const t = tableFromIPC(readFileSync(p));
    expect(t.schema.fields.map((f) => `${f.name}: ${f.type}`)).toEqual(SCHEMAS.vqa.fields.map((f) => `${f.name}: ${f.type}`));
    expect(t.schema.fields.map((f) => `${f.name}: ${f.type}`)).toEqual([
      'image: Binary',
      'questions: List<Utf8>',
      'answers: List<List<Utf8>>',
      'answer_labels: List<List<Int64>>',
      'answer_scores: List<List<Float64>>',
      'image_id: Int64',
      'question_id: List<Int64>',
      'split: Utf8',
    ]);
  });

  test('large_string / large_binary columns are accepted', async () => {
    const schema = new Schema([
      new Field('image', new LargeBinary(), true),
      new Field('caption', new List(new Field('item', new LargeUtf8(), true)), true),
      new Field('image_id', new LargeUtf8(), true),
      new Field('split', new LargeUtf8(), true),
    ]);
    const rows = captionRows(30, 7);
    const p = join(tmp.path, 'large.arrow');
    const w = new SchemaWriter(p, schema, { batchRows: 7 });
    rows.forEach((r) => w.write(r));
    await w.close();
    const r = await ArrowReader.open(p, { kind: 'captions' });
    expect(r.schema.fields[0]!.type).toBeInstanceOf(LargeBinary);
    const got = await readAll(p);
    expect(got.map((g) => g.row)).toEqual(rows);
    await r.close();
  });

  test('sharding: ranks partition the rows (row r → rank r mod world)', async () => {
    const p = join(tmp.path, 'shard.arrow');
    await writeArrowFile(p, 'captions', captionRows(57), { batchRows: 5 });
    const all = new Set<number>();
    for (let rank = 0; rank < 4; rank++) {
      const got = await readAll(p, { rank, worldSize: 4 });
      expect(got.every((g) => g.index % 4 === rank)).toBe(true);
      expect(got.every((g) => g.row.image_id === `img_${g.index}.jpg`)).toBe(true);
      got.forEach((g) => all.add(g.index));
    }
    expect(all.size).toBe(57);
    await expect(readAll(p, { rank: 4, worldSize: 4 })).rejects.toThrow(/rank must be an integer in \[0, 4\), got 4/);
  });

  test('an empty file keeps its schema; atomic: no temp files left', async () => {
    const p = join(tmp.path, 'empty.arrow');
    expect(await writeArrowFile(p, 'nlvr2', [])).toBe(0);
    const r = await ArrowReader.open(p);
    expect(r.kind).toBe('nlvr2');
    expect(r.numRows).toBe(0);
    await r.close();
    expect(readdirSync(tmp.path).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('bad input names the file, batch and column', () => {
  test('missing column / wrong type', async () => {
    const p = join(tmp.path, 'nocaption.arrow');
    const schema = new Schema([new Field('image', new Binary()), new Field('image_id', new Utf8()), new Field('split', new Utf8())]);
    const w = new SchemaWriter(p, schema);
    w.write({ image: new Uint8Array([1]), image_id: 'a', split: 'train' });
    await w.close();
    await expect(ArrowReader.open(p, { kind: 'captions' })).rejects.toThrow(`${p}: missing column 'caption' for a captions file (columns present: image, image_id, split)`);
    const p2 = join(tmp.path, 'wrongtype.arrow');
    const w2 = new SchemaWriter(p2, new Schema([new Field('image', new Binary()), new Field('caption', new Utf8()), new Field('image_id', new Utf8()), new Field('split', new Utf8())]));
    w2.write({ image: new Uint8Array([1]), caption: 'one caption', image_id: 'a', split: 'train' });
    await w2.close();
    await expect(ArrowReader.open(p2)).rejects.toThrow(`${p2}: column 'caption' has type string, but a captions file needs list<string>`);
    expect(() => checkSchema('vqa', new Schema([new Field('image', new Int32())]), 'x.arrow')).toThrow(/x\.arrow: column 'image' has type int32, but a vqa file needs binary/);
  });

  test('truncated file and truncated stream', async () => {
    const rows = captionRows(40);
    const pf = join(tmp.path, 'trunc.arrow');
    const ps = join(tmp.path, 'trunc.arrows');
    await writeArrowFile(pf, 'captions', rows, { batchRows: 10 });
    await writeArrowFile(ps, 'captions', rows, { batchRows: 10, format: 'stream' });
    const f = readFileSync(pf);
    writeFileSync(pf + '.cut', f.subarray(0, f.length - 100));
    await expect(ArrowReader.open(pf + '.cut')).rejects.toThrow(`${pf}.cut: truncated Arrow IPC file`);
    const s = readFileSync(ps);
    writeFileSync(ps + '.cut', s.subarray(0, Math.floor(s.length * 0.6)));
    const r = await ArrowReader.open(ps + '.cut');
    const consume = async () => {
      for await (const b of r.batches()) void b;
    };
    await expect(consume()).rejects.toThrow(new RegExp(`${ps}\\.cut batch 2: cannot read record batch`));
  });

  test('not an Arrow file; a missing file', async () => {
    const p = join(tmp.path, 'not.arrow');
    writeFileSync(p, 'hello world, this is text');
    await expect(ArrowReader.open(p)).rejects.toThrow(`${p}: not an Arrow IPC file or stream`);
    await expect(ArrowReader.open(join(tmp.path, 'nope.arrow'))).rejects.toThrow(/nope\.arrow: cannot open: ENOENT/);
    writeFileSync(p, '');
    await expect(ArrowReader.open(p)).rejects.toThrow(/empty file/);
  });

  test('a directory, a corrupt footer and text that looks like a stream length are named', async () => {
    await expect(ArrowReader.open(tmp.path)).rejects.toThrow(`${tmp.path}: is a directory, not an Arrow file`);
    const p = join(tmp.path, 'footer.arrow');
    await writeArrowFile(p, 'captions', captionRows(20), { batchRows: 5 });
    const f = readFileSync(p);
    const n = f.length;
    const len = f.readInt32LE(n - 10);
    writeFileSync(p, Buffer.concat([f.subarray(0, n - 10 - len), Buffer.alloc(len, 0x5a), f.subarray(n - 10)]));
    await expect(ArrowReader.open(p)).rejects.toThrow(`${p}: corrupt Arrow IPC file (cannot read its footer and schema: `);
    const q = join(tmp.path, 'hello.arrow');
    writeFileSync(q, 'hello');
    await expect(ArrowReader.open(q)).rejects.toThrow(`${q}: not an Arrow IPC file or stream (starts with bytes 68656c6c6f)`);
  });

  test('a null image names its row and column', async () => {
    const p = join(tmp.path, 'null.arrow');
    const w = new ArrowWriter(p, 'captions', { batchRows: 2 });
    w.write({ image: new Uint8Array([1]), caption: [], image_id: 'a', split: 's' });
    w.write({ image: new Uint8Array([1]), caption: [], image_id: 'a', split: 's' });
    w.write({ image: null as unknown as Uint8Array, caption: [], image_id: 'b', split: 's' });
    await w.close();
    const r = await ArrowReader.open(p);
    const b = await r.readBatch(1);
    expect(() => b.binary('image', 0)).toThrow(`${p} batch 1 row 2 column 'image': value is null`);
    expect(() => b.column('images')).toThrow(`${p} batch 1 column 'images': no such column (columns: image, caption, image_id, split)`);
    await r.close();
  });
});

describe('interoperability with an independent Arrow implementation (Polars)', () => {
  test('Polars reads our file and our stream', async () => {
    const rows = captionRows(25, 3);
    for (const format of ['file', 'stream'] as const) {
      const p = join(tmp.path, `forpolars.${format}`);
      await writeArrowFile(p, 'captions', rows, { format, batchRows: 6 });
      const df = format === 'file' ? pl.readIPC(readFileSync(p)) : pl.readIPCStream(readFileSync(p));
      expect(df.shape).toEqual({ height: 25, width: 4 });
      expect(df.columns).toEqual(['image', 'caption', 'image_id', 'split']);
      const recs = df.select(pl.col('caption'), pl.col('image_id'), pl.col('split')).toRecords();
      expect(recs).toEqual(rows.map((r) => ({ caption: r.caption, image_id: r.image_id, split: r.split })));
      // Polars' JS binding cannot hand binary to JS; it re-writes the table, which we read back
      const back = join(tmp.path, `frompolars.${format}`);
      writeFileSync(back, format === 'file' ? df.writeIPC() : df.writeIPCStream());
      const got = await readAll(back);
      expect(got.map((g) => g.row)).toEqual(rows);
    }
  });

  test('we read a captions file Polars built (string_view, large_list, binary_view)', async () => {
    const jpg = readFileSync(join(SHARED_DATA, 'coco-mini/train2017', readdirSync(join(SHARED_DATA, 'coco-mini/train2017'))[0]!));
    const df = pl
      .DataFrame({ hex: [jpg.toString('hex'), '0102', ''], caption: [['a dog', 'a cat'], [], ['x']], image_id: ['1', '2', '3'], split: ['train', 'val', 'test'] })
      .withColumns(pl.col('hex').str.decode('hex').alias('image'))
      .drop('hex');
    const p = join(tmp.path, 'polars.arrow');
    writeFileSync(p, df.writeIPC());
    const r = await ArrowReader.open(p, { kind: 'captions' });
    expect(String(r.schema.fields.find((f) => f.name === 'caption')!.type)).toMatch(/LargeList<Utf8View>/);
    const got = await readAll(p);
    expect(Buffer.from(got[0]!.row.image as Uint8Array).equals(jpg)).toBe(true);
    expect(Array.from(got[1]!.row.image as Uint8Array)).toEqual([1, 2]);
    expect(got.map((g) => g.row.caption)).toEqual([['a dog', 'a cat'], [], ['x']]);
    expect(got.map((g) => g.row.split)).toEqual(['train', 'val', 'test']);
    await r.close();
  });
});
