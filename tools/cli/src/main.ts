#!/usr/bin/env node
/**
 * vlmoe: the command line of the vlmoe system.
 *
 *   vlmoe info --preset base --experts 32      model shape and parameter counts
 *   vlmoe data …                               the @vlmoe/data tool (convert, inspect, synth, tokenizer)
 *
 * pretrain / finetune / eval / bench join as issue 8 lands.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { info, INFO_USAGE } from './info.js';

const USAGE = `usage: vlmoe <command> [options]

commands:
  info     model shape and total / active parameters of a preset (vlmoe info --help)
  data     datasets: convert, inspect, synth, tokenizer (vlmoe data --help)`;

/** --key value / --key=value / --flag → record; positional arguments are refused. */
export function parseFlags(argv: string[], what: string): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`${what}: unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out[a.slice(2)] = argv[++i]!;
    else out[a.slice(2)] = true;
  }
  return out;
}

function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'info': {
      if (rest.includes('--help')) {
        console.log(INFO_USAGE);
        return 0;
      }
      const known = new Set(['preset', 'experts', 'k', 'json']);
      const args = parseFlags(rest, 'vlmoe info');
      for (const k of Object.keys(args)) if (!known.has(k)) throw new Error(`vlmoe info: unknown option --${k}\n${INFO_USAGE}`);
      console.log(info(args));
      return 0;
    }
    case 'data': {
      const require = createRequire(import.meta.url);
      const cli = require.resolve('@vlmoe/data').replace(/index\.js$/, 'cli.js');
      return spawnSync(process.execPath, [cli, ...rest], { stdio: 'inherit' }).status ?? 1;
    }
    default:
      throw new Error(`vlmoe: unknown command '${cmd}'\n${USAGE}`);
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 2;
}
