/**
 * Plain SVG charts (no dependencies): grouped bar charts for task metrics per model and line
 * charts for training curves. Output is deterministic text that renders in browsers and in
 * librsvg (sharp), which the tests use to check the pixels.
 */

export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Axis numbers: 3 significant digits or so; small magnitudes (a learning rate) in exponent form rather than 0.00. */
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(2) : v.toExponential(1));

export interface BarChartOptions {
  title: string;
  /** Group labels along x (e.g. task metrics). */
  groups: string[];
  /** One series per model: values per group (null = missing). */
  series: { name: string; values: (number | null)[] }[];
  yLabel?: string;
  width?: number;
  height?: number;
  /** Y axis maximum (default: the largest value, rounded up). */
  yMax?: number;
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function barChartSvg(o: BarChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 360;
  const m = { l: 56, r: 16, t: 40, b: 64 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = o.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const yMax = o.yMax ?? niceMax(Math.max(0, ...all));
  const y = (v: number) => m.t + ph - (Math.max(0, Math.min(v, yMax)) / yMax) * ph;
  const gw = pw / Math.max(1, o.groups.length);
  const bw = (gw * 0.8) / Math.max(1, o.series.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    out.push(`<line x1="${m.l}" y1="${y(v).toFixed(1)}" x2="${W - m.r}" y2="${y(v).toFixed(1)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  if (o.yLabel) out.push(`<text x="14" y="${m.t + ph / 2}" transform="rotate(-90 14 ${m.t + ph / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.groups.forEach((g, gi) => {
    const gx = m.l + gi * gw + gw * 0.1;
    o.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const x = gx + si * bw;
      out.push(`<rect class="bar" data-series="${esc(s.name)}" data-group="${esc(g)}" x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw * 0.92).toFixed(1)}" height="${(m.t + ph - y(v)).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"/>`);
      out.push(`<text x="${(x + bw * 0.46).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
    });
    out.push(`<text x="${(m.l + gi * gw + gw / 2).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  out.push(`<line x1="${m.l}" y1="${m.t + ph}" x2="${W - m.r}" y2="${m.t + ph}" stroke="#333"/>`);
  legend(out, o.series.map((s) => s.name), m.l, H - 22);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function legend(out: string[], names: string[], x0: number, yPos: number): void {
  let x = x0;
  names.forEach((n, i) => {
    out.push(`<rect x="${x}" y="${yPos - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 16}" y="${yPos}">${esc(n)}</text>`);
    x += 28 + 7 * n.length;
  });
}

export interface LineChartOptions {
  title: string;
  /** One line per series: points (x, y). */
  series: { name: string; points: [number, number][] }[];
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Plot log10(y) (e.g. losses spanning decades). */
  logY?: boolean;
}

export function lineChartSvg(o: LineChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 360;
  const m = { l: 64, r: 16, t: 40, b: 64 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tr = (v: number) => (o.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const pts = o.series.flatMap((s) => s.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => tr(p[1]));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  if (yMax === yMin) {
    yMax += 0.5;
    yMin -= 0.5;
  }
  const X = (v: number) => m.l + ((v - xMin) / (xMax - xMin || 1)) * pw;
  const Y = (v: number) => m.t + ph - ((tr(v) - yMin) / (yMax - yMin)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const t = yMin + ((yMax - yMin) * i) / 5;
    const py = m.t + ph - (i / 5) * ph;
    out.push(`<line x1="${m.l}" y1="${py.toFixed(1)}" x2="${W - m.r}" y2="${py.toFixed(1)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.l - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${fmt(o.logY ? 10 ** t : t)}</text>`);
    const xv = xMin + ((xMax - xMin) * i) / 5;
    out.push(`<text x="${X(xv).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(xv)}</text>`);
  }
  if (o.xLabel) out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  if (o.yLabel) out.push(`<text x="14" y="${m.t + ph / 2}" transform="rotate(-90 14 ${m.t + ph / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, si) => {
    const p = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (p.length === 0) return;
    const d = p.map(([a, b], i) => `${i ? 'L' : 'M'}${X(a).toFixed(1)} ${Y(b).toFixed(1)}`).join(' ');
    out.push(`<path class="line" data-series="${esc(s.name)}" d="${d}" fill="none" stroke="${PALETTE[si % PALETTE.length]}" stroke-width="2"/>`);
  });
  out.push(`<line x1="${m.l}" y1="${m.t + ph}" x2="${W - m.r}" y2="${m.t + ph}" stroke="#333"/>`);
  legend(out, o.series.map((s) => s.name), m.l, H - 14);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Read a run's `metrics.jsonl` (one JSON object per line with a `step`) into series for `keys`. */
export function curvesFromJsonl(text: string, keys: string[], source = 'metrics.jsonl'): { name: string; points: [number, number][] }[] {
  const series = keys.map((k) => ({ name: k, points: [] as [number, number][] }));
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${source} line ${i + 1}: invalid JSON: ${(e as Error).message}`);
    }
    const step = Number(o.step ?? i);
    keys.forEach((k, j) => {
      const v = o[k];
      if (typeof v === 'number' && Number.isFinite(v)) series[j]!.points.push([step, v]);
    });
  });
  return series;
}

export interface HeatmapOptions {
  title: string;
  /** Row labels (top to bottom), e.g. experts. */
  rows: string[];
  /** Column labels (left to right), e.g. training steps; at most a dozen are printed. */
  cols: string[];
  /** values[r][c] in [0, max]; null = no data (drawn grey). */
  values: (number | null)[][];
  /** The value of the darkest cell (default: the largest value). */
  max?: number;
  xLabel?: string;
  /** What a cell's shade means (printed under the chart). */
  legend?: string;
  width?: number;
  height?: number;
}

/** A heatmap (white → dark blue), e.g. each expert's share of the assignments over training. */
export function heatmapSvg(o: HeatmapOptions): string {
  const W = o.width ?? 640, H = o.height ?? Math.max(160, 70 + 16 * o.rows.length);
  const left = 90, right = 16, top = 34, bottom = 44;
  const pw = W - left - right, ph = H - top - bottom;
  const cw = pw / Math.max(1, o.cols.length), rh = ph / Math.max(1, o.rows.length);
  const max = o.max ?? Math.max(1e-12, ...o.values.flat().filter((v): v is number => v !== null));
  const shade = (v: number) => {
    const t = Math.max(0, Math.min(1, v / max));
    const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
    return `rgb(${mix(255, 8)},${mix(255, 48)},${mix(255, 107)})`;
  };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(o.title)}</text>`,
  ];
  o.values.forEach((row, r) => {
    row.forEach((v, c) => {
      out.push(`<rect x="${(left + c * cw).toFixed(2)}" y="${(top + r * rh).toFixed(2)}" width="${(cw + 0.5).toFixed(2)}" height="${(rh + 0.5).toFixed(2)}" fill="${v === null ? '#dddddd' : shade(v)}"/>`);
    });
  });
  o.rows.forEach((label, r) => out.push(`<text x="${left - 6}" y="${(top + (r + 0.5) * rh + 4).toFixed(2)}" text-anchor="end">${esc(label)}</text>`));
  const every = Math.max(1, Math.ceil(o.cols.length / 12));
  o.cols.forEach((label, c) => {
    if (c % every === 0) out.push(`<text x="${(left + (c + 0.5) * cw).toFixed(2)}" y="${top + ph + 14}" text-anchor="middle">${esc(label)}</text>`);
  });
  if (o.xLabel) out.push(`<text x="${left + pw / 2}" y="${H - 16}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  if (o.legend) out.push(`<text x="${left + pw / 2}" y="${H - 4}" text-anchor="middle" fill="#555555">${esc(o.legend)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}
