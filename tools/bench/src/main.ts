#!/usr/bin/env node
/**
 * vlmoe benchmarks: `npm run bench -- <name>` with name in gemm | ops | train-step | data | moe | comm | all.
 * Each prints a table and writes tools/bench/results/<name>.json. VLMOE_BENCH_QUICK=1
 * runs smaller sizes (a smoke run, not for reporting).
 */
import { benchComm } from './comm.js';
import { benchData } from './data.js';
import { benchGemm } from './gemm.js';
import { benchMoe } from './moe.js';
import { benchOps } from './ops.js';
import { benchTrainStep, trainStepChild } from './train_step.js';

const benches: Record<string, () => void | Promise<void>> = { gemm: benchGemm, ops: benchOps, 'train-step': benchTrainStep, data: benchData, moe: benchMoe, comm: benchComm };

if (process.argv[2] === 'train-step-child') {
  trainStepChild(JSON.parse(process.argv[3]!));
  process.exit(0);
}

const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
if (names.length === 0 || names.includes('--help')) {
  console.log(`usage: npm run bench -- <${Object.keys(benches).join('|')}|all>`);
  process.exit(names.length === 0 ? 1 : 0);
}
for (const name of names.includes('all') ? Object.keys(benches) : names) {
  const b = benches[name];
  if (!b) {
    console.error(`unknown benchmark '${name}' (known: ${Object.keys(benches).join(', ')}, all)`);
    process.exit(1);
  }
  await b();
}
