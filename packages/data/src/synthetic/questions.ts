/**
 * VQA questions about shapes-world scenes, correct by construction, and simulated annotators.
 *
 * Question types and forms (REF = a referring expression that picks out exactly one object,
 * e.g. "the circle", "the large red shape", "the object on the left"):
 *  - color:    "what color is REF?"                         → red, orange, …
 *  - shape:    "what shape is REF?"                         → circle, square, …
 *  - size:     "what size is REF?"                          → small | large
 *  - position: "where is REF?"                              → left | right | top | bottom | center
 *                                                             (rich world: the 9 grid cells, "top left" …)
 *  - count:    "how many [size] [color] (shapes|<shape>s) are there?",
 *              "how many … are on the left?"                → 0 … 4 (rich world: 0 … 6)
 *  - exist:    "is there a blue star?", "is there a red shape on the left?" → yes | no
 *  - yesno:    "is REF red?", "is REF a circle?", "is REF large?", "is REF on the left?",
 *              "are there exactly two red shapes?", "is there exactly one circle?",
 *              "are there more red shapes than blue shapes?" → yes | no
 * Yes/no questions are balanced (the wanted answer is drawn first). Colours, positions and
 * counts come from the world's concept set (`concepts`, standard by default).
 */
import type { Rng } from '../rng.js';
import { AnswerVocab } from '../vqa/answers.js';
import {
  POSITION_PHRASE,
  SHAPES,
  SIZES,
  article,
  attrsOf,
  conceptSet,
  countMatching,
  describe,
  numberWord,
  quantified,
  type Attrs,
  type ConceptSet,
  type ConceptsName,
  type Scene,
  type SceneObject,
} from './scene.js';

export const QUESTION_TYPES = ['color', 'shape', 'size', 'position', 'count', 'exist', 'yesno'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface Question {
  question: string;
  answer: string;
  type: QuestionType;
}

export const DEFAULT_QUESTIONS_PER_IMAGE = 6;
export const ANNOTATORS = 10;

const countAnswers = (c: ConceptSet): string[] => Array.from({ length: c.maxObjects + 1 }, (_, i) => String(i));

/** The closed answer set of a concept set, in label order (all already in VQA-normalised form). */
export function shapesWorldAnswers(concepts: ConceptsName = 'standard'): readonly string[] {
  const c = conceptSet(concepts);
  return ['yes', 'no', ...c.colors, ...SHAPES, ...SIZES, ...c.positions, ...countAnswers(c)];
}

/** The closed answer set of the standard world, in label order (28 answers). */
export const SHAPES_WORLD_ANSWERS: readonly string[] = shapesWorldAnswers('standard');

/** The answer vocabulary of the shapes world (`answers.json`). */
export function shapesWorldAnswerVocab(concepts: ConceptsName = 'standard'): AnswerVocab {
  return new AnswerVocab(shapesWorldAnswers(concepts));
}

type AttrKey = keyof Attrs;

/** Attribute sets a referring expression may use (the last noun-less ones say "shape"/"object"). */
const REF_KEYS: readonly (readonly AttrKey[])[] = [
  ['shape'],
  ['color', 'shape'],
  ['size', 'shape'],
  ['size', 'color', 'shape'],
  ['color'],
  ['size'],
  ['size', 'color'],
  ['position'],
  ['shape', 'position'],
  ['color', 'position'],
];

/** Referring expressions (as attribute sets) that pick out exactly `o` and do not mention `omit`. */
export function uniqueRefs(scene: Scene, o: SceneObject, omit: AttrKey): Attrs[] {
  const out: Attrs[] = [];
  for (const keys of REF_KEYS) {
    if (keys.includes(omit)) continue;
    const a = attrsOf(o, keys);
    if (countMatching(scene, a) === 1) out.push(a);
  }
  return out;
}

const the = (a: Attrs, noun: 'shape' | 'object' = 'shape'): string => `the ${describe(a, 1, noun)}`;

function pickRef(scene: Scene, rng: Rng, omit: AttrKey): { o: SceneObject; ref: Attrs } | null {
  const o = rng.choice(scene.objects);
  const refs = uniqueRefs(scene, o, omit);
  return refs.length === 0 ? null : { o, ref: rng.choice(refs) };
}

function otherThan<T>(rng: Rng, items: readonly T[], not: T): T {
  return rng.choice(items.filter((v) => v !== not));
}

type Gen = (scene: Scene, rng: Rng, c: ConceptSet) => Question | null;

const colorQ: Gen = (s, rng) => {
  const p = pickRef(s, rng, 'color');
  return p && { question: `what color is ${the(p.ref)}?`, answer: p.o.color, type: 'color' };
};

const shapeQ: Gen = (s, rng) => {
  const p = pickRef(s, rng, 'shape');
  return p && { question: `what shape is ${the(p.ref, 'object')}?`, answer: p.o.shape, type: 'shape' };
};

const sizeQ: Gen = (s, rng) => {
  const p = pickRef(s, rng, 'size');
  return p && { question: `what size is ${the(p.ref)}?`, answer: p.o.size, type: 'size' };
};

const positionQ: Gen = (s, rng) => {
  const p = pickRef(s, rng, 'position');
  return p && { question: `where is ${the(p.ref)}?`, answer: p.o.position, type: 'position' };
};

const COUNT_KEYS: readonly (readonly AttrKey[])[] = [[], [], ['color'], ['shape'], ['color', 'shape'], ['size'], ['position'], ['color', 'position'], ['size', 'shape']];

/** Random attributes for `keys`: those of a scene object (with probability `pFromScene`) or random values. */
function sampleAttrs(s: Scene, rng: Rng, keys: readonly AttrKey[], pFromScene: number, c: ConceptSet): Attrs {
  if (rng.bernoulli(pFromScene)) return attrsOf(rng.choice(s.objects), keys);
  const a: Attrs = {};
  for (const k of keys) {
    if (k === 'shape') a.shape = rng.choice(SHAPES);
    else if (k === 'color') a.color = rng.choice(c.colors);
    else if (k === 'size') a.size = rng.choice(SIZES);
    else a.position = rng.choice(c.positions);
  }
  return a;
}

/** "red shapes" / "circles" / "small squares" (no position). */
const plainPlural = (a: Attrs): string => describe({ ...a, position: undefined }, 2);

const countQ: Gen = (s, rng, c) => {
  const a = sampleAttrs(s, rng, rng.choice(COUNT_KEYS), 0.7, c);
  const n = countMatching(s, a);
  const tail = a.position ? `are ${POSITION_PHRASE[a.position]}` : 'are there';
  return { question: `how many ${plainPlural(a)} ${tail}?`, answer: String(n), type: 'count' };
};

const EXIST_KEYS: readonly (readonly AttrKey[])[] = [
  ['shape'],
  ['color', 'shape'],
  ['color', 'shape'],
  ['size', 'shape'],
  ['color'],
  ['size', 'color', 'shape'],
  ['shape', 'position'],
  ['color', 'position'],
];

const existQ: Gen = (s, rng, c) => {
  const want = rng.bernoulli(0.5);
  const keys = rng.choice(EXIST_KEYS);
  for (let t = 0; t < 20; t++) {
    const a = sampleAttrs(s, rng, keys, want ? 1 : 0, c);
    if (countMatching(s, a) > 0 === want) return { question: `is there ${quantified(a, 1)}?`, answer: want ? 'yes' : 'no', type: 'exist' };
  }
  return null;
};

const yesnoAttrQ = (s: Scene, rng: Rng, want: boolean, c: ConceptSet): Question | null => {
  const attr = rng.choice(['color', 'shape', 'size', 'position'] as const);
  const p = pickRef(s, rng, attr);
  if (!p) return null;
  const answer = want ? 'yes' : 'no';
  switch (attr) {
    case 'color': {
      const v = want ? p.o.color : otherThan(rng, c.colors, p.o.color);
      return { question: `is ${the(p.ref)} ${v}?`, answer, type: 'yesno' };
    }
    case 'shape': {
      const v = want ? p.o.shape : otherThan(rng, SHAPES, p.o.shape);
      return { question: `is ${the(p.ref, 'object')} ${article(v)} ${v}?`, answer, type: 'yesno' };
    }
    case 'size': {
      const v = want ? p.o.size : otherThan(rng, SIZES, p.o.size);
      return { question: `is ${the(p.ref)} ${v}?`, answer, type: 'yesno' };
    }
    case 'position': {
      const v = want ? p.o.position : otherThan(rng, c.positions, p.o.position);
      return { question: `is ${the(p.ref)} ${POSITION_PHRASE[v]}?`, answer, type: 'yesno' };
    }
  }
};

const yesnoCountQ = (s: Scene, rng: Rng, want: boolean, c: ConceptSet): Question | null => {
  const keys = rng.choice(COUNT_KEYS.filter((k) => !k.includes('position')));
  const a = sampleAttrs(s, rng, keys, 0.8, c);
  const n = countMatching(s, a);
  let k = n;
  if (!want) {
    const options = [n - 1, n + 1].filter((v) => v >= 1 && v <= c.maxObjects);
    if (options.length === 0) return null;
    k = rng.choice(options);
  }
  if (k < 1) return null;
  const question = k === 1 ? `is there exactly one ${describe(a, 1)}?` : `are there exactly ${numberWord(k)} ${describe(a, k)}?`;
  return { question, answer: want ? 'yes' : 'no', type: 'yesno' };
};

const yesnoMoreQ = (s: Scene, rng: Rng, want: boolean, c: ConceptSet): Question | null => {
  const key = rng.choice(['color', 'shape'] as const);
  for (let t = 0; t < 10; t++) {
    const a = sampleAttrs(s, rng, [key], 0.8, c);
    const b = sampleAttrs(s, rng, [key], 0.5, c);
    if (a[key] === b[key]) continue;
    const more = countMatching(s, a) > countMatching(s, b);
    if (more !== want) continue;
    return { question: `are there more ${plainPlural(a)} than ${plainPlural(b)}?`, answer: want ? 'yes' : 'no', type: 'yesno' };
  }
  return null;
};

const yesnoQ: Gen = (s, rng, c) => {
  const want = rng.bernoulli(0.5);
  const r = rng.random();
  if (r < 0.6) return yesnoAttrQ(s, rng, want, c);
  if (r < 0.85) return yesnoCountQ(s, rng, want, c);
  return yesnoMoreQ(s, rng, want, c);
};

const GENERATORS: Record<QuestionType, Gen> = {
  color: colorQ,
  shape: shapeQ,
  size: sizeQ,
  position: positionQ,
  count: countQ,
  exist: existQ,
  yesno: yesnoQ,
};

/**
 * `count` (default 6) different questions about a scene with their correct answers. Types
 * are visited in a random order (so an image gets a spread of types), skipping a type when
 * the scene offers no unambiguous question of it.
 */
export function questionsFor(scene: Scene, rng: Rng, count = DEFAULT_QUESTIONS_PER_IMAGE, concepts: ConceptsName = 'standard'): Question[] {
  const c = conceptSet(concepts);
  const out: Question[] = [];
  const seen = new Set<string>();
  let order = rng.shuffle([...QUESTION_TYPES]) as QuestionType[];
  for (let attempt = 0, k = 0; out.length < count && attempt < 40 * count; attempt++, k++) {
    if (k === order.length) {
      order = rng.shuffle([...QUESTION_TYPES]) as QuestionType[];
      k = 0;
    }
    const q = GENERATORS[order[k]!](scene, rng, c);
    if (q && !seen.has(q.question)) {
      seen.add(q.question);
      out.push(q);
    }
  }
  return out;
}

/** Plausible wrong answers of a question type. */
function wrongAnswers(q: Question, concepts: ConceptSet): string[] {
  switch (q.type) {
    case 'color':
      return concepts.colors.filter((c) => c !== q.answer);
    case 'shape':
      return SHAPES.filter((c) => c !== q.answer);
    case 'size':
      return SIZES.filter((c) => c !== q.answer);
    case 'position':
      return concepts.positions.filter((c) => c !== q.answer);
    case 'count': {
      const n = Number(q.answer);
      return countAnswers(concepts).filter((c) => Math.abs(Number(c) - n) === 1);
    }
    case 'exist':
    case 'yesno':
      return [q.answer === 'yes' ? 'no' : 'yes'];
  }
}

/** Probability of 0, 1, 2, 3 annotators answering wrongly. */
export const ANNOTATOR_NOISE = [0.45, 0.25, 0.18, 0.12] as const;

/**
 * The 10 annotators' answers of a question: at least 7 give the correct answer; 0–3 give a
 * plausible wrong one (mostly the same one, so wrong answers get soft scores 0.3, 0.6 or
 * 0.9), in a random order.
 */
export function annotatorAnswers(q: Question, rng: Rng, concepts: ConceptsName = 'standard'): string[] {
  const u = rng.random();
  let wrong = ANNOTATOR_NOISE.length - 1;
  for (let k = 0, acc = 0; k < ANNOTATOR_NOISE.length; k++) {
    acc += ANNOTATOR_NOISE[k]!;
    if (u < acc) {
      wrong = k;
      break;
    }
  }
  const options = wrongAnswers(q, conceptSet(concepts));
  const main = rng.choice(options);
  const answers: string[] = [];
  for (let k = 0; k < wrong; k++) answers.push(rng.bernoulli(0.75) ? main : rng.choice(options));
  while (answers.length < ANNOTATORS) answers.push(q.answer);
  return rng.shuffle(answers) as string[];
}
