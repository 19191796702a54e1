/**
 * GEMM benchmark: GFLOP/s of our float32 matmul (tensor API, shipped path) against
 * OpenBLAS's cblas_sgemm called directly in the same run, plus the built-in kernel's ratio.
 * Square n = 256..2048 and two transformer shapes. PyTorch's matmul is added when present.
 */
import { native } from '@vlmoe/native-cuda';
import * as T from '@vlmoe/tensor';
import { makeCase, printTable, timeit, writeResults, type Case } from './report.js';
import { runTorch } from './torch.js';

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [2048, 2048, 2048],
  [2048, 1024, 256], // [2048×256]·[256×1024]
  [2048, 256, 1024], // [2048×1024]·[1024×256]
];

export function benchGemm(): void {
  const info = T.nativeInfo();
  const shippedIsBuiltin = info.blas === 'builtin';
  const cases: Case[] = [];
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const shapes = quick ? SHAPES.filter(([m]) => m <= 512) : SHAPES;
  const torch = runTorch('gemm', { threads: info.threads, shapes });
  for (const [M, N, K] of shapes) {
    const flops = 2 * M * N * K;
    const label = `${M}x${N}x${K}`;
    T.scope(() => {
      const a = T.randn([M, K]);
      const b = T.randn([K, N]);
      const c = T.empty([M, N]);
      const opts = { reps: quick ? 2 : 5, minTime: quick ? 0.1 : 0.3 };
      // Peer first, then ours, each timed separately (OpenBLAS's idle threads spin for a
      // while after a call and would steal a core from whatever runs next).
      let blas: number | null = null;
      if (info.blasAvailable) {
        blas = timeit(() => native.blasSgemmDirect(M, N, K, a.storage.handle, b.storage.handle, c.storage.handle), opts);
        sleep(300);
      }
      let viaBlas: number | null = null;
      if (info.blasAvailable) {
        T.useBuiltinGemm(false);
        viaBlas = timeit(() => T.scope(() => { T.matmul(a, b); }), opts);
        sleep(300);
      }
      T.useBuiltinGemm(true);
      const builtin = timeit(() => T.scope(() => { T.matmul(a, b); }), opts);
      T.useBuiltinGemm(shippedIsBuiltin);
      sleep(300);
      const g = (s: number | null) => (s === null ? null : flops / s / 1e9);
      const tag = (path: string) => (path === info.blas ? ', shipped' : '');
      if (viaBlas !== null) cases.push(makeCase(`matmul ${label} (openblas path${tag('openblas')})`, 'GFLOP/s', g(viaBlas)!, g(blas), 'OpenBLAS cblas_sgemm', 'higher'));
      cases.push(makeCase(`matmul ${label} (builtin ${info.gemmKernel}${tag('builtin')})`, 'GFLOP/s', g(builtin)!, g(blas), 'OpenBLAS cblas_sgemm', 'higher'));
      const shipped = shippedIsBuiltin ? builtin : viaBlas!;
      if (torch) cases.push(makeCase(`matmul ${label} (shipped: ${info.blas})`, 'GFLOP/s', g(shipped)!, g(torch[label] ?? null), `PyTorch ${torch.torch_version ?? ''} matmul`, 'higher'));
    });
  }
  printTable(`GEMM float32, ${info.threads} threads, shipped path = ${info.blas} (${info.gemmChoice})`, cases);
  console.log(`\nwrote ${writeResults('gemm', cases)}`);
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
