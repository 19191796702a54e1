/**
 * Recipe configs: JSON files checked key by key with @vlmoe/tensor's config checker — an
 * unknown key (with the nearest known one), a wrong type or a missing file is an error that
 * names it and the file.
 */
import * as T from '@vlmoe/tensor';

export type FieldType = T.FieldType;

/** A recipe file's JSON object. */
export function readConfig(path: string): Record<string, unknown> {
  return T.asObject(T.readJsonFile(path, 'recipe config (JSON)'), `config ${path}`);
}

/**
 * Checks `o` against `schema` (key → [type, default]), filling defaults; `where` names the
 * file for messages. Default `undefined`: required; default `null`: optional, left null when absent.
 */
export function checkConfig<R>(o: Record<string, unknown>, schema: Record<string, [FieldType, unknown]>, where: string): R {
  return T.checkFields<R>(o, schema, `config ${where}`);
}

/**
 * A recipe's config from a file path or from an object (a library caller), checked against
 * `schema`; `where` names it in errors.
 */
export function recipeConfig<R>(config: string | object, schema: Record<string, [FieldType, unknown]>, objectWhere = '(recipe object)'): { cfg: R; where: string } {
  if (typeof config === 'string') return { cfg: checkConfig<R>(readConfig(config), schema, config), where: config };
  const where = objectWhere;
  return { cfg: checkConfig<R>(T.asObject(JSON.parse(JSON.stringify(config)), `config ${where}`), schema, where), where };
}
