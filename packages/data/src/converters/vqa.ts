/**
 * VQAv2 and easy-VQA → VQA Arrow files (one row per image, all its questions).
 *
 * Targets follow VLMo/ViLT: for each question, the normalised annotator answers that are in
 * the answer vocabulary become `answers` / `answer_labels` with soft `answer_scores`
 * (0.3, 0.6, 0.9, 1.0 for 1, 2, 3, ≥4 annotators). The vocabulary is the answers seen ≥ 9
 * times (`minAnswerCount`) among `multiple_choice_answer`s — pass the train+val annotation
 * files to get VQAv2's 3,129 — or a saved vocabulary. Test splits (no annotations) get empty
 * answer lists. Two sidecars are written beside the Arrow file: `<stem>_answers.json` (the
 * vocabulary; label = index) and `<stem>_annotations.json` (question_id → the raw annotator
 * answers, what the official VQA accuracy needs; where the question's types are known —
 * VQAv2's `answer_type` / `question_type`, easy-VQA's answer type from its answer — the entry
 * is `{answers, answerType, questionType}`, and the accuracy is also reported per type).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnswerVocab } from '../vqa/answers.js';
import { readJsonFile, writeFileAtomicSync } from '@vlmoe/util';
import { ConvertSession, field, sidecarPath, withWriter, type ConvertOptions, type ConvertReport } from './common.js';

export interface Vqa2Input {
  /** `v2_OpenEnded_mscoco_<subtype>_questions.json`. */
  questions: string;
  /** `v2_mscoco_<subtype>_annotations.json` (absent for test splits). */
  annotations?: string;
  /** Folder with `COCO_<subtype>_<image_id:012d>.jpg`. */
  imageDir: string;
  /** Image file name for an id (default from the questions file's `data_subtype`). */
  imageName?: (imageId: number) => string;
  /** `split` column value (default: the subtype without its year, e.g. `train`). */
  split?: string;
  /** A vocabulary (or its JSON path); default: built from `vocabFrom` (or `annotations`). */
  answerVocab?: AnswerVocab | string;
  /** Annotation files whose `multiple_choice_answer`s define the vocabulary (VQAv2: train + val). */
  vocabFrom?: string[];
  /** Minimum count for an answer to enter the vocabulary (default 9). */
  minAnswerCount?: number;
}

interface Question {
  imageId: number;
  question: string;
  questionId: number;
  annotators: string[];
  /** The official `answer_type` ("yes/no", "number", "other"; easy-VQA: "yes/no", "shape", "color"). */
  answerType?: string;
  /** The official `question_type` (the question's first words, "what color is the"). */
  questionType?: string;
}

/** easy-VQA's answer types (its generator asks about a shape's shape, its colour, or yes/no). */
export const EASY_VQA_ANSWER_TYPES: Readonly<Record<string, string>> = {
  yes: 'yes/no', no: 'yes/no',
  circle: 'shape', rectangle: 'shape', triangle: 'shape',
  red: 'color', green: 'color', blue: 'color', black: 'color', gray: 'color', teal: 'color', brown: 'color', yellow: 'color',
};

/** A question's entry in `<stem>_annotations.json`: its answers, with its types where known. */
function annotationEntry(q: Question): string[] | { answers: string[]; answerType?: string; questionType?: string } {
  if (q.answerType === undefined && q.questionType === undefined) return q.annotators;
  return { answers: q.annotators, ...(q.answerType !== undefined ? { answerType: q.answerType } : {}), ...(q.questionType !== undefined ? { questionType: q.questionType } : {}) };
}

function resolveVocab(vocab: AnswerVocab | string | undefined, from: string[], minCount: number): AnswerVocab | null {
  if (vocab instanceof AnswerVocab) return vocab;
  if (typeof vocab === 'string') return AnswerVocab.load(vocab);
  if (from.length === 0) return null;
  const mc: string[] = [];
  for (const path of from) {
    const anns = field<unknown[]>(readJsonFile(path), 'annotations', 'array', path);
    anns.forEach((a, i) => mc.push(field<string>(a, 'multiple_choice_answer', 'string', `${path} annotations[${i}]`)));
  }
  return AnswerVocab.build(mc, minCount);
}

/** Group questions by image (in order of first appearance) and write the rows + sidecars. */
async function writeVqa(
  out: string,
  label: string,
  split: string,
  byImage: Map<number, Question[]>,
  imagePath: (id: number) => string,
  source: string,
  vocab: AnswerVocab | null,
  options: ConvertOptions,
): Promise<ConvertReport> {
  const s = new ConvertSession(out, label, byImage.size, options);
  const annotations: Record<string, ReturnType<typeof annotationEntry>> = {};
  await withWriter(out, 'vqa', options, async (w) => {
    for (const [imageId, qs] of byImage) {
      s.progress.tick();
      const bytes = await s.image(imagePath(imageId), `${source} image_id ${imageId}`);
      if (!bytes) continue;
      const answers: string[][] = [];
      const labels: number[][] = [];
      const scores: number[][] = [];
      for (const q of qs) {
        if (vocab && q.annotators.length > 0) {
          const t = vocab.targets(q.annotators);
          answers.push(t.answers);
          labels.push(t.labels);
          scores.push(t.scores);
        } else {
          answers.push([]);
          labels.push([]);
          scores.push([]);
        }
        if (q.annotators.length > 0) annotations[String(q.questionId)] = annotationEntry(q);
      }
      w.write({
        image: bytes,
        questions: qs.map((q) => q.question),
        answers,
        answer_labels: labels,
        answer_scores: scores,
        image_id: imageId,
        question_id: qs.map((q) => q.questionId),
        split,
      });
      s.wrote(1, qs.length);
    }
  });
  if (vocab) {
    const p = sidecarPath(out, 'answers.json');
    vocab.save(p);
    s.report.sidecars.push(p);
  }
  if (Object.keys(annotations).length > 0) {
    const p = sidecarPath(out, 'annotations.json');
    writeFileAtomicSync(p, JSON.stringify(annotations) + '\n', { mkdir: true });
    s.report.sidecars.push(p);
  }
  return s.finish();
}

export async function convertVqa2(input: Vqa2Input, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const qjson = readJsonFile(input.questions);
  const qs = field<unknown[]>(qjson, 'questions', 'array', input.questions);
  const subtype = (qjson as { data_subtype?: string }).data_subtype;
  const imageName =
    input.imageName ??
    ((id: number) => {
      if (!subtype) throw new Error(`${input.questions}: no 'data_subtype'; pass imageName to say how images are named`);
      return `COCO_${subtype}_${String(id).padStart(12, '0')}.jpg`;
    });
  const split = input.split ?? (subtype ? subtype.replace(/\d+$/, '') : 'train');
  const annotators = new Map<number, string[]>();
  const types = new Map<number, { answerType?: string; questionType?: string }>();
  if (input.annotations) {
    const anns = field<unknown[]>(readJsonFile(input.annotations), 'annotations', 'array', input.annotations);
    anns.forEach((a, i) => {
      const w = `${input.annotations} annotations[${i}]`;
      const qid = field<number>(a, 'question_id', 'number', w);
      const list = field<unknown[]>(a, 'answers', 'array', w).map((x, k) => field<string>(x, 'answer', 'string', `${w} answers[${k}]`));
      annotators.set(qid, list);
      const t = a as { answer_type?: unknown; question_type?: unknown };
      types.set(qid, {
        ...(typeof t.answer_type === 'string' ? { answerType: t.answer_type } : {}),
        ...(typeof t.question_type === 'string' ? { questionType: t.question_type } : {}),
      });
    });
  }
  const vocab = resolveVocab(input.answerVocab, input.vocabFrom ?? (input.annotations ? [input.annotations] : []), input.minAnswerCount ?? 9);
  const byImage = new Map<number, Question[]>();
  qs.forEach((q, i) => {
    const w = `${input.questions} questions[${i}]`;
    const imageId = field<number>(q, 'image_id', 'number', w);
    const questionId = field<number>(q, 'question_id', 'number', w);
    const question = field<string>(q, 'question', 'string', w);
    if (input.annotations && !annotators.has(questionId)) throw new Error(`${w}: question_id ${questionId} has no entry in ${input.annotations}`);
    let list = byImage.get(imageId);
    if (!list) byImage.set(imageId, (list = []));
    list.push({ imageId, question, questionId, annotators: annotators.get(questionId) ?? [], ...types.get(questionId) });
  });
  return writeVqa(out, `vqav2 ${split}`, split, byImage, (id) => join(input.imageDir, imageName(id)), input.questions, vocab, options);
}

export interface EasyVqaInput {
  /** `questions.json`: a list of `[question, answer, image_id]`. */
  questions: string;
  /** Folder with `<image_id>.png`. */
  imageDir: string;
  /** `answers.txt` (one answer per line) — the closed answer set; label = line index. */
  answers: string;
  /** `split` column value (default from the folder name: train/test). */
  split?: string;
  /** How many annotators to record per question (easy-VQA has one exact answer; default 10 copies, score 1.0). */
  annotators?: number;
  /** First question_id (default 0; question ids are this + the question's index in the file). */
  questionIdBase?: number;
}

export async function convertEasyVqa(input: EasyVqaInput, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const list = readJsonFile(input.questions);
  if (!Array.isArray(list)) throw new Error(`${input.questions}: expected a JSON list of [question, answer, image_id]`);
  let answerLines: string[];
  try {
    answerLines = readFileSync(input.answers, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  } catch (e) {
    throw new Error(`${input.answers}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const vocab = new AnswerVocab(answerLines);
  const copies = input.annotators ?? 10;
  const base = input.questionIdBase ?? 0;
  const split = input.split ?? (/test/.test(input.questions) ? 'test' : /val/.test(input.questions) ? 'val' : 'train');
  const byImage = new Map<number, Question[]>();
  list.forEach((e, i) => {
    const w = `${input.questions}[${i}]`;
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'string' || typeof e[1] !== 'string' || typeof e[2] !== 'number') {
      throw new Error(`${w}: expected [question, answer, image_id], got ${JSON.stringify(e).slice(0, 80)}`);
    }
    const [question, answer, imageId] = e as [string, string, number];
    if (vocab.label(answer) < 0) throw new Error(`${w}: answer '${answer}' is not in ${input.answers}`);
    let q = byImage.get(imageId);
    if (!q) byImage.set(imageId, (q = []));
    q.push({ imageId, question, questionId: base + i, annotators: new Array<string>(copies).fill(answer), answerType: EASY_VQA_ANSWER_TYPES[answer] ?? 'other' });
  });
  return writeVqa(out, `easy-vqa ${split}`, split, byImage, (id) => join(input.imageDir, `${id}.png`), input.questions, vocab, options);
}
