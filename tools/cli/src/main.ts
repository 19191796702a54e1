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
    case 'finetune': {
      if (rest.includes('--help')) {
        console.log(FINETUNE_USAGE);
        return 0;
      }
      const args = parseFlags(rest, 'vlmoe finetune');
      for (const k of Object.keys(args)) if (!['config', 'resume', 'stop-after'].includes(k)) throw new Error(`vlmoe finetune: unknown option --${k}\n${FINETUNE_USAGE}`);
      if (typeof args.config !== 'string') throw new Error(`vlmoe finetune: --config ft.json is required\n${FINETUNE_USAGE}`);
      await finetune(args.config, { resume: args.resume === true, stopAfter: args['stop-after'] === undefined ? undefined : Number(args['stop-after']) });
      return 0;
    }
    case 'eval': {
      if (rest.includes('--help')) {
        console.log(EVAL_USAGE);
        return 0;
      }
      const args = parseFlags(rest, 'vlmoe eval');
      for (const k of Object.keys(args)) if (!['run', 'split', 'limit', 'batch'].includes(k)) throw new Error(`vlmoe eval: unknown option --${k}\n${EVAL_USAGE}`);
      if (typeof args.run !== 'string') throw new Error(`vlmoe eval: --run runs/<name> is required\n${EVAL_USAGE}`);
      if (args.split !== undefined && args.split !== 'val' && args.split !== 'test') throw new Error(`vlmoe eval: --split must be val or test, got ${String(args.split)}`);
      const num = (k: string) => {
        if (args[k] === undefined) return undefined;
        const v = Number(args[k]);
        if (!Number.isInteger(v) || v < 1) throw new Error(`vlmoe eval: --${k} must be a positive integer, got ${String(args[k])}`);
        return v;
      };
      await evaluateRun(args.run, { split: args.split as 'val' | 'test' | undefined, limit: num('limit'), batchSize: num('batch') });
      return 0;
    }
    case 'bench': {
      if (rest.includes('--help')) {
        console.log(BENCH_USAGE);
        return 0;
      }
      const args = parseFlags(rest, 'vlmoe bench');
      for (const k of Object.keys(args)) if (!['config', 'fresh', 'jobs'].includes(k)) throw new Error(`vlmoe bench: unknown option --${k}\n${BENCH_USAGE}`);
      const jobs = args.jobs === undefined ? undefined : Number(args.jobs);
      if (jobs !== undefined && !(Number.isInteger(jobs) && jobs >= 1)) throw new Error(`vlmoe bench: --jobs must be a positive integer, got ${String(args.jobs)}`);
      if (args.config !== undefined && typeof args.config !== 'string') throw new Error(`vlmoe bench: --config needs a file\n${BENCH_USAGE}`);
      await bench((args.config as string | undefined) ?? null, { fresh: args.fresh === true, jobs });
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
