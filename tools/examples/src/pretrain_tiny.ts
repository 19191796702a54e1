/**
 * Pretrains VL-MoE-tiny (or its dense twin with --experts 0) on the synthetic shapes world
 * with VLMo's objectives — ITC, ITM with hard negatives, MLM, plus the MoE balance / z
 * losses — from a program instead of the command line: a recipe object handed to
 * `@vlmoe/cli`'s `pretrain`, the same trainer `vlmoe pretrain --config` runs (run folder
 * `runs/pretrain-tiny/`, metrics, checkpoints, progress bar). Under
 * `npx vlmoe-run --nproc 2 tools/examples/dist/pretrain_tiny.js` it trains data-parallel
 * (add --ep 2 for expert parallelism) and computes the same losses. Exits non-zero if the
 * loss does not fall. Options: --steps N --experts E --ep P --batch B --lr X --data DIR.
 */
import { pretrain } from '@vlmoe/cli';

function arg(name: string, dflt: number | string): number | string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const raw = process.argv[i + 1];
  if (raw === undefined) throw new Error(`--${name} needs a value`);
  if (typeof dflt === 'number') {
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new Error(`--${name} expects a number, got '${raw}'`);
    return v;
  }
  return raw;
}

async function main(): Promise<void> {
  const steps = arg('steps', 60) as number, experts = arg('experts', 4) as number, ep = arg('ep', 1) as number;
  const r = await pretrain({
    name: 'pretrain-tiny', data: arg('data', 'data/shapes') as string, preset: 'tiny', experts, k: 1,
    steps, batch: arg('batch', 16) as number, lr: arg('lr', 2e-3) as number, warmup: Math.ceil(steps / 10), textLen: 24,
    checkpointEvery: steps, evalSplit: 'none', engine: { expert_parallel_size: ep },
  });
  const losses = r.losses;
  const k = Math.max(1, Math.floor(losses.length / 5));
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(losses.slice(0, k)), last = mean(losses.slice(-k));
  console.log(`loss ${first.toFixed(3)} → ${last.toFixed(3)} over ${losses.length} steps (run folder ${r.runDir})`);
  if (!(last < first)) {
    console.error('pretraining did not reduce the loss');
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
