/**
 * JSON files and JSON configs, checked strictly: the one reader and the one checker that
 * every config surface above this package uses (the engine's DeepSpeed keys, the model
 * config, the recipes). An unknown key is an error naming the key, where it is, and the
 * nearest known key ("did you mean …"); a wrong type names the key, the type and the value.
 */
import * as fs from 'node:fs';

export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

/** A field: its type and its default (`undefined`: required; `null`: optional, left null). */
export type FieldSpec = readonly [FieldType, unknown];

/** Reads and parses a JSON file; errors name the file (`what` says what it should be). */
export function readJsonFile(path: string, what = 'JSON file'): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path} does not exist (expected a ${what})` : `${path}: cannot read the ${what}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key nearest to `key` when it is close enough to be a slip (case and `-`/`_` ignored), else null. */
export function nearestKey(key: string, known: readonly string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null, bestD = Infinity;
  for (const k of known) {
    const d = norm(k) === norm(key) ? 0 : distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

/** " (did you mean 'x'?)" for the nearest known key, or ''. */
export function didYouMean(key: string, known: readonly string[]): string {
  const n = nearestKey(key, known);
  return n ? ` (did you mean '${n}'?)` : '';
}

/**
 * Throws on the first key of `o` that is not in `known`: "<where>: unknown key '<prefix>k'
 * (did you mean …?); known: …" (`prefix` names the object's place in the file, e.g. 'model.moe.').
 */
export function checkKnownKeys(o: object, known: readonly string[], where: string, prefix = ''): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Error(`${where}: unknown key '${prefix}${k}'${didYouMean(k, known)}; known: ${known.join(', ')}`);
}

/** Whether `v` has the field type. */
export function hasFieldType(v: unknown, type: FieldType): boolean {
  return type === 'integer' ? Number.isInteger(v) : type === 'number' ? typeof v === 'number' && Number.isFinite(v) : type === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : type === 'array' ? Array.isArray(v) : typeof v === type;
}

/** "must be an integer, got …" style message part. */
export function typeError(key: string, type: FieldType, v: unknown, where: string): Error {
  return new Error(`${where}: '${key}' must be ${type === 'integer' || type === 'object' || type === 'array' ? 'an' : 'a'} ${type}, got ${JSON.stringify(v)}`);
}

/** A JSON value that must be an object (`where` names it in the error). */
export function asObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} must be a JSON object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

/**
 * Checks `o` against `schema` (key → [type, default]) and fills the defaults: unknown keys,
 * missing required keys and wrong types are errors naming the key and `where`.
 */
export function checkFields<R>(o: Record<string, unknown>, schema: Readonly<Record<string, FieldSpec>>, where: string): R {
  checkKnownKeys(o, Object.keys(schema), where);
  const out: Record<string, unknown> = {};
  for (const [k, [type, dflt]] of Object.entries(schema)) {
    const v = o[k] ?? dflt;
    if (v === undefined) throw new Error(`${where}: '${k}' is required`);
    if (v === null) {
      out[k] = null;
      continue;
    }
    if (!hasFieldType(v, type)) throw typeError(k, type, v, where);
    out[k] = v;
  }
  return out as R;
}
