#!/usr/bin/env node
/**
 * vlmoe: the command line of the vlmoe system.
 *
 *   vlmoe pretrain --config run.json [--resume]   VLMo / VL-MoE pretraining (ITC + ITM + MLM)
 *   vlmoe finetune --config ft.json [--resume]    fine-tuning on VQA, NLVR or retrieval (+ evaluation)
 *   vlmoe eval --run runs/<name> [--split val]    evaluate a fine-tuning run
 *   vlmoe bench [--config bench.json]             the model comparison (VL-MoE vs dense; Table 1)
 *   vlmoe info --preset base --experts 32         model shape and parameter counts
 *   vlmoe data …                                  the @vlmoe/data tool (convert, inspect, synth, tokenizer)
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { info, INFO_USAGE } from './info.js';
import { pretrain, PRETRAIN_USAGE } from './recipes/pretrain.js';
import { finetune, FINETUNE_USAGE } from './recipes/finetune.js';
import { evaluateRun, EVAL_USAGE } from './recipes/evaluate.js';
import { bench, BENCH_USAGE } from './recipes/bench.js';

const USAGE = `usage: vlmoe <command> [options]

commands:
  pretrain pretrain VLMo / VL-MoE from a JSON recipe config (vlmoe pretrain --help)
  finetune fine-tune on vqa, nlvr or retrieval and evaluate (vlmoe finetune --help)
  eval     evaluate a fine-tuning run on its task, a pretraining run zero-shot (vlmoe eval --help)
  bench    the model comparison: pretrain, fine-tune, evaluate, Table 1 (vlmoe bench --help)
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

/** A command's flags, or null after printing its usage for --help; unknown options are errors. */
function commandFlags(rest: string[], name: string, usage: string, known: string[]): Record<string, string | boolean> | null {
  if (rest.includes('--help')) {
    console.log(usage);
    return null;
  }
  const args = parseFlags(rest, `vlmoe ${name}`);
  for (const k of Object.keys(args)) if (!known.includes(k)) throw new Error(`vlmoe ${name}: unknown option --${k}\n${usage}`);
  return args;
}

/** `--config F [--resume] [--stop-after N]` of the training recipes. */
function recipeFlags(args: Record<string, string | boolean>, name: string, usage: string): [string, { resume: boolean; stopAfter?: number }] {
  if (typeof args.config !== 'string') throw new Error(`vlmoe ${name}: --config <file.json> is required\n${usage}`);
  return [args.config, { resume: args.resume === true, stopAfter: args['stop-after'] === undefined ? undefined : Number(args['stop-after']) }];
}

/** A positive integer option (undefined when absent). */
function intFlag(args: Record<string, string | boolean>, k: string, name: string): number | undefined {
  if (args[k] === undefined) return undefined;
  const v = Number(args[k]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`vlmoe ${name}: --${k} must be a positive integer, got ${String(args[k])}`);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'info': {
      const args = commandFlags(rest, 'info', INFO_USAGE, ['preset', 'experts', 'k', 'json']);
      if (args) console.log(info(args));
      return 0;
    }
    case 'pretrain': {
      const args = commandFlags(rest, 'pretrain', PRETRAIN_USAGE, ['config', 'resume', 'stop-after']);
      if (args) await pretrain(...recipeFlags(args, 'pretrain', PRETRAIN_USAGE));
      return 0;
    }
    case 'finetune': {
      const args = commandFlags(rest, 'finetune', FINETUNE_USAGE, ['config', 'resume', 'stop-after']);
      if (args) await finetune(...recipeFlags(args, 'finetune', FINETUNE_USAGE));
      return 0;
    }
    case 'eval': {
      const args = commandFlags(rest, 'eval', EVAL_USAGE, ['run', 'split', 'limit', 'batch']);
      if (!args) return 0;
      if (typeof args.run !== 'string') throw new Error(`vlmoe eval: --run runs/<name> is required\n${EVAL_USAGE}`);
      if (args.split !== undefined && args.split !== 'val' && args.split !== 'test') throw new Error(`vlmoe eval: --split must be val or test, got ${String(args.split)}`);
      await evaluateRun(args.run, { split: args.split as 'val' | 'test' | undefined, limit: intFlag(args, 'limit', 'eval'), batchSize: intFlag(args, 'batch', 'eval') });
      return 0;
    }
    case 'bench': {
      const args = commandFlags(rest, 'bench', BENCH_USAGE, ['config', 'fresh', 'jobs']);
      if (!args) return 0;
      if (args.config !== undefined && typeof args.config !== 'string') throw new Error(`vlmoe bench: --config needs a file\n${BENCH_USAGE}`);
      await bench((args.config as string | undefined) ?? null, { fresh: args.fresh === true, jobs: intFlag(args, 'jobs', 'bench') });
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
