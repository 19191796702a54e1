#!/usr/bin/env node
/**
 * vlmoe benchmarks: `npm run bench -- <name>` with name in gemm | ops | train-step | data | moe | model | comm | parallel | zero | all.
 * Each prints a table and writes tools/bench/results/<name>.json. VLMOE_BENCH_QUICK=1
 * runs smaller sizes (a smoke run, not for reporting).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchComm } from './comm.js';
import { benchData } from './data.js';
import { benchGemm, gemmBlasChild } from './gemm.js';
import { benchModel, modelChild } from './model.js';
import { benchMoe } from './moe.js';
import { benchOps } from './ops.js';
import { benchParallel, parallelChild } from './parallel.js';
import { benchZero, zeroChild } from './zero.js';
import { benchTrainStep, trainStepChild } from './train_step.js';

const benches: Record<string, () => void | Promise<void>> = { gemm: benchGemm, ops: benchOps, 'train-step': benchTrainStep, data: benchData, moe: benchMoe, model: benchModel, comm: benchComm, parallel: benchParallel, zero: benchZero };

if (process.argv[2] === 'gemm-blas-child') {
  gemmBlasChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}
if (process.argv[2] === 'model-child') {
  modelChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}
if (process.argv[2] === 'parallel-child') {
  await parallelChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}
if (process.argv[2] === 'zero-child') {
  zeroChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}
if (process.argv[2] === 'train-step-child') {
  trainStepChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}

const USAGE = `usage: npm run bench -- <${Object.keys(benches).join('|')}|all> [more names]   (or: vlmoe-bench <name>…)

Each benchmark measures vlmoe against a peer in the same run and prints ratios
(> 1: ours is better); results go to tools/bench/results/<name>.json.
VLMOE_BENCH_QUICK=1 runs small sizes (a smoke run, not for reporting).`;

let parsed: { values: { help?: boolean; version?: boolean }; positionals: string[] };
try {
  parsed = parseArgs({ args: process.argv.slice(2), options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } }, allowPositionals: true, strict: true });
} catch (e) {
  console.error(`vlmoe-bench: ${(e as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (parsed.values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (parsed.values.version) {
  console.log(`vlmoe-bench ${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}`);
  process.exit(0);
}
const names = parsed.positionals;
if (names.length === 0) {
  console.error(USAGE);
  process.exit(2);
}
const unknown = names.filter((n) => n !== 'all' && !benches[n]);
if (unknown.length) {
  console.error(`vlmoe-bench: unknown benchmark '${unknown[0]}' (known: ${Object.keys(benches).join(', ')}, all)`);
  process.exit(2);
}
for (const name of names.includes('all') ? Object.keys(benches) : names) await benches[name]!();
