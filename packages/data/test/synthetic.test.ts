import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { tableFromIPC, type Table } from 'apache-arrow';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { SCHEMAS, checkSchema, describeType, type DatasetKind } from '../src/arrow/schemas.js';
import { AnswerVocab } from '../src/vqa/answers.js';
import {
  SCENE_MAX_OBJECTS as MAX_OBJECTS,
  SCENE_PALETTE as PALETTE,
  SCENE_QUESTION_TYPES as QUESTION_TYPES,
  SHAPES_WORLD_ANNOTATORS as ANNOTATORS,
  SHAPES_WORLD_ANSWERS,
  SHAPES_WORLD_SPLITS,
  annotatorAnswers,
  captionsFor,
  identifyingCaption,
  encodePngRgb,
  ensureShapesWorld,
  generateShapesWorld,
  positionOf,
  questionsFor,
  rasterizeScene as rasterize,
  renderScene,
  resolveShapesWorldOptions,
  sampleScene,
  shapesWorldAnswerVocab,
  shapesWorldImage,
  shapesWorldTexts,
  statementFor,
  type Scene,
  type SceneObject,
  type ShapesWorldOptions,
} from '../src/synthetic/index.js';
import { huffmanLengths } from '../src/synthetic/png.js';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'shapes-world-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const scenes = (n: number, seed = 1): Scene[] => Array.from({ length: n }, (_, i) => sampleScene(Rng.forKey(seed, 99, i)));

describe('scenes', () => {
  it('have 1–4 non-overlapping objects inside the image, with unambiguous derived positions', () => {
    const counts = new Map<number, number>();
    for (const s of scenes(500)) {
      const n = s.objects.length;
      counts.set(n, (counts.get(n) ?? 0) + 1);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(MAX_OBJECTS);
      for (const o of s.objects) {
        expect(o.x - 1.2 * o.r).toBeGreaterThan(0);
        expect(o.x + 1.2 * o.r).toBeLessThan(1);
        expect(o.y - 1.2 * o.r).toBeGreaterThan(0);
        expect(o.y + 1.2 * o.r).toBeLessThan(1);
        expect(o.position).toBe(regionOf(o.x, o.y));
        expect(o.position).toBe(positionOf(o.x, o.y));
        if (o.position !== 'center') expect(Math.abs(Math.abs(o.x - 0.5) - Math.abs(o.y - 0.5))).toBeGreaterThanOrEqual(0.1 - 1e-9);
      }
      for (const a of s.objects) for (const b of s.objects) if (a !== b) expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThan(1.2 * (a.r + b.r));
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    }
    expect([...counts.keys()].sort()).toEqual([1, 2, 3, 4]);
  });

  it('are deterministic per seed and differ between seeds', () => {
    expect(sampleScene(new Rng(7))).toEqual(sampleScene(new Rng(7)));
    expect(sampleScene(new Rng(7))).not.toEqual(sampleScene(new Rng(8)));
  });
});

describe('rendering', () => {
  it('gives byte-identical PNGs that decode to the rasterised pixels at the right size', async () => {
    for (const s of scenes(20)) {
      for (const size of [64, 96]) {
        const a = await renderScene(s, size);
        const b = await renderScene(JSON.parse(JSON.stringify(s)) as Scene, size);
        expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
        const { data, info } = await sharp(a).raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height, info.channels]).toEqual([size, size, 3]);
        expect(Buffer.from(data).equals(Buffer.from(rasterize(s, size)))).toBe(true);
      }
    }
  });

  it('draws every shape in its palette colour at its centre, over a light background', () => {
    const size = 64;
    for (const s of scenes(200, 2)) {
      const px = rasterize(s, size);
      const at = (x: number, y: number): number[] => {
        const i = (Math.min(size - 1, Math.floor(y * size)) * size + Math.min(size - 1, Math.floor(x * size))) * 3;
        return [px[i]!, px[i + 1]!, px[i + 2]!];
      };
      for (const o of s.objects) {
        const got = at(o.x, o.y);
        const want = PALETTE[o.color];
        for (let c = 0; c < 3; c++) expect(Math.abs(got[c]! - want[c]!)).toBeLessThanOrEqual(s.background.noise + 1);
      }
      // a point away from every shape shows the background
      const free = [[0.02, 0.02], [0.98, 0.02], [0.02, 0.98], [0.98, 0.98]].find(([x, y]) => s.objects.every((o) => Math.hypot(o.x - x!, o.y - y!) > 1.2 * o.r + 0.05));
      if (free) {
        const got = at(free[0]!, free[1]!);
        for (let c = 0; c < 3; c++) expect(Math.abs(got[c]! - s.background.color[c]!)).toBeLessThanOrEqual(Math.abs(s.background.gradient[c]!) / 2 + s.background.noise + 1);
      }
    }
  });

  it('the PNG encoder round-trips flat, noisy and random images and limits code lengths', async () => {
    const cases: [number, number, Uint8Array][] = [];
    cases.push([8, 8, new Uint8Array(8 * 8 * 3).fill(200)]);
    const rng = new Rng(3);
    const noisy = new Uint8Array(33 * 17 * 3);
    for (let i = 0; i < noisy.length; i++) noisy[i] = rng.int(0, 256);
    cases.push([33, 17, noisy]);
    const grad = new Uint8Array(40 * 40 * 3);
    for (let i = 0; i < grad.length; i++) grad[i] = (i * 7) & 0xff;
    cases.push([40, 40, grad]);
    for (const [w, h, rgb] of cases) {
      const png = encodePngRgb(rgb, w, h);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([w, h]);
      expect(Buffer.from(data).equals(Buffer.from(rgb))).toBe(true);
      // the IDAT zlib stream also inflates with node's zlib
      const idatAt = Buffer.from(png).indexOf('IDAT');
      const len = Buffer.from(png).readUInt32BE(idatAt - 4);
      expect(inflateSync(png.subarray(idatAt + 4, idatAt + 4 + len)).length).toBe((w * 3 + 1) * h);
    }
    // Fibonacci frequencies would need 25-bit codes: lengths are limited and the code stays complete
    const fib = [1, 1];
    while (fib.length < 26) fib.push(fib[fib.length - 1]! + fib[fib.length - 2]!);
    const lengths = huffmanLengths(fib, 15);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(15);
    expect([...lengths].reduce((a, l) => a + 2 ** -l, 0)).toBeCloseTo(1, 12);
  });
});

describe('texts are true of their scenes', () => {
  it('captions: 5 different, all true (independent checker), with a spread of forms; the first identifies the scene', () => {
    const forms = new Set<string>();
    for (const [i, s] of scenes(300, 3).entries()) {
      const caps = captionsFor(s, Rng.forKey(3, 1, i));
      expect(caps).toHaveLength(5);
      expect(caps[0]).toBe(identifyingCaption(s));
      // every object named with size, colour, shape and position
      for (const o of s.objects) expect(caps[0]).toContain(`${o.size} ${o.color} ${o.shape}`);
      expect(new Set(caps).size).toBe(5);
      for (const c of caps) {
        expect(captionTrue(c, s), `${c} | ${JSON.stringify(s.objects)}`).toBe(true);
        forms.add(c.split(' ').slice(0, 2).join(' '));
      }
    }
    expect(forms.size).toBeGreaterThan(10);
  });

  it('the checker rejects false captions', () => {
    const s: Scene = {
      objects: [
        { shape: 'circle', color: 'red', size: 'large', x: 0.25, y: 0.5, r: 0.14, position: 'left' },
        { shape: 'square', color: 'blue', size: 'small', x: 0.75, y: 0.5, r: 0.08, position: 'right' },
      ],
      background: { color: [230, 230, 230], gradient: [0, 0, 0], direction: [0, 1], noise: 2, noiseSeed: 1 },
    };
    expect(captionTrue('a red circle and a blue square', s)).toBe(true);
    expect(captionTrue('a red circle', s)).toBe(false);
    expect(captionTrue('two circles', s)).toBe(false);
    expect(captionTrue('a blue circle on the left', s)).toBe(false);
    expect(captionTrue('a red circle to the right of a square', s)).toBe(false);
    expect(captionTrue('there are three shapes', s)).toBe(false);
    expect(answerOf('where is the square?', s)).toBe('right');
    expect(() => answerOf('what color is the shape?', s)).toThrow(/refers to 2/);
  });

  it('questions: answers match the checker, types all occur, yes/no balanced, answers in the vocabulary', () => {
    const types = new Map<string, number>();
    let yes = 0;
    let yesno = 0;
    for (const [i, s] of scenes(400, 4).entries()) {
      const qs = questionsFor(s, Rng.forKey(4, 2, i));
      expect(qs).toHaveLength(6);
      expect(new Set(qs.map((q) => q.question)).size).toBe(6);
      for (const q of qs) {
        expect(answerOf(q.question, s), `${q.question} | ${JSON.stringify(s.objects)}`).toBe(q.answer);
        expect(SHAPES_WORLD_ANSWERS).toContain(q.answer);
        types.set(q.type, (types.get(q.type) ?? 0) + 1);
        if (q.answer === 'yes' || q.answer === 'no') {
          yesno++;
          if (q.answer === 'yes') yes++;
        }
      }
    }
    expect([...types.keys()].sort()).toEqual([...QUESTION_TYPES].sort());
    expect(yes / yesno).toBeGreaterThan(0.4);
    expect(yes / yesno).toBeLessThan(0.6);
  });

  it('NLVR statements: labels match the checker and are balanced', () => {
    let trues = 0;
    const n = 800;
    const starts = new Set<string>();
    for (let i = 0; i < n; i++) {
      const a = sampleScene(Rng.forKey(5, 1, i));
      const b = sampleScene(Rng.forKey(5, 2, i));
      const st = statementFor(a, b, Rng.forKey(5, 3, i));
      expect(statementTrue(st.statement, a, b), st.statement).toBe(st.label);
      if (st.label) trues++;
      starts.add(st.statement.split(' ').slice(0, 3).join(' '));
    }
    expect(trues / n).toBeGreaterThan(0.4);
    expect(trues / n).toBeLessThan(0.6);
    expect(starts.size).toBeGreaterThan(8);
  });

  it('annotators: 10 answers, mostly right, soft scores in {0.3, 0.6, 0.9, 1}', () => {
    const vocab = shapesWorldAnswerVocab();
    const seenScores = new Set<number>();
    for (const [i, s] of scenes(300, 6).entries()) {
      const rng = Rng.forKey(6, 7, i);
      for (const q of questionsFor(s, Rng.forKey(6, 8, i))) {
        const ann = annotatorAnswers(q, rng);
        expect(ann).toHaveLength(ANNOTATORS);
        expect(ann.filter((a) => a === q.answer).length).toBeGreaterThanOrEqual(7);
        const t = vocab.targets(ann);
        expect(t.labels.length).toBe(t.answers.length);
        for (const [k, a] of t.answers.entries()) {
          expect(vocab.answer(t.labels[k]!)).toBe(a);
          expect([0.3, 0.6, 0.9, 1]).toContain(t.scores[k]);
          if (a === q.answer) expect(t.scores[k]).toBe(1);
          seenScores.add(t.scores[k]!);
        }
      }
    }
    expect([...seenScores].sort()).toEqual([0.3, 0.6, 0.9, 1]);
    expect(new Set(SHAPES_WORLD_ANSWERS).size).toBe(SHAPES_WORLD_ANSWERS.length);
  });
});

// -----------------------------------------------------------------------------------------
// The generated dataset

const SMALL: ShapesWorldOptions = { seed: 11, imageSize: 32, splits: { train: 24, val: 6, test: 6 }, nlvrPairs: { train: 16, val: 4, test: 4 } };

function readTable(path: string): Table {
  return tableFromIPC(readFileSync(path));
}

const strings = (v: unknown): string[] => [...(v as Iterable<string>)];
const nested = <T>(v: unknown): T[][] => [...(v as Iterable<Iterable<T>>)].map((x) => [...x]);

function dirBytes(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) m.set(f, readFileSync(join(dir, f)));
  return m;
}

describe('generateShapesWorld', () => {
  const dir = tmp();
  let progress: [number, number][] = [];
  const ready = generateShapesWorld(dir, { ...SMALL, onProgress: (d, t) => progress.push([d, t]) });

  it('writes the file layout with a matching manifest', async () => {
    const m = await ready;
    const files = readdirSync(dir).sort();
    expect(files).toEqual(
      [
        'answers.json',
        'manifest.json',
        ...SHAPES_WORLD_SPLITS.flatMap((s) => [`captions_${s}.arrow`, `vqa_${s}.arrow`, `nlvr2_${s}.arrow`, `vqa_${s}_annotations.json`, `scenes_${s}.json`]),
        'retrieval_val.arrow',
        'retrieval_test.arrow',
      ].sort(),
    );
    expect(m.options).toEqual(resolveShapesWorldOptions(SMALL));
    expect(m.counts.images).toBe(24 + 6 + 6 + 2 * (16 + 4 + 4));
    expect(progress[progress.length - 1]).toEqual([m.counts.images, m.counts.images]);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))).toEqual(m);
    for (const [name, info] of Object.entries(m.files)) expect(statSync(join(dir, name)).size).toBe(info.bytes);
    expect(AnswerVocab.load(join(dir, 'answers.json')).answers).toEqual(SHAPES_WORLD_ANSWERS);
  });

  it('retrieval files: each image once with its identifying caption, no caption shared, in the split', async () => {
    const m = await ready;
    expect(m.counts.retrieval.train).toBe(0);
    for (const split of ['val', 'test'] as const) {
      const r = readTable(join(dir, `retrieval_${split}.arrow`));
      const c = readTable(join(dir, `captions_${split}.arrow`));
      const firstCaption = new Map<string, string>();
      for (let i = 0; i < c.numRows; i++) firstCaption.set(String(c.get(i)!.image_id), String(c.get(i)!.caption.get(0)));
      expect(r.numRows).toBe(m.counts.retrieval[split]);
      expect(r.numRows).toBeGreaterThan(0.8 * m.options.splits[split]); // collisions are rare
      const seen = new Set<string>();
      for (let i = 0; i < r.numRows; i++) {
        const row = r.get(i)!;
        expect(row.caption.length).toBe(1);
        const caption = String(row.caption.get(0));
        expect(caption).toBe(firstCaption.get(String(row.image_id)));
        expect(seen.has(caption)).toBe(false);
        seen.add(caption);
        expect(row.split).toBe(split);
      }
    }
  });

  it('Arrow files read back with the schemas and row counts', async () => {
    const m = await ready;
    for (const split of SHAPES_WORLD_SPLITS) {
      for (const kind of ['captions', 'vqa', 'nlvr2'] as DatasetKind[]) {
        const path = join(dir, `${kind}_${split}.arrow`);
        const t = readTable(path);
        checkSchema(kind, t.schema, path);
        expect(t.schema.fields.map((f) => `${f.name}:${describeType(f.type)}`)).toEqual(SCHEMAS[kind].fields.map((f) => `${f.name}:${describeType(f.type)}`));
        expect(t.numRows).toBe(kind === 'nlvr2' ? m.options.nlvrPairs[split] : m.options.splits[split]);
      }
    }
  });

  it('VQA rows: labels/scores from the vocabulary, unique question ids, annotations sidecar, answers true of the scenes', async () => {
    const m = await ready;
    const vocab = AnswerVocab.load(join(dir, 'answers.json'));
    const qids = new Set<number>();
    const imageIds = new Set<number>();
    const seenTypes = new Set<string>();
    let questions = 0;
    for (const split of SHAPES_WORLD_SPLITS) {
      const t = readTable(join(dir, `vqa_${split}.arrow`));
      const caps = readTable(join(dir, `captions_${split}.arrow`));
      const ann = JSON.parse(readFileSync(join(dir, `vqa_${split}_annotations.json`), 'utf8')) as Record<string, { answers: string[]; questionType: string; answerType: string }>;
      const sc = JSON.parse(readFileSync(join(dir, `scenes_${split}.json`), 'utf8')) as { images: { image_id: number; scene: Scene }[] };
      expect(sc.images).toHaveLength(t.numRows);
      let splitQuestions = 0;
      for (let r = 0; r < t.numRows; r++) {
        const row = t.get(r)!;
        const imageId = Number(row.image_id);
        expect(imageIds.has(imageId)).toBe(false);
        imageIds.add(imageId);
        expect(row.split).toBe(split);
        expect(caps.get(r)!.image_id).toBe(String(imageId));
        expect(Buffer.from(caps.get(r)!.image as Uint8Array).equals(Buffer.from(row.image as Uint8Array))).toBe(true);
        const scene = sc.images[r]!.scene;
        expect(sc.images[r]!.image_id).toBe(imageId);
        for (const c of strings(caps.get(r)!.caption)) expect(captionTrue(c, scene), c).toBe(true);
        const qs = strings(row.questions);
        const answers = nested<string>(row.answers);
        const labels = nested<bigint>(row.answer_labels).map((l) => l.map(Number));
        const scores = nested<number>(row.answer_scores);
        const ids = [...(row.question_id as Iterable<bigint>)].map(Number);
        expect(qs).toHaveLength(m.options.questionsPerImage);
        splitQuestions += qs.length;
        for (let k = 0; k < qs.length; k++) {
          expect(qids.has(ids[k]!)).toBe(false);
          qids.add(ids[k]!);
          const entry = ann[String(ids[k])]!;
          const raw = entry.answers;
          expect(raw).toHaveLength(10);
          // the question's type, and the official answer type it falls under, agree with its true answer
          const kind = /^\d+$/.test(answerOf(qs[k]!, scene)) ? 'number' : ['yes', 'no'].includes(answerOf(qs[k]!, scene)) ? 'yes/no' : 'other';
          expect(entry.answerType, qs[k]).toBe(kind);
          expect(entry.questionType, qs[k]).toBe({ number: 'count', 'yes/no': entry.questionType === 'exist' ? 'exist' : 'yesno', other: entry.questionType }[kind]);
          expect(['color', 'shape', 'size', 'position', 'count', 'exist', 'yesno']).toContain(entry.questionType);
          seenTypes.add(entry.questionType);
          expect({ answers: answers[k], labels: labels[k], scores: scores[k] }).toEqual(vocab.targets(raw));
          for (const [j, l] of labels[k]!.entries()) expect(vocab.answer(l)).toBe(answers[k]![j]);
          const truth = answerOf(qs[k]!, scene);
          expect(answers[k]![scores[k]!.indexOf(1)]).toBe(truth);
        }
        const { info } = await sharp(row.image as Uint8Array).metadata().then((meta) => ({ info: meta }));
        expect([info.width, info.height, info.format]).toEqual([32, 32, 'png']);
      }
      expect(Object.keys(ann)).toHaveLength(splitQuestions);
      expect(m.counts.questions[split]).toBe(splitQuestions);
      questions += splitQuestions;
    }
    expect(qids.size).toBe(questions);
    expect([...seenTypes].sort()).toEqual(['color', 'count', 'exist', 'position', 'shape', 'size', 'yesno']);
  });

  it('NLVR2 rows: two images, one statement, labels true of the scenes', async () => {
    await ready;
    for (const split of SHAPES_WORLD_SPLITS) {
      const t = readTable(join(dir, `nlvr2_${split}.arrow`));
      const sc = JSON.parse(readFileSync(join(dir, `scenes_${split}.json`), 'utf8')) as { pairs: { identifier: string; left: Scene; right: Scene }[] };
      for (let r = 0; r < t.numRows; r++) {
        const row = t.get(r)!;
        expect(row.identifier).toBe(`${split}-${r}-0`);
        expect(sc.pairs[r]!.identifier).toBe(row.identifier);
        const qs = strings(row.questions);
        const as = strings(row.answers);
        expect(qs).toHaveLength(1);
        expect(['True', 'False']).toContain(as[0]);
        expect(statementTrue(qs[0]!, sc.pairs[r]!.left, sc.pairs[r]!.right)).toBe(as[0] === 'True');
        for (const col of ['image_0', 'image_1']) {
          const meta = await sharp(row[col] as Uint8Array).metadata();
          expect([meta.width, meta.height]).toEqual([32, 32]);
        }
      }
    }
  });

  it('shapesWorldTexts yields exactly the texts in the files', async () => {
    await ready;
    const fromFiles: string[] = [];
    for (const split of SHAPES_WORLD_SPLITS) {
      const caps = readTable(join(dir, `captions_${split}.arrow`));
      const vqa = readTable(join(dir, `vqa_${split}.arrow`));
      for (let r = 0; r < caps.numRows; r++) {
        fromFiles.push(...strings(caps.get(r)!.caption), ...strings(vqa.get(r)!.questions));
      }
      const nlvr = readTable(join(dir, `nlvr2_${split}.arrow`));
      for (let r = 0; r < nlvr.numRows; r++) fromFiles.push(...strings(nlvr.get(r)!.questions));
    }
    expect([...shapesWorldTexts(SMALL)]).toEqual(fromFiles);
    // items do not depend on the split sizes (prefix-stable)
    const bigger = resolveShapesWorldOptions({ ...SMALL, splits: { train: 100, val: 6, test: 6 } });
    expect(shapesWorldImage(bigger, 'train', 5).captions).toEqual(shapesWorldImage(resolveShapesWorldOptions(SMALL), 'train', 5).captions);
  });

  it('is deterministic: same options → identical bytes in every file; another seed differs', async () => {
    await ready;
    const again = tmp();
    await generateShapesWorld(again, SMALL);
    const a = dirBytes(dir);
    const b = dirBytes(again);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, bytes] of a) expect(bytes.equals(b.get(name)!), name).toBe(true);

    const other = tmp();
    await generateShapesWorld(other, { ...SMALL, seed: 12 });
    const c = dirBytes(other);
    for (const name of a.keys()) if (name !== 'answers.json') expect(a.get(name)!.equals(c.get(name)!), name).toBe(false);
  });
});

describe('ensureShapesWorld', () => {
  const opts: ShapesWorldOptions = { seed: 3, imageSize: 16, splits: { train: 5, val: 2, test: 2 }, nlvrPairs: { train: 3, val: 1, test: 1 } };

  it('generates once, skips while the manifest matches, regenerates when options or files change', async () => {
    const dir = tmp();
    const first = await ensureShapesWorld(dir, opts);
    expect(first.generated).toBe(true);
    expect(first.reason).toBe('no manifest');
    const mtime = statSync(join(dir, 'vqa_train.arrow')).mtimeMs;

    const second = await ensureShapesWorld(dir, { ...opts, onProgress: () => {} });
    expect(second.generated).toBe(false);
    expect(second.manifest).toEqual(first.manifest);
    expect(statSync(join(dir, 'vqa_train.arrow')).mtimeMs).toBe(mtime);

    const changed = await ensureShapesWorld(dir, { ...opts, questionsPerImage: 3 });
    expect(changed.generated).toBe(true);
    expect(changed.reason).toBe('options differ');
    expect(changed.manifest.options.questionsPerImage).toBe(3);

    // a damaged file (same size) is caught by the hash check, not by the size check
    const p = join(dir, 'captions_val.arrow');
    const bytes = readFileSync(p);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(p, bytes);
    const opts3 = { ...opts, questionsPerImage: 3 };
    expect((await ensureShapesWorld(dir, { ...opts3, verify: 'size' })).generated).toBe(false);
    const repaired = await ensureShapesWorld(dir, opts3);
    expect(repaired.generated).toBe(true);
    expect(repaired.reason).toMatch(/captions_val\.arrow has the wrong hash/);
    expect((await ensureShapesWorld(dir, opts3)).generated).toBe(false);

    rmSync(join(dir, 'nlvr2_test.arrow'));
    expect((await ensureShapesWorld(dir, opts3)).reason).toMatch(/nlvr2_test\.arrow missing/);
  });

  it('rejects bad options', async () => {
    await expect(generateShapesWorld(tmp(), { imageSize: 3 })).rejects.toThrow(/imageSize/);
    await expect(generateShapesWorld(tmp(), { splits: { train: -1, val: 0, test: 0 } })).rejects.toThrow(/splits\.train/);
    await expect(generateShapesWorld(tmp(), { questionsPerImage: 0 })).rejects.toThrow(/questionsPerImage/);
  });
});

// -----------------------------------------------------------------------------------------
// An independent checker of shapes-world texts: parses captions, questions and statements with
// its own small grammar and evaluates them on the scene JSON (no code shared with the generator).

const COLORS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'brown', 'gray'];
const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross'];
const SIZES = ['small', 'large'];
const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
const POS: Record<string, string> = {
  'on the left': 'left',
  'on the right': 'right',
  'at the top': 'top',
  'at the bottom': 'bottom',
  'in the center': 'center',
};

interface Desc {
  count: number | null; // null: no quantifier
  plural: boolean;
  shape?: string;
  color?: string;
  size?: string;
  position?: string;
}

/** Expected region of a point, recomputed from the coordinates. */
function regionOf(x: number, y: number): string {
  const dx = x - 0.5;
  const dy = y - 0.5;
  if (Math.abs(dx) < 0.1 && Math.abs(dy) < 0.1) return 'center';
  if (Math.abs(dx) > Math.abs(dy)) return dx < 0 ? 'left' : 'right';
  return dy < 0 ? 'top' : 'bottom';
}

/** Parse "[a|an|NUM] [small|large] [colour] (shape|shapes|object|<shape>[s]) [position phrase]". */
function parseDesc(text: string, quantifier: 'required' | 'none'): Desc {
  let rest = text.trim();
  const d: Desc = { count: null, plural: false };
  for (const [phrase, p] of Object.entries(POS)) {
    if (rest.endsWith(` ${phrase}`)) {
      d.position = p;
      rest = rest.slice(0, -phrase.length - 1);
      break;
    }
  }
  const words = rest.split(' ');
  let i = 0;
  if (quantifier === 'required') {
    const q = words[i++]!;
    if (q === 'a' || q === 'an') d.count = 1;
    else if (NUMBERS.includes(q)) d.count = NUMBERS.indexOf(q);
    else throw new Error(`no quantifier in '${text}'`);
    if ((q === 'a' || q === 'an') && words[i] && (q === 'an') !== /^[aeiou]/.test(words[i]!)) throw new Error(`wrong article in '${text}'`);
  }
  if (SIZES.includes(words[i]!)) d.size = words[i++];
  if (COLORS.includes(words[i]!)) d.color = words[i++];
  const noun = words[i++];
  if (noun === undefined || i !== words.length) throw new Error(`cannot parse '${text}'`);
  if (noun === 'shape' || noun === 'object') d.plural = false;
  else if (noun === 'shapes' || noun === 'objects') d.plural = true;
  else if (SHAPES.includes(noun)) d.shape = noun;
  else if (noun === 'crosses') {
    d.shape = 'cross';
    d.plural = true;
  } else if (noun.endsWith('s') && SHAPES.includes(noun.slice(0, -1)) && noun !== 'crosss') {
    d.shape = noun.slice(0, -1);
    d.plural = true;
  } else throw new Error(`unknown noun '${noun}' in '${text}'`);
  if (d.count !== null && (d.count === 1) === d.plural) throw new Error(`number agreement in '${text}'`);
  return d;
}

function fits(o: SceneObject, d: Desc): boolean {
  return (
    (d.shape === undefined || o.shape === d.shape) &&
    (d.color === undefined || o.color === d.color) &&
    (d.size === undefined || o.size === d.size) &&
    (d.position === undefined || regionOf(o.x, o.y) === d.position)
  );
}

const count = (s: Scene, d: Desc): number => s.objects.filter((o) => fits(o, d)).length;
const splitList = (t: string): string[] => t.split(/, | and /);

/** Whether a caption is true of the scene (throws when it cannot be parsed). */
function captionTrue(caption: string, s: Scene): boolean {
  const n = s.objects.length;
  let m: RegExpMatchArray | null;
  if ((m = caption.match(/^there (?:is|are) (\w+) shapes?$/))) return NUMBERS.indexOf(m[1]!) === n;
  if ((m = caption.match(/^there (?:is|are) (\w+) shapes?: (.*)$/))) return NUMBERS.indexOf(m[1]!) === n && exhaustive(m[2]!, s);
  if ((m = caption.match(/^(?:a picture of|an image of|an image with|an image showing) (.*)$/))) return exhaustive(m[1]!, s);
  if ((m = caption.match(/^all shapes are (\w+)$/))) {
    const w = m[1]!;
    if (n < 2) return false;
    if (COLORS.includes(w)) return s.objects.every((o) => o.color === w);
    if (SIZES.includes(w)) return s.objects.every((o) => o.size === w);
    const d = parseDesc(w, 'none');
    return d.plural && s.objects.every((o) => o.shape === d.shape);
  }
  if ((m = caption.match(/^the shapes are (.*)$/))) {
    const colors = splitList(m[1]!);
    const actual = new Set<string>(s.objects.map((o) => o.color));
    return n >= 2 && colors.length === actual.size && colors.every((c) => actual.has(c));
  }
  if ((m = caption.match(/^the only shape is (.*)$/))) return n === 1 && fits(s.objects[0]!, parseDesc(m[1]!, 'required'));
  if ((m = caption.match(/^(.*) (to the left of|to the right of|above|below) (.*)$/))) {
    const a = parseDesc(m[1]!, 'required');
    const b = parseDesc(m[3]!, 'required');
    const rel = m[2]!;
    return s.objects.some((oa) =>
      s.objects.some((ob) => {
        if (oa === ob || !fits(oa, a) || !fits(ob, b)) return false;
        if (rel === 'to the left of') return oa.x < ob.x;
        if (rel === 'to the right of') return oa.x > ob.x;
        if (rel === 'above') return oa.y < ob.y;
        return oa.y > ob.y;
      }),
    );
  }
  const parts = splitList(caption).map((p) => parseDesc(p, 'required'));
  if (parts.some((p) => p.position !== undefined)) return parts.every((p) => p.count === 1 && count(s, p) >= 1);
  return exhaustive(caption, s);
}

/** An exhaustive list: the NPs' counts are exact and add up to all objects. */
function exhaustive(text: string, s: Scene): boolean {
  const parts = splitList(text).map((p) => parseDesc(p, 'required'));
  if (parts.some((p) => p.position !== undefined)) return false;
  const sum = parts.reduce((a, p) => a + p.count!, 0);
  return sum === s.objects.length && parts.every((p) => count(s, p) === p.count);
}

function unique(s: Scene, refText: string): SceneObject {
  const d = parseDesc(refText, 'none');
  if (d.plural) throw new Error(`plural reference '${refText}'`);
  const hits = s.objects.filter((o) => fits(o, d));
  if (hits.length !== 1) throw new Error(`'${refText}' refers to ${hits.length} objects`);
  return hits[0]!;
}

const yn = (b: boolean): string => (b ? 'yes' : 'no');

/** The answer of a question, computed from the scene (throws when it cannot be parsed or is ambiguous). */
function answerOf(question: string, s: Scene): string {
  let m: RegExpMatchArray | null;
  if ((m = question.match(/^what color is the (.*)\?$/))) return unique(s, m[1]!).color;
  if ((m = question.match(/^what shape is the (.*)\?$/))) return unique(s, m[1]!).shape;
  if ((m = question.match(/^what size is the (.*)\?$/))) return unique(s, m[1]!).size;
  if ((m = question.match(/^where is the (.*)\?$/))) {
    const o = unique(s, m[1]!);
    return regionOf(o.x, o.y);
  }
  if ((m = question.match(/^how many (.*) are there\?$/))) {
    const d = parseDesc(m[1]!, 'none');
    if (!d.plural) throw new Error(`singular in '${question}'`);
    return String(count(s, d));
  }
  if ((m = question.match(/^how many (.*) are (on the left|on the right|at the top|at the bottom|in the center)\?$/))) {
    const d = parseDesc(`${m[1]!} ${m[2]!}`, 'none');
    return String(count(s, d));
  }
  if ((m = question.match(/^is there exactly one (.*)\?$/))) return yn(count(s, parseDesc(m[1]!, 'none')) === 1);
  if ((m = question.match(/^are there exactly (\w+) (.*)\?$/))) return yn(count(s, parseDesc(m[2]!, 'none')) === NUMBERS.indexOf(m[1]!));
  if ((m = question.match(/^are there more (.*) than (.*)\?$/))) return yn(count(s, parseDesc(m[1]!, 'none')) > count(s, parseDesc(m[2]!, 'none')));
  if ((m = question.match(/^is there (.*)\?$/))) {
    const d = parseDesc(m[1]!, 'required');
    if (d.count !== 1) throw new Error(`'${question}'`);
    return yn(count(s, d) > 0);
  }
  if ((m = question.match(/^is the (.*)\?$/))) {
    const body = m[1]!;
    for (const [phrase, p] of Object.entries(POS)) {
      if (body.endsWith(` ${phrase}`)) return yn(regionOf(...xy(unique(s, body.slice(0, -phrase.length - 1)))) === p);
    }
    const words = body.split(' ');
    const last = words[words.length - 1]!;
    if (COLORS.includes(last)) return yn(unique(s, words.slice(0, -1).join(' ')).color === last);
    if (SIZES.includes(last)) return yn(unique(s, words.slice(0, -1).join(' ')).size === last);
    if (SHAPES.includes(last) && (words[words.length - 2] === 'a' || words[words.length - 2] === 'an')) {
      return yn(unique(s, words.slice(0, -2).join(' ')).shape === last);
    }
  }
  throw new Error(`cannot parse question '${question}'`);
}

const xy = (o: SceneObject): [number, number] => [o.x, o.y];

/** The truth of an NLVR statement about (left, right) (throws when it cannot be parsed). */
function statementTrue(statement: string, left: Scene, right: Scene): boolean {
  const img = (side: string): Scene => (side === 'left' ? left : right);
  let m: RegExpMatchArray | null;
  if ((m = statement.match(/^the (left|right) image contains no (.*)$/))) return count(img(m[1]!), parseDesc(m[2]!, 'none')) === 0;
  if ((m = statement.match(/^the (left|right) image contains exactly (.*)$/))) {
    const d = parseDesc(m[2]!, 'required');
    return count(img(m[1]!), d) === d.count;
  }
  if ((m = statement.match(/^the (left|right) image contains more shapes than the (left|right) image$/))) {
    return img(m[1]!).objects.length > img(m[2]!).objects.length;
  }
  if (statement === 'both images contain the same number of shapes') return left.objects.length === right.objects.length;
  if ((m = statement.match(/^the two images contain (\w+) shapes in total$/))) return left.objects.length + right.objects.length === NUMBERS.indexOf(m[1]!);
  if ((m = statement.match(/^the (left|right) image has (.*)$/))) {
    const d = parseDesc(m[2]!, 'required');
    return d.count === 1 && count(img(m[1]!), d) > 0;
  }
  if ((m = statement.match(/^(both images contain|neither image contains|exactly one image contains|at least one image contains) (.*)$/))) {
    const d = parseDesc(m[2]!, 'required');
    const a = count(left, d) > 0;
    const b = count(right, d) > 0;
    switch (m[1]) {
      case 'both images contain':
        return a && b;
      case 'neither image contains':
        return !a && !b;
      case 'exactly one image contains':
        return a !== b;
      default:
        return a || b;
    }
  }
  if ((m = statement.match(/^there are more (.*) in the (left|right) image than in the (left|right) image$/))) {
    const d = parseDesc(m[1]!, 'none');
    return count(img(m[2]!), d) > count(img(m[3]!), d);
  }
  if ((m = statement.match(/^all shapes in the (left|right) image are (\w+)$/))) {
    const s = img(m[1]!);
    const w = m[2]!;
    if (COLORS.includes(w)) return s.objects.every((o) => o.color === w);
    if (SIZES.includes(w)) return s.objects.every((o) => o.size === w);
    const d = parseDesc(w, 'none');
    return d.plural && s.objects.every((o) => o.shape === d.shape);
  }
  throw new Error(`cannot parse statement '${statement}'`);
}

describe('ensureDefaultDataset from several processes at once', () => {
  it('one generates under the lock, the others wait and find it complete (tokenizer included)', async () => {
    const { spawn } = await import('node:child_process');
    const { existsSync } = await import('node:fs');
    const dir = join(tmp(), 'shapes');
    const index = new URL('../dist/index.js', import.meta.url).href;
    const script = `const { ensureDefaultDataset } = await import(${JSON.stringify(index)});
      const ds = await ensureDefaultDataset(${JSON.stringify(dir)}, { seed: 5, imageSize: 16, splits: { train: 40, val: 4, test: 4 }, nlvrPairs: { train: 4, val: 2, test: 2 } });
      const fs = await import('node:fs');
      if (!fs.existsSync(ds.tokenizer)) throw new Error('no tokenizer');
      console.log(ds.generated ? 'generated' : 'reused');`;
    const runOne = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (out += d));
        c.on('close', (code) => resolve({ code, out }));
      });
    const results = await Promise.all([runOne(), runOne(), runOne()]);
    for (const r of results) expect(r.code, r.out).toBe(0);
    expect(results.map((r) => r.out.trim()).sort()).toEqual(['generated', 'reused', 'reused']);
    expect(existsSync(`${dir}.lock`)).toBe(false);
  }, 60_000);

  it('a lock left by a dead process is taken over', async () => {
    const { withFileLock } = await import('../src/file_lock.js');
    const p = join(tmp(), 'thing');
    writeFileSync(`${p}.lock`, '999999999\n'); // no such pid
    expect(await withFileLock(p, async () => 7)).toBe(7);
  });
});
