/**
 * NLVR-style statements about a pair of shapes-world scenes (the "left" and "right" image),
 * labelled true or false by evaluating them on the scenes.
 *
 * Forms (D = "[size] [colour] (<shape>|shape)[s]", S = left | right):
 *  - "the S image contains exactly two D" / "... exactly one D" / "the S image contains no D"
 *  - "the S image has a D" / "the S image has a D on the left"
 *  - "both images contain a D" / "neither image contains a D" /
 *    "exactly one image contains a D" / "at least one image contains a D"
 *  - "there are more D in the left image than in the right image" (and vice versa)
 *  - "the left image contains more shapes than the right image" (and vice versa),
 *    "both images contain the same number of shapes"
 *  - "the two images contain five shapes in total"
 *  - "all shapes in the S image are red" / "... are small" / "... are circles"
 * The wanted label is drawn first (true with probability ½) and forms are sampled until one
 * has it, so labels are balanced.
 */
import type { Rng } from '../rng.js';
import {
  SHAPES,
  SIZES,
  attrsOf,
  conceptSet,
  countMatching,
  describe,
  numberWord,
  plural,
  quantified,
  type Attrs,
  type ConceptSet,
  type ConceptsName,
  type Scene,
} from './scene.js';

export interface Statement {
  statement: string;
  label: boolean;
}

type Key = keyof Attrs;
const DESC_KEYS: readonly (readonly Key[])[] = [['shape'], ['color'], ['color', 'shape'], ['color', 'shape'], ['size', 'shape'], ['size', 'color', 'shape']];

function sampleAttrs(a: Scene, b: Scene, rng: Rng, keys: readonly Key[], c: ConceptSet): Attrs {
  if (rng.bernoulli(0.75)) {
    const s = rng.bernoulli(0.5) ? a : b;
    return attrsOf(rng.choice(s.objects), keys);
  }
  const out: Attrs = {};
  for (const k of keys) {
    if (k === 'shape') out.shape = rng.choice(SHAPES);
    else if (k === 'color') out.color = rng.choice(c.colors);
    else if (k === 'size') out.size = rng.choice(SIZES);
    else out.position = rng.choice(c.positions);
  }
  return out;
}

type Form = (a: Scene, b: Scene, rng: Rng, c: ConceptSet) => Statement;

const side = (rng: Rng): 'left' | 'right' => (rng.bernoulli(0.5) ? 'left' : 'right');

const exactCount: Form = (a, b, rng, c) => {
  const sd = side(rng);
  const scene = sd === 'left' ? a : b;
  const attrs = rng.bernoulli(0.2) ? {} : sampleAttrs(a, b, rng, rng.choice(DESC_KEYS), c);
  const n = countMatching(scene, attrs);
  const k = rng.bernoulli(0.5) ? n : rng.int(0, c.maxObjects + 1);
  const statement =
    k === 0 ? `the ${sd} image contains no ${describe(attrs, 2)}` : `the ${sd} image contains exactly ${numberWord(k)} ${describe(attrs, k)}`;
  return { statement, label: n === k };
};

const has: Form = (a, b, rng, c) => {
  const sd = side(rng);
  const scene = sd === 'left' ? a : b;
  const keys = rng.bernoulli(0.25) ? [...rng.choice(DESC_KEYS), 'position' as const] : rng.choice(DESC_KEYS);
  const attrs = sampleAttrs(a, b, rng, keys, c);
  return { statement: `the ${sd} image has ${quantified(attrs, 1)}`, label: countMatching(scene, attrs) > 0 };
};

const quantifiedImages: Form = (a, b, rng, c) => {
  const attrs = sampleAttrs(a, b, rng, rng.choice(DESC_KEYS), c);
  const ina = countMatching(a, attrs) > 0;
  const inb = countMatching(b, attrs) > 0;
  const np = quantified(attrs, 1);
  switch (rng.int(0, 4)) {
    case 0:
      return { statement: `both images contain ${np}`, label: ina && inb };
    case 1:
      return { statement: `neither image contains ${np}`, label: !ina && !inb };
    case 2:
      return { statement: `exactly one image contains ${np}`, label: ina !== inb };
    default:
      return { statement: `at least one image contains ${np}`, label: ina || inb };
  }
};

const moreOf: Form = (a, b, rng, c) => {
  const attrs = sampleAttrs(a, b, rng, rng.choice(DESC_KEYS), c);
  const na = countMatching(a, attrs);
  const nb = countMatching(b, attrs);
  const leftMore = rng.bernoulli(0.5);
  const [first, second] = leftMore ? ['left', 'right'] : ['right', 'left'];
  return {
    statement: `there are more ${describe(attrs, 2)} in the ${first} image than in the ${second} image`,
    label: leftMore ? na > nb : nb > na,
  };
};

const compareCounts: Form = (a, b, rng) => {
  const na = a.objects.length;
  const nb = b.objects.length;
  switch (rng.int(0, 3)) {
    case 0:
      return { statement: 'the left image contains more shapes than the right image', label: na > nb };
    case 1:
      return { statement: 'the right image contains more shapes than the left image', label: nb > na };
    default:
      return { statement: 'both images contain the same number of shapes', label: na === nb };
  }
};

const total: Form = (a, b, rng, c) => {
  const n = a.objects.length + b.objects.length;
  const k = rng.bernoulli(0.5) ? n : rng.int(2, 2 * c.maxObjects + 1);
  return { statement: `the two images contain ${numberWord(k)} shapes in total`, label: n === k };
};

const all: Form = (a, b, rng, c) => {
  const sd = side(rng);
  const scene = sd === 'left' ? a : b;
  const key = rng.choice(['color', 'size', 'shape'] as const);
  const attrs = sampleAttrs(a, b, rng, [key], c);
  const label = scene.objects.every((o) => o[key] === attrs[key]);
  const what = key === 'shape' ? plural(attrs.shape!) : key === 'color' ? attrs.color! : attrs.size!;
  return { statement: `all shapes in the ${sd} image are ${what}`, label };
};

const FORMS: readonly Form[] = [exactCount, exactCount, has, has, quantifiedImages, quantifiedImages, moreOf, compareCounts, total, all];

/**
 * A statement about the pair (sceneA = left image, sceneB = right image), true or false with
 * probability ½ each; random colours, positions and counts come from the world's concept set.
 */
export function statementFor(sceneA: Scene, sceneB: Scene, rng: Rng, concepts: ConceptsName = 'standard'): Statement {
  const c = conceptSet(concepts);
  const want = rng.bernoulli(0.5);
  let last: Statement | null = null;
  for (let t = 0; t < 100; t++) {
    last = rng.choice(FORMS)(sceneA, sceneB, rng, c);
    if (last.label === want) return last;
  }
  return last!;
}
