/**
 * The shapes-world scene model: 1–4 coloured shapes on a light, slightly noisy background
 * (the standard concept set), or 1–6 shapes with 12 colours on a 3×3 grid of positions (the
 * rich concept set, `RICH_CONCEPTS`).
 *
 * A scene is a plain JSON object (`Scene`) that fully determines the rendered pixels and
 * every caption, question and statement about it. Coordinates are fractions of the image
 * side (x to the right, y downwards), so a scene renders at any resolution.
 */
import type { Rng } from '../rng.js';

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'star', 'cross'] as const;
export type ShapeName = (typeof SHAPES)[number];

/**
 * Named palette colours (sRGB, 0–255): the 8 of the standard world, then the 4 the rich world
 * adds. Each added colour is at least 108 apart (RGB Euclidean distance) from every other
 * colour and at least 110 from the lightest background, further than the closest standard pair
 * (orange–yellow, 72), so it stays distinguishable after the images are downscaled.
 */
export const PALETTE = {
  red: [220, 38, 38],
  orange: [245, 130, 20],
  yellow: [230, 200, 20],
  green: [34, 160, 60],
  blue: [37, 80, 225],
  purple: [140, 55, 190],
  brown: [125, 75, 35],
  gray: [110, 110, 110],
  pink: [240, 100, 180],
  teal: [0, 180, 175],
  black: [15, 15, 15],
  lime: [130, 230, 50],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColorName = keyof typeof PALETTE;
/** The colours of the standard world. */
export const COLORS: readonly ColorName[] = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'brown', 'gray'];
/** The colours of the rich world: the standard 8 and pink, teal, black, lime. */
export const RICH_COLORS: readonly ColorName[] = [...COLORS, 'pink', 'teal', 'black', 'lime'];

export const SIZES = ['small', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

/** The position regions of the standard world (see `positionOf`). */
export const POSITIONS = ['left', 'right', 'top', 'bottom', 'center'] as const;
/** The position regions of the rich world: the cells of a 3×3 grid, row by row (see `gridPositionOf`). */
export const GRID_POSITIONS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
export type PositionName = (typeof GRID_POSITIONS)[number];

/** Nominal radius (fraction of the image side) range per size. */
export const SIZE_RADIUS: Record<SizeName, readonly [number, number]> = {
  small: [0.075, 0.09],
  large: [0.13, 0.15],
};

/** Every shape fits in a circle of `BOUND_FACTOR * r` around its centre. */
export const BOUND_FACTOR = 1.2;

/** Minimum gap between the bounding circles of two shapes (fraction of the image side). */
export const MIN_GAP = 0.03;

/** Distance of the centre from the image border is at least its bound plus this. */
export const BORDER_MARGIN = 0.02;

/** Objects per scene (standard world; the rich world has up to `RICH_MAX_OBJECTS`). */
export const MIN_OBJECTS = 1;
export const MAX_OBJECTS = 4;
export const RICH_MAX_OBJECTS = 6;

export type Rgb = [number, number, number];

export interface SceneObject {
  shape: ShapeName;
  color: ColorName;
  size: SizeName;
  /** Centre, as fractions of the image width / height (y grows downwards). */
  x: number;
  y: number;
  /** Nominal radius as a fraction of the image side (the shape fits in 1.2·r). */
  r: number;
  /** Region of the image the centre lies in (derived from x, y; unambiguous by construction). */
  position: PositionName;
}

export interface SceneBackground {
  /** Colour at the image centre. */
  color: Rgb;
  /** Per-channel change from one side of the image to the other along `direction`. */
  gradient: Rgb;
  /** Gradient direction as a unit-free vector (dx, dy), each in {-1, 0, 1}. */
  direction: [number, number];
  /** Amplitude of the per-pixel noise (uniform in [-noise, noise], applied to the whole image). */
  noise: number;
  /** Seed of the pixel noise (a 32-bit unsigned integer). */
  noiseSeed: number;
}

export interface Scene {
  objects: SceneObject[];
  background: SceneBackground;
}

/** Thresholds of the position regions (see `positionOf`). */
export const CENTER_RADIUS = 0.1;
/** Positions closer than this to the centre square's border are never sampled. */
export const POSITION_MARGIN = 0.06;
/** Positions closer than this to a diagonal (|x−½| = |y−½|) are never sampled. */
export const DIAGONAL_MARGIN = 0.1;

/**
 * Region of a point: `center` when both |x−½| and |y−½| are below 0.1, otherwise the side of
 * the dominant axis (`left`/`right` when |x−½| > |y−½|, else `top`/`bottom`).
 */
export function positionOf(x: number, y: number): PositionName {
  const dx = x - 0.5;
  const dy = y - 0.5;
  const ax = Math.abs(dx);
  const ay = Math.abs(dy);
  if (ax < CENTER_RADIUS && ay < CENTER_RADIUS) return 'center';
  if (ax > ay) return dx < 0 ? 'left' : 'right';
  return dy < 0 ? 'top' : 'bottom';
}

/** Whether (x, y) is clearly inside its region (away from the centre square's border and from the diagonals). */
export function positionIsClear(x: number, y: number): boolean {
  const ax = Math.abs(x - 0.5);
  const ay = Math.abs(y - 0.5);
  const m = Math.max(ax, ay);
  if (m < CENTER_RADIUS) return m < CENTER_RADIUS - POSITION_MARGIN / 2;
  if (m < CENTER_RADIUS + POSITION_MARGIN) return false;
  return Math.abs(ax - ay) >= DIAGONAL_MARGIN;
}

/** Grid positions closer than this to a third line (x or y = ⅓ or ⅔) are never sampled. */
export const GRID_MARGIN = 0.05;

const gridIndex = (v: number): number => (v < 1 / 3 ? 0 : v < 2 / 3 ? 1 : 2);

/** Cell of a point on the 3×3 grid of the rich world: "top left", "top", …, "center", …, "bottom right". */
export function gridPositionOf(x: number, y: number): PositionName {
  return GRID_POSITIONS[gridIndex(y) * 3 + gridIndex(x)]!;
}

/** Whether (x, y) is clearly inside its grid cell (at least `GRID_MARGIN` from every third line). */
export function gridPositionIsClear(x: number, y: number): boolean {
  for (const v of [x, y]) if (Math.abs(v - 1 / 3) < GRID_MARGIN || Math.abs(v - 2 / 3) < GRID_MARGIN) return false;
  return true;
}

const round4 = (v: number): number => Math.round(v * 10000) / 10000;

function samplePoint(rng: Rng, position: PositionName, bound: number): [number, number] | null {
  const lo = bound + BORDER_MARGIN;
  const hi = 1 - lo;
  for (let t = 0; t < 30; t++) {
    let x: number;
    let y: number;
    const edge = 0.5 - CENTER_RADIUS - POSITION_MARGIN; // outer regions: |x−½| or |y−½| ≥ 0.16
    if (position === 'center') {
      x = rng.uniform(0.5 - CENTER_RADIUS, 0.5 + CENTER_RADIUS);
      y = rng.uniform(0.5 - CENTER_RADIUS, 0.5 + CENTER_RADIUS);
    } else if (position === 'left' || position === 'right') {
      x = rng.uniform(lo, edge);
      if (position === 'right') x = 1 - x;
      y = rng.uniform(lo, hi);
    } else {
      y = rng.uniform(lo, edge);
      if (position === 'bottom') y = 1 - y;
      x = rng.uniform(lo, hi);
    }
    x = round4(x);
    y = round4(y);
    if (x < lo || x > hi || y < lo || y > hi) continue;
    if (positionOf(x, y) === position && positionIsClear(x, y)) return [x, y];
  }
  return null;
}

/** A grid cell's centre coordinate range along one axis (cell index 0, 1, 2), within [lo, hi]. */
function gridRange(cell: number, lo: number, hi: number): [number, number] {
  const a = cell === 0 ? lo : cell === 1 ? 1 / 3 + GRID_MARGIN : 2 / 3 + GRID_MARGIN;
  const b = cell === 0 ? 1 / 3 - GRID_MARGIN : cell === 1 ? 2 / 3 - GRID_MARGIN : hi;
  return [Math.max(a, lo), Math.min(b, hi)];
}

function sampleGridPoint(rng: Rng, position: PositionName, bound: number): [number, number] | null {
  const lo = bound + BORDER_MARGIN;
  const hi = 1 - lo;
  const cell = GRID_POSITIONS.indexOf(position);
  const [xa, xb] = gridRange(cell % 3, lo, hi);
  const [ya, yb] = gridRange(Math.floor(cell / 3), lo, hi);
  if (xa > xb || ya > yb) return null;
  for (let t = 0; t < 30; t++) {
    const x = round4(rng.uniform(xa, xb));
    const y = round4(rng.uniform(ya, yb));
    if (x < lo || x > hi || y < lo || y > hi) continue;
    if (gridPositionOf(x, y) === position && gridPositionIsClear(x, y)) return [x, y];
  }
  return null;
}

export const CONCEPTS = ['standard', 'rich'] as const;
/** The concept set of a shapes world: `standard` (the default) or `rich`. */
export type ConceptsName = (typeof CONCEPTS)[number];

/** What a concept set draws scenes from (shapes and sizes are the same in both). */
export interface ConceptSet {
  readonly name: ConceptsName;
  readonly colors: readonly ColorName[];
  readonly positions: readonly PositionName[];
  readonly maxObjects: number;
  /** The position region of a point (unambiguous for every sampled centre). */
  positionOf(x: number, y: number): PositionName;
}

/** 1–4 objects, 8 colours, 5 position regions (left, right, top, bottom, center). */
export const STANDARD_CONCEPTS: ConceptSet = { name: 'standard', colors: COLORS, positions: POSITIONS, maxObjects: MAX_OBJECTS, positionOf };
/** 1–6 objects, 12 colours, the 9 cells of a 3×3 grid. */
export const RICH_CONCEPTS: ConceptSet = { name: 'rich', colors: RICH_COLORS, positions: GRID_POSITIONS, maxObjects: RICH_MAX_OBJECTS, positionOf: gridPositionOf };

/** The concept set of a name (undefined: standard); a RangeError for an unknown name. */
export function conceptSet(name: ConceptsName | undefined = 'standard'): ConceptSet {
  if (name === 'standard') return STANDARD_CONCEPTS;
  if (name === 'rich') return RICH_CONCEPTS;
  throw new RangeError(`shapes world: concepts must be 'standard' or 'rich', got ${JSON.stringify(name)}`);
}

/**
 * A random scene: 1–4 objects (uniform; 1–6 in the rich world), each with a uniform shape,
 * colour, size and position region; centres are placed by rejection sampling so that no two
 * shapes overlap (bounding circles at least 0.03 apart) and every position is unambiguous.
 */
export function sampleScene(rng: Rng, concepts: ConceptsName = 'standard'): Scene {
  const c = conceptSet(concepts);
  const point = c.name === 'rich' ? sampleGridPoint : samplePoint;
  const n = rng.int(MIN_OBJECTS, c.maxObjects + 1);
  for (;;) {
    // on a failed placement, start over with the same number of objects (keeps n uniform)
    const objects: SceneObject[] = [];
    let failed = false;
    for (let k = 0; k < n && !failed; k++) {
      const shape = rng.choice(SHAPES);
      const color = rng.choice(c.colors);
      const size = rng.choice(SIZES);
      const [rlo, rhi] = SIZE_RADIUS[size];
      const r = round4(rng.uniform(rlo, rhi));
      const bound = BOUND_FACTOR * r;
      let placed = false;
      for (let attempt = 0; attempt < 20 && !placed; attempt++) {
        const position = rng.choice(c.positions);
        const p = point(rng, position, bound);
        if (!p) continue;
        const [x, y] = p;
        const clash = objects.some((o) => Math.hypot(o.x - x, o.y - y) < BOUND_FACTOR * (o.r + r) + MIN_GAP);
        if (clash) continue;
        objects.push({ shape, color, size, x, y, r, position });
        placed = true;
      }
      if (!placed) failed = true;
    }
    if (failed) continue;
    return { objects, background: sampleBackground(rng) };
  }
}

function sampleBackground(rng: Rng): SceneBackground {
  const gray = rng.int(212, 246);
  const color: Rgb = [0, 0, 0];
  for (let c = 0; c < 3; c++) color[c] = Math.min(252, Math.max(200, gray + rng.int(-10, 11)));
  const gradient: Rgb = [0, 0, 0];
  const g = rng.int(-18, 19);
  for (let c = 0; c < 3; c++) gradient[c] = g + rng.int(-4, 5);
  const dirs: [number, number][] = [[0, 1], [1, 0], [1, 1], [1, -1]];
  const direction = rng.choice(dirs);
  return {
    color,
    gradient,
    direction: [direction[0], direction[1]],
    noise: rng.int(2, 9),
    noiseSeed: rng.nextU32(),
  };
}

// ---------------------------------------------------------------------------------------
// Words

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'] as const;

export function numberWord(n: number): string {
  const w = NUMBER_WORDS[n];
  if (w === undefined) throw new RangeError(`numberWord: ${n} out of range`);
  return w;
}

export function plural(shape: ShapeName | 'shape' | 'object'): string {
  return shape === 'cross' ? 'crosses' : `${shape}s`;
}

/** "a" or "an" for the following word. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

export const POSITION_PHRASE: Record<PositionName, string> = {
  left: 'on the left',
  right: 'on the right',
  top: 'at the top',
  bottom: 'at the bottom',
  center: 'in the center',
  'top left': 'at the top left',
  'top right': 'at the top right',
  'bottom left': 'at the bottom left',
  'bottom right': 'at the bottom right',
};

/** A partial description of an object: the attributes a phrase mentions. */
export interface Attrs {
  shape?: ShapeName;
  color?: ColorName;
  size?: SizeName;
  position?: PositionName;
}

export function matches(o: SceneObject, a: Attrs): boolean {
  return (
    (a.shape === undefined || o.shape === a.shape) &&
    (a.color === undefined || o.color === a.color) &&
    (a.size === undefined || o.size === a.size) &&
    (a.position === undefined || o.position === a.position)
  );
}

export function countMatching(scene: Scene, a: Attrs): number {
  let n = 0;
  for (const o of scene.objects) if (matches(o, a)) n++;
  return n;
}

/**
 * The words of a description without article/number: "[size] [color] (shape|noun)[s] [position]".
 * `noun` is used when the shape is not mentioned ("shape" by default).
 */
export function describe(a: Attrs, count: number, noun: 'shape' | 'object' = 'shape', withPosition = true): string {
  const words: string[] = [];
  if (a.size) words.push(a.size);
  if (a.color) words.push(a.color);
  const head = a.shape ?? noun;
  words.push(count === 1 ? head : plural(head));
  if (withPosition && a.position) words.push(POSITION_PHRASE[a.position]);
  return words.join(' ');
}

/** "a red circle", "two small squares", "an orange shape on the left". */
export function quantified(a: Attrs, count: number, noun: 'shape' | 'object' = 'shape'): string {
  const d = describe(a, count, noun);
  return count === 1 ? `${article(d)} ${d}` : `${numberWord(count)} ${d}`;
}

/** Join phrases as "a", "a and b", "a, b and c". */
export function joinAnd(parts: readonly string[]): string {
  if (parts.length <= 1) return parts[0] ?? '';
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/** Pick the listed attributes of an object. */
export function attrsOf(o: SceneObject, keys: readonly (keyof Attrs)[]): Attrs {
  const a: Attrs = {};
  for (const k of keys) (a as Record<string, string>)[k] = o[k];
  return a;
}
