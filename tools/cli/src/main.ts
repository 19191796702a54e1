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
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as T from '@vlmoe/tensor';
import { UsageError, choiceOption, intOption, parseCommand } from './command_line.js';
import { EXPORT_USAGE, FORMATS, IMPORT_USAGE, exportCheckpoint, importCheckpoint } from './interop.js';
import type { RecipeRunOptions } from './recipes/trainer.js';
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
  import   a PyTorch VLMo .pth or DeepSpeed-MoE checkpoint → a vlmoe run folder (vlmoe import --help)
  export   a run's weights → a VLMo .pth or a DeepSpeed-MoE checkpoint folder (vlmoe export --help)
  data     datasets: convert, inspect, synth, tokenizer (vlmoe data --help)

options: --help, -h (this text; also after any command), --version`;

const COMMANDS = ['pretrain', 'finetune', 'eval', 'bench', 'info', 'import', 'export', 'data'];

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const RECIPE_OPTIONS = {
  config: { type: 'string' },
  deepspeed_config: { type: 'string' },
  resume: { type: 'boolean' },
  'stop-after': { type: 'string' },
} as const;

/** `--config F [--deepspeed_config ds.json] [--resume] [--stop-after N]` of the training recipes. */
function recipeArgs(rest: string[], name: string, usage: string): [string, RecipeRunOptions] | null {
  const a = parseCommand(rest, { name: `vlmoe ${name}`, usage, options: RECIPE_OPTIONS });
  if (!a) return null;
  if (a.values.config === undefined) throw new UsageError(`vlmoe ${name}: --config <file.json> is required\n\n${usage}`);
  return [a.values.config, { resume: a.values.resume === true, stopAfter: intOption(a.values['stop-after'], 'stop-after', `vlmoe ${name}`), deepspeedConfig: a.values.deepspeed_config }];
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    console.error(USAGE);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (cmd === '--version' || cmd === '-V') {
    console.log(`vlmoe ${VERSION}`);
    return 0;
  }
  switch (cmd) {
    case 'info': {
      const name = 'vlmoe info';
      const a = parseCommand(rest, { name, usage: INFO_USAGE, options: { preset: { type: 'string' }, experts: { type: 'string' }, k: { type: 'string' }, json: { type: 'boolean' } } });
      if (a) {
        const preset = choiceOption(a.values.preset, 'preset', name, ['tiny', 'small', 'base', 'large'] as const);
        console.log(info({ preset, experts: intOption(a.values.experts, 'experts', name, 0), k: intOption(a.values.k, 'k', name), json: a.values.json }));
      }
      return 0;
    }
    case 'pretrain': {
      const a = recipeArgs(rest, 'pretrain', PRETRAIN_USAGE);
      if (a) await pretrain(...a);
      return 0;
    }
    case 'finetune': {
      const a = recipeArgs(rest, 'finetune', FINETUNE_USAGE);
      if (a) await finetune(...a);
      return 0;
    }
    case 'eval': {
      const name = 'vlmoe eval';
      const a = parseCommand(rest, { name, usage: EVAL_USAGE, options: { run: { type: 'string' }, split: { type: 'string' }, limit: { type: 'string' }, batch: { type: 'string' } } });
      if (!a) return 0;
      if (a.values.run === undefined) throw new UsageError(`${name}: --run runs/<name> is required\n\n${EVAL_USAGE}`);
      await evaluateRun(a.values.run, { split: choiceOption(a.values.split, 'split', name, ['val', 'test'] as const), limit: intOption(a.values.limit, 'limit', name), batchSize: intOption(a.values.batch, 'batch', name) });
      return 0;
    }
    case 'bench': {
      const name = 'vlmoe bench';
      const a = parseCommand(rest, { name, usage: BENCH_USAGE, options: { config: { type: 'string' }, fresh: { type: 'boolean' }, jobs: { type: 'string' } } });
      if (!a) return 0;
      await bench(a.values.config ?? null, { fresh: a.values.fresh === true, jobs: intOption(a.values.jobs, 'jobs', name) });
      return 0;
    }
    case 'import': {
      const name = 'vlmoe import';
      const a = parseCommand(rest, {
        name, usage: IMPORT_USAGE,
        options: { format: { type: 'string' }, from: { type: 'string' }, out: { type: 'string' }, preset: { type: 'string' }, experts: { type: 'string' }, k: { type: 'string' }, 'image-size': { type: 'string' }, 'vocab-size': { type: 'string' }, tokenizer: { type: 'string' }, ignore: { type: 'string' } },
      });
      if (!a) return 0;
      const v = a.values;
      for (const k of ['format', 'from', 'out'] as const) if (v[k] === undefined) throw new UsageError(`${name}: --${k} is required\n\n${IMPORT_USAGE}`);
      const r = importCheckpoint({
        format: choiceOption(v.format, 'format', name, FORMATS)!, from: v.from!, out: v.out!,
        preset: choiceOption(v.preset, 'preset', name, ['tiny', 'small', 'base', 'large'] as const), experts: intOption(v.experts, 'experts', name, 0), k: intOption(v.k, 'k', name),
        imageSize: intOption(v['image-size'], 'image-size', name), vocabSize: intOption(v['vocab-size'], 'vocab-size', name), tokenizer: v.tokenizer, ignore: v.ignore?.split(',').filter(Boolean),
      });
      console.log(`${r.runDir}: ${r.tensors} tensors (${(r.parameters / 1e6).toFixed(2)}M parameters) from ${v.from}; fine-tune with "init": "${r.runDir}"`);
      return 0;
    }
    case 'export': {
      const name = 'vlmoe export';
      const a = parseCommand(rest, { name, usage: EXPORT_USAGE, options: { run: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' } } });
      if (!a) return 0;
      for (const k of ['run', 'format', 'out'] as const) if (a.values[k] === undefined) throw new UsageError(`${name}: --${k} is required\n\n${EXPORT_USAGE}`);
      const r = exportCheckpoint({ run: a.values.run!, format: choiceOption(a.values.format, 'format', name, FORMATS)!, out: a.values.out! });
      console.log(`${r.out}: ${r.tensors} tensors (${a.values.format})`);
      return 0;
    }
    case 'data': {
      const require = createRequire(import.meta.url);
      const cli = require.resolve('@vlmoe/data').replace(/index\.js$/, 'cli.js');
      return spawnSync(process.execPath, [cli, ...rest], { stdio: 'inherit' }).status ?? 1;
    }
    default:
      throw new UsageError(`vlmoe: unknown command '${cmd}'${T.didYouMean(cmd, COMMANDS)}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    // a usage mistake: status 2 (as argparse, getopt); a failure while running: status 1
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
