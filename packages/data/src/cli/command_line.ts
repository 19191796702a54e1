/**
 * How every command of the system reads its command line — `vlmoe-data`'s here, `vlmoe`'s
 * through the package's exports — with node:util `parseArgs` (strict) and one behaviour for all: `--help` / `-h` prints the command's usage on stdout (exit 0),
 * `--version` prints `<program> <version>` (exit 0); an unknown option, a missing value, a
 * value given to a switch, a missing or extra argument or an invalid value is a
 * {@link UsageError} naming it (one line on stderr, then the usage; exit status 2). Anything
 * that fails while running is a plain Error (its message on stderr; exit status 1).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { didYouMean } from '@vlmoe/util';

/** The package version, from packages/data/package.json (src/cli/ and dist/cli/ are both two levels below it). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A mistake on the command line: printed with the usage, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The usage of the command the mistake was made in. */
    readonly usage: string,
    /** The command (`convert`, …), or none for the top level. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** Where the command writes (the process' stdout / stderr, or a test's buffers). */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
export type OptionValues<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean };

export interface CommandSpec<O extends OptionSpec> {
  /** `convert`, `inspect`, … (names the command in messages). */
  name: string;
  usage: string;
  options: O;
  /** How many positional arguments the command takes, and what they are (for messages; default none). */
  positionals?: { min: number; max: number; what: string };
  /** The program `--version` names (default: vlmoe-data and this package's version). */
  program?: { name: string; version: string };
}

/** What a command's `parse` gives: the options and positionals, or that help / version was printed. */
export type Parsed<O extends OptionSpec> = { values: OptionValues<O>; positionals: string[]; usage: UsageFail } | null;

/** Throws a UsageError for this command. */
export type UsageFail = (message: string) => never;

const COMMON: OptionSpec = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } };


/**
 * Parse `argv` for one command. Returns null when `--help` or `--version` was given (already
 * printed on `io.out`); otherwise the values and positionals, or throws a UsageError.
 */
export function parseCommand<O extends OptionSpec>(argv: string[], spec: CommandSpec<O>, io: CliIO): Parsed<O> {
  const fail: UsageFail = (message) => {
    throw new UsageError(message, spec.usage, spec.name);
  };
  const options = { ...COMMON, ...spec.options } as OptionSpec;
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const asked = tokens.filter((t) => t.kind === 'option' && (t.name === 'help' || t.name === 'version'));
  if (asked.length > 0) {
    if (asked[0]!.kind === 'option' && asked[0]!.name === 'version') io.out(`${spec.program?.name ?? 'vlmoe-data'} ${spec.program?.version ?? VERSION}\n`);
    else io.out(`${spec.usage.trimEnd()}\n`);
    return null;
  }
  const known = Object.keys(spec.options);
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const o = spec.options[t.name];
    if (!o) fail(`unknown option ${t.rawName}${didYouMean(t.name, known, '--')}`);
    else if (o.type === 'string' && t.value === undefined) fail(`option ${t.rawName} needs a value`);
    else if (o.type === 'string' && t.inlineValue === false && t.value!.startsWith('-') && t.value!.length > 1) {
      fail(`option ${t.rawName} needs a value (got the option-like '${t.value}'; write ${t.rawName}=${t.value} if that is the value)`);
    }
    else if (o.type === 'boolean' && t.inlineValue) fail(`option ${t.rawName} takes no value (got '${t.value}')`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    return fail((e as Error).message.split('\n')[0]!);
  }
  const p = spec.positionals ?? { min: 0, max: 0, what: 'no arguments' };
  if (parsed.positionals.length > p.max) fail(`unexpected argument '${parsed.positionals[p.max]}' (takes ${p.what})`);
  if (parsed.positionals.length < p.min) fail(`needs ${p.what}`);
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals, usage: fail };
}

/** An integer option (undefined when absent), at least `min`; a UsageError names the option otherwise. */
export function intOption(v: string | undefined, flag: string, fail: UsageFail, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !/^[+-]?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? `an integer in [${min}, ${max}]` : min === 1 ? 'a positive integer' : min === 0 ? 'an integer ≥ 0' : `an integer ≥ ${min}`;
    fail(`--${flag} must be ${range}, got '${v}'`);
  }
  return n;
}

/** One of a set of words (undefined when absent). */
export function choiceOption<C extends string>(v: string | undefined, flag: string, fail: UsageFail, choices: readonly C[]): C | undefined {
  if (v === undefined) return undefined;
  if (!choices.includes(v as C)) fail(`--${flag} must be ${choices.length > 2 ? `one of ${choices.join(', ')}` : choices.join(' or ')}, got '${v}'${didYouMean(v, choices)}`);
  return v as C;
}
