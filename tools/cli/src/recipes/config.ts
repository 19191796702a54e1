/**
 * Recipe configs: JSON files checked key by key — an unknown key, a wrong type or a missing
 * file is an error that names it (and where it is).
 */
import * as fs from 'node:fs';

export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

export function readConfig(path: string): Record<string, unknown> {
  if (!fs.existsSync(path)) throw new Error(`config: ${path} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`config: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`config: ${path} must hold a JSON object`);
  return raw as Record<string, unknown>;
}

/**
 * Checks `o` against `schema` (key → [type, default]), filling defaults; `where` names the
 * file for messages. Default `undefined`: required; default `null`: optional, left null when absent.
 */
export function checkConfig<R>(o: Record<string, unknown>, schema: Record<string, [FieldType, unknown]>, where: string): R {
  for (const k of Object.keys(o)) if (!(k in schema)) throw new Error(`config ${where}: unknown key '${k}' (known: ${Object.keys(schema).join(', ')})`);
  const out: Record<string, unknown> = {};
  for (const [k, [type, dflt]] of Object.entries(schema)) {
    const v = o[k] ?? dflt;
    if (v === undefined) throw new Error(`config ${where}: '${k}' is required`);
    if (v === null) {
      out[k] = null;
      continue;
    }
    const ok = type === 'integer' ? Number.isInteger(v) : type === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : type === 'array' ? Array.isArray(v) : typeof v === type;
    if (!ok) throw new Error(`config ${where}: '${k}' must be ${type === 'integer' || type === 'object' || type === 'array' ? 'an' : 'a'} ${type}, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out as R;
}
