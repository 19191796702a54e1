import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataLoader, type Batch, type DataLoaderOptions } from '../src/loader/index.js';
import { BertTokenizer } from '../src/text/index.js';
import { transformImage } from '../src/image/index.js';
import { convertCocoCaptions, convertEasyVqa, convertNlvr1 } from '../src/converters/index.js';
import { ArrowReader } from '../src/arrow/reader.js';
import { writeArrowFile } from '../src/arrow/writer.js';
import type { CaptionRow } from '../src/arrow/schemas.js';
import { SHARED_DATA, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const quiet = { progress: false } as const;
let tokenizer: BertTokenizer;
const files = { captions: '', vqa: '', nlvr2: '' };
const IMAGE = { size: 32 };

beforeAll(async () => {
  tokenizer = BertTokenizer.fromFile(new URL('./fixtures/text/bert-captions/tokenizer.json', import.meta.url).pathname);
  files.captions = join(tmp.path, 'coco.arrow');
  await convertCocoCaptions(
    { annotations: join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), imageDir: join(SHARED_DATA, 'coco-mini/train2017') },
    files.captions,
    { ...quiet, batchRows: 16 },
  );
  files.vqa = join(tmp.path, 'easyvqa_test.arrow');
  const d = join(SHARED_DATA, 'easy-vqa');
  await convertEasyVqa({ questions: join(d, 'test/questions.json'), imageDir: join(d, 'test/images'), answers: join(d, 'answers.txt') }, files.vqa, { ...quiet, batchRows: 64 });
  files.nlvr2 = join(tmp.path, 'nlvr1_hidden.arrow');
  await convertNlvr1({ json: join(SHARED_DATA, 'nlvr1/hidden/hidden.json'), imageDir: join(SHARED_DATA, 'nlvr1/hidden/images') }, files.nlvr2, { ...quiet, batchRows: 50 });
}, 120_000);

function opts(extra: Partial<DataLoaderOptions> & { files: string | string[] }): DataLoaderOptions {
  return { batchSize: 8, tokenizer, image: IMAGE, numWorkers: 0, seed: 3, ...extra };
}

async function collect(loader: DataLoader, max = Infinity): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) {
    out.push(b);
    if (out.length >= max) break;
  }
  return out;
}

/** Row `row` of an Arrow file as an object. */
async function rowOf(file: string, row: number): Promise<Record<string, unknown>> {
  const r = await ArrowReader.open(file);
  const { batch, offset } = r.locate(row);
  const v = await r.readBatch(batch);
  const out = v.row(offset) as unknown as Record<string, unknown>;
  const copy = { ...out };
  for (const k of Object.keys(copy)) if (copy[k] instanceof Uint8Array) copy[k] = Uint8Array.from(copy[k] as Uint8Array);
  await r.close();
  return copy;
}

describe('DataLoader on captions (COCO-mini)', () => {
  test('one sample per caption; every sample once per epoch; shapes; texts and pixels match their sources', async () => {
    const loader = await DataLoader.create(opts({ files: files.captions, shuffle: true, dropLast: false }));
    expect(loader.kind).toBe('captions');
    expect(loader.numSamples).toBe(650);
    expect(loader.batchesPerEpoch).toBe(82);
    const batches = await collect(loader);
    expect(batches.length).toBe(82);
    const seen = new Set<string>();
    for (const b of batches) {
      expect(b.imageShape).toEqual([b.size, 3, 32, 32]);
      expect(b.images.length).toBe(b.size * 3 * 32 * 32);
      expect(b.textShape).toEqual([b.size, 40]);
      for (let k = 0; k < b.size; k++) seen.add(`${b.rowIndex[k]}:${b.textIndex[k]}`);
    }
    expect(seen.size).toBe(650);
    expect(loader.epoch).toBe(1);
    // spot-check the first batch against independent computations
    const b = batches[0]!;
    for (let k = 0; k < 3; k++) {
      const row = await rowOf(files.captions, b.rowIndex[k]!);
      const caption = (row.caption as string[])[b.textIndex[k]!]!;
      const enc = tokenizer.encodeBatch([caption], { maxLength: 40 });
      expect(Array.from(b.textIds.subarray(k * 40, (k + 1) * 40))).toEqual(Array.from(enc.inputIds));
      expect(Array.from(b.textMask.subarray(k * 40, (k + 1) * 40))).toEqual(Array.from(enc.attentionMask));
      const px = await transformImage(row.image as Uint8Array, { size: 32, train: true }, 3, [0, 0, b.rowIndex[k]!, b.textIndex[k]!, 0]);
      expect(b.images.subarray(k * 3 * 32 * 32, (k + 1) * 3 * 32 * 32)).toEqual(px);
    }
    await loader.close();
  });

  test('no shuffle: file order, eval transform; last partial batch kept', async () => {
    const loader = await DataLoader.create(opts({ files: files.captions, shuffle: false }));
    const batches = await collect(loader);
    expect(batches.length).toBe(82);
    expect(batches.at(-1)!.size).toBe(650 - 81 * 8);
    expect(Array.from(batches[0]!.rowIndex)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(batches[0]!.textIndex)).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
    const row = await rowOf(files.captions, 0);
    const px = await transformImage(row.image as Uint8Array, { size: 32, train: false }, 3, [0, 0, 0, 0, 0]);
    expect(batches[0]!.images.subarray(0, 3 * 32 * 32)).toEqual(px);
    await loader.close();
  });

  test('ranks partition an epoch', async () => {
    const seen: string[] = [];
    for (let rank = 0; rank < 3; rank++) {
      const loader = await DataLoader.create(opts({ files: files.captions, rank, worldSize: 3, dropLast: false }));
      for (const b of await collect(loader)) for (let k = 0; k < b.size; k++) seen.push(`${b.rowIndex[k]}:${b.textIndex[k]}`);
      await loader.close();
    }
    expect(seen.length).toBe(651); // 650 padded to a multiple of 3
    expect(new Set(seen).size).toBe(650);
  });

  test('W ranks with batch B hold the global batch of one process with batch B·W: same samples at the same global rows, same MLM masks', async () => {
    const W = 3, B = 4, L = 40;
    const one = await DataLoader.create(opts({ files: files.captions, batchSize: B * W, shuffle: true, mlm: { probability: 0.15 } }));
    const global = await collect(one, 3);
    await one.close();
    for (let rank = 0; rank < W; rank++) {
      const loader = await DataLoader.create(opts({ files: files.captions, batchSize: B, shuffle: true, rank, worldSize: W, mlm: { probability: 0.15 } }));
      const mine = await collect(loader, 3);
      await loader.close();
      mine.forEach((b, i) => {
        const g = global[i]!;
        expect(b.globalSize).toBe(B * W);
        expect(g.globalRow).toEqual(Int32Array.from({ length: B * W }, (_, j) => j));
        expect(Array.from(b.globalRow)).toEqual(Array.from({ length: B }, (_, j) => j * W + rank));
        b.globalRow.forEach((row, j) => {
          expect([b.rowIndex[j], b.textIndex[j]]).toEqual([g.rowIndex[row], g.textIndex[row]]);
          expect(b.mlmIds!.subarray(j * L, (j + 1) * L)).toEqual(g.mlmIds!.subarray(row * L, (row + 1) * L));
          expect(b.mlmLabels!.subarray(j * L, (j + 1) * L)).toEqual(g.mlmLabels!.subarray(row * L, (row + 1) * L));
        });
      });
    }
  });

  test('resume: a loader restored from stateDict yields exactly the batches that would have come next', async () => {
    const a = await DataLoader.create(opts({ files: files.captions, mlm: { probability: 0.15 } }));
    const full = [...(await collect(a)), ...(await collect(a))]; // two epochs
    await a.close();
    const b = await DataLoader.create(opts({ files: files.captions, mlm: { probability: 0.15 } }));
    const head = await collect(b, 5);
    const state = JSON.parse(JSON.stringify(b.stateDict()));
    expect(state).toMatchObject({ epoch: 0, batchIndex: 5 });
    await b.close();
    const c = await DataLoader.create(opts({ files: files.captions, mlm: { probability: 0.15 } }));
    c.loadStateDict(state);
    const rest = [...(await collect(c)), ...(await collect(c))];
    await c.close();
    const resumed = [...head, ...rest];
    expect(resumed.length).toBe(full.length);
    resumed.forEach((r, i) => {
      const f = full[i]!;
      expect([r.epoch, r.index]).toEqual([f.epoch, f.index]);
      expect(r.rowIndex).toEqual(f.rowIndex);
      expect(r.images).toEqual(f.images);
      expect(r.mlmIds).toEqual(f.mlmIds);
      expect(r.mlmLabels).toEqual(f.mlmLabels);
    });
    // epochs differ in order
    expect(full[0]!.rowIndex).not.toEqual(full[a.batchesPerEpoch]!.rowIndex);
    const d = await DataLoader.create(opts({ files: files.captions, batchSize: 4 }));
    expect(() => d.loadStateDict(state)).toThrow(/differs in batchSize \(saved 8, now 4\)/);
    await d.close();
  });

  test('MLM: labels only where masked, masked ids differ only there, specials untouched', async () => {
    const loader = await DataLoader.create(opts({ files: files.captions, mlm: { probability: 0.15 } }));
    const [b] = await collect(loader, 1);
    const ids = b!.textIds;
    const m = b!.mlmIds!;
    const l = b!.mlmLabels!;
    let masked = 0;
    for (let i = 0; i < ids.length; i++) {
      if (l[i] === -100) expect(m[i]).toBe(ids[i]);
      else {
        masked++;
        expect(l[i]).toBe(ids[i]);
        expect(b!.specialTokensMask[i]).toBe(0);
      }
    }
    expect(masked).toBeGreaterThan(0);
    await loader.close();
  });

  test('release() recycles image buffers; batches stay identical', async () => {
    const a = await DataLoader.create(opts({ files: files.captions }));
    const b = await DataLoader.create(opts({ files: files.captions, prefetch: 1 }));
    const x = await collect(a, 5);
    const buffers = new Set<ArrayBufferLike>();
    let i = 0;
    for await (const batch of b) {
      expect(batch.images).toEqual(x[i]!.images);
      buffers.add(batch.images.buffer);
      batch.release!();
      batch.release!(); // twice is harmless
      if (++i === 5) break;
    }
    expect(buffers.size).toBeLessThan(5); // reused
    await a.close();
    await b.close();
  });

  test('worker threads give the same batches as in-process decoding', async () => {
    const a = await DataLoader.create(opts({ files: files.captions, numWorkers: 0 }));
    const b = await DataLoader.create(opts({ files: files.captions, numWorkers: 2, prefetch: 3 }));
    const x = await collect(a, 6);
    const y = await collect(b, 6);
    x.forEach((bx, i) => expect(y[i]!.images).toEqual(bx.images));
    await a.close();
    await b.close();
  });
});

describe('DataLoader on VQA and NLVR', () => {
  test('easy-VQA: one sample per question, soft-score targets over the answer vocabulary', async () => {
    const loader = await DataLoader.create(opts({ files: files.vqa, batchSize: 64 }));
    expect(loader.numSamples).toBe(9673);
    expect(loader.numAnswers).toBe(13);
    const [b] = await collect(loader, 1);
    const raw = JSON.parse(readFileSync(join(SHARED_DATA, 'easy-vqa/answers.txt').replace('answers.txt', 'test/questions.json'), 'utf8')) as [string, string, number][];
    const answers = readFileSync(join(SHARED_DATA, 'easy-vqa/answers.txt'), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
    for (let k = 0; k < b!.size; k++) {
      const q = raw[b!.questionIds![k]!]!;
      const t = Array.from(b!.vqaTargets!.subarray(k * 13, (k + 1) * 13));
      expect(t.filter((x) => x !== 0)).toEqual([1]);
      expect(answers[t.indexOf(1)]).toBe(q[1]);
      expect(tokenizer.decode(b!.textIds.subarray(k * 40, (k + 1) * 40)).replace(/[^a-z]/g, '')).toBe(q[0].toLowerCase().replace(/[^a-z]/g, '')); // '?' is [UNK] in this caption vocabulary
    }
    await loader.close();
  });

  test('NLVR1 pairs: two images per sample, labels from the answers', async () => {
    const loader = await DataLoader.create(opts({ files: files.nlvr2, batchSize: 16, shuffle: false }));
    expect(loader.numSamples).toBe(985);
    const [b] = await collect(loader, 1);
    expect(b!.images2!.length).toBe(b!.images.length);
    const lines = readFileSync(join(SHARED_DATA, 'nlvr1/hidden/hidden.json'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(Array.from(b!.labels!)).toEqual(lines.slice(0, 16).map((l) => (l.label === 'true' ? 1 : 0)));
    expect(b!.images2).not.toEqual(b!.images);
    await loader.close();
  });
});

describe('DataLoader errors', () => {
  test('a corrupt image: an error naming file, row and column — or a counted skip', async () => {
    const good = readFileSync(join(SHARED_DATA, 'easy-vqa/train/images/0.png'));
    const rows: CaptionRow[] = Array.from({ length: 6 }, (_, i) => ({ image: i === 3 ? new Uint8Array(good.subarray(0, 60)) : new Uint8Array(good), caption: [`caption ${i}`], image_id: String(i), split: 'train' }));
    const p = join(tmp.path, 'corrupt.arrow');
    await writeArrowFile(p, 'captions', rows);
    const a = await DataLoader.create(opts({ files: p, batchSize: 6, shuffle: false }));
    await expect(collect(a)).rejects.toThrow(new RegExp(`${p} batch 0 row 3 column 'image'`));
    await a.close();
    const b = await DataLoader.create(opts({ files: p, batchSize: 6, shuffle: false, onImageError: 'skip' }));
    const [batch] = await collect(b);
    expect(batch!.size).toBe(5);
    expect(Array.from(batch!.rowIndex)).toEqual([0, 1, 2, 4, 5]);
    expect(b.skipped.count).toBe(1);
    await b.close();
  });

  test('stream files, mixed kinds and empty input are refused clearly', async () => {
    const s = join(tmp.path, 'caps.arrows');
    await writeArrowFile(s, 'captions', [{ image: new Uint8Array([1]), caption: ['x'], image_id: '1', split: 't' }], { format: 'stream' });
    await expect(DataLoader.create(opts({ files: s }))).rejects.toThrow(/needs random access, i\.e\. the Arrow IPC file format/);
    await expect(DataLoader.create(opts({ files: [files.captions, files.vqa] }))).rejects.toThrow(/is a vqa file but .*coco\.arrow is a captions file/);
    const e = join(tmp.path, 'empty.arrow');
    await writeArrowFile(e, 'captions', []);
    await expect(DataLoader.create(opts({ files: e }))).rejects.toThrow(/hold no samples/);
    writeFileSync(join(tmp.path, 'x.arrow'), 'nope');
    await expect(DataLoader.create(opts({ files: [] }))).rejects.toThrow(/no files given/);
  });
});
