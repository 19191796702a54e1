/**
 * Writing the shapes-world dataset: Arrow files per split, the answer vocabulary, the raw
 * annotator answers, the scenes, and a manifest with a content hash per file.
 *
 * Every item is derived from its own random stream, `Rng.forKey(seed, stream, split, index)`,
 * so an item does not depend on the split sizes, on the image size (texts) or on the order of
 * processing, and `shapesWorldTexts` reproduces the texts without rendering anything.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../rng.js';
import { ArrowWriter, writeArrowFile } from '../arrow/writer.js';
import { readJsonFile, writeFileAtomicSync } from '@vlmoe/util';
import type { AnswerVocab } from '../vqa/answers.js';
import { captionsFor, DEFAULT_CAPTIONS_PER_IMAGE } from './captions.js';
import { annotatorAnswers, DEFAULT_QUESTIONS_PER_IMAGE, questionsFor, shapesWorldAnswerVocab, type Question, type QuestionType } from './questions.js';
import { DEFAULT_IMAGE_SIZE, renderSceneSync } from './render.js';
import { conceptSet, sampleScene, type ConceptsName, type Scene } from './scene.js';
import { statementFor, type Statement } from './statements.js';

export const SHAPES_WORLD_GENERATOR = 'vlmoe-shapes-world';
/** Bumped whenever the generated content changes for the same options. */
/** 2: the identifying caption first among each image's captions; retrieval_{val,test}.arrow.
 * 3: each question's types in vqa_<split>_annotations.json ({answers, questionType, answerType}). */
export const SHAPES_WORLD_VERSION = 3;

/** The official VQA answer type of each question type (yes/no, number, other). */
const ANSWER_TYPE: Record<QuestionType, string> = { color: 'other', shape: 'other', size: 'other', position: 'other', count: 'number', exist: 'yes/no', yesno: 'yes/no' };

/** Splits with a retrieval evaluation file (`retrieval_<split>.arrow`). */
export const RETRIEVAL_SPLITS = ['val', 'test'] as const;

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export type PerSplit<T = number> = { [S in SplitName]: T };

export const DEFAULT_SPLITS: Readonly<PerSplit> = { train: 2000, val: 250, test: 250 };
export const DEFAULT_NLVR_PAIRS: Readonly<PerSplit> = { train: 1000, val: 125, test: 125 };
/** Default sizes of the rich world (`concepts: 'rich'`). */
export const RICH_DEFAULT_SPLITS: Readonly<PerSplit> = { train: 10000, val: 500, test: 500 };
export const RICH_DEFAULT_NLVR_PAIRS: Readonly<PerSplit> = { train: 5000, val: 250, test: 250 };

/** The default images and NLVR pairs per split of a concept set. */
export function shapesWorldDefaultSizes(concepts: ConceptsName = 'standard'): { splits: Readonly<PerSplit>; nlvrPairs: Readonly<PerSplit> } {
  return conceptSet(concepts).name === 'rich' ? { splits: RICH_DEFAULT_SPLITS, nlvrPairs: RICH_DEFAULT_NLVR_PAIRS } : { splits: DEFAULT_SPLITS, nlvrPairs: DEFAULT_NLVR_PAIRS };
}

export interface ShapesWorldOptions {
  /**
   * The concept set (default 'standard': 8 colours, 5 positions, 1–4 objects). 'rich': 12
   * colours, the 9 cells of a 3×3 grid, 1–6 objects, and larger default splits.
   */
  concepts?: ConceptsName;
  /** Seed of everything (default 0). */
  seed?: number;
  /** Image side in pixels (default 64). */
  imageSize?: number;
  /** Images per split; each has a captions row and a VQA row (default 2000/250/250; rich: 10000/500/500). */
  splits?: PerSplit;
  /** NLVR2 image pairs per split, one statement each (default 1000/125/125; rich: 5000/250/250). */
  nlvrPairs?: PerSplit;
  /** Questions per image (default 6). */
  questionsPerImage?: number;
  /** Captions per image (default 5). */
  captionsPerImage?: number;
  /** Called after each image (an NLVR pair counts as two) with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** The options that determine the content (what the manifest records). */
export interface ResolvedShapesWorldOptions {
  /** Present only for the rich world (a standard world's options, and manifest, do not name it). */
  concepts?: 'rich';
  seed: number;
  imageSize: number;
  splits: PerSplit;
  nlvrPairs: PerSplit;
  questionsPerImage: number;
  captionsPerImage: number;
}

export interface ShapesWorldFileInfo {
  bytes: number;
  sha256: string;
}

export interface ShapesWorldManifest {
  generator: typeof SHAPES_WORLD_GENERATOR;
  version: number;
  options: ResolvedShapesWorldOptions;
  counts: {
    /** Images rendered in all (split images + 2 per NLVR pair). */
    images: number;
    /** Rows of captions_<split>.arrow (= rows of vqa_<split>.arrow = images of the split). */
    captions: PerSplit;
    /** Questions in vqa_<split>.arrow. */
    questions: PerSplit;
    /** Rows of nlvr2_<split>.arrow. */
    nlvr2: PerSplit;
    /**
     * Rows of retrieval_<split>.arrow (val, test): the images whose identifying caption no other
     * image of the split shares, each with that one caption (train: 0, no such file).
     */
    retrieval: PerSplit;
    /** Size of the answer vocabulary. */
    answers: number;
  };
  /** Every file of the dataset (name relative to the output folder) with its size and SHA-256. */
  files: Record<string, ShapesWorldFileInfo>;
}

/** Stream ids of `Rng.forKey(seed, stream, split, index)`. */
const STREAM = { scene: 1, captions: 2, questions: 3, annotators: 4, nlvrLeft: 5, nlvrRight: 6, statement: 7 } as const;

function checkCount(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`shapes world: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function resolveSplits(name: string, v: PerSplit | undefined, dflt: Readonly<PerSplit>): PerSplit {
  const s = v ?? dflt;
  return {
    train: checkCount(`${name}.train`, s.train, 0, 10_000_000),
    val: checkCount(`${name}.val`, s.val, 0, 10_000_000),
    test: checkCount(`${name}.test`, s.test, 0, 10_000_000),
  };
}

/** Fill in defaults and validate (throws a RangeError naming the bad option). */
export function resolveShapesWorldOptions(options: ShapesWorldOptions = {}): ResolvedShapesWorldOptions {
  const concepts = conceptSet(options.concepts ?? 'standard').name;
  const defaults = shapesWorldDefaultSizes(concepts);
  return {
    ...(concepts === 'rich' ? { concepts } : {}),
    seed: checkCount('seed', options.seed ?? 0, 0, Number.MAX_SAFE_INTEGER),
    imageSize: checkCount('imageSize', options.imageSize ?? DEFAULT_IMAGE_SIZE, 8, 1024),
    splits: resolveSplits('splits', options.splits, defaults.splits),
    nlvrPairs: resolveSplits('nlvrPairs', options.nlvrPairs, defaults.nlvrPairs),
    questionsPerImage: checkCount('questionsPerImage', options.questionsPerImage ?? DEFAULT_QUESTIONS_PER_IMAGE, 1, 50),
    captionsPerImage: checkCount('captionsPerImage', options.captionsPerImage ?? DEFAULT_CAPTIONS_PER_IMAGE, 1, 10),
  };
}

export interface ShapesWorldQuestion extends Question {
  question_id: number;
  /** The 10 annotators' answers. */
  annotators: string[];
}

export interface ShapesWorldImage {
  split: SplitName;
  index: number;
  /** Unique over all splits: train images first, then val, then test. */
  image_id: number;
  scene: Scene;
  captions: string[];
  questions: ShapesWorldQuestion[];
}

export interface ShapesWorldPair {
  split: SplitName;
  index: number;
  /** `<split>-<index>-0`. */
  identifier: string;
  left: Scene;
  right: Scene;
  statement: Statement;
}

function imageIdOffset(o: ResolvedShapesWorldOptions, split: SplitName): number {
  let off = 0;
  for (const s of SPLITS) {
    if (s === split) return off;
    off += o.splits[s];
  }
  return off;
}

/** The scene, captions and questions of one image (no pixels). */
export function shapesWorldImage(o: ResolvedShapesWorldOptions, split: SplitName, index: number): ShapesWorldImage {
  const si = SPLITS.indexOf(split);
  const concepts = o.concepts ?? 'standard';
  const scene = sampleScene(Rng.forKey(o.seed, STREAM.scene, si, index), concepts);
  const captions = captionsFor(scene, Rng.forKey(o.seed, STREAM.captions, si, index), o.captionsPerImage);
  const qs = questionsFor(scene, Rng.forKey(o.seed, STREAM.questions, si, index), o.questionsPerImage, concepts);
  const annRng = Rng.forKey(o.seed, STREAM.annotators, si, index);
  const image_id = imageIdOffset(o, split) + index;
  const questions = qs.map((q, k) => ({ ...q, question_id: image_id * o.questionsPerImage + k, annotators: annotatorAnswers(q, annRng, concepts) }));
  return { split, index, image_id, scene, captions, questions };
}

/** The two scenes and the statement of one NLVR pair (no pixels). */
export function shapesWorldPair(o: ResolvedShapesWorldOptions, split: SplitName, index: number): ShapesWorldPair {
  const si = SPLITS.indexOf(split);
  const concepts = o.concepts ?? 'standard';
  const left = sampleScene(Rng.forKey(o.seed, STREAM.nlvrLeft, si, index), concepts);
  const right = sampleScene(Rng.forKey(o.seed, STREAM.nlvrRight, si, index), concepts);
  const statement = statementFor(left, right, Rng.forKey(o.seed, STREAM.statement, si, index), concepts);
  return { split, index, identifier: `${split}-${index}-0`, left, right, statement };
}

/**
 * Every text of the dataset (captions, questions, NLVR statements) for the given options and
 * splits, in file order, exactly as `generateShapesWorld` writes them — without rendering,
 * so it is cheap (a corpus for building the tokenizer vocabulary).
 */
export function* shapesWorldTexts(options: ShapesWorldOptions | ResolvedShapesWorldOptions = {}, splits: readonly SplitName[] = SPLITS): Generator<string> {
  const o = resolveShapesWorldOptions(options);
  for (const split of splits) {
    for (let i = 0; i < o.splits[split]; i++) {
      const img = shapesWorldImage(o, split, i);
      yield* img.captions;
      for (const q of img.questions) yield q.question;
    }
    for (let i = 0; i < o.nlvrPairs[split]; i++) yield shapesWorldPair(o, split, i).statement.statement;
  }
}

/** Names of the dataset files (relative to the output folder), in a fixed order. */
export function shapesWorldFileNames(): string[] {
  const names = ['answers.json'];
  for (const s of SPLITS) {
    names.push(`captions_${s}.arrow`, `vqa_${s}.arrow`, `nlvr2_${s}.arrow`, `vqa_${s}_annotations.json`, `scenes_${s}.json`);
    if ((RETRIEVAL_SPLITS as readonly string[]).includes(s)) names.push(`retrieval_${s}.arrow`);
  }
  return names;
}

function fileInfo(path: string): ShapesWorldFileInfo {
  const data = readFileSync(path);
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

type Targets = ReturnType<AnswerVocab['targets']>;

/**
 * `vocab.targets(annotators)`, memoised on what the result depends on (the distinct answers
 * in order of first appearance and their counts): normalising 10 answers per question is
 * otherwise a sizeable share of the generation time.
 */
function cachedTargets(vocab: AnswerVocab, cache: Map<string, Targets>, annotators: readonly string[]): Targets {
  const counts = new Map<string, number>();
  for (const a of annotators) counts.set(a, (counts.get(a) ?? 0) + 1);
  let key = '';
  for (const [a, c] of counts) key += `${a}\u0000${c}\u0000`;
  let t = cache.get(key);
  if (!t) {
    t = vocab.targets(annotators);
    cache.set(key, t);
  }
  return { answers: [...t.answers], labels: [...t.labels], scores: [...t.scores] };
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Generate the whole dataset into `outDir` (created if needed; the dataset's files are
 * overwritten, other files are left alone). The manifest is removed first and written last,
 * so an interrupted run never looks complete.
 */
export async function generateShapesWorld(outDir: string, options: ShapesWorldOptions = {}): Promise<ShapesWorldManifest> {
  const o = resolveShapesWorldOptions(options);
  const onProgress = options.onProgress;
  mkdirSync(outDir, { recursive: true });
  const manifestPath = join(outDir, 'manifest.json');
  rmSync(manifestPath, { force: true });

  const vocab = shapesWorldAnswerVocab(o.concepts ?? 'standard');
  const targetCache = new Map<string, Targets>();
  vocab.save(join(outDir, 'answers.json'));

  const total = SPLITS.reduce((n, s) => n + o.splits[s] + 2 * o.nlvrPairs[s], 0);
  let done = 0;
  const questions: PerSplit = { train: 0, val: 0, test: 0 };
  const retrieval: PerSplit = { train: 0, val: 0, test: 0 };

  for (const split of SPLITS) {
    const captionsW = new ArrowWriter(join(outDir, `captions_${split}.arrow`), 'captions', { batchRows: 256 });
    const vqaW = new ArrowWriter(join(outDir, `vqa_${split}.arrow`), 'vqa', { batchRows: 256 });
    const nlvrW = new ArrowWriter(join(outDir, `nlvr2_${split}.arrow`), 'nlvr2', { batchRows: 256 });
    const annotations: Record<string, { answers: string[]; questionType: string; answerType: string }> = {};
    // retrieval candidates: each image with its identifying caption (the first)
    const candidates: { image: Uint8Array; caption: string; image_id: number }[] = [];
    const sceneImages: { image_id: number; scene: Scene }[] = [];
    const scenePairs: { identifier: string; left: Scene; right: Scene }[] = [];
    try {
      for (let i = 0; i < o.splits[split]; i++) {
        const img = shapesWorldImage(o, split, i);
        const png = renderSceneSync(img.scene, o.imageSize);
        captionsW.write({ image: png, caption: img.captions, image_id: String(img.image_id), split });
        if ((RETRIEVAL_SPLITS as readonly string[]).includes(split)) candidates.push({ image: png, caption: img.captions[0]!, image_id: img.image_id });
        const answers: string[][] = [];
        const labels: number[][] = [];
        const scores: number[][] = [];
        for (const q of img.questions) {
          const t = cachedTargets(vocab, targetCache, q.annotators);
          answers.push(t.answers);
          labels.push(t.labels);
          scores.push(t.scores);
          annotations[String(q.question_id)] = { answers: q.annotators, questionType: q.type, answerType: ANSWER_TYPE[q.type] };
        }
        vqaW.write({
          image: png,
          questions: img.questions.map((q) => q.question),
          answers,
          answer_labels: labels,
          answer_scores: scores,
          image_id: img.image_id,
          question_id: img.questions.map((q) => q.question_id),
          split,
        });
        questions[split] += img.questions.length;
        sceneImages.push({ image_id: img.image_id, scene: img.scene });
        onProgress?.(++done, total);
        if (i % 64 === 63) await yieldToEventLoop(); // let the file streams drain
      }
      for (let i = 0; i < o.nlvrPairs[split]; i++) {
        const p = shapesWorldPair(o, split, i);
        nlvrW.write({
          image_0: renderSceneSync(p.left, o.imageSize),
          image_1: renderSceneSync(p.right, o.imageSize),
          questions: [p.statement.statement],
          answers: [p.statement.label ? 'True' : 'False'],
          identifier: p.identifier,
        });
        scenePairs.push({ identifier: p.identifier, left: p.left, right: p.right });
        done += 2;
        onProgress?.(done, total);
        if (i % 32 === 31) await yieldToEventLoop();
      }
    } catch (e) {
      await Promise.all([captionsW.abort(), vqaW.abort(), nlvrW.abort()]);
      throw e;
    }
    await captionsW.close();
    await vqaW.close();
    await nlvrW.close();
    if ((RETRIEVAL_SPLITS as readonly string[]).includes(split)) {
      // only captions that tell their image apart: an identifying caption two images share is left out with both images
      const uses = new Map<string, number>();
      for (const c of candidates) uses.set(c.caption, (uses.get(c.caption) ?? 0) + 1);
      const rows = candidates.filter((c) => uses.get(c.caption) === 1).map((c) => ({ image: c.image, caption: [c.caption], image_id: String(c.image_id), split }));
      retrieval[split] = rows.length;
      await writeArrowFile(join(outDir, `retrieval_${split}.arrow`), 'captions', rows, { batchRows: 256 });
    }
    writeFileAtomicSync(join(outDir, `vqa_${split}_annotations.json`), JSON.stringify(annotations) + '\n', { mkdir: true });
    writeFileAtomicSync(join(outDir, `scenes_${split}.json`), JSON.stringify({ split, images: sceneImages, pairs: scenePairs }) + '\n', { mkdir: true });
  }

  const files: Record<string, ShapesWorldFileInfo> = {};
  for (const name of shapesWorldFileNames()) files[name] = fileInfo(join(outDir, name));
  const manifest: ShapesWorldManifest = {
    generator: SHAPES_WORLD_GENERATOR,
    version: SHAPES_WORLD_VERSION,
    options: o,
    counts: { images: total, captions: { ...o.splits }, questions, nlvr2: { ...o.nlvrPairs }, retrieval, answers: vocab.size },
    files,
  };
  writeFileAtomicSync(manifestPath, JSON.stringify(manifest, null, 1) + '\n', { mkdir: true });
  return manifest;
}

/** Read `<outDir>/manifest.json`, or null when it is missing or unreadable. */
export function readShapesWorldManifest(outDir: string): ShapesWorldManifest | null {
  try {
    const m = readJsonFile(join(outDir, 'manifest.json'), 'manifest') as ShapesWorldManifest;
    return m && m.generator === SHAPES_WORLD_GENERATOR ? m : null;
  } catch {
    return null;
  }
}

export interface EnsureShapesWorldOptions extends ShapesWorldOptions {
  /** How to check the existing files against the manifest: full SHA-256 (default) or sizes only. */
  verify?: 'sha256' | 'size';
}

/** Why an existing dataset does not match (null when it does). */
export function shapesWorldMismatch(outDir: string, options: EnsureShapesWorldOptions = {}): string | null {
  const m = readShapesWorldManifest(outDir);
  if (!m) return 'no manifest';
  if (m.version !== SHAPES_WORLD_VERSION) return `generator version ${m.version} ≠ ${SHAPES_WORLD_VERSION}`;
  const want = resolveShapesWorldOptions(options);
  const [had, wanted] = [m.options?.concepts ?? 'standard', want.concepts ?? 'standard'];
  if (had !== wanted) return `it holds the ${had} shapes world, not the ${wanted} one`;
  if (JSON.stringify(m.options) !== JSON.stringify(want)) return 'options differ';
  for (const name of shapesWorldFileNames()) {
    const info = m.files?.[name];
    const path = join(outDir, name);
    if (!info) return `${name} not in the manifest`;
    if (!existsSync(path)) return `${name} missing`;
    if (statSync(path).size !== info.bytes) return `${name} has the wrong size`;
    if (options.verify !== 'size' && fileInfo(path).sha256 !== info.sha256) return `${name} has the wrong hash`;
  }
  return null;
}

/**
 * Make sure `outDir` holds the dataset for these options: when the manifest matches (same
 * generator version and options, every file present with the recorded size and hash) nothing
 * is done; otherwise the dataset is generated.
 */
export async function ensureShapesWorld(
  outDir: string,
  options: EnsureShapesWorldOptions = {},
): Promise<{ generated: boolean; reason: string | null; manifest: ShapesWorldManifest }> {
  const reason = shapesWorldMismatch(outDir, options);
  if (reason === null) return { generated: false, reason, manifest: readShapesWorldManifest(outDir)! };
  const manifest = await generateShapesWorld(outDir, options);
  return { generated: true, reason, manifest };
}
