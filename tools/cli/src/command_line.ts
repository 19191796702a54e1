/**
 * The `vlmoe` command line on the system's one command-line parser (@vlmoe/data's, node:util
 * `parseArgs` strict — `vlmoe-data` uses the same): `--help` / `-h` prints the command's usage
 * and exits 0, `--version` prints `vlmoe <version>`; an unknown option (with the closest known
 * one), a missing value, a value given to a switch, an unexpected argument or a bad value is a
 * `UsageError` (one line naming it, then the usage; exit status 2).
 */
import { readFileSync } from 'node:fs';
import { parseCommand as parse, type CommandSpec, type OptionSpec, type Parsed } from '@vlmoe/data';

export { UsageError, intOption, choiceOption } from '@vlmoe/data';

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const io = { out: (t: string) => void process.stdout.write(t), err: (t: string) => void process.stderr.write(t) };

/** One `vlmoe` command's options and arguments, or null when its usage (or the version) was printed. */
export function parseCommand<O extends OptionSpec>(argv: string[], spec: Omit<CommandSpec<O>, 'program'>): Parsed<O> {
  return parse(argv, { ...spec, program: { name: 'vlmoe', version: VERSION } }, io);
}
