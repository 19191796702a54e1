/** JSON values checked where they are read (the configs themselves are checked by their zod schemas, config_schema.ts). */

/** A JSON value that must be an object (`where` names it in the error). */
export function asObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} must be a JSON object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}
