/**
 * The rich shapes world (`concepts: 'rich'`): 12 colours, the 9 cells of a 3×3 grid, 1–6
 * objects — deterministic, every concept used and visible at the models' 32 px, texts and
 * answers over the larger word lists, a tokenizer that knows the new words — and the
 * standard world left as it was.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC, type Table } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { AnswerVocab } from '../src/vqa/answers.js';
import { ensureDefaultDataset } from '../src/default_dataset.js';
import { runCli } from '../src/cli/main.js';
import {
  SCENE_COLORS,
  SCENE_GRID_POSITIONS,
  SCENE_PALETTE as PALETTE,
  SCENE_POSITIONS,
  SCENE_RICH_COLORS,
  SHAPES_WORLD_ANSWERS,
  SHAPES_WORLD_SPLITS,
  ensureShapesWorld,
  generateShapesWorld,
  gridPositionOf,
  identifyingCaption,
  rasterizeScene,
  readShapesWorldManifest,
  resolveShapesWorldOptions,
  sampleScene,
  shapesWorldAnswers,
  shapesWorldImage,
  shapesWorldMismatch,
  shapesWorldPair,
  type Scene,
  type ShapesWorldOptions,
} from '../src/synthetic/index.js';

process.env.VLMOE_PROGRESS = '0';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'shapes-rich-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const NEW_COLORS = ['pink', 'teal', 'black', 'lime'] as const;
const RICH: ShapesWorldOptions = { concepts: 'rich', seed: 4, splits: { train: 200, val: 100, test: 100 }, nlvrPairs: { train: 40, val: 20, test: 20 } };

const readTable = (path: string): Table => tableFromIPC(readFileSync(path));
const strings = (v: unknown): string[] => [...(v as Iterable<string>)];
const dirHashes = (dir: string): Record<string, string> =>
  Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));

interface ScenesFile {
  images: { image_id: number; scene: Scene }[];
  pairs: { identifier: string; left: Scene; right: Scene }[];
}
const scenesOf = (dir: string): Scene[] =>
  SHAPES_WORLD_SPLITS.flatMap((s) => {
    const f = JSON.parse(readFileSync(join(dir, `scenes_${s}.json`), 'utf8')) as ScenesFile;
    return [...f.images.map((i) => i.scene), ...f.pairs.flatMap((p) => [p.left, p.right])];
  });

describe('rich scenes', () => {
  const scenes = Array.from({ length: 800 }, (_, i) => sampleScene(Rng.forKey(2, 99, i), 'rich'));

  it('use all 12 colours, the 9 grid cells and 1–6 non-overlapping objects, each clearly inside its cell', () => {
    const colors = new Set<string>();
    const positions = new Set<string>();
    const counts = new Set<number>();
    for (const s of scenes) {
      counts.add(s.objects.length);
      for (const o of s.objects) {
        colors.add(o.color);
        positions.add(o.position);
        expect(o.position).toBe(gridPositionOf(o.x, o.y));
        for (const v of [o.x, o.y]) for (const line of [1 / 3, 2 / 3]) expect(Math.abs(v - line)).toBeGreaterThanOrEqual(0.05);
        expect(Math.min(o.x, o.y) - 1.2 * o.r).toBeGreaterThan(0);
        expect(Math.max(o.x, o.y) + 1.2 * o.r).toBeLessThan(1);
      }
      for (const a of s.objects) for (const b of s.objects) if (a !== b) expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThan(1.2 * (a.r + b.r));
    }
    expect([...colors].sort()).toEqual([...SCENE_RICH_COLORS].sort());
    expect([...positions].sort()).toEqual([...SCENE_GRID_POSITIONS].sort());
    expect([...counts].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('the 4 new colours are far from every other colour and from the background', () => {
    const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
    for (const c of NEW_COLORS) {
      for (const d of SCENE_RICH_COLORS) if (d !== c) expect(dist(PALETTE[c], PALETTE[d]), `${c}–${d}`).toBeGreaterThan(100);
      for (const bg of [200, 252]) expect(dist(PALETTE[c], [bg, bg, bg]), `${c}–background ${bg}`).toBeGreaterThan(100);
    }
  });

  it("every object's colour is the nearest palette colour at its centre once the 64 px image is averaged down to 32 px", () => {
    const palette = SCENE_RICH_COLORS.map((c) => [c, PALETTE[c]] as const);
    let checked = 0;
    for (const s of scenes.slice(0, 300)) {
      const px = rasterizeScene(s, 64);
      for (const o of s.objects) {
        const [cx, cy] = [Math.floor(o.x * 32), Math.floor(o.y * 32)];
        const rgb = [0, 1, 2].map((c) => {
          let sum = 0;
          for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) sum += px[((2 * cy + dy) * 64 + 2 * cx + dx) * 3 + c]!;
          return sum / 4;
        });
        const nearest = palette.reduce((best, p) => (Math.hypot(...p[1].map((v, i) => v - rgb[i]!)) < Math.hypot(...best[1].map((v, i) => v - rgb[i]!)) ? p : best));
        expect(nearest[0], `${o.size} ${o.color} ${o.shape} at (${o.x}, ${o.y})`).toBe(o.color);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(800);
  });

  it('the standard concept set is what sampleScene draws by default (8 colours, 5 positions, 1–4 objects)', () => {
    for (let i = 0; i < 200; i++) {
      const s = sampleScene(Rng.forKey(2, 99, i));
      expect(s).toEqual(sampleScene(Rng.forKey(2, 99, i), 'standard'));
      expect(s.objects.length).toBeLessThanOrEqual(4);
      for (const o of s.objects) {
        expect(SCENE_COLORS).toContain(o.color);
        expect(SCENE_POSITIONS).toContain(o.position);
      }
    }
  });
});

describe('the rich world on disk', () => {
  const dir = tmp();
  const ready = generateShapesWorld(dir, RICH);

  it('records concepts "rich" in the manifest; the standard world does not name concepts; default sizes per concept set', async () => {
    const m = await ready;
    expect(m.options.concepts).toBe('rich');
    expect(readShapesWorldManifest(dir)!.options).toEqual(resolveShapesWorldOptions(RICH));
    expect(m.counts.images).toBe(400 + 2 * 80);
    expect(m.counts.answers).toBe(38);
    expect('concepts' in resolveShapesWorldOptions({})).toBe(false);
    expect('concepts' in resolveShapesWorldOptions({ concepts: 'standard' })).toBe(false);
    expect(resolveShapesWorldOptions({}).splits).toEqual({ train: 2000, val: 250, test: 250 });
    expect(resolveShapesWorldOptions({}).nlvrPairs).toEqual({ train: 1000, val: 125, test: 125 });
    const rich = resolveShapesWorldOptions({ concepts: 'rich' });
    expect([rich.splits, rich.nlvrPairs]).toEqual([
      { train: 10000, val: 500, test: 500 },
      { train: 5000, val: 250, test: 250 },
    ]);
    expect(() => resolveShapesWorldOptions({ concepts: 'fancy' as 'rich' })).toThrow(/concepts must be 'standard' or 'rich', got "fancy"/);
  });

  it('is byte-identical for the same seed and differs for another', async () => {
    await ready;
    const again = tmp();
    await generateShapesWorld(again, RICH);
    expect(dirHashes(again)).toEqual(dirHashes(dir));
    const other = tmp();
    await generateShapesWorld(other, { ...RICH, seed: 5 });
    const [a, c] = [dirHashes(dir), dirHashes(other)];
    for (const name of Object.keys(a)) if (name !== 'answers.json') expect(c[name], name).not.toBe(a[name]);
  });

  it('its scenes use all 12 colours, the 9 positions and up to 6 objects', async () => {
    await ready;
    const scenes = scenesOf(dir);
    const objects = scenes.flatMap((s) => s.objects);
    expect(new Set(objects.map((o) => o.color)).size).toBe(12);
    expect(new Set(objects.map((o) => o.position)).size).toBe(9);
    expect(Math.max(...scenes.map((s) => s.objects.length))).toBe(6);
  });

  it("every image's first caption is its identifying caption; retrieval keeps exactly the images whose caption is unshared", async () => {
    const m = await ready;
    for (const split of SHAPES_WORLD_SPLITS) {
      const { images } = JSON.parse(readFileSync(join(dir, `scenes_${split}.json`), 'utf8')) as ScenesFile;
      const caps = readTable(join(dir, `captions_${split}.arrow`));
      expect(caps.numRows).toBe(images.length);
      const first: string[] = [];
      for (let i = 0; i < caps.numRows; i++) {
        const row = caps.get(i)!;
        expect(Number(row.image_id)).toBe(images[i]!.image_id);
        first.push(strings(row.caption)[0]!);
        expect(first[i]).toBe(identifyingCaption(images[i]!.scene));
      }
      if (split === 'train') continue;
      const uses = new Map<string, number>();
      for (const c of first) uses.set(c, (uses.get(c) ?? 0) + 1);
      const r = readTable(join(dir, `retrieval_${split}.arrow`));
      expect(r.numRows).toBe(first.filter((c) => uses.get(c) === 1).length);
      expect(r.numRows).toBe(m.counts.retrieval[split]);
      expect(r.numRows).toBeGreaterThan(0.9 * images.length);
    }
  });

  it('answers: the vocabulary grows by the new colours, counts 5–6 and the grid cells, and every question is answerable', async () => {
    await ready;
    const vocab = AnswerVocab.load(join(dir, 'answers.json'));
    expect(vocab.answers).toEqual(shapesWorldAnswers('rich'));
    expect(vocab.answers).toEqual(expect.arrayContaining([...NEW_COLORS, '5', '6', ...SCENE_GRID_POSITIONS]));
    expect(vocab.size).toBe(SHAPES_WORLD_ANSWERS.length + 4 + 2 + 4); // +4 colours, +2 counts, 9 cells instead of 5 positions
    const o = resolveShapesWorldOptions(RICH);
    const correct = new Set<string>();
    for (const split of SHAPES_WORLD_SPLITS) {
      for (let i = 0; i < o.splits[split]; i++) {
        for (const q of shapesWorldImage(o, split, i).questions) {
          expect(vocab.label(q.answer), q.question).toBeGreaterThanOrEqual(0);
          correct.add(q.answer);
        }
      }
    }
    for (const a of [...NEW_COLORS, '5', '6', 'top left', 'bottom right', 'top', 'center']) expect(correct, a).toContain(a);
    // the files carry a label for every question
    const vqa = readTable(join(dir, 'vqa_val.arrow'));
    for (let r = 0; r < vqa.numRows; r++) for (const labels of vqa.get(r)!.answer_labels) expect(labels.length).toBeGreaterThan(0);
  });

  it('texts mention the new words: colours, grid positions, counts up to six (questions) and totals up to twelve (statements)', async () => {
    await ready;
    const o = resolveShapesWorldOptions(RICH);
    const texts: string[] = [];
    for (const split of SHAPES_WORLD_SPLITS) {
      for (let i = 0; i < o.splits[split]; i++) {
        const img = shapesWorldImage(o, split, i);
        texts.push(...img.captions, ...img.questions.map((q) => q.question));
      }
      for (let i = 0; i < o.nlvrPairs[split]; i++) texts.push(shapesWorldPair(o, split, i).statement.statement);
    }
    const all = texts.join('\n');
    for (const w of [...NEW_COLORS, 'at the top left', 'at the bottom right', 'there are six shapes', 'exactly five']) expect(all, w).toContain(w);
  });
});

describe('the rich default dataset (shapes world + tokenizer)', () => {
  it('builds a tokenizer that knows the new words, and refuses to turn a folder of one concept set into the other when asked to', async () => {
    const dir = tmp();
    const ds = await ensureDefaultDataset(dir, RICH);
    expect(ds.manifest.options.concepts).toBe('rich');
    const vocab = (JSON.parse(readFileSync(ds.tokenizer, 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
    for (const w of [...NEW_COLORS, 'five', 'six', 'top', 'left', 'bottom', 'right', 'center']) expect(vocab, w).toHaveProperty(w);

    // a rich folder asked for as standard: an error naming both with otherConcepts 'error'; untouched
    const before = dirHashes(dir);
    await expect(ensureDefaultDataset(dir, { ...RICH, concepts: 'standard', otherConcepts: 'error' })).rejects.toThrow(
      `${dir} holds the rich shapes world (see its manifest.json), not the standard one asked for`,
    );
    expect(dirHashes(dir)).toEqual(before);
    expect(shapesWorldMismatch(dir, { ...RICH, concepts: 'standard' })).toBe('it holds the rich shapes world, not the standard one');
    expect(shapesWorldMismatch(dir, RICH)).toBe(null);
    // the same concept set with other sizes is regenerated as before
    expect((await ensureDefaultDataset(dir, { ...RICH, nlvrPairs: { train: 4, val: 2, test: 2 }, otherConcepts: 'error' })).generated).toBe(true);
  });

  it('ensureShapesWorld regenerates a standard folder as rich by default (the reason names both)', async () => {
    const dir = tmp();
    const small = { seed: 1, imageSize: 16, splits: { train: 4, val: 2, test: 2 }, nlvrPairs: { train: 2, val: 1, test: 1 } };
    await ensureShapesWorld(dir, small);
    const r = await ensureShapesWorld(dir, { ...small, concepts: 'rich' });
    expect([r.generated, r.reason]).toEqual([true, 'it holds the standard shapes world, not the rich one']);
    expect(r.manifest.options.concepts).toBe('rich');
  });
});

describe('vlmoe-data synth --concepts', () => {
  async function cli(...args: string[]) {
    let out = '';
    let err = '';
    const code = await runCli(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
    return { code, out, err };
  }

  it('--concepts rich writes the rich world (split and NLVR sizes overridable); a bad value is a usage error', async () => {
    const dir = join(tmp(), 'rich');
    const r = await cli('synth', dir, '--concepts', 'rich', '--train', '30', '--val', '10', '--test', '10', '--nlvr-train', '6', '--nlvr-val', '2', '--nlvr-test', '2', '--image-size', '32');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/generated: rich concepts, 70 images/);
    const m = readShapesWorldManifest(dir)!;
    expect(m.options).toEqual(resolveShapesWorldOptions({ concepts: 'rich', imageSize: 32, splits: { train: 30, val: 10, test: 10 }, nlvrPairs: { train: 6, val: 2, test: 2 } }));
    // one split given: the others keep the rich defaults
    const partial = await cli('synth', join(tmp(), 'p'), '--concepts', 'rich', '--val', '0', '--train', '0', '--nlvr-train', '0', '--nlvr-val', '0', '--nlvr-test', '1', '--image-size', '8');
    expect(partial.out).toMatch(/captions rows \{"train":0,"val":0,"test":500\}/);

    const bad = await cli('synth', join(tmp(), 'x'), '--concepts', 'ritch');
    expect(bad.code).toBe(2);
    expect(bad.err.split('\n')[0]).toMatch(/^vlmoe-data synth: --concepts must be standard or rich, got 'ritch' \(did you mean 'rich'\?\)/);
    const help = await cli('synth', '--help');
    expect(help.out).toMatch(/--concepts standard\|rich/);
  });
});
