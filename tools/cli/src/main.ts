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
import * as T from '@vlmoe/tensor';
import { UsageError, VERSION, choiceOption, intOption, parseCommand } from './command_line.js';
import { EXPORT_USAGE, FORMATS, IMPORT_USAGE, exportCheckpoint, importCheckpoint } from './interop.js';
import type { RecipeRunOptions } from './recipes/trainer.js';
import { info, INFO_USAGE } from './info.js';
import { plan, PLAN_USAGE } from './plan.js';
import { pretrain, PRETRAIN_USAGE } from './recipes/pretrain.js';
import { finetune, FINETUNE_USAGE } from './recipes/finetune.js';
import { evaluateRun, EVAL_USAGE } from './recipes/evaluate.js';
import { bench, BENCH_USAGE } from './recipes/bench.js';
import { study, STUDY_USAGE } from './recipes/study.js';
import { DEFAULT_DASHBOARD_PORT, startDashboard } from './dashboard/server.js';

const DASHBOARD_USAGE = `usage: vlmoe dashboard [--runs runs] [--port ${DEFAULT_DASHBOARD_PORT}]

A local web page (127.0.0.1 only) listing the runs of a runs folder and showing, live while
they train and afterwards: loss and its parts, lr, grad norm, tokens/s; per MoE layer the
expert-load heatmap, drop rate, imbalance, router entropy and expert bias; validation curves and
eval results; two runs side by side (tick both, "compare"). Every chart is an SVG you can save.

  --runs   the runs folder (default runs)
  --port   the port (default ${DEFAULT_DASHBOARD_PORT}; 0 picks a free one)`;

const USAGE = `usage: vlmoe <command> [options]

commands:
  pretrain pretrain VLMo / VL-MoE from a JSON recipe config (vlmoe pretrain --help)
  finetune fine-tune on vqa, nlvr or retrieval and evaluate (vlmoe finetune --help)
  eval     evaluate a fine-tuning run on its task, a pretraining run zero-shot (vlmoe eval --help)
  bench    the model comparison: pretrain, fine-tune, evaluate, Table 1 (vlmoe bench --help)
  study    the comparison over seeds: mean ± s.d., paired bootstrap intervals, verdicts (vlmoe study --help)
  info     model shape and total / active parameters of a preset (vlmoe info --help)
  plan     memory, communication and step time per rank for a layout, or the layouts that fit (vlmoe plan --help)
  dashboard  a local web page of the runs, live while they train (vlmoe dashboard --help)
  import   a PyTorch VLMo .pth or DeepSpeed-MoE checkpoint → a vlmoe run folder (vlmoe import --help)
  export   a run's weights → a VLMo .pth or a DeepSpeed-MoE checkpoint folder (vlmoe export --help)
  data     datasets: convert, inspect, synth, tokenizer (vlmoe data --help)

options: --help, -h (this text; also after any command), --version`;

const COMMANDS = ['pretrain', 'finetune', 'eval', 'bench', 'study', 'info', 'plan', 'dashboard', 'import', 'export', 'data'];

const RECIPE_OPTIONS = {
  config: { type: 'string' },
  deepspeed_config: { type: 'string' },
  resume: { type: 'boolean' },
  'stop-after': { type: 'string' },
} as const;

/** `--config F [--deepspeed_config ds.json] [--resume] [--stop-after N]` of the training recipes. */
function recipeArgs(rest: string[], name: string, usage: string): [string, RecipeRunOptions] | null {
  const a = parseCommand(rest, { name, usage, options: RECIPE_OPTIONS });
  if (!a) return null;
  return [a.values.config ?? a.usage('--config <file.json> is required'), { resume: a.values.resume === true, stopAfter: intOption(a.values['stop-after'], 'stop-after', a.usage), deepspeedConfig: a.values.deepspeed_config }];
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
      const name = 'info';
      const a = parseCommand(rest, { name, usage: INFO_USAGE, options: { preset: { type: 'string' }, experts: { type: 'string' }, k: { type: 'string' }, json: { type: 'boolean' } } });
      if (a) {
        const preset = choiceOption(a.values.preset, 'preset', a.usage, ['tiny', 'small', 'base', 'large'] as const);
        console.log(info({ preset, experts: intOption(a.values.experts, 'experts', a.usage, 0), k: intOption(a.values.k, 'k', a.usage), json: a.values.json }));
      }
      return 0;
    }
    case 'plan': {
      const s = { type: 'string' } as const;
      const a = parseCommand(rest, { name: 'plan', usage: PLAN_USAGE, options: {
        preset: s, experts: s, k: s, hardware: s, nodes: s, 'per-node': s, 'memory-gb': s, tp: s, ep: s, stage: s, offload: s, 'micro-batch': s, 'global-batch': s,
        precision: s, optimizer: s, 'max-live': s, prefetch: s, 'activation-checkpointing': { type: 'boolean' }, search: { type: 'boolean' }, top: s, json: { type: 'boolean' },
      } });
      if (a) {
        const v = a.values, u = a.usage;
        const memory = v['memory-gb'] === undefined ? undefined : Number(v['memory-gb']);
        if (memory !== undefined && !(memory > 0)) u(`--memory-gb must be a positive number, got '${v['memory-gb']}'`);
        const maxLive = v['max-live'] === undefined ? undefined : Number(v['max-live']);
        if (maxLive !== undefined && !(maxLive >= 0)) u(`--max-live must be a number ≥ 0 (elements), got '${v['max-live']}'`);
        const prefetch = v.prefetch === undefined ? undefined : Number(v.prefetch);
        if (prefetch !== undefined && !(prefetch >= 0)) u(`--prefetch must be a number ≥ 0 (elements), got '${v.prefetch}'`);
        try {
          console.log(plan({
            preset: choiceOption(v.preset, 'preset', u, ['tiny', 'small', 'base', 'large'] as const), experts: intOption(v.experts, 'experts', u, 0), k: intOption(v.k, 'k', u),
            hardware: choiceOption(v.hardware, 'hardware', u, ['h100', 'a100-80', 'cpu'] as const), nodes: intOption(v.nodes, 'nodes', u), perNode: intOption(v['per-node'], 'per-node', u), memoryGb: memory,
            tp: intOption(v.tp, 'tp', u), ep: intOption(v.ep, 'ep', u), stage: intOption(v.stage, 'stage', u, 0, 3), offload: choiceOption(v.offload, 'offload', u, ['none', 'nvme'] as const),
            microBatch: intOption(v['micro-batch'], 'micro-batch', u), globalBatch: intOption(v['global-batch'], 'global-batch', u), precision: choiceOption(v.precision, 'precision', u, ['fp32', 'bf16', 'fp16'] as const),
            optimizer: choiceOption(v.optimizer, 'optimizer', u, ['adam', 'sgd-momentum', 'sgd'] as const), activationCheckpointing: v['activation-checkpointing'], maxLive, prefetch, search: v.search, top: intOption(v.top, 'top', u), json: v.json,
          }));
        } catch (e) {
          u((e as Error).message);
        }
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
      const name = 'eval';
      const a = parseCommand(rest, { name, usage: EVAL_USAGE, options: { run: { type: 'string' }, split: { type: 'string' }, limit: { type: 'string' }, batch: { type: 'string' } } });
      if (!a) return 0;
      await evaluateRun(a.values.run ?? a.usage('--run runs/<name> is required'), { split: choiceOption(a.values.split, 'split', a.usage, ['val', 'test'] as const), limit: intOption(a.values.limit, 'limit', a.usage), batchSize: intOption(a.values.batch, 'batch', a.usage) });
      return 0;
    }
    case 'bench': {
      const name = 'bench';
      const a = parseCommand(rest, { name, usage: BENCH_USAGE, options: { config: { type: 'string' }, fresh: { type: 'boolean' }, jobs: { type: 'string' } } });
      if (!a) return 0;
      await bench(a.values.config ?? null, { fresh: a.values.fresh === true, jobs: intOption(a.values.jobs, 'jobs', a.usage) });
      return 0;
    }
    case 'study': {
      const a = parseCommand(rest, { name: 'study', usage: STUDY_USAGE, options: { config: { type: 'string' }, budget: { type: 'string' }, seeds: { type: 'string' }, fresh: { type: 'boolean' }, jobs: { type: 'string' } } });
      if (!a) return 0;
      const seeds = a.values.seeds?.split(',').map((x, i) => intOption(x.trim(), `seeds (item ${i + 1})`, a.usage, 0)!);
      const budget = choiceOption(a.values.budget, 'budget', a.usage, ['quick', 'full'] as const);
      if (budget !== undefined && a.values.config !== undefined) a.usage('--budget picks a built-in study; --config sets its own models, seeds and steps: give one of them');
      await study(a.values.config ?? null, { seeds, fresh: a.values.fresh === true, jobs: intOption(a.values.jobs, 'jobs', a.usage), budget });
      return 0;
    }
    case 'import': {
      const name = 'import';
      const a = parseCommand(rest, {
        name, usage: IMPORT_USAGE,
        options: { format: { type: 'string' }, from: { type: 'string' }, out: { type: 'string' }, preset: { type: 'string' }, experts: { type: 'string' }, k: { type: 'string' }, 'image-size': { type: 'string' }, 'vocab-size': { type: 'string' }, tokenizer: { type: 'string' }, ignore: { type: 'string' } },
      });
      if (!a) return 0;
      const v = a.values;
      for (const k of ['format', 'from', 'out'] as const) if (v[k] === undefined) a.usage(`--${k} is required`);
      const r = importCheckpoint({
        format: choiceOption(v.format, 'format', a.usage, FORMATS)!, from: v.from!, out: v.out!,
        preset: choiceOption(v.preset, 'preset', a.usage, ['tiny', 'small', 'base', 'large'] as const), experts: intOption(v.experts, 'experts', a.usage, 0), k: intOption(v.k, 'k', a.usage),
        imageSize: intOption(v['image-size'], 'image-size', a.usage), vocabSize: intOption(v['vocab-size'], 'vocab-size', a.usage), tokenizer: v.tokenizer, ignore: v.ignore?.split(',').filter(Boolean),
      });
      console.log(`${r.runDir}: ${r.tensors} tensors (${(r.parameters / 1e6).toFixed(2)}M parameters) from ${v.from}; fine-tune with "init": "${r.runDir}"`);
      return 0;
    }
    case 'export': {
      const name = 'export';
      const a = parseCommand(rest, { name, usage: EXPORT_USAGE, options: { run: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' } } });
      if (!a) return 0;
      for (const k of ['run', 'format', 'out'] as const) if (a.values[k] === undefined) a.usage(`--${k} is required`);
      const r = exportCheckpoint({ run: a.values.run!, format: choiceOption(a.values.format, 'format', a.usage, FORMATS)!, out: a.values.out! });
      console.log(`${r.out}: ${r.tensors} tensors (${a.values.format})`);
      return 0;
    }
    case 'dashboard': {
      const a = parseCommand(rest, { name: 'dashboard', usage: DASHBOARD_USAGE, options: { runs: { type: 'string' }, port: { type: 'string' } } });
      if (!a) return 0;
      const d = await startDashboard({ runs: a.values.runs ?? 'runs', port: intOption(a.values.port, 'port', a.usage, 0, 65535) ?? DEFAULT_DASHBOARD_PORT });
      console.log(`vlmoe dashboard: ${d.url} (runs in ${a.values.runs ?? 'runs'}; Ctrl-C stops it)`);
      await new Promise<void>((resolve) => {
        const stop = () => void d.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return 0;
    }
    case 'data': {
      const require = createRequire(import.meta.url);
      const cli = require.resolve('@vlmoe/data').replace(/index\.js$/, 'cli.js');
      return spawnSync(process.execPath, [cli, ...rest], { stdio: 'inherit' }).status ?? 1;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'${T.didYouMean(cmd, COMMANDS)}`, USAGE);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    // a usage mistake: one line and the usage, status 2 (as argparse, getopt); a failure while running: status 1
    if (e instanceof UsageError) {
      console.error(`vlmoe${e.command ? ` ${e.command}` : ''}: ${e.message}\n\n${e.usage.trimEnd()}`);
      process.exitCode = 2;
    } else {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    }
  },
);
