/**
 * The command line of every `vlmoe` command, parsed by `node:util`'s `parseArgs` (the same
 * parser `vlmoe-data` and `vlmoe-run` use), with one behaviour for all of them:
 * `--help` / `-h` prints the command's usage and exits 0; an unknown option, a missing value,
 * a value given to a switch or an unexpected positional argument is a `UsageError` (exit
 * status 2) naming it, with the closest known option; typed values are checked by name.
 */
import { parseArgs } from 'node:util';
import * as T from '@vlmoe/tensor';

/** A mistake on the command line: printed with the usage, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
export type OptionValues<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean };

export interface CommandSpec<O extends OptionSpec> {
  /** `vlmoe info`, `vlmoe pretrain`, … (names the command in errors). */
  name: string;
  usage: string;
  options: O;
  /** How many positional arguments the command takes (default none). */
  positionals?: { min: number; max: number; what: string };
}

/**
 * Parses `argv` for one command. Returns null when `--help` / `-h` was given (the usage is
 * already printed); otherwise the options and positionals, or throws a UsageError.
 */
export function parseCommand<O extends OptionSpec>(argv: string[], spec: CommandSpec<O>): { values: OptionValues<O>; positionals: string[] } | null {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(spec.usage);
    return null;
  }
  const fail = (msg: string): never => {
    throw new UsageError(`${spec.name}: ${msg}\n\n${spec.usage}`);
  };
  const known = Object.keys(spec.options);
  const { tokens } = parseArgs({ args: argv, options: spec.options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const o = spec.options[t.name];
    if (!o) fail(`unknown option ${t.rawName}${T.didYouMean(t.name, known).replace(/'([^']+)'/, "'--$1'")}`);
    else if (o.type === 'string' && (t.value === undefined || (t.inlineValue === false && t.value.startsWith('--')))) fail(`option ${t.rawName} needs a value`);
    else if (o.type === 'boolean' && t.inlineValue) fail(`option ${t.rawName} takes no value (got '${t.value}')`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: spec.options, strict: true, allowPositionals: true });
  } catch (e) {
    return fail((e as Error).message);
  }
  const p = spec.positionals ?? { min: 0, max: 0, what: '' };
  if (parsed.positionals.length > p.max) fail(`unexpected argument '${parsed.positionals[p.max]}'`);
  if (parsed.positionals.length < p.min) fail(`needs ${p.what}`);
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals };
}

/** An integer option (undefined when absent), at least `min`. */
export function intOption(v: string | undefined, flag: string, command: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new UsageError(`${command}: --${flag} must be ${min === 1 ? 'a positive integer' : min === 0 ? 'an integer ≥ 0' : `an integer ≥ ${min}`}, got '${v}'`);
  }
  return n;
}

/** One of a set of words (undefined when absent). */
export function choiceOption<C extends string>(v: string | undefined, flag: string, command: string, choices: readonly C[]): C | undefined {
  if (v === undefined) return undefined;
  if (!choices.includes(v as C)) throw new UsageError(`${command}: --${flag} must be ${choices.length > 2 ? `one of ${choices.join(', ')}` : choices.join(' or ')}, got '${v}'${T.didYouMean(v, choices)}`);
  return v as C;
}
