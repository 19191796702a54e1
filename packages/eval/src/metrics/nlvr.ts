/**
 * NLVR / NLVR2 accuracy and consistency (lil-lab/nlvr `nlvr2/eval/metrics.py`,
 * `nlvr/metrics_images.py`).
 */
import { checkNonEmpty, checkSameLength } from './util.js';

/** A truth value: boolean, 0/1, or a string "true"/"false" in any case (as the official CSVs). */
export type NlvrLabel = boolean | number | string;

function truth(v: NlvrLabel, fn: string, where: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === 0) return v === 1;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  throw new TypeError(`${fn}: ${where} must be a boolean, 0/1 or "true"/"false", got ${JSON.stringify(v)}`);
}

/** Fraction of examples whose prediction equals the label. */
export function nlvrAccuracy(predictions: ArrayLike<NlvrLabel>, labels: ArrayLike<NlvrLabel>): number {
  const fn = 'nlvrAccuracy';
  checkSameLength(fn, 'predictions', predictions, 'labels', labels);
  checkNonEmpty(fn, 'predictions', predictions);
  let right = 0;
  for (let i = 0; i < predictions.length; i++) {
    if (truth(predictions[i]!, fn, `predictions[${i}]`) === truth(labels[i]!, fn, `labels[${i}]`)) right++;
  }
  return right / predictions.length;
}

export interface NlvrExample {
  identifier: string;
  prediction: NlvrLabel;
  label: NlvrLabel;
  sentence?: string;
}

/**
 * How examples are grouped into "unique sentences":
 * - `'nlvr2'`: the official NLVR2 rule: split the identifier `split-setId-pairId-sentenceId` on
 *   `-` and blank the third field (`dev-850-3-1` → `dev-850--1`), i.e. the same sentence of the
 *   same image set over all the image pairs it was paired with;
 * - `'nlvr1'`: the official NLVR (v1) rule: the sentence number, i.e. the first numeric field of
 *   the identifier (`3776-0` → `3776`), kept with a leading split prefix if there is one
 *   (`dev-3776-0`, `dev-3776-0-5` → `dev-3776`);
 * - `'sentence'`: the sentence text (identical texts form one group even across image sets);
 * - `'auto'` (default): `'sentence'` when every example has a sentence; otherwise `'nlvr2'` when
 *   every identifier has four fields with a non-numeric first one, else `'nlvr1'`;
 * - a function of the example returning the group key.
 */
export type NlvrGroupBy = 'auto' | 'nlvr2' | 'nlvr1' | 'sentence' | ((example: NlvrExample) => string);

export interface NlvrConsistencyOptions {
  groupBy?: NlvrGroupBy;
}

export interface NlvrEvaluation {
  accuracy: number;
  consistency: number;
  examples: number;
  /** Number of unique sentences (groups). */
  groups: number;
  /** Groups whose every example is right. */
  consistentGroups: number;
}

export function nlvr2SentenceKey(identifier: string): string {
  const parts = identifier.split('-');
  if (parts.length < 3) throw new RangeError(`nlvr2SentenceKey: identifier '${identifier}' is not of the form split-setId-pairId-sentenceId`);
  parts[2] = '';
  return parts.join('-');
}

export function nlvr1SentenceKey(identifier: string): string {
  const parts = identifier.split('-');
  const numeric = (s: string | undefined) => s !== undefined && /^\d+$/.test(s);
  if (numeric(parts[0])) return parts[0]!;
  if (parts.length >= 2 && numeric(parts[1])) return `${parts[0]}-${parts[1]}`;
  throw new RangeError(`nlvr1SentenceKey: identifier '${identifier}' is not of the form [split-]sentenceId-...`);
}

function resolveGroupKey(fn: string, examples: readonly NlvrExample[], groupBy: NlvrGroupBy): (e: NlvrExample, i: number) => string {
  if (typeof groupBy === 'function') {
    return (e, i) => {
      const k = groupBy(e);
      if (typeof k !== 'string') throw new TypeError(`${fn}: groupBy returned ${JSON.stringify(k)} for examples[${i}] (expected a string)`);
      return k;
    };
  }
  const sentence = (e: NlvrExample, i: number) => {
    if (typeof e.sentence !== 'string') throw new TypeError(`${fn}: examples[${i}] has no sentence (needed by groupBy 'sentence')`);
    return e.sentence;
  };
  const ident = (e: NlvrExample, i: number) => {
    if (typeof e.identifier !== 'string') throw new TypeError(`${fn}: examples[${i}].identifier must be a string, got ${JSON.stringify(e.identifier)}`);
    return e.identifier;
  };
  switch (groupBy) {
    case 'sentence':
      return sentence;
    case 'nlvr2':
      return (e, i) => nlvr2SentenceKey(ident(e, i));
    case 'nlvr1':
      return (e, i) => nlvr1SentenceKey(ident(e, i));
    case 'auto': {
      if (examples.every((e) => typeof e.sentence === 'string')) return sentence;
      const nlvr2 = examples.every((e) => {
        const p = typeof e.identifier === 'string' ? e.identifier.split('-') : [];
        return p.length === 4 && !/^\d+$/.test(p[0]!);
      });
      return nlvr2 ? (e, i) => nlvr2SentenceKey(ident(e, i)) : (e, i) => nlvr1SentenceKey(ident(e, i));
    }
    default:
      throw new RangeError(`${fn}: options.groupBy must be 'auto', 'nlvr2', 'nlvr1', 'sentence' or a function, got ${JSON.stringify(groupBy)}`);
  }
}

/** Accuracy and consistency together, with the group counts. */
export function nlvrEvaluate(examples: readonly NlvrExample[], options: NlvrConsistencyOptions = {}): NlvrEvaluation {
  return evaluate('nlvrEvaluate', examples, options);
}

function evaluate(fn: string, examples: readonly NlvrExample[], options: NlvrConsistencyOptions): NlvrEvaluation {
  if (!Array.isArray(examples)) throw new TypeError(`${fn}: examples must be an array of {identifier, prediction, label, sentence?}`);
  checkNonEmpty(fn, 'examples', examples);
  examples.forEach((e, i) => {
    if (e === null || typeof e !== 'object') throw new TypeError(`${fn}: examples[${i}] must be {identifier, prediction, label, sentence?}, got ${JSON.stringify(e)}`);
  });
  const key = resolveGroupKey(fn, examples, options.groupBy ?? 'auto');
  const consistent = new Map<string, boolean>();
  let right = 0;
  examples.forEach((e, i) => {
    const ok = truth(e.prediction, fn, `examples[${i}].prediction`) === truth(e.label, fn, `examples[${i}].label`);
    if (ok) right++;
    const k = key(e, i);
    consistent.set(k, (consistent.get(k) ?? true) && ok);
  });
  let good = 0;
  for (const v of consistent.values()) if (v) good++;
  return { accuracy: right / examples.length, consistency: good / consistent.size, examples: examples.length, groups: consistent.size, consistentGroups: good };
}

/** Consistency: the fraction of unique sentences whose every example is answered correctly. */
export function nlvrConsistency(examples: readonly NlvrExample[], options: NlvrConsistencyOptions = {}): number {
  return evaluate('nlvrConsistency', examples, options).consistency;
}
