/**
 * VQA harness: batched inference over a VQA split, argmax answers, the official accuracy
 * (when the split's annotator answers are known) and the VLMo soft score, and the official
 * results file `[{question_id, answer}]`.
 */
import { join } from 'node:path';
import { AnswerVocab, Progress } from '@vlmoe/data';
import { readJsonFile, writeFileAtomicSync } from '@vlmoe/util';
import { readScores, type ModelAdapter } from '../adapter.js';
import { vqaAccuracy, type VqaAccuracyResult } from '../metrics/index.js';
import { findSidecar, openEvalLoader, type EvalDataOptions } from './data.js';

export interface VqaEvalOptions extends EvalDataOptions {
  /** Answer vocabulary (default: `<stem>_answers.json` or `answers.json` beside the file). */
  answers?: string;
  /** Annotator answers `{question_id: [10 answers] | {answers, answerType?, questionType?}}` (default: `<stem>_annotations.json`). */
  annotations?: string;
  /** Folder for `vqa_results.json` (not written when absent). */
  outDir?: string;
}

export interface VqaEvalResult {
  task: 'vqa';
  questions: number;
  /** Official VQA accuracy (fraction), or null when no annotator answers are available. */
  accuracy: number | null;
  official: VqaAccuracyResult | null;
  /** Mean VLMo soft score of the predicted answer (0..1). */
  softScore: number;
  predictions: { question_id: number; answer: string }[];
  files: string[];
}

export async function evaluateVqa(adapter: ModelAdapter, o: VqaEvalOptions): Promise<VqaEvalResult> {
  if (!adapter.vqaLogits) throw new Error(`evaluateVqa: model '${adapter.name}' has no vqaLogits`);
  const vocabPath = o.answers ?? findSidecar(o.file, 'answers.json', 'answers.json');
  if (!vocabPath) throw new Error(`evaluateVqa: no answer vocabulary for ${o.file} (pass answers, or put <stem>_answers.json / answers.json beside it)`);
  const vocab = AnswerVocab.load(vocabPath);
  const loader = await openEvalLoader(o, { numAnswers: vocab.size });
  const predictions: { question_id: number; answer: string }[] = [];
  let soft = 0;
  const total = o.limitBatches ? Math.min(o.limitBatches, loader.batchesPerEpoch) : loader.batchesPerEpoch;
  const bar = new Progress(`vqa ${adapter.name}`, total, { enabled: o.progress });
  try {
    let nb = 0;
    for await (const batch of loader) {
      const { data, cols } = await readScores(adapter.vqaLogits(batch), batch.size, `${adapter.name}.vqaLogits`);
      if (cols !== vocab.size) throw new Error(`${adapter.name}.vqaLogits: ${cols} logits per question, but the vocabulary has ${vocab.size} answers`);
      for (let k = 0; k < batch.size; k++) {
        let best = 0;
        for (let a = 1; a < cols; a++) if (data[k * cols + a]! > data[k * cols + best]!) best = a;
        predictions.push({ question_id: batch.questionIds![k]!, answer: vocab.answer(best) });
        soft += batch.vqaTargets![k * cols + best]!;
      }
      bar.tick();
      if (++nb >= total) break;
    }
  } finally {
    await loader.close();
  }
  bar.finish();
  const annPath = o.annotations ?? findSidecar(o.file, 'annotations.json');
  let official: VqaAccuracyResult | null = null;
  if (annPath) {
    const raw = readJsonFile(annPath) as Record<string, string[] | { answers: string[]; questionType?: string; answerType?: string }>;
    const ann: Record<string, { answers: string[]; questionType?: string; answerType?: string }> = {};
    const asked = new Set(predictions.map((p) => String(p.question_id)));
    for (const [qid, v] of Object.entries(raw)) if (asked.has(qid)) ann[qid] = Array.isArray(v) ? { answers: v } : v;
    official = vqaAccuracy(predictions.map((p) => ({ questionId: p.question_id, answer: p.answer })), ann);
  }
  const files: string[] = [];
  if (o.outDir) {
    const p = join(o.outDir, 'vqa_results.json');
    writeFileAtomicSync(p, JSON.stringify(predictions) + '\n', { mkdir: true });
    files.push(p);
  }
  return {
    task: 'vqa',
    questions: predictions.length,
    accuracy: official ? official.overall : null,
    official,
    softScore: predictions.length ? soft / predictions.length : 0,
    predictions,
    files,
  };
}
