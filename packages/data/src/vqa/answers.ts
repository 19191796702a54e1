/**
 * VQA answer vocabulary and VLMo/ViLT soft scores.
 *
 * Vocabulary: normalised answers seen at least `minCount` times (9 for VQAv2, giving 3,129
 * answers), in order of first appearance. Soft score for an answer given by n annotators:
 * 0, 0.3, 0.6, 0.9, 1.0 for n = 0, 1, 2, 3, ≥4.
 */
import { normalizeAnswer } from './normalize.js';
import { readJsonFile, writeFileAtomicSync } from '@vlmoe/util';

export function softScore(count: number): number {
  if (count <= 0) return 0;
  if (count === 1) return 0.3;
  if (count === 2) return 0.6;
  if (count === 3) return 0.9;
  return 1.0;
}

export class AnswerVocab {
  readonly answers: readonly string[];
  private readonly index: Map<string, number>;

  constructor(answers: readonly string[]) {
    this.answers = [...answers];
    this.index = new Map();
    this.answers.forEach((a, i) => {
      if (this.index.has(a)) throw new Error(`AnswerVocab: answer '${a}' appears twice (labels ${this.index.get(a)} and ${i})`);
      this.index.set(a, i);
    });
  }

  get size(): number {
    return this.answers.length;
  }

  /** Label of an answer (normalised first), or -1 when it is not in the vocabulary. */
  label(answer: string): number {
    return this.index.get(normalizeAnswer(answer)) ?? -1;
  }

  answer(label: number): string {
    const a = this.answers[label];
    if (a === undefined) throw new RangeError(`AnswerVocab: label ${label} out of range [0, ${this.size})`);
    return a;
  }

  /**
   * Labels and soft scores of one question from its annotators' answers (VLMo targets):
   * answers outside the vocabulary are dropped.
   */
  targets(annotatorAnswers: readonly string[]): { answers: string[]; labels: number[]; scores: number[] } {
    const counts = new Map<string, number>();
    for (const a of annotatorAnswers) {
      const n = normalizeAnswer(a);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const answers: string[] = [];
    const labels: number[] = [];
    const scores: number[] = [];
    for (const [a, c] of counts) {
      const l = this.index.get(a);
      if (l === undefined) continue;
      answers.push(a);
      labels.push(l);
      scores.push(softScore(c));
    }
    return { answers, labels, scores };
  }

  /** Build from answers (one per question, e.g. VQAv2's `multiple_choice_answer`), keeping those seen ≥ minCount times. */
  static build(answers: Iterable<string>, minCount = 9): AnswerVocab {
    if (!(minCount >= 1)) throw new RangeError(`AnswerVocab.build: minCount must be ≥ 1, got ${minCount}`);
    const counts = new Map<string, number>();
    for (const a of answers) {
      const n = normalizeAnswer(a);
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    return new AnswerVocab([...counts].filter(([, c]) => c >= minCount).map(([a]) => a));
  }

  toJSON(): { answers: string[] } {
    return { answers: [...this.answers] };
  }

  /** Save as JSON `{"answers": [...]}` (label = index), atomically. */
  save(path: string): void {
    writeFileAtomicSync(path, JSON.stringify(this.toJSON(), null, 1) + '\n', { mkdir: true });
  }

  static load(path: string): AnswerVocab {
    const parsed = readJsonFile(path, 'answer vocabulary (answers.json)');
    const answers = (parsed as { answers?: unknown }).answers;
    if (!Array.isArray(answers) || !answers.every((a) => typeof a === 'string')) {
      throw new Error(`AnswerVocab.load: ${path} must hold {"answers": [string, ...]}`);
    }
    return new AnswerVocab(answers as string[]);
  }
}
