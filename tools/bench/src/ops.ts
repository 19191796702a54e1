/**
 * Op benchmark: per-op overhead of `a.add(b)` on 1-element tensors (µs per op) and
 * throughput (GB/s of memory traffic) of elementwise ops, a reduction, softmax and
 * layerNorm on 16M-element float32 tensors — against PyTorch CPU in the same run, at its
 * best thread setting per case (torch.ts).
 */
import * as T from '@vlmoe/tensor';
import { bestOverOurThreads, makeCase, printTable, timeit, writeResults, type Case } from './report.js';
import { peerName, runTorchBest } from './torch.js';

export function benchOps(): void {
  const info = T.nativeInfo();
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const n = quick ? 1 << 20 : 1 << 24;
  const cols = 1024;
  const rows = n / cols;
  const torch = runTorchBest('torch_ops.py', { n, rows, cols }, { argv: ['ops'] });
  const cases: Case[] = [];
  const p = (k: string) => (torch ? (torch.values[k] ?? null) : null);

  // Per-op overhead: one op per call, freed by the scope it runs in (batches of 1000).
  const a = T.ones([1]).keep();
  const b = T.ones([1]).keep();
  const perOp = timeit(() => T.scope(() => { for (let i = 0; i < 1000; ++i) a.add(b); }), { minTime: 0.3 }) / 1000;
  const perOpDispose = timeit(() => { for (let i = 0; i < 1000; ++i) a.add(b).dispose(); }, { minTime: 0.3 }) / 1000;
  cases.push(makeCase('a.add(b), 1 element, in scope', 'µs/op', perOp * 1e6, p('add_1elem') === null ? null : p('add_1elem')! * 1e6, peerName(torch, 'add_1elem'), 'lower'));
  cases.push(makeCase('a.add(b), 1 element, dispose()', 'µs/op', perOpDispose * 1e6, p('add_1elem') === null ? null : p('add_1elem')! * 1e6, peerName(torch, 'add_1elem'), 'lower'));
  a.dispose();
  b.dispose();

  T.scope(() => {
    const x = T.randn([n]);
    const y = T.randn([n]);
    const m = x.reshape([rows, cols]);
    const w = T.ones([cols]);
    const bias = T.zeros([cols]);
    const gb = (bytes: number, s: number) => bytes / s / 1e9;
    const opts = { reps: 3, minTime: quick ? 0.1 : 0.3 };
    const run = (name: string, key: string, bytes: number, fn: () => unknown) => {
      const { seconds: s, threads } = bestOverOurThreads(() => timeit(() => T.scope(() => { fn(); }), opts));
      const ps = p(key);
      cases.push(makeCase(`${name} (${n / 2 ** 20}M) [ours: ${threads} thread${threads > 1 ? 's' : ''}]`, 'GB/s', gb(bytes, s), ps === null ? null : gb(bytes, ps), peerName(torch, key), 'higher'));
    };
    const f = 4 * n;
    run('add', 'add', 3 * f, () => T.add(x, y));
    run('mul', 'mul', 3 * f, () => T.mul(x, y));
    run('exp', 'exp', 2 * f, () => T.exp(x));
    run('gelu', 'gelu', 2 * f, () => T.gelu(x));
    run('tanh', 'tanh', 2 * f, () => T.tanh(x));
    run('sum', 'sum', f, () => T.sum(x));
    run(`softmax [${rows}x${cols}]`, 'softmax', 2 * f, () => T.softmax(m, -1));
    run(`layerNorm [${rows}x${cols}]`, 'layer_norm', 2 * f, () => T.layerNorm(m, cols, w, bias));
  });
  printTable(`Ops, float32, each side at its best thread setting (ours: 1 or ${info.threads}), kernels = ${info.simd}`, cases);
  console.log(`\nwrote ${writeResults('ops', cases, { peerRuns: torch?.runs.map((r) => ({ setting: r.label, ...r.out })) ?? null })}`);
}
