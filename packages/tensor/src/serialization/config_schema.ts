/**
 * Config schemas: every config kind (recipe, model, engine/DeepSpeed, bench) is one zod schema
 * — its keys, types, defaults and TypeScript type in one definition — and the same schema is
 * published as JSON Schema (`jsonSchemaOf`) for editors (`"$schema": …` in a config file).
 *
 * `parseConfig` checks a JSON value with a schema and turns the first problem into one error
 * in vlmoe's format, naming where (file and key path) and what: an unknown key with the
 * nearest known key ("did you mean …") and the keys that are known there, a wrong type with
 * the value given, a value outside its range or set.
 */
import { createRequire } from 'node:module';
import type * as Zod from 'zod';
import { didYouMean } from '@vlmoe/util';

/**
 * zod, loaded through its CommonJS build: file by file. Its ES module entry makes Node open
 * its ~150 files at once (64 of them locales), more than a process near its descriptor limit
 * can (macOS's default soft limit is 256; a rank holding many shared-memory blocks).
 */
export const z: typeof Zod.z = (createRequire(import.meta.url)('zod') as typeof Zod).z;
/** zod's types (`Z.ZodType`, `Z.input<typeof S>`, `Z.output<…>`), for annotations. */
export type * as Z from 'zod';

export interface ParseConfigOptions {
  /** How the config's keys are named in messages (e.g. 'model.' for a recipe's model block). */
  prefix?: string;
  /**
   * A message for an unknown key that is known elsewhere (e.g. a DeepSpeed key this engine
   * does not implement), or null for the plain unknown-key error. `at` is the object's path.
   */
  unknownKey?: (at: readonly string[], key: string, known: readonly string[]) => string | null;
  /** Extra names offered by "did you mean" at a path (e.g. DeepSpeed's keys we refuse by name). */
  alsoKnown?: (at: readonly string[]) => readonly string[];
}

/** The schema inside optional / nullable / default wrappers. */
function unwrap(s: Zod.ZodType): Zod.ZodType {
  let cur = s as Zod.ZodType & { _zod: { def: { innerType?: Zod.ZodType; type: string } } };
  while (cur._zod.def.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(cur._zod.def.type)) {
    cur = cur._zod.def.innerType as typeof cur;
  }
  return cur;
}

/** The (unwrapped) schema at `path` inside `schema`, or null. */
function schemaAt(schema: Zod.ZodType, path: readonly PropertyKey[]): Zod.ZodType | null {
  let s = unwrap(schema);
  for (const p of path) {
    if (s instanceof z.ZodObject) s = unwrap((s.shape as Record<string, Zod.ZodType>)[String(p)] ?? z.never());
    else if (s instanceof z.ZodArray) s = unwrap(s.element as Zod.ZodType);
    else if (s instanceof z.ZodTuple) s = unwrap((s._zod.def.items as Zod.ZodType[])[Number(p)] ?? z.never());
    else if (s instanceof z.ZodRecord) s = unwrap(s._zod.def.valueType as Zod.ZodType);
    else return null;
  }
  return s;
}

/** The keys of the object schema at `path` inside `schema` (empty when there is none). */
export function knownKeysAt(schema: Zod.ZodType, path: readonly (string | number)[]): string[] {
  const s = schemaAt(schema, path);
  return s instanceof z.ZodObject ? Object.keys(s.shape).filter((k) => !k.startsWith('$')) : [];
}

const article = (t: string) => (/^[aeiou]/.test(t) ? 'an' : 'a');
const typeName: Record<string, string> = { int: 'integer', number: 'number', string: 'string', boolean: 'boolean', object: 'object', array: 'array', null: 'null' };

function valueAt(v: unknown, path: readonly PropertyKey[]): unknown {
  let cur = v;
  for (const p of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[p] : undefined;
  return cur;
}

function keyPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix.replace(/\.$/, '');
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out;
}

/** One zod issue as a message (without `where`). */
function describeIssue(schema: Zod.ZodType, issue: Zod.core.$ZodIssue, value: unknown, o: ParseConfigOptions): string {
  const prefix = o.prefix ?? '';
  const at = issue.path.map(String);
  const key = keyPath(prefix, issue.path);
  const got = valueAt(value, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const k = issue.keys[0]!;
      const known = knownKeysAt(schema, issue.path as (string | number)[]);
      const special = o.unknownKey?.(at, k, known);
      if (special) return special;
      const full = keyPath(prefix, [...issue.path, k]);
      return `unknown key '${full}'${didYouMean(k, [...known, ...(o.alsoKnown?.(at) ?? [])])}; known: ${known.join(', ')}`;
    }
    case 'invalid_type': {
      if (got === undefined && issue.expected !== 'undefined') return `'${key}' is required`;
      const isInt = (schemaAt(schema, issue.path) as unknown as { _zod?: { def?: { format?: string } } } | null)?._zod?.def?.format === 'safeint';
      const t = issue.expected === 'object' ? 'JSON object' : isInt ? 'integer' : (typeName[issue.expected] ?? issue.expected);
      return `'${key}' must be ${issue.expected === 'object' ? 'a' : article(t)} ${t}, got ${JSON.stringify(got) ?? String(got)}`;
    }
    case 'invalid_value':
      return `'${key}' must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((x) => JSON.stringify(x)).join(', ')}`}, got ${JSON.stringify(got)}${typeof got === 'string' ? didYouMean(got, issue.values.filter((x): x is string => typeof x === 'string')) : ''}`;
    case 'too_small':
      return `'${key}' must be ${issue.origin === 'array' ? `a list of at least ${issue.minimum} item(s)` : `${issue.inclusive ? '≥' : '>'} ${issue.minimum}`}, got ${JSON.stringify(got)}`;
    case 'too_big':
      return `'${key}' must be ${issue.origin === 'array' ? `a list of at most ${issue.maximum} item(s)` : `${issue.inclusive ? '≤' : '<'} ${issue.maximum}`}, got ${JSON.stringify(got)}`;
    case 'invalid_union': {
      // the closest branch's problem (an enum-or-null, a number-or-list …)
      const inner = issue.errors.flat()[0];
      return inner ? describeIssue(schema, { ...inner, path: [...issue.path, ...inner.path] } as Zod.core.$ZodIssue, value, o) : `'${key}' is not valid: ${issue.message}`;
    }
    default:
      return `'${key}' ${issue.message}`;
  }
}

/**
 * `value` checked with `schema` (defaults filled in, the result typed by the schema); the first
 * problem is an error "`where`: …". `where` names the file (and the block, e.g. "config run.json").
 */
export function parseConfig<S extends Zod.ZodType>(schema: S, value: unknown, where: string, o: ParseConfigOptions = {}): Zod.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.path.length === 0 && issue.code === 'invalid_type' && issue.expected === 'object') {
    throw new Error(`${where}${o.prefix ? `: ${o.prefix.replace(/\.$/, '')}` : ''} must be a JSON object, got ${JSON.stringify(value)}`);
  }
  throw new Error(`${where}: ${describeIssue(schema, issue, value, o)}`);
}

/** The JSON Schema (draft 2020-12) of a config schema, as editors read it: the input side (defaults optional). */
export function jsonSchemaOf(schema: Zod.ZodType, meta: { id?: string; title?: string; description?: string } = {}): Record<string, unknown> {
  const js = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    // an integer's safe-integer bounds say nothing to a reader
    override: ({ jsonSchema: j }) => {
      if (j.type === 'integer' && j.minimum === Number.MIN_SAFE_INTEGER && j.maximum === Number.MAX_SAFE_INTEGER) {
        delete j.minimum;
        delete j.maximum;
      }
    },
  }) as Record<string, unknown>;
  return { $schema: js.$schema, ...(meta.id ? { $id: meta.id } : {}), ...(meta.title ? { title: meta.title } : {}), ...(meta.description ? { description: meta.description } : {}), ...js };
}

/** "key (type, default …)" for each key of an object schema: the config keys in a command's usage. */
export function configUsage(schema: Zod.ZodObject): string {
  return Object.entries(schema.shape as Record<string, Zod.ZodType>)
    .filter(([k]) => k !== '$schema')
    .map(([k, s]) => {
      const def = (s as unknown as { _zod: { def: { type: string; defaultValue?: unknown } } })._zod.def;
      const inner = unwrap(s) as unknown as { _zod: { def: { type: string; format?: string } } };
      const t = inner._zod.def.format === 'safeint' ? 'integer' : inner._zod.def.type === 'enum' ? 'string' : inner._zod.def.type === 'record' ? 'object' : inner._zod.def.type;
      const dflt = def.type === 'default' ? def.defaultValue : undefined;
      const required = !s.safeParse(undefined).success;
      return `${k} (${t}${required ? ', required' : dflt === undefined || dflt === null ? ', optional' : `, default ${JSON.stringify(dflt)}`})`;
    })
    .join(', ');
}

/** The `$schema` key every config file may carry (where an editor finds the JSON Schema); ignored. */
export const SCHEMA_KEY = { $schema: z.string().optional().describe('the JSON Schema of this file (for editors); ignored') };
