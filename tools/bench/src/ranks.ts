/**
 * What the multi-rank benchmarks (`parallel`, `zero`) share: a job of N ranks started through
 * vlmoe-run on this benchmark's own child mode, this rank's share of a random pretraining
 * batch, and one engine pretraining step.
 */
import * as T from '@vlmoe/tensor';
import type { VLMoConfig, VLMoPretrainer } from '@vlmoe/moe';
import type { DistributedEngine } from '@vlmoe/parallel';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { randomPretrainBatch } from './model.js';

const require = createRequire(import.meta.url);

/** Runs `main.js <mode> <JSON args>` on `nproc` ranks (shm) and returns the JSON line rank 0 printed last. */
export function runRanks<R>(nproc: number, mode: string, args: unknown, what: string): R {
  const launcher = require.resolve('@vlmoe/parallel').replace(/index\.js$/, 'launcher.js');
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), main, mode, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${what}: no result line in\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as R;
}

/** Rows [rank·B/size, (rank+1)·B/size) of one random global batch of B (seed 100), kept. */
export function localPretrainBatch(config: VLMoConfig, globalBatch: number, rank: number, size: number): ReturnType<typeof randomPretrainBatch> {
  const local = globalBatch / size;
  return T.scope(() => {
    const whole = randomPretrainBatch(config, globalBatch, new T.Generator(100));
    return Object.fromEntries(Object.entries(whole).map(([k, t]) => [k, T.contiguous(t.narrow(0, rank * local, local)).keep()])) as typeof whole;
  });
}

/** One pretraining step through the engine (forward, backward, step; objective seed 1000 + i); returns the loss. */
export function enginePretrainStep(engine: DistributedEngine, batch: ReturnType<typeof randomPretrainBatch>, i: number): number {
  return T.scope(() => {
    const out = engine.forward<[Parameters<VLMoPretrainer['forward']>[0]], ReturnType<VLMoPretrainer['forward']>>({ ...batch, generator: new T.Generator(1000 + i) });
    engine.backward(out.loss);
    engine.step();
    return out.loss.item();
  });
}
