/**
 * Per-example scores of a task result, keyed by example, for paired comparisons: VQA — the
 * official accuracy of each question; NLVR — 1 when a statement is judged right; TR@1 — 1 when
 * an image's first-ranked text is one of its captions; IR@1 — 1 when a caption's first-ranked
 * image is its own. The mean of the scores is the task's headline number (as a fraction).
 */
import type { NlvrEvalResult } from '../harness/nlvr.js';
import type { RetrievalEvalResult } from '../harness/retrieval.js';
import type { VqaEvalResult } from '../harness/vqa.js';
import type { PairedScores } from './bootstrap.js';

export type ExampleMetric = 'vqa' | 'nlvr' | 'tr1' | 'ir1';

export interface ExampleScores {
  metric: ExampleMetric;
  /** Example keys (question id; identifier and statement; image or caption index), in order. */
  keys: string[];
  scores: Float64Array;
}

export function exampleScores(result: VqaEvalResult | NlvrEvalResult | RetrievalEvalResult, metric: ExampleMetric): ExampleScores {
  if (metric === 'vqa') {
    if (result.task !== 'vqa') throw new Error(`exampleScores: 'vqa' needs a VQA result, got ${result.task}`);
    const per = result.official?.perQuestion;
    if (!per) throw new Error('exampleScores: the VQA result has no official per-question accuracy (evaluate with the annotations)');
    const keys = [...per.keys()].map(String);
    return { metric, keys, scores: Float64Array.from(per.values()) };
  }
  if (metric === 'nlvr') {
    if (result.task !== 'nlvr') throw new Error(`exampleScores: 'nlvr' needs an NLVR result, got ${result.task}`);
    return { metric, keys: result.predictions.map((p) => `${p.identifier}\t${p.sentence}`), scores: Float64Array.from(result.predictions, (p) => (p.prediction === p.label ? 1 : 0)) };
  }
  if (result.task !== 'retrieval') throw new Error(`exampleScores: '${metric}' needs a retrieval result, got ${result.task}`);
  if (!result.ranks) throw new Error('exampleScores: the retrieval result has no per-query ranks');
  const ranks = metric === 'tr1' ? result.ranks.tr : result.ranks.ir;
  const keys: string[] = [];
  const scores: number[] = [];
  ranks.forEach((r, i) => {
    if (r < 0) return; // an image without captions is not a query
    keys.push(String(i));
    scores.push(r === 0 ? 1 : 0);
  });
  return { metric, keys, scores: Float64Array.from(scores) };
}

/** Two models' scores on the same examples, aligned by key (an example missing on either side is an error naming it). */
export function pairScores(a: ExampleScores, b: ExampleScores): PairedScores {
  if (a.metric !== b.metric) throw new Error(`pairScores: ${a.metric} vs ${b.metric}`);
  const at = new Map(b.keys.map((k, i) => [k, i]));
  if (a.keys.length !== b.keys.length) throw new Error(`pairScores (${a.metric}): ${a.keys.length} examples vs ${b.keys.length}`);
  const bb = new Float64Array(a.keys.length);
  a.keys.forEach((k, i) => {
    const j = at.get(k);
    if (j === undefined) throw new Error(`pairScores (${a.metric}): example '${k}' is scored for one model only`);
    bb[i] = b.scores[j]!;
  });
  return { a: a.scores, b: bb };
}
