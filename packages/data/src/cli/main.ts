/**
 * `vlmoe-data`: convert datasets to ViLT/VLMo Arrow files, inspect them, generate the
 * synthetic shapes world, and build a WordPiece tokenizer from a corpus.
 *
 * `runCli(argv, io)` is the whole command (the bin only maps its result to the exit status):
 * 0 done (or help / version printed), 1 a failure while running (a bad file: its message, never
 * a stack trace), 2 a mistake on the command line (one line naming it, then the usage).
 */
import { didYouMean } from '@vlmoe/util';
import { UsageError, VERSION, type CliIO } from './command_line.js';
import { CONVERT_USAGE, convertCommand } from './convert.js';
import { INSPECT_USAGE, inspectCommand } from './inspect.js';
import { SPLIT_USAGE, splitCommand } from './split.js';
import { SYNTH_USAGE, synthCommand } from './synth.js';
import { TOKENIZER_USAGE, tokenizerCommand } from './tokenizer.js';

export const USAGE = `usage: vlmoe-data <command> [options]

commands:
  convert <kind> <input> <out.arrow>   convert a dataset in its own layout (kinds: coco, karpathy,
                                       flickr, vqav2, easy-vqa, nlvr1, nlvr2)
  convert --to-file <in> <out.arrow>   rewrite an Arrow IPC stream (e.g. a Hugging Face datasets
                                       cache file) as an IPC file, as the DataLoader needs
  inspect <file.arrow>...              schema, kind, rows, batches and the first rows of Arrow files
  split <in> <rest.arrow> <held.arrow> carve a held-out split (a dev set) from a dataset file,
                                       whole images / statements at a time
  synth <out-dir>                      generate the synthetic shapes-world dataset
  tokenizer <out.json> <file.arrow>... build a WordPiece tokenizer.json from the texts of Arrow files
  help [<command>]                     this text, or a command's usage

'vlmoe-data <command> --help' lists a command's options; --version prints the version.
`;

const USAGES: Record<string, string> = { convert: CONVERT_USAGE, inspect: INSPECT_USAGE, split: SPLIT_USAGE, synth: SYNTH_USAGE, tokenizer: TOKENIZER_USAGE };
const COMMANDS = [...Object.keys(USAGES), 'help'];

export const processIO: CliIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

async function dispatch(argv: string[], io: CliIO): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
      throw new UsageError('a command is needed', USAGE);
    case 'convert':
      await convertCommand(rest, io);
      return 0;
    case 'inspect':
      return (await inspectCommand(rest, io)) > 0 ? 1 : 0;
    case 'split':
      await splitCommand(rest, io);
      return 0;
    case 'synth':
      await synthCommand(rest, io);
      return 0;
    case 'tokenizer':
      await tokenizerCommand(rest, io);
      return 0;
    case 'help':
    case '--help':
    case '-h': {
      const topic = cmd === 'help' ? rest[0] : undefined;
      if (rest.length > (cmd === 'help' ? 1 : 0)) throw new UsageError(`unexpected argument '${rest[cmd === 'help' ? 1 : 0]}'`, USAGE, cmd);
      if (topic !== undefined && !USAGES[topic]) throw new UsageError(`unknown command '${topic}'${didYouMean(topic, COMMANDS)}`, USAGE, 'help');
      io.out((topic ? USAGES[topic]! : USAGE).trimEnd() + '\n');
      return 0;
    }
    case '--version':
      if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' after --version`, USAGE);
      io.out(`vlmoe-data ${VERSION}\n`);
      return 0;
    default:
      if (cmd.startsWith('-')) throw new UsageError(`unknown option ${cmd} (options come after the command)`, USAGE);
      throw new UsageError(`unknown command '${cmd}'${didYouMean(cmd, COMMANDS)}`, USAGE);
  }
}

/** Run `vlmoe-data` with `argv` (without the node and script paths); resolves to the exit status. */
export async function runCli(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`vlmoe-data${e.command ? ` ${e.command}` : ''}: ${e.message}\n\n${e.usage.trimEnd()}\n`);
      return 2;
    }
    io.err(`vlmoe-data: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
