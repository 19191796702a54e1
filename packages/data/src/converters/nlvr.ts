/**
 * NLVR (v1) and NLVR2 → NLVR2-layout Arrow files (`image_0`, `image_1`, `questions`,
 * `answers` "True"/"False", `identifier`).
 *
 * NLVR2: JSON lines with `identifier` (`train-10171-0-0`), `sentence`, `label`, and for
 * train a `directory`; the pair's images are `<identifier minus its last -k>-img0.png` /
 * `-img1.png`, found anywhere under the image folder. Statements about the same pair are
 * grouped into one row, as ViLT does.
 *
 * NLVR1: JSON lines with `sentence`, `label` (`true`/`false`), `identifier` (`3776-0`) and,
 * except in the hidden split, `directory`; each example has six rendered permutations
 * `<split>-<identifier>-<k>.png` (k = 0..5) of the same three-box scene. A row pairs two of
 * them (`permutations`, default [0, 1]) so NLVR1 trains and evaluates with the same
 * two-image model path as NLVR2; the label holds for every permutation.
 */
import { join } from 'node:path';
import { ConvertSession, field, indexFilesByName, readJsonLines, withWriter, type ConvertOptions, type ConvertReport } from './common.js';

function normLabel(v: unknown, where: string): 'True' | 'False' {
  const s = String(v).toLowerCase();
  if (s === 'true') return 'True';
  if (s === 'false') return 'False';
  throw new Error(`${where}: label must be true or false, got ${JSON.stringify(v)}`);
}

export interface Nlvr1Input {
  /** `<split>.json` (JSON lines). */
  json: string;
  /** The split's `images` folder (holding numbered subfolders). */
  imageDir: string;
  /** Split name used in image file names (default: the JSON file's stem, e.g. `test`). */
  split?: string;
  /** Which two of the six permutations form the pair (default [0, 1]). */
  permutations?: [number, number];
}

export async function convertNlvr1(input: Nlvr1Input, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const lines = readJsonLines(input.json);
  const split = input.split ?? (input.json.split('/').pop() ?? '').replace(/\.json$/, '');
  const [pa, pb] = input.permutations ?? [0, 1];
  for (const p of [pa, pb]) if (!(Number.isInteger(p) && p >= 0 && p <= 5)) throw new RangeError(`NLVR1 permutations must be in 0..5, got ${p}`);
  let byName: Map<string, string> | null = null;
  const find = (identifier: string, k: number, dir: string | undefined): string => {
    const name = `${split}-${identifier}-${k}.png`;
    if (dir !== undefined) return join(input.imageDir, dir, name);
    byName ??= indexFilesByName(input.imageDir, (n) => n.endsWith('.png'));
    return byName.get(name) ?? join(input.imageDir, name);
  };
  const s = new ConvertSession(out, `nlvr1 ${split}`, lines.length, options);
  await withWriter(out, 'nlvr2', options, async (w) => {
    for (let i = 0; i < lines.length; i++) {
      const ex = lines[i];
      const where = `${input.json} line ${i + 1}`;
      const sentence = field<string>(ex, 'sentence', 'string', where);
      const identifier = field<string>(ex, 'identifier', 'string', where);
      const label = normLabel((ex as { label?: unknown }).label, where);
      const dirRaw = (ex as { directory?: unknown }).directory;
      const dir = dirRaw === undefined ? undefined : String(dirRaw);
      s.progress.tick();
      const a = await s.image(find(identifier, pa, dir), where);
      if (!a) continue;
      const b = await s.image(find(identifier, pb, dir), where);
      if (!b) continue;
      w.write({ image_0: a, image_1: b, questions: [sentence], answers: [label], identifier: `${split}-${identifier}` });
      s.wrote(2, 1);
    }
  });
  return s.finish();
}

export interface Nlvr2Input {
  /** `<split>.json` (JSON lines). */
  json: string;
  /** Folder holding the split's images (searched recursively by file name). */
  imageDir: string;
}

export async function convertNlvr2(input: Nlvr2Input, out: string, options: ConvertOptions = {}): Promise<ConvertReport> {
  const lines = readJsonLines(input.json);
  const pairs = new Map<string, { questions: string[]; answers: string[] }>();
  lines.forEach((ex, i) => {
    const where = `${input.json} line ${i + 1}`;
    const identifier = field<string>(ex, 'identifier', 'string', where);
    const parts = identifier.split('-');
    if (parts.length < 2) throw new Error(`${where}: identifier '${identifier}' is not of the form <split>-<n>-<m>-<k>`);
    const prefix = parts.slice(0, -1).join('-');
    let p = pairs.get(prefix);
    if (!p) pairs.set(prefix, (p = { questions: [], answers: [] }));
    p.questions.push(field<string>(ex, 'sentence', 'string', where));
    p.answers.push(normLabel((ex as { label?: unknown }).label, where));
  });
  const byName = indexFilesByName(input.imageDir, (n) => /\.(png|jpe?g)$/i.test(n));
  const path = (prefix: string, k: number) => byName.get(`${prefix}-img${k}.png`) ?? byName.get(`${prefix}-img${k}.jpg`) ?? join(input.imageDir, `${prefix}-img${k}.png`);
  const s = new ConvertSession(out, 'nlvr2', pairs.size, options);
  await withWriter(out, 'nlvr2', options, async (w) => {
    for (const [prefix, p] of pairs) {
      s.progress.tick();
      const where = `${input.json} pair ${prefix}`;
      const a = await s.image(path(prefix, 0), where);
      if (!a) continue;
      const b = await s.image(path(prefix, 1), where);
      if (!b) continue;
      w.write({ image_0: a, image_1: b, questions: p.questions, answers: p.answers, identifier: prefix });
      s.wrote(2, p.questions.length);
    }
  });
  return s.finish();
}
