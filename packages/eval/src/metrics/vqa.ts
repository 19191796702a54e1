/**
 * VQA accuracy exactly as the official evaluation (GT-Vision-Lab/VQA `vqaEval.py`, master),
 * with its answer normalisation from `@vlmoe/data`, and the VLMo/ViLT training soft score.
 */
import { cleanAnswerWhitespace, normalizeAnswer, processDigitArticle, processPunctuation, softScore } from '@vlmoe/data';
import { pythonRound } from './util.js';

export { softScore };

export type QuestionId = string | number;

/** One annotator answer: a string, or the official annotation's answer object. */
export type AnnotatorAnswer = string | { answer: string };

/** A question's ground truth: the annotators' answers (10 in VQAv2) and optional types. */
export interface VqaAnnotation {
  answers: readonly AnnotatorAnswer[];
  /** Question type (the official `question_type`, e.g. "what color is the"). */
  questionType?: string;
  /** Answer type ("yes/no", "number", "other"; the official `answer_type`). */
  answerType?: string;
  /** Official field names are accepted too. */
  question_type?: string;
  answer_type?: string;
}

/** A predicted answer. `question_id` (the official results format) is accepted too. */
export type VqaPrediction = { questionId: QuestionId; answer: string } | { question_id: QuestionId; answer: string };

export interface VqaTypeAccuracy {
  /** Mean accuracy of the questions of this type, a fraction in [0, 1]. */
  accuracy: number;
  /** As the official code reports it: `round(100 * sum / n, 2)` (Python 3 rounding). */
  percent: number;
  /** Number of questions of this type (missing predictions included). */
  count: number;
}

export interface VqaAccuracyResult {
  /** Mean per-question accuracy over all annotated questions (missing predictions score 0), in [0, 1]. */
  overall: number;
  /** The official number: `round(100 * sum / n, 2)`. */
  overallPercent: number;
  /** Accuracy of each annotated question (fraction), keyed as in the annotations. */
  perQuestion: Map<QuestionId, number>;
  /** Breakdown by question type, over the questions that have one. */
  perQuestionType: Record<string, VqaTypeAccuracy>;
  /** Breakdown by answer type, over the questions that have one. */
  perAnswerType: Record<string, VqaTypeAccuracy>;
  /** Number of annotated questions (the denominator). */
  count: number;
  /** Questions with a prediction. */
  answered: number;
  /** Annotated questions without a prediction (scored 0). */
  missing: number;
  missingIds: QuestionId[];
  /** Predictions for questions absent from the annotations (only with `onUnknown: 'ignore'`). */
  unknown: number;
}

export interface VqaAccuracyOptions {
  /** Predictions for questions that have no annotation: throw (default) or ignore and count them. */
  onUnknown?: 'error' | 'ignore';
}

function answerText(a: AnnotatorAnswer, fn: string, where: string): string {
  const s = typeof a === 'string' ? a : a !== null && typeof a === 'object' ? (a as { answer?: unknown }).answer : undefined;
  if (typeof s !== 'string') throw new TypeError(`${fn}: ${where} must be a string or {answer: string}, got ${JSON.stringify(a)}`);
  return s;
}

/** Accuracy of a cleaned result against whitespace-cleaned gt answers (the official inner loop). */
function scoreCleaned(res: string, gts: string[]): number {
  let gt = gts;
  if (new Set(gt).size > 1) {
    gt = gt.map((a) => processDigitArticle(processPunctuation(a)));
    res = processDigitArticle(processPunctuation(res));
  }
  let matches = 0;
  for (const a of gt) if (a === res) matches++;
  // each annotator left out in turn: min(1, #other annotators who gave the answer / 3)
  let sum = 0;
  for (const a of gt) sum += Math.min(1, (a === res ? matches - 1 : matches) / 3);
  return sum / gt.length;
}

/**
 * Official VQA accuracy of one answer against the annotators' answers (a fraction in [0, 1]):
 * `mean over annotators j of min(1, #{k ≠ j : gt_k = answer} / 3)`, after the official
 * conditional normalisation (see the module documentation).
 */
export function vqaScore(answer: string, gtAnswers: readonly AnnotatorAnswer[]): number {
  if (typeof answer !== 'string') throw new TypeError(`vqaScore: answer must be a string, got ${JSON.stringify(answer)}`);
  if (!Array.isArray(gtAnswers) || gtAnswers.length === 0) throw new RangeError('vqaScore: gtAnswers must be a non-empty array of annotator answers');
  return scoreCleaned(
    cleanAnswerWhitespace(answer),
    gtAnswers.map((a, i) => cleanAnswerWhitespace(answerText(a, 'vqaScore', `gtAnswers[${i}]`))),
  );
}

/**
 * VLMo/ViLT training soft score of an answer: `softScore(n)` (0, 0.3, 0.6, 0.9, 1 for n = 0, 1,
 * 2, 3, ≥4) where n = number of annotators whose normalised answer equals the normalised answer
 * (normalisation always applied, as the training targets are built).
 */
export function vqaSoftScore(answer: string, gtAnswers: readonly AnnotatorAnswer[]): number {
  if (typeof answer !== 'string') throw new TypeError(`vqaSoftScore: answer must be a string, got ${JSON.stringify(answer)}`);
  if (!Array.isArray(gtAnswers)) throw new TypeError('vqaSoftScore: gtAnswers must be an array of annotator answers');
  const a = normalizeAnswer(answer);
  let n = 0;
  gtAnswers.forEach((g, i) => {
    if (normalizeAnswer(answerText(g, 'vqaSoftScore', `gtAnswers[${i}]`)) === a) n++;
  });
  return softScore(n);
}

function entriesOf(annotations: ReadonlyMap<QuestionId, VqaAnnotation> | Readonly<Record<string, VqaAnnotation>>): [QuestionId, VqaAnnotation][] {
  if (annotations instanceof Map) return [...annotations.entries()];
  if (annotations === null || typeof annotations !== 'object') throw new TypeError('vqaAccuracy: annotations must be a Map or a Record of question id → {answers}');
  return Object.entries(annotations as Record<string, VqaAnnotation>);
}

/**
 * Official VQA accuracy over a set of questions, with per-question, per-question-type and
 * per-answer-type results. Every annotated question counts (a missing prediction scores 0 and
 * is reported); question ids are matched by their string form (`1` matches `"1"`).
 */
export function vqaAccuracy(
  predictions: readonly VqaPrediction[],
  annotations: ReadonlyMap<QuestionId, VqaAnnotation> | Readonly<Record<string, VqaAnnotation>>,
  options: VqaAccuracyOptions = {},
): VqaAccuracyResult {
  const fn = 'vqaAccuracy';
  if (!Array.isArray(predictions)) throw new TypeError(`${fn}: predictions must be an array of {questionId, answer}`);
  const onUnknown = options.onUnknown ?? 'error';
  if (onUnknown !== 'error' && onUnknown !== 'ignore') throw new RangeError(`${fn}: options.onUnknown must be 'error' or 'ignore', got ${String(onUnknown)}`);
  const entries = entriesOf(annotations);
  if (entries.length === 0) throw new RangeError(`${fn}: annotations is empty`);
  const keyOf = new Map<string, QuestionId>();
  for (const [k] of entries) {
    const s = String(k);
    if (keyOf.has(s)) throw new RangeError(`${fn}: annotations hold question id ${JSON.stringify(k)} twice (as ${JSON.stringify(keyOf.get(s))} and ${JSON.stringify(k)})`);
    keyOf.set(s, k);
  }
  const answerOf = new Map<string, string>();
  let unknown = 0;
  predictions.forEach((p, i) => {
    if (p === null || typeof p !== 'object') throw new TypeError(`${fn}: predictions[${i}] must be {questionId, answer}, got ${JSON.stringify(p)}`);
    const q = 'questionId' in p ? p.questionId : (p as { question_id?: QuestionId }).question_id;
    if (typeof q !== 'string' && typeof q !== 'number') throw new TypeError(`${fn}: predictions[${i}] has no questionId (or question_id)`);
    if (typeof p.answer !== 'string') throw new TypeError(`${fn}: predictions[${i}].answer must be a string, got ${JSON.stringify(p.answer)}`);
    const s = String(q);
    if (!keyOf.has(s)) {
      if (onUnknown === 'error') throw new RangeError(`${fn}: predictions[${i}] is for question ${JSON.stringify(q)}, which has no annotation (pass options.onUnknown = 'ignore' to skip such predictions)`);
      unknown++;
      return;
    }
    if (answerOf.has(s)) throw new RangeError(`${fn}: two predictions for question ${JSON.stringify(q)} (predictions[${i}] is the second)`);
    answerOf.set(s, p.answer);
  });

  const perQuestion = new Map<QuestionId, number>();
  const byQType = new Map<string, number[]>();
  const byAType = new Map<string, number[]>();
  const missingIds: QuestionId[] = [];
  let sum = 0;
  for (const [k, ann] of entries) {
    if (ann === null || typeof ann !== 'object' || !Array.isArray(ann.answers) || ann.answers.length === 0) {
      throw new TypeError(`${fn}: annotations[${JSON.stringify(k)}] must be {answers: [at least one answer], questionType?, answerType?}`);
    }
    const gts = ann.answers.map((a, j) => cleanAnswerWhitespace(answerText(a, fn, `annotations[${JSON.stringify(k)}].answers[${j}]`)));
    const pred = answerOf.get(String(k));
    let acc = 0;
    if (pred === undefined) missingIds.push(k);
    else acc = scoreCleaned(cleanAnswerWhitespace(pred), gts);
    perQuestion.set(k, acc);
    sum += acc;
    const qt = ann.questionType ?? ann.question_type;
    const at = ann.answerType ?? ann.answer_type;
    if (qt !== undefined) push(byQType, String(qt), acc);
    if (at !== undefined) push(byAType, String(at), acc);
  }
  const n = entries.length;
  return {
    overall: sum / n,
    overallPercent: pythonRound((100 * sum) / n, 2),
    perQuestion,
    perQuestionType: breakdown(byQType),
    perAnswerType: breakdown(byAType),
    count: n,
    answered: n - missingIds.length,
    missing: missingIds.length,
    missingIds,
    unknown,
  };
}

function push(m: Map<string, number[]>, k: string, v: number): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

function breakdown(m: Map<string, number[]>): Record<string, VqaTypeAccuracy> {
  const out = Object.create(null) as Record<string, VqaTypeAccuracy>;
  for (const [k, accs] of m) {
    let s = 0;
    for (const a of accs) s += a;
    out[k] = { accuracy: s / accs.length, percent: pythonRound((100 * s) / accs.length, 2), count: accs.length };
  }
  return out;
}
