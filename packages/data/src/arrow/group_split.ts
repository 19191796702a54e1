/**
 * Carve a held-out split from a dataset file, whole groups at a time (scikit-learn's
 * `GroupShuffleSplit`, Hugging Face's `train_test_split` with a group column).
 *
 * A group is what must not straddle the two files, or the held-out score would measure
 * memorisation: an image for captions and VQA (`image_id`; a VQA row already holds all of an
 * image's questions); for NLVR the identifier less its last `-` part — NLVR2's set (rows
 * `<split>-<set>-<pair>`: the statements of a set are written about all of its image pairs),
 * NLVR1's statement (rows `<split>-<statement>-<image>`: a statement is written about several
 * images). The held-out groups are the
 * `round(fraction × groups)` whose hash of (seed, group key) is smallest, so the split is a
 * function of the file's contents and the seed alone: the same on every machine, and stable
 * when rows are reordered. Rows keep their order and values (the `split` column too: a row
 * says where it came from). VQA sidecars follow their rows: `<stem>_annotations.json` is split
 * by question id, `<stem>_answers.json` (the label vocabulary) is copied beside both outputs
 * (a side with no annotated question gets no annotations file). Each output file appears
 * atomically; a failure leaves no temporary file.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { readJsonFile, writeFileAtomicSync } from '@vlmoe/util';
import { ArrowReader } from './reader.js';
import { ArrowWriter } from './writer.js';
import type { DatasetKind } from './schemas.js';
import { mixSeed } from '../rng.js';

export interface GroupSplitOptions {
  /** Share of the groups held out, in (0, 1). */
  fraction: number;
  /** Which groups are held out (default 0). */
  seed?: number;
}

export interface GroupSplitReport {
  kind: DatasetKind;
  /** What a group is in this kind (for reports). */
  groupBy: string;
  groups: { rest: number; held: number };
  rows: { rest: number; held: number };
  /** Sidecar files written beside the outputs. */
  sidecars: string[];
}

/**
 * What ties rows together, by kind: rows sharing any of these keys are one group (the connected
 * components of the rows and their keys).
 */
const LINKS: Record<DatasetKind, { what: string; keys: (value: (col: string) => unknown) => string[] }> = {
  captions: { what: 'image (image_id)', keys: (v) => [`image ${String(v('image_id'))}`] },
  vqa: { what: 'image (image_id)', keys: (v) => [`image ${String(v('image_id'))}`] },
  // NLVR2 rows are `<split>-<set>-<pair>` (a set's statements are written about its pairs), NLVR1
  // rows `<split>-<statement>-<image>`; and one sentence may recur under another id
  nlvr2: {
    what: 'statement and scene (rows sharing a statement text, or an identifier less its last -part, are one group)',
    keys: (v) => [`id ${String(v('identifier')).replace(/-[^-]*$/, '')}`, ...(v('questions') as string[]).map((q) => `statement ${q}`)],
  },
};

/** Each row's group (the least key of its connected component), from each row's link keys. */
export function connectedGroups(rowKeys: readonly (readonly string[])[]): string[] {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let root = k;
    while (parent.get(root) !== root) root = parent.get(root)!;
    for (let x = k; x !== root; ) {
      const next = parent.get(x)!;
      parent.set(x, root);
      x = next;
    }
    return root;
  };
  for (const keys of rowKeys) {
    if (keys.length === 0) throw new Error('a row with no group key');
    for (const k of keys) if (!parent.has(k)) parent.set(k, k);
    for (const k of keys.slice(1)) {
      const [a, b] = [find(keys[0]!), find(k)];
      if (a < b) parent.set(b, a); // the least key stays the root
      else if (b < a) parent.set(a, b);
    }
  }
  return rowKeys.map((keys) => find(keys[0]!));
}

/** FNV-1a (32-bit) of a string's UTF-16 code units: the group key as an integer for mixSeed. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Which group keys are held out: the round(fraction × n) smallest hashes (ties by key). */
export function heldOutGroups(keys: Iterable<string>, fraction: number, seed = 0): Set<string> {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`the held-out fraction must be in (0, 1), got ${fraction}`);
  const unique = keys instanceof Set ? [...keys] : [...new Set(keys)];
  const ranked = unique.map((k) => ({ k, h: mixSeed(seed, fnv1a(k), k.length) })).sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return new Set(ranked.slice(0, Math.round(fraction * unique.length)).map((r) => r.k));
}

/** The sidecar of a dataset file (`<stem>_<suffix>`). */
const sidecar = (file: string, suffix: string) => file.replace(/\.arrows?$/, '') + `_${suffix}`;

/**
 * Split `input` (a captions, vqa or nlvr2 file) into `rest` and `held`, whole groups at a time;
 * `held` gets round(fraction × groups) of them.
 */
export async function groupSplit(input: string, out: { rest: string; held: string }, o: GroupSplitOptions): Promise<GroupSplitReport> {
  const files = [input, out.rest, out.held].map((f) => resolve(f));
  if (new Set(files).size !== 3) throw new Error(`split ${input}: the input and the two outputs must be three different files`);
  const seed = o.seed ?? 0;
  const reader = await ArrowReader.open(input);
  let kind: DatasetKind;
  const links: string[][] = [];
  try {
    if (!reader.kind) throw new Error(`${input}: not a captions, vqa or nlvr2 file (columns: ${reader.schema.fields.map((f) => f.name).join(', ')})`);
    kind = reader.kind;
    const KEY_COLUMNS = { captions: ['image_id'], vqa: ['image_id'], nlvr2: ['identifier', 'questions'] }[kind];
    for await (const b of reader.batches()) {
      for (let i = 0; i < b.numRows; i++) {
        // a row without its group key cannot be placed: name it
        const values = new Map(KEY_COLUMNS.map((c) => [c, b.value(c, i)]));
        for (const [c, v] of values) if (v === null) throw new Error(`${b.where(i, c)}: null, so the row belongs to no group`);
        links.push(LINKS[kind].keys((c) => values.get(c)));
      }
    }
  } finally {
    await reader.close();
  }
  if (links.length === 0) throw new Error(`${input}: no rows to split`);
  const keys = connectedGroups(links);
  const unique = new Set(keys);
  const held = heldOutGroups(unique, o.fraction, seed);
  const groups = unique.size;
  if (held.size === 0) throw new Error(`${input}: a fraction of ${o.fraction} of ${groups} group(s) holds none out`);
  if (held.size === groups) throw new Error(`${input}: a fraction of ${o.fraction} of ${groups} group(s) holds every one out`);

  const rows = { rest: 0, held: 0 };
  const questionIds = { rest: [] as number[], held: [] as number[] };
  const sidecars: string[] = [];
  const again = await ArrowReader.open(input, { kind });
  const writers: Partial<Record<'rest' | 'held', ArrowWriter<DatasetKind>>> = {};
  try {
    writers.rest = new ArrowWriter(out.rest, kind);
    writers.held = new ArrowWriter(out.held, kind);
    let r = 0;
    for await (const b of again.batches()) {
      for (let i = 0; i < b.numRows; i++, r++) {
        const side = held.has(keys[r]!) ? 'held' : 'rest';
        const row = b.row(i);
        writers[side]!.write(row);
        rows[side]++;
        if (kind === 'vqa') questionIds[side].push(...((row as { question_id: number[] | null }).question_id ?? []));
      }
    }
    if (r !== keys.length) throw new Error(`${input}: changed while it was split (${keys.length} rows, then ${r})`);
    // a VQA file's sidecars, each beside its output (an output's old sidecar without a counterpart now is removed)
    if (kind === 'vqa') {
      const annotations = sidecar(input, 'annotations.json');
      const answers = sidecar(input, 'answers.json');
      const all = existsSync(annotations) ? (readJsonFile(annotations) as Record<string, unknown>) : null;
      for (const side of ['rest', 'held'] as const) {
        const part: Record<string, unknown> = {};
        if (all) for (const q of questionIds[side]) if (String(q) in all) part[String(q)] = all[String(q)];
        const annFile = sidecar(out[side], 'annotations.json');
        if (Object.keys(part).length > 0) {
          writeFileAtomicSync(annFile, JSON.stringify(part) + '\n', { mkdir: true });
          sidecars.push(annFile);
        } else rmSync(annFile, { force: true });
        const ansFile = sidecar(out[side], 'answers.json');
        if (existsSync(answers)) {
          writeFileAtomicSync(ansFile, readFileSync(answers), { mkdir: true });
          sidecars.push(ansFile);
        } else rmSync(ansFile, { force: true });
      }
    }
    await writers.rest.close();
    await writers.held.close();
  } catch (e) {
    await writers.rest?.abort();
    await writers.held?.abort();
    throw e;
  } finally {
    await again.close();
  }
  return { kind, groupBy: LINKS[kind].what, groups: { rest: groups - held.size, held: held.size }, rows, sidecars };
}
