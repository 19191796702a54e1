/**
 * Recipe configs: JSON files checked whole with their zod schema (schemas.ts) — an unknown
 * key (with the nearest known one), a wrong type or a missing file is an error that names it
 * and the file.
 */
import * as T from '@vlmoe/tensor';

/** A recipe file's JSON object. */
export function readConfig(path: string): Record<string, unknown> {
  return T.asObject(T.readJsonFile(path, 'recipe config (JSON)'), `config ${path}`);
}

/**
 * A config from a file path or from an object (a library caller), checked whole with its
 * schema (defaults filled in); `objectWhere` names an object in errors.
 */
export function recipeConfig<S extends T.Z.ZodType>(config: string | object, schema: S, objectWhere = '(recipe object)'): { cfg: T.Z.output<S>; where: string } {
  if (typeof config === 'string') return { cfg: T.parseConfig(schema, readConfig(config), `config ${config}`), where: config };
  return { cfg: T.parseConfig(schema, JSON.parse(JSON.stringify(config)), `config ${objectWhere}`), where: objectWhere };
}
