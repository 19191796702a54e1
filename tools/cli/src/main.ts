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
import { pretrain, PRETRAIN_USAGE } from './recipes/pretrain.js';

const USAGE = `usage: vlmoe <command> [options]

commands:
  pretrain pretrain VLMo / VL-MoE from a JSON recipe config (vlmoe pretrain --help)
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

async function main(argv: string[]): Promise<number> {
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
    case 'pretrain': {
      if (rest.includes('--help')) {
        console.log(PRETRAIN_USAGE);
        return 0;
      }
      const args = parseFlags(rest, 'vlmoe pretrain');
      for (const k of Object.keys(args)) if (!['config', 'resume', 'stop-after'].includes(k)) throw new Error(`vlmoe pretrain: unknown option --${k}\n${PRETRAIN_USAGE}`);
      if (typeof args.config !== 'string') throw new Error(`vlmoe pretrain: --config run.json is required\n${PRETRAIN_USAGE}`);
      await pretrain(args.config, { resume: args.resume === true, stopAfter: args['stop-after'] === undefined ? undefined : Number(args['stop-after']) });
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

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  },
);
