/**
 * Rendering of shapes-world scenes.
 *
 * `rasterize` draws a scene into a raw RGB buffer with a small JS rasteriser: a vertical,
 * horizontal or diagonal background gradient, every shape as an exact signed distance
 * function with analytic anti-aliasing (coverage = clamp(½ − distance in pixels)), and
 * per-pixel uniform noise over the whole image from an integer hash. It only uses IEEE
 * arithmetic (+ − × ÷ √, no transcendental functions at draw time), so the pixels are
 * bit-identical on every machine. `encodePng` turns them into PNG bytes with the small
 * deterministic encoder of `png.ts` (no zlib build involved), so the files are too.
 */
import { encodePngRgb } from './png.js';
import { PALETTE, type Scene, type SceneObject, type ShapeName } from './scene.js';

/** Default image side in pixels (the model trains at low resolution on CPU). */
export const DEFAULT_IMAGE_SIZE = 64;

// Shape geometry, in units of the nominal radius r (every shape fits in 1.2·r).
const SQUARE_HALF = 0.82;
const DIAMOND_HALF_DIAGONAL = 1.1;
const TRIANGLE_RADIUS = 1.15;
const STAR_OUTER = 1.2;
const STAR_INNER = 0.5;
const CROSS_ARM = 1.0;
const CROSS_HALF_WIDTH = 0.36;

const SQRT1_2 = Math.sqrt(0.5);
const SQRT3_2 = Math.sqrt(3) / 2;

/** Unit polygon vertices (x, y interleaved; y down), rounded so that they do not depend on libm. */
const q9 = (v: number): number => Math.round(v * 1e9) / 1e9;
const TRIANGLE_UNIT = [0, -1, SQRT3_2, 0.5, -SQRT3_2, 0.5].map((v) => v * TRIANGLE_RADIUS);
const STAR_UNIT: number[] = [];
for (let k = 0; k < 10; k++) {
  const a = -Math.PI / 2 + (k * Math.PI) / 5;
  const rad = k % 2 === 0 ? STAR_OUTER : STAR_INNER;
  STAR_UNIT.push(q9(Math.cos(a)) * rad, q9(Math.sin(a)) * rad);
}

function sdBox(px: number, py: number, bx: number, by: number): number {
  const qx = Math.abs(px) - bx;
  const qy = Math.abs(py) - by;
  const ox = qx > 0 ? qx : 0;
  const oy = qy > 0 ? qy : 0;
  const inside = Math.max(qx, qy);
  return Math.sqrt(ox * ox + oy * oy) + (inside < 0 ? inside : 0);
}

/** Exact signed distance to a closed polygon (vertices interleaved x, y). */
function sdPolygon(px: number, py: number, v: Float64Array): number {
  const n = v.length / 2;
  let dx = px - v[0]!;
  let dy = py - v[1]!;
  let d = dx * dx + dy * dy;
  let s = 1;
  for (let i = 0, j = n - 1; i < n; j = i, i++) {
    const vix = v[2 * i]!;
    const viy = v[2 * i + 1]!;
    const vjx = v[2 * j]!;
    const vjy = v[2 * j + 1]!;
    const ex = vjx - vix;
    const ey = vjy - viy;
    const wx = px - vix;
    const wy = py - viy;
    let t = (wx * ex + wy * ey) / (ex * ex + ey * ey);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    dx = wx - ex * t;
    dy = wy - ey * t;
    const dd = dx * dx + dy * dy;
    if (dd < d) d = dd;
    const c1 = py >= viy;
    const c2 = py < vjy;
    const c3 = ex * wy > ey * wx;
    if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
  }
  return s * Math.sqrt(d);
}

function scaled(unit: readonly number[], r: number): Float64Array {
  const out = new Float64Array(unit.length);
  for (let i = 0; i < unit.length; i++) out[i] = unit[i]! * r;
  return out;
}

/** Signed distance (pixels) from a point relative to the shape centre; R = nominal radius in pixels. */
function shapeDistance(shape: ShapeName, px: number, py: number, R: number, poly: Float64Array | null): number {
  switch (shape) {
    case 'circle':
      return Math.sqrt(px * px + py * py) - R;
    case 'square':
      return sdBox(px, py, SQUARE_HALF * R, SQUARE_HALF * R);
    case 'diamond': {
      const h = DIAMOND_HALF_DIAGONAL * SQRT1_2 * R;
      return sdBox((px + py) * SQRT1_2, (px - py) * SQRT1_2, h, h);
    }
    case 'cross':
      return Math.min(
        sdBox(px, py, CROSS_ARM * R, CROSS_HALF_WIDTH * R),
        sdBox(px, py, CROSS_HALF_WIDTH * R, CROSS_ARM * R),
      );
    case 'triangle':
    case 'star':
      return sdPolygon(px, py, poly!);
  }
}

/** 32-bit integer hash (lowbias32). */
function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function drawObject(buf: Float64Array, size: number, o: SceneObject): void {
  const R = o.r * size;
  const cx = o.x * size;
  const cy = o.y * size;
  const ext = 1.2 * R + 1;
  const x0 = Math.max(0, Math.floor(cx - ext));
  const x1 = Math.min(size - 1, Math.ceil(cx + ext));
  const y0 = Math.max(0, Math.floor(cy - ext));
  const y1 = Math.min(size - 1, Math.ceil(cy + ext));
  const poly = o.shape === 'triangle' ? scaled(TRIANGLE_UNIT, R) : o.shape === 'star' ? scaled(STAR_UNIT, R) : null;
  const [cr, cg, cb] = PALETTE[o.color];
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5 - cx;
      const d = shapeDistance(o.shape, px, py, R, poly);
      let cov = 0.5 - d;
      if (cov <= 0) continue;
      if (cov > 1) cov = 1;
      const i = (y * size + x) * 3;
      buf[i] = buf[i]! + (cr - buf[i]!) * cov;
      buf[i + 1] = buf[i + 1]! + (cg - buf[i + 1]!) * cov;
      buf[i + 2] = buf[i + 2]! + (cb - buf[i + 2]!) * cov;
    }
  }
}

/** Draw a scene into a raw RGB buffer (`size × size × 3`, row-major, 8 bits per channel). */
export function rasterize(scene: Scene, size: number = DEFAULT_IMAGE_SIZE): Uint8Array {
  if (!Number.isInteger(size) || size < 8 || size > 4096) throw new RangeError(`rasterize: size must be an integer in [8, 4096], got ${size}`);
  const bg = scene.background;
  const buf = new Float64Array(size * size * 3);
  const [dxr, dyr] = bg.direction;
  const norm = Math.abs(dxr) + Math.abs(dyr) || 1;
  for (let y = 0; y < size; y++) {
    const v = (y + 0.5) / size - 0.5;
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5) / size - 0.5;
      const t = (dxr * u + dyr * v) / norm; // in [-0.5, 0.5]
      const i = (y * size + x) * 3;
      buf[i] = bg.color[0] + bg.gradient[0] * t;
      buf[i + 1] = bg.color[1] + bg.gradient[1] * t;
      buf[i + 2] = bg.color[2] + bg.gradient[2] * t;
    }
  }
  for (const o of scene.objects) drawObject(buf, size, o);
  const out = new Uint8Array(size * size * 3);
  const amp = bg.noise;
  const seed = bg.noiseSeed >>> 0;
  for (let i = 0; i < out.length; i++) {
    const h = hash32((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0);
    const n = (h / 4294967296) * 2 - 1; // [-1, 1)
    const val = Math.round(buf[i]! + amp * n);
    out[i] = val < 0 ? 0 : val > 255 ? 255 : val;
  }
  return out;
}

/** Encode a raw RGB buffer (`size × size × 3`) as PNG; pure JS and byte-deterministic. */
export function encodePng(rgb: Uint8Array, size: number): Uint8Array {
  return encodePngRgb(rgb, size, size);
}

/** Render a scene to PNG bytes (`size × size` RGB). Synchronous work; async for API symmetry. */
export async function renderScene(scene: Scene, size: number = DEFAULT_IMAGE_SIZE): Promise<Uint8Array> {
  return renderSceneSync(scene, size);
}

/** Render a scene to PNG bytes (`size × size` RGB), synchronously. */
export function renderSceneSync(scene: Scene, size: number = DEFAULT_IMAGE_SIZE): Uint8Array {
  return encodePng(rasterize(scene, size), size);
}
