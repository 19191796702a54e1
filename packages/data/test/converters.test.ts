import { afterAll, describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  convertCocoCaptions,
  convertEasyVqa,
  convertFlickr,
  convertKarpathy,
  convertNlvr1,
  convertNlvr2,
  convertVqa2,
  loadImageFile,
  ImageFileError,
} from '../src/converters/index.js';
import { ArrowReader } from '../src/arrow/reader.js';
import { AnswerVocab } from '../src/vqa/answers.js';
import type { DatasetKind } from '../src/arrow/schemas.js';
import { SHARED_DATA, decodeAll, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const quiet = { progress: false } as const;

/** Read a whole converted file back: rows and the images of every binary column. */
async function readBack(path: string, kind: DatasetKind) {
  const r = await ArrowReader.open(path, { kind });
  const rows: Record<string, unknown>[] = [];
  const images: Uint8Array[] = [];
  for await (const { row } of r.rows()) {
    rows.push(row as unknown as Record<string, unknown>);
    for (const c of ['image', 'image_0', 'image_1']) if (c in row) images.push((row as unknown as Record<string, Uint8Array>)[c]!);
  }
  await r.close();
  return { rows, images, reader: r };
}

describe('converters on the real shared data', () => {
  test('COCO captions (coco-mini): 130 images, 650 captions, every image decodes', async () => {
    const out = join(tmp.path, 'coco.arrow');
    const rep = await convertCocoCaptions(
      { annotations: join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), imageDir: join(SHARED_DATA, 'coco-mini/train2017') },
      out,
      quiet,
    );
    expect(rep).toMatchObject({ rows: 130, images: 130, texts: 650, skipped: [] });
    const { rows, images } = await readBack(out, 'captions');
    expect(rows.length).toBe(130);
    expect(rows.reduce((n, r) => n + (r.caption as string[]).length, 0)).toBe(650);
    expect(rows.every((r) => r.split === 'train' && /^\d{12}\.jpg$/.test(r.image_id as string))).toBe(true);
    // bytes are the file's bytes
    const first = rows[0]!;
    expect(Buffer.from(first.image as Uint8Array).equals(readFileSync(join(SHARED_DATA, 'coco-mini/train2017', first.image_id as string)))).toBe(true);
    // captions match the annotation file for that image
    const ann = JSON.parse(readFileSync(join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), 'utf8'));
    const id = ann.images.find((im: { file_name: string }) => im.file_name === first.image_id).id;
    expect(first.caption).toEqual(ann.annotations.filter((a: { image_id: number }) => a.image_id === id).map((a: { caption: string }) => a.caption.trim()));
    const sizes = await decodeAll(images);
    expect(sizes.every((s) => s.width > 0 && s.height > 0)).toBe(true);
  });

  test('Flickr8k token file + split list: 753 images, 3,765 captions, every image decodes', async () => {
    const out = join(tmp.path, 'flickr.arrow');
    const d = join(SHARED_DATA, 'flickr8k-mini');
    const rep = await convertFlickr(
      { tokens: join(d, 'Flickr8k.token.txt'), splitList: join(d, 'Flickr_8k.trainImages.txt'), imageDir: join(d, 'Images') },
      out,
      quiet,
    );
    expect(rep).toMatchObject({ rows: 753, images: 753, texts: 3765 });
    const { rows, images } = await readBack(out, 'captions');
    expect(rows.length).toBe(753);
    expect(rows.every((r) => (r.caption as string[]).length === 5 && r.split === 'train')).toBe(true);
    // order of the split list is kept, captions ordered by #n
    const list = readFileSync(join(d, 'Flickr_8k.trainImages.txt'), 'utf8').split('\n').filter(Boolean);
    expect(rows.map((r) => r.image_id)).toEqual(list.map((l) => l.trim()));
    const tokens = readFileSync(join(d, 'Flickr8k.token.txt'), 'utf8').split('\n').filter((l) => l.startsWith(`${list[0]!.trim()}#0\t`));
    expect((rows[0]!.caption as string[])[0]).toBe(tokens[0]!.split('\t')[1]!.trim());
    const sizes = await decodeAll(images);
    expect(Math.max(...sizes.map((s) => Math.max(s.width, s.height)))).toBeLessThanOrEqual(320);
  });

  for (const [split, nImages, nQuestions] of [['train', 4000, 38575], ['test', 1000, 9673]] as const) {
    test(`easy-VQA ${split}: ${nImages} images, ${nQuestions} questions, 13 answers, every image decodes`, async () => {
      const out = join(tmp.path, `easyvqa_${split}.arrow`);
      const d = join(SHARED_DATA, 'easy-vqa');
      const rep = await convertEasyVqa(
        { questions: join(d, split, 'questions.json'), imageDir: join(d, split, 'images'), answers: join(d, 'answers.txt') },
        out,
        quiet,
      );
      expect(rep).toMatchObject({ rows: nImages, images: nImages, texts: nQuestions });
      const vocab = AnswerVocab.load(join(tmp.path, `easyvqa_${split}_answers.json`));
      expect(vocab.size).toBe(13);
      const annotations = JSON.parse(readFileSync(join(tmp.path, `easyvqa_${split}_annotations.json`), 'utf8')) as Record<string, { answers: string[]; answerType: string }>;
      expect(Object.keys(annotations).length).toBe(nQuestions);
      // each entry: the 10 agreeing answers and the answer type of easy-VQA's generator
      const raw0 = JSON.parse(readFileSync(join(SHARED_DATA, 'easy-vqa', split, 'questions.json'), 'utf8')) as [string, string, number][];
      const typeOf = (a: string) => (a === 'yes' || a === 'no' ? 'yes/no' : ['circle', 'rectangle', 'triangle'].includes(a) ? 'shape' : 'color');
      raw0.forEach(([, answer], i) => expect(annotations[String(i)]).toEqual({ answers: new Array(10).fill(answer), answerType: typeOf(answer) }));
      const types = new Set(Object.values(annotations).map((a) => a.answerType));
      expect([...types].sort()).toEqual(['color', 'shape', 'yes/no']);
      const { rows, images } = await readBack(out, 'vqa');
      const qs = rows.reduce((n, r) => n + (r.questions as string[]).length, 0);
      expect(qs).toBe(nQuestions);
      // every question has exactly one answer with label = its line in answers.txt and score 1.0 (10 agreeing annotators)
      const raw = JSON.parse(readFileSync(join(d, split, 'questions.json'), 'utf8')) as [string, string, number][];
      const r0 = rows.find((r) => r.image_id === raw[0]![2])!;
      expect((r0.questions as string[])[0]).toBe(raw[0]![0]);
      expect((r0.answers as string[][])[0]).toEqual([raw[0]![1]]);
      expect((r0.answer_labels as number[][])[0]).toEqual([vocab.label(raw[0]![1])]);
      expect((r0.answer_scores as number[][])[0]).toEqual([1]);
      expect(rows.every((r) => (r.answer_labels as number[][]).every((l) => l.length === 1))).toBe(true);
      const sizes = await decodeAll(images);
      expect(sizes.every((s) => s.width === 64 && s.height === 64)).toBe(true);
    });
  }

  for (const [split, n] of [['hidden', 985], ['test', 990]] as const) {
    test(`NLVR1 ${split}: ${n} examples as image pairs, every image decodes`, async () => {
      const out = join(tmp.path, `nlvr1_${split}.arrow`);
      const d = join(SHARED_DATA, 'nlvr1', split);
      const rep = await convertNlvr1({ json: join(d, `${split}.json`), imageDir: join(d, 'images') }, out, quiet);
      expect(rep).toMatchObject({ rows: n, images: 2 * n, texts: n, skipped: [] });
      const { rows, images } = await readBack(out, 'nlvr2');
      expect(rows.length).toBe(n);
      expect(rows.every((r) => ['True', 'False'].includes((r.answers as string[])[0]!))).toBe(true);
      const lines = readFileSync(join(d, `${split}.json`), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(rows.filter((r) => (r.answers as string[])[0] === 'True').length).toBe(lines.filter((l) => l.label === 'true').length);
      expect(rows[0]!.identifier).toBe(`${split}-${lines[0].identifier}`);
      const sizes = await decodeAll(images);
      expect(sizes.every((s) => s.width === 400 && s.height === 100)).toBe(true);
    });
  }
});

describe('converters on the other real layouts (built from the shared files)', () => {
  test('Karpathy dataset_coco.json layout: splits, restval counted as train', async () => {
    const ann = JSON.parse(readFileSync(join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), 'utf8'));
    const images = ann.images.slice(0, 12).map((im: { id: number; file_name: string }, i: number) => ({
      filepath: 'train2017',
      filename: im.file_name,
      cocoid: im.id,
      split: ['train', 'restval', 'val', 'test'][i % 4],
      sentences: ann.annotations.filter((a: { image_id: number }) => a.image_id === im.id).map((a: { caption: string }) => ({ raw: a.caption, tokens: [] })),
    }));
    const json = join(tmp.path, 'dataset_coco.json');
    writeFileSync(json, JSON.stringify({ images, dataset: 'coco' }));
    const root = join(SHARED_DATA, 'coco-mini');
    const train = await convertKarpathy({ json, imageRoot: root, split: 'train' }, join(tmp.path, 'k_train.arrow'), quiet);
    const test_ = await convertKarpathy({ json, imageRoot: root, split: 'test' }, join(tmp.path, 'k_test.arrow'), quiet);
    expect(train.rows).toBe(6);
    expect(test_.rows).toBe(3);
    const { rows } = await readBack(join(tmp.path, 'k_test.arrow'), 'captions');
    expect(rows.map((r) => r.image_id)).toEqual([images[3].filename, images[7].filename, images[11].filename]);
    expect(rows[0]!.caption).toEqual(images[3].sentences.map((s: { raw: string }) => s.raw.trim()));
    await expect(convertKarpathy({ json, imageRoot: root, split: 'dev' }, join(tmp.path, 'k_dev.arrow'), quiet)).rejects.toThrow(/no image has split 'dev' \(splits present: train, restval, val, test\)/);
  });

  test('VQAv2 questions + annotations: vocabulary (min count), soft scores, test split without answers', async () => {
    const d = join(tmp.path, 'vqa2');
    mkdirSync(join(d, 'images'), { recursive: true });
    const files = readdirSync(join(SHARED_DATA, 'coco-mini/train2017')).slice(0, 4);
    files.forEach((f, i) => symlinkSync(join(SHARED_DATA, 'coco-mini/train2017', f), join(d, 'images', `COCO_train2014_${String(100 + i).padStart(12, '0')}.jpg`)));
    const questions = [] as { image_id: number; question: string; question_id: number }[];
    const annotations = [] as unknown[];
    // answer pattern per question: annotators' answers
    const patterns = [
      ['yes', 'yes', 'yes', 'yes', 'yes', 'yes', 'yes', 'yes', 'no', 'no'], // yes ×8 → 1.0, no ×2 → 0.6
      ['two', '2', '2', 'Two', '3', '3', '3', 'three', '2', '2'], // '2' ×6 (digits normalised), '3' ×4
      ['red', 'red', 'blue', 'green', 'red.', 'Red', 'red', 'red', 'red', 'red'], // red ×9 (punct), blue 1, green 1
    ];
    let qid = 1000;
    for (let img = 0; img < 4; img++) {
      for (let k = 0; k < 3; k++) {
        const answers = patterns[(img + k) % 3]!;
        questions.push({ image_id: 100 + img, question: `question ${k} about image ${img}?`, question_id: qid });
        const counts = new Map<string, number>();
        answers.forEach((a) => counts.set(a, (counts.get(a) ?? 0) + 1));
        annotations.push({
          question_id: qid,
          image_id: 100 + img,
          multiple_choice_answer: [...counts].sort((a, b) => b[1] - a[1])[0]![0],
          answers: answers.map((a, j) => ({ answer: a, answer_confidence: 'yes', answer_id: j + 1 })),
          answer_type: ['yes/no', 'number', 'other'][(img + k) % 3],
          question_type: ['is the', 'how many', 'what color is the'][(img + k) % 3],
        });
        qid++;
      }
    }
    writeFileSync(join(d, 'q.json'), JSON.stringify({ data_subtype: 'train2014', questions }));
    writeFileSync(join(d, 'a.json'), JSON.stringify({ annotations }));
    const out = join(d, 'vqa_train.arrow');
    const rep = await convertVqa2({ questions: join(d, 'q.json'), annotations: join(d, 'a.json'), imageDir: join(d, 'images'), minAnswerCount: 4 }, out, quiet);
    expect(rep).toMatchObject({ rows: 4, images: 4, texts: 12 });
    const vocab = AnswerVocab.load(join(d, 'vqa_train_answers.json'));
    // multiple_choice answers: yes ×4, 2 ×4, red ×4 → all kept with minCount 4
    expect([...vocab.answers].sort()).toEqual(['2', 'red', 'yes']);
    const { rows } = await readBack(out, 'vqa');
    const r0 = rows[0]!;
    expect(r0.split).toBe('train');
    expect(r0.question_id).toEqual([1000, 1001, 1002]);
    // question 0: yes ×8 (no is not in the vocabulary)
    expect((r0.answers as string[][])[0]).toEqual(['yes']);
    expect((r0.answer_scores as number[][])[0]).toEqual([1]);
    // question 1: '2' ×6 → 1.0; '3' not in vocab
    expect((r0.answers as string[][])[1]).toEqual(['2']);
    expect((r0.answer_labels as number[][])[1]).toEqual([vocab.label('2')]);
    // question 2: red ×9 after normalisation ('red.' and 'Red')
    expect((r0.answer_scores as number[][])[2]).toEqual([1]);
    // the annotations sidecar: each question's raw answers with its official types
    const side = JSON.parse(readFileSync(join(d, 'vqa_train_annotations.json'), 'utf8')) as Record<string, unknown>;
    expect(side['1001']).toEqual({ answers: patterns[1], answerType: 'number', questionType: 'how many' });
    expect(Object.keys(side).length).toBe(12);
    // test split: questions only
    writeFileSync(join(d, 'q_test.json'), JSON.stringify({ data_subtype: 'train2014', questions: questions.slice(0, 3) }));
    const out2 = join(d, 'vqa_test.arrow');
    await convertVqa2({ questions: join(d, 'q_test.json'), imageDir: join(d, 'images'), split: 'test', answerVocab: vocab }, out2, quiet);
    const t = await readBack(out2, 'vqa');
    expect(t.rows[0]!.answers).toEqual([[], [], []]);
    expect(t.rows[0]!.split).toBe('test');
    // a question without an annotation is an error naming it
    writeFileSync(join(d, 'a_bad.json'), JSON.stringify({ annotations: annotations.slice(1) }));
    await expect(convertVqa2({ questions: join(d, 'q.json'), annotations: join(d, 'a_bad.json'), imageDir: join(d, 'images') }, join(d, 'x.arrow'), quiet)).rejects.toThrow(/questions\[0\]: question_id 1000 has no entry/);
  });

  test('NLVR2 JSON lines + image folder: statements grouped per pair', async () => {
    const d = join(tmp.path, 'nlvr2');
    mkdirSync(join(d, 'images', '7'), { recursive: true });
    const src = join(SHARED_DATA, 'nlvr1/test/images/0');
    const pngs = readdirSync(src).slice(0, 4);
    symlinkSync(join(src, pngs[0]!), join(d, 'images', '7', 'train-10-1-img0.png'));
    symlinkSync(join(src, pngs[1]!), join(d, 'images', '7', 'train-10-1-img1.png'));
    symlinkSync(join(src, pngs[2]!), join(d, 'images', 'train-11-0-img0.png'));
    symlinkSync(join(src, pngs[3]!), join(d, 'images', 'train-11-0-img1.png'));
    const lines = [
      { identifier: 'train-10-1-0', sentence: 'One image has a dog.', label: 'True', directory: 7 },
      { identifier: 'train-11-0-2', sentence: 'Both images have cats.', label: 'False' },
      { identifier: 'train-10-1-3', sentence: 'There are two dogs.', label: 'False', directory: 7 },
    ];
    writeFileSync(join(d, 'train.json'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const out = join(d, 'nlvr2_train.arrow');
    const rep = await convertNlvr2({ json: join(d, 'train.json'), imageDir: join(d, 'images') }, out, quiet);
    expect(rep).toMatchObject({ rows: 2, images: 4, texts: 3 });
    const { rows } = await readBack(out, 'nlvr2');
    expect(rows[0]).toMatchObject({ identifier: 'train-10-1', questions: ['One image has a dog.', 'There are two dogs.'], answers: ['True', 'False'] });
    expect(Buffer.from(rows[0]!.image_1 as Uint8Array).equals(readFileSync(join(src, pngs[1]!)))).toBe(true);
  });
});

describe('converter errors', () => {
  test('a missing image names the file; skip policy counts it and goes on', async () => {
    const d = join(tmp.path, 'err');
    mkdirSync(d, { recursive: true });
    const ann = JSON.parse(readFileSync(join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), 'utf8'));
    ann.images = ann.images.slice(0, 3);
    ann.images[1] = { ...ann.images[1], file_name: 'no_such_image.jpg' };
    writeFileSync(join(d, 'captions_train2017.json'), JSON.stringify(ann));
    const input = { annotations: join(d, 'captions_train2017.json'), imageDir: join(SHARED_DATA, 'coco-mini/train2017') };
    const out = join(d, 'c.arrow');
    await expect(convertCocoCaptions(input, out, quiet)).rejects.toThrow(/no_such_image\.jpg: file not found/);
    expect(existsSync(out)).toBe(false); // nothing half-written
    expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const rep = await convertCocoCaptions(input, out, { ...quiet, onError: 'skip' });
    expect(rep.rows).toBe(2);
    expect(rep.skipped).toHaveLength(1);
    expect(rep.skipped[0]!.source).toMatch(/no_such_image\.jpg$/);
  });

  test('a corrupt image is caught before it reaches the Arrow file', async () => {
    const d = join(tmp.path, 'corrupt');
    mkdirSync(join(d, 'images'), { recursive: true });
    const good = readFileSync(join(SHARED_DATA, 'easy-vqa/train/images/0.png'));
    writeFileSync(join(d, 'images', '0.png'), good);
    writeFileSync(join(d, 'images', '1.png'), Buffer.from('this is not a png at all'));
    writeFileSync(join(d, 'questions.json'), JSON.stringify([['what shape?', 'circle', 0], ['what color?', 'red', 1]]));
    const input = { questions: join(d, 'questions.json'), imageDir: join(d, 'images'), answers: join(SHARED_DATA, 'easy-vqa/answers.txt') };
    await expect(convertEasyVqa(input, join(d, 'v.arrow'), quiet)).rejects.toThrow(/1\.png: does not decode/);
    const rep = await convertEasyVqa(input, join(d, 'v.arrow'), { ...quiet, onError: 'skip' });
    expect(rep.rows).toBe(1);
  });

  test('a PNG cut short (intact header) is caught by the full decode; skip lists it with where and why', async () => {
    const d = join(tmp.path, 'cutpng');
    mkdirSync(join(d, 'images'), { recursive: true });
    const src = join(SHARED_DATA, 'easy-vqa/train/images');
    writeFileSync(join(d, 'images', '0.png'), readFileSync(join(src, '0.png')));
    const full = readFileSync(join(src, '1.png'));
    const cut = join(d, 'images', '1.png');
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 2)));
    await expect(loadImageFile(cut, 'header')).resolves.toHaveLength(Math.floor(full.length / 2)); // the cheap check passes it
    await expect(loadImageFile(cut)).rejects.toBeInstanceOf(ImageFileError);
    await expect(loadImageFile(cut)).rejects.toThrow(`image ${cut}: does not decode: `);
    writeFileSync(join(d, 'questions.json'), JSON.stringify([['what shape?', 'circle', 0], ['what color?', 'red', 1], ['what shape?', 'circle', 1]]));
    const input = { questions: join(d, 'questions.json'), imageDir: join(d, 'images'), answers: join(SHARED_DATA, 'easy-vqa/answers.txt') };
    const out = join(d, 'v.arrow');
    await expect(convertEasyVqa(input, out, quiet)).rejects.toThrow(`image ${cut}: does not decode: `);
    await expect(convertEasyVqa(input, out, quiet)).rejects.toThrow(`(${input.questions} image_id 1; row 1 of ${out})`);
    const rep = await convertEasyVqa(input, out, { ...quiet, onError: 'skip' });
    expect(rep).toMatchObject({ rows: 1, texts: 1 });
    expect(rep.skipped).toEqual([{ source: cut, where: `${input.questions} image_id 1`, reason: expect.stringMatching(/^does not decode: /) }]);
    const cheap = await convertEasyVqa(input, join(d, 'cheap.arrow'), { ...quiet, verifyImages: 'header' });
    expect(cheap.rows).toBe(2);
  });

  test('bad JSON input names the file and the entry', async () => {
    const d = join(tmp.path, 'badjson');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'test.json'), '{"sentence": "ok", "label": "true", "identifier": "1-0"}\n{broken\n');
    await expect(convertNlvr1({ json: join(d, 'test.json'), imageDir: d }, join(d, 'n.arrow'), quiet)).rejects.toThrow(/test\.json line 2: invalid JSON/);
    writeFileSync(join(d, 'q.json'), JSON.stringify([['q?', 'circle', 0], ['q2?', 'banana', 0]]));
    await expect(convertEasyVqa({ questions: join(d, 'q.json'), imageDir: d, answers: join(SHARED_DATA, 'easy-vqa/answers.txt') }, join(d, 'e.arrow'), quiet)).rejects.toThrow(/q\.json\[1\]: answer 'banana' is not in/);
    writeFileSync(join(d, 'tok.txt'), 'a.jpg#0\tok\nbroken line\n');
    await expect(convertFlickr({ tokens: join(d, 'tok.txt'), imageDir: d }, join(d, 'f.arrow'), quiet)).rejects.toThrow(/tok\.txt line 2: expected/);
  });
});
