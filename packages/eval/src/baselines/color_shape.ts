/**
 * `ColorShapeBaseline`: a non-learned reference model that really computes its scores from
 * pixels and words — colour statistics of the foreground, a shape's fill ratio, and the
 * colour/shape words of the text. It gives the harnesses a floor to compare trained models
 * against on easy-VQA-like, NLVR1 and shapes-world data, and lets the pipeline be tested end
 * to end without training anything.
 *
 * - VQA: answers of the question's kind (colour, shape, yes/no) scored by the image's
 *   dominant foreground colour (distance to named colours) and fill ratio (circle ≈ π/4,
 *   rectangle ≈ 1, triangle ≈ 1/2 of the foreground's bounding box).
 * - NLVR: "True" when every colour the sentence names is present in the image.
 * - Retrieval: image = histogram over named colours; text = the colours it names.
 */
import type { Batch } from '@vlmoe/data';
import type { ModelAdapter } from '../adapter.js';

export const NAMED_COLORS: Record<string, [number, number, number]> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [235, 215, 40],
  teal: [30, 150, 150],
  brown: [140, 90, 40],
  black: [20, 20, 20],
  gray: [128, 128, 128],
  grey: [128, 128, 128],
  orange: [245, 140, 30],
  purple: [140, 60, 170],
  white: [245, 245, 245],
};
const COLOR_NAMES = Object.keys(NAMED_COLORS);
const SHAPE_FILL: Record<string, number> = { circle: Math.PI / 4, rectangle: 1, square: 1, triangle: 0.5 };

/** Decoded statistics of one image: foreground mean colour, colour histogram, fill ratio. */
export function imageStats(images: Float32Array, k: number, size: number): { mean: [number, number, number]; hist: Float32Array; fill: number } {
  const plane = size * size;
  const base = k * 3 * plane;
  const px = (c: number, i: number) => (images[base + c * plane + i]! * 0.5 + 0.5) * 255;
  // background = the colour of the border pixels (median-ish: mean of the corners)
  const corners = [0, size - 1, plane - size, plane - 1];
  const bg = [0, 1, 2].map((c) => corners.reduce((s, i) => s + px(c, i), 0) / 4);
  const sum = [0, 0, 0];
  const hist = new Float32Array(COLOR_NAMES.length);
  let n = 0;
  let x0 = size;
  let y0 = size;
  let x1 = -1;
  let y1 = -1;
  for (let i = 0; i < plane; i++) {
    const r = px(0, i);
    const g = px(1, i);
    const b = px(2, i);
    if (Math.abs(r - bg[0]!) + Math.abs(g - bg[1]!) + Math.abs(b - bg[2]!) < 60) continue;
    n++;
    sum[0] += r;
    sum[1] += g;
    sum[2] += b;
    hist[nearestColor(r, g, b)]! += 1;
    const x = i % size;
    const y = (i / size) | 0;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (n > 0) for (let c = 0; c < hist.length; c++) hist[c]! /= n;
  const area = n > 0 ? (x1 - x0 + 1) * (y1 - y0 + 1) : 1;
  return { mean: n > 0 ? [sum[0]! / n, sum[1]! / n, sum[2]! / n] : (bg as [number, number, number]), hist, fill: n / area };
}

function nearestColor(r: number, g: number, b: number): number {
  let best = 0;
  let bd = Infinity;
  COLOR_NAMES.forEach((name, i) => {
    const [cr, cg, cb] = NAMED_COLORS[name]!;
    const d = (r - cr) ** 2 + (g - cg) ** 2 + (b - cb) ** 2;
    if (d < bd) {
      bd = d;
      best = i;
    }
  });
  return best;
}

export interface ColorShapeBaselineOptions {
  /** Id → token (e.g. `(id) => tokenizer.idToToken(id)`). */
  idToToken: (id: number) => string;
  /** The VQA answer vocabulary (label order). */
  answers?: readonly string[];
  name?: string;
}

export function colorShapeBaseline(o: ColorShapeBaselineOptions): ModelAdapter {
  const words = (batch: Batch, k: number): string[] => {
    const L = batch.textShape[1];
    const out: string[] = [];
    for (let j = 0; j < L; j++) if (batch.textMask[k * L + j]) out.push(o.idToToken(batch.textIds[k * L + j]!));
    return out;
  };
  const size = (batch: Batch) => batch.imageShape[3];
  const colorScore = (mean: [number, number, number], name: string) => {
    const c = NAMED_COLORS[name];
    if (!c) return -Infinity;
    return -Math.sqrt((mean[0] - c[0]) ** 2 + (mean[1] - c[1]) ** 2 + (mean[2] - c[2]) ** 2) / 255;
  };
  const bestColor = (mean: [number, number, number]) => COLOR_NAMES.reduce((a, b) => (colorScore(mean, b) > colorScore(mean, a) ? b : a));
  const bestShape = (fill: number) => Object.keys(SHAPE_FILL).reduce((a, b) => (Math.abs(fill - SHAPE_FILL[b]!) < Math.abs(fill - SHAPE_FILL[a]!) ? b : a));
  return {
    name: o.name ?? 'color-shape baseline',
    params: { total: 0, activePerToken: 0 },
    vqaLogits(batch) {
      const answers = o.answers;
      if (!answers) throw new Error('colorShapeBaseline: VQA needs the answer vocabulary (answers)');
      const A = answers.length;
      const out = new Float32Array(batch.size * A);
      for (let k = 0; k < batch.size; k++) {
        const w = words(batch, k);
        const st = imageStats(batch.images, k, size(batch));
        const color = bestColor(st.mean);
        const shape = bestShape(st.fill);
        const asksColor = w.includes('color') || w.includes('colour');
        const asksShape = w.includes('shape') && !w.some((t) => t in NAMED_COLORS && w.indexOf('shape') < w.indexOf(t)) && (w[0] === 'what' || w.includes('what'));
        let yes: boolean;
        const named = w.filter((t) => t in NAMED_COLORS || t in SHAPE_FILL);
        yes = named.every((t) => (t in NAMED_COLORS ? t === color : t === shape));
        if (w.includes('not')) yes = !yes;
        for (let a = 0; a < A; a++) {
          const ans = answers[a]!;
          let s: number;
          if (asksColor) s = ans in NAMED_COLORS ? 1 + colorScore(st.mean, ans) : -10;
          else if (asksShape || (w.includes('what') && !asksColor)) s = ans in SHAPE_FILL ? 1 - Math.abs(st.fill - SHAPE_FILL[ans]!) : -10;
          else s = ans === 'yes' ? (yes ? 1 : 0) : ans === 'no' ? (yes ? 0 : 1) : -10;
          out[k * A + a] = s;
        }
      }
      return out;
    },
    nlvrLogits(batch) {
      const out = new Float32Array(batch.size);
      for (let k = 0; k < batch.size; k++) {
        const mentioned = words(batch, k).filter((t) => t in NAMED_COLORS);
        const st = imageStats(batch.images, k, size(batch));
        const present = (c: string) => st.hist[COLOR_NAMES.indexOf(c)]! > 0.02;
        out[k] = mentioned.length > 0 && mentioned.every(present) ? 1 : -1;
      }
      return out;
    },
    encodeImages(batch) {
      const D = COLOR_NAMES.length;
      const out = new Float32Array(batch.size * D);
      for (let k = 0; k < batch.size; k++) out.set(imageStats(batch.images, k, size(batch)).hist, k * D);
      return out;
    },
    encodeTexts(batch) {
      const D = COLOR_NAMES.length;
      const out = new Float32Array(batch.size * D);
      for (let k = 0; k < batch.size; k++) for (const t of words(batch, k)) if (t in NAMED_COLORS) out[k * D + COLOR_NAMES.indexOf(t)] = 1;
      return out;
    },
  };
}
