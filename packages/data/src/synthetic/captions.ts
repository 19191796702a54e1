/**
 * Captions of shapes-world scenes from a small grammar; every caption is true of its scene.
 *
 * Caption forms (NP = "a|an|<number> [small|large] [colour] (<shape>|shape)[s]"):
 *  - exhaustive lists: "a red circle and two blue squares", optionally prefixed with
 *    "a picture of", "an image of", "an image with", "an image showing", or
 *    "there are three shapes: ..."; the NPs partition the scene's objects exactly
 *  - counts: "there are two shapes", "there is one shape"
 *  - positions: "a large green triangle on the left and a red shape at the top"
 *  - relations: "a red circle to the left of a blue square" (left of / right of / above / below)
 *  - summaries: "all shapes are red", "the shapes are red and blue", "all shapes are small",
 *    "all shapes are circles", "the only shape is a red circle"
 *  - the identifying caption (always the first): every object with its size, colour, shape
 *    and position, "a large red circle on the left and a small blue square at the top" — what
 *    tells an image apart from the other candidates in retrieval
 */
import type { Rng } from '../rng.js';
import {
  attrsOf,
  joinAnd,
  numberWord,
  plural,
  quantified,
  type Attrs,
  type Scene,
  type SceneObject,
} from './scene.js';

export const DEFAULT_CAPTIONS_PER_IMAGE = 5;

type Key = 'shape' | 'color' | 'size';

/** Attribute sets an exhaustive list may describe objects by. */
export const LIST_DETAILS: readonly (readonly Key[])[] = [
  ['shape'],
  ['color', 'shape'],
  ['size', 'shape'],
  ['size', 'color', 'shape'],
  ['color'],
  ['size', 'color'],
];

export const LIST_PREFIXES = ['a picture of', 'an image of', 'an image with', 'an image showing'] as const;

/** Minimum centre offset (fraction of the image side) for "left of" / "above" relations. */
export const RELATION_MARGIN = 0.15;

const keyOf = (a: Attrs): string => `${a.size ?? ''}|${a.color ?? ''}|${a.shape ?? ''}`;

/** Exhaustive list of the objects grouped by `keys`, e.g. "two red circles and a blue square". */
export function listPhrase(objects: readonly SceneObject[], keys: readonly Key[]): string {
  const groups = new Map<string, { attrs: Attrs; count: number }>();
  for (const o of objects) {
    const attrs = attrsOf(o, keys);
    const k = keyOf(attrs);
    const g = groups.get(k);
    if (g) g.count++;
    else groups.set(k, { attrs, count: 1 });
  }
  return joinAnd([...groups.values()].map((g) => quantified(g.attrs, g.count)));
}

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  return rng.shuffle([...items]) as T[];
}

const NP_DETAILS: readonly (readonly Key[])[] = [['shape'], ['color', 'shape'], ['size', 'shape'], ['size', 'color', 'shape'], ['color']];

type Template = (scene: Scene, rng: Rng) => string | null;

const list: Template = (s, rng) => listPhrase(shuffled(rng, s.objects), rng.choice(LIST_DETAILS));

const prefixedList: Template = (s, rng) => `${rng.choice(LIST_PREFIXES)} ${list(s, rng)}`;

const countedList: Template = (s, rng) => {
  const n = s.objects.length;
  const head = n === 1 ? 'there is one shape' : `there are ${numberWord(n)} shapes`;
  return `${head}: ${list(s, rng)}`;
};

const count: Template = (s, rng) => {
  const n = s.objects.length;
  const forms = [n === 1 ? 'there is one shape' : `there are ${numberWord(n)} shapes`, `${rng.choice(LIST_PREFIXES)} ${quantified({}, n)}`];
  return rng.choice(forms);
};

const positions: Template = (s, rng) => {
  const objs = shuffled(rng, s.objects).slice(0, s.objects.length >= 2 && rng.bernoulli(0.5) ? 2 : 1);
  const parts = objs.map((o) => quantified(attrsOf(o, [...rng.choice(NP_DETAILS), 'position']), 1));
  return joinAnd([...new Set(parts)]);
};

const relation: Template = (s, rng) => {
  const pairs: [SceneObject, SceneObject, string][] = [];
  for (const a of s.objects) {
    for (const b of s.objects) {
      if (a === b) continue;
      if (b.x - a.x >= RELATION_MARGIN) pairs.push([a, b, 'to the left of']);
      if (a.x - b.x >= RELATION_MARGIN) pairs.push([a, b, 'to the right of']);
      if (b.y - a.y >= RELATION_MARGIN) pairs.push([a, b, 'above']);
      if (a.y - b.y >= RELATION_MARGIN) pairs.push([a, b, 'below']);
    }
  }
  if (pairs.length === 0) return null;
  const [a, b, rel] = rng.choice(pairs);
  return `${quantified(attrsOf(a, rng.choice(NP_DETAILS)), 1)} ${rel} ${quantified(attrsOf(b, rng.choice(NP_DETAILS)), 1)}`;
};

const summary: Template = (s, rng) => {
  const objs = s.objects;
  if (objs.length === 1) return `the only shape is ${quantified(attrsOf(objs[0]!, rng.choice(NP_DETAILS)), 1)}`;
  const options: string[] = [];
  const colors = [...new Set(objs.map((o) => o.color))];
  options.push(colors.length === 1 ? `all shapes are ${colors[0]}` : `the shapes are ${joinAnd(shuffled(rng, colors))}`);
  const sizes = new Set(objs.map((o) => o.size));
  if (sizes.size === 1) options.push(`all shapes are ${objs[0]!.size}`);
  const shapes = new Set(objs.map((o) => o.shape));
  if (shapes.size === 1) options.push(`all shapes are ${plural(objs[0]!.shape)}`);
  return rng.choice(options);
};

const TEMPLATES: readonly Template[] = [list, prefixedList, countedList, count, positions, relation, summary, positions, list];

/**
 * Every object with its size, colour, shape and position, in scene order: the caption that
 * identifies a scene among others (two scenes share it only when they hold the same objects in
 * the same regions).
 */
export function identifyingCaption(scene: Scene): string {
  return joinAnd(scene.objects.map((o) => quantified(attrsOf(o, ['size', 'color', 'shape', 'position']), 1)));
}

/**
 * `count` (default 5) different captions of a scene, all true of it: the identifying caption
 * first, then captions drawn from the grammar with a spread of forms (each form is tried once,
 * in random order, before any repeats).
 */
export function captionsFor(scene: Scene, rng: Rng, count = DEFAULT_CAPTIONS_PER_IMAGE): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (c: string | null): void => {
    if (c !== null && !seen.has(c) && out.length < count) {
      seen.add(c);
      out.push(c);
    }
  };
  add(identifyingCaption(scene));
  for (const t of shuffled(rng, TEMPLATES)) add(t(scene, rng));
  for (let attempt = 0; attempt < 60 && out.length < count; attempt++) add(rng.choice(TEMPLATES)(scene, rng));
  // deterministic fallback (tiny scenes): every list detail with every prefix
  for (const keys of LIST_DETAILS) {
    const l = listPhrase(scene.objects, keys);
    add(l);
    for (const p of LIST_PREFIXES) add(`${p} ${l}`);
  }
  return out;
}
