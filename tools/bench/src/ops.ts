/**
 * Op benchmark: per-op overhead of `a.add(b)` on 1-element tensors (µs per op) and
 * throughput (GB/s of memory traffic) of elementwise ops, a reduction, softmax and
 * layerNorm on 16M-element float32 tensors — against PyTorch CPU in the same run, at its
 * best thread setting per case (torch.ts). The sides alternate in rounds (peer at every
 * setting, then ours at every thread setting; 3 rounds, 1 with VLMOE_BENCH_QUICK=1) and each
 * case keeps each side's best, so machine noise hits both sides alike.
 */
import * as T from '@vlmoe/tensor';
import { bestOverOurThreads, makeCase, printTable, timeit, writeResults, type Case } from './report.js';
import { mergePeerRounds, peerName, runTorchBest, type PeerBest } from './torch.js';

export function benchOps(): void {
  const info = T.nativeInfo();
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const n = quick ? 1 << 20 : 1 << 24;
  const cols = 1024;
  const rows = n / cols;
  const rounds = quick ? 1 : 3;
  const peerRounds: (PeerBest | null)[] = [];
  // ours: per case, the best seconds over rounds and thread settings
  const ours = new Map<string, { name: string; bytes: number; seconds: number; threads: number }>();
  const keep = (key: string, name: string, bytes: number, r: { seconds: number; threads: number }) => {
    const cur = ours.get(key);
    if (!cur || r.seconds < cur.seconds) ours.set(key, { name, bytes, ...r });
  };
  const a = T.ones([1]).keep();
  const b = T.ones([1]).keep();
  const x = T.randn([n]).keep();
  const y = T.randn([n]).keep();
  const m = x.reshape([rows, cols]).keep();
  const w = T.ones([cols]).keep();
  const bias = T.zeros([cols]).keep();
  const opts = { reps: 3, minTime: quick ? 0.1 : 0.3 };
  const f = 4 * n;
  const timed: [string, string, number, () => unknown][] = [
    ['add', 'add', 3 * f, () => T.add(x, y)],
    ['mul', 'mul', 3 * f, () => T.mul(x, y)],
    ['exp', 'exp', 2 * f, () => T.exp(x)],
    ['gelu', 'gelu', 2 * f, () => T.gelu(x)],
    ['tanh', 'tanh', 2 * f, () => T.tanh(x)],
    ['sum', 'sum', f, () => T.sum(x)],
    [`softmax [${rows}x${cols}]`, 'softmax', 2 * f, () => T.softmax(m, -1)],
    [`layerNorm [${rows}x${cols}]`, 'layer_norm', 2 * f, () => T.layerNorm(m, cols, w, bias)],
  ];
  for (let round = 0; round < rounds; round++) {
    peerRounds.push(runTorchBest('torch_ops.py', { n, rows, cols }, { argv: ['ops'] }));
    // Per-op overhead: one op per call, freed by the scope it runs in (batches of 1000).
    const perOp = timeit(() => T.scope(() => { for (let i = 0; i < 1000; ++i) a.add(b); }), { minTime: 0.3 }) / 1000;
    const perOpDispose = timeit(() => { for (let i = 0; i < 1000; ++i) a.add(b).dispose(); }, { minTime: 0.3 }) / 1000;
    keep('add_1elem scope', 'a.add(b), 1 element, in scope', 0, { seconds: perOp, threads: info.threads });
    keep('add_1elem dispose', 'a.add(b), 1 element, dispose()', 0, { seconds: perOpDispose, threads: info.threads });
    for (const [name, key, bytes, fn] of timed) keep(key, name, bytes, bestOverOurThreads(() => timeit(() => T.scope(() => { fn(); }), opts)));
  }
  for (const t of [a, b, x, y, m, w, bias]) t.dispose();
  const torch = mergePeerRounds(peerRounds);
  const p = (k: string) => (torch ? (torch.values[k] ?? null) : null);
  const cases: Case[] = [];
  for (const k of ['add_1elem scope', 'add_1elem dispose']) {
    const o = ours.get(k)!;
    cases.push(makeCase(o.name, 'µs/op', o.seconds * 1e6, p('add_1elem') === null ? null : p('add_1elem')! * 1e6, peerName(torch, 'add_1elem'), 'lower'));
  }
  const gb = (bytes: number, s: number) => bytes / s / 1e9;
  for (const [, key] of timed) {
    const o = ours.get(key)!;
    const ps = p(key);
    cases.push(makeCase(`${o.name} (${n / 2 ** 20}M) [ours: ${o.threads} thread${o.threads > 1 ? 's' : ''}]`, 'GB/s', gb(o.bytes, o.seconds), ps === null ? null : gb(o.bytes, ps), peerName(torch, key), 'higher'));
  }
  printTable(`Ops, float32, each side at its best thread setting (ours: 1 or ${info.threads}) over ${rounds} alternating round${rounds > 1 ? 's' : ''}, kernels = ${info.simd}`, cases);
  console.log(`\nwrote ${writeResults('ops', cases, { peerRuns: torch?.runs.map((r) => ({ setting: r.label, ...r.out })) ?? null })}`);
}
