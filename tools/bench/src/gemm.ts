/**
 * GEMM benchmark: GFLOP/s of our float32 matmul (tensor API, shipped path) against
 * OpenBLAS's cblas_sgemm called directly in the same run, plus the built-in kernel's ratio.
 * Square n = 256..2048 and two transformer shapes. PyTorch's matmul is added when present.
 */
import { native } from '@vlmoe/native-cuda';
import * as T from '@vlmoe/tensor';
import { makeCase, printTable, runChild, timeit, writeResults, type Case } from './report.js';
import { peerName, runTorchBest } from './torch.js';

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [2048, 2048, 2048],
  [2048, 1024, 256], // [2048×256]·[256×1024]
  [2048, 256, 1024], // [2048×1024]·[1024×256]
];

/** OPENBLAS_CORETYPE values the OpenBLAS peer runs under (null: the library's own detection). */
export const BLAS_CORETYPES: readonly (string | null)[] = [null, 'Haswell', 'SkylakeX'];

export interface BlasChildArgs {
  shapes: [number, number, number][];
  reps: number;
  minTime: number;
}

/**
 * Runs in a child process (OPENBLAS_CORETYPE is read when OpenBLAS loads): cblas_sgemm on
 * each shape, timed, and checked against a float64 reference on 256 sampled entries of C —
 * |c − ref| ≤ K · 2⁻²³ · Σ|a·b| (the bound of a K-term float32 sum) — so a kernel set that
 * misbehaves on this CPU cannot count as fast. Prints one JSON line.
 */
export function gemmBlasChild(args: BlasChildArgs): void {
  const info = T.nativeInfo();
  if (!info.blasAvailable) throw new Error('this build has no OpenBLAS (see packages/native-cuda/README.md)');
  const out: Record<string, unknown> = { core: info.gemmChoice };
  const gen = new T.Generator(1);
  for (const [M, N, K] of args.shapes) {
    T.scope(() => {
      const a = T.randn([M, K], { generator: gen }), b = T.randn([K, N], { generator: gen }), c = T.empty([M, N]);
      const s = timeit(() => native.blasSgemmDirect(M, N, K, a.storage.handle, b.storage.handle, c.storage.handle), { reps: args.reps, minTime: args.minTime });
      const [A, B, C] = [a, b, c].map((t) => t.dataSync() as Float32Array) as [Float32Array, Float32Array, Float32Array];
      let worst = 0;
      for (let n = 0; n < 256; n++) {
        const i = (n * 7919) % M, j = (n * 104729) % N;
        let ref = 0, mag = 0;
        for (let k = 0; k < K; k++) {
          const p = A[i * K + k]! * B[k * N + j]!;
          ref += p;
          mag += Math.abs(p);
        }
        worst = Math.max(worst, Math.abs(C[i * N + j]! - ref) / (K * 2 ** -23 * mag));
      }
      out[`${M}x${N}x${K}`] = s;
      out[`${M}x${N}x${K}_err`] = worst; // ≤ 1: within the bound
    });
  }
  console.log(JSON.stringify(out));
}

/** The OpenBLAS peer under each OPENBLAS_CORETYPE, each in its own process. */
function blasPeers(shapes: [number, number, number][], quick: boolean): { coretype: string | null; out: Record<string, number | string> }[] {
  return BLAS_CORETYPES.map((coretype) => {
    const args: BlasChildArgs = { shapes, reps: quick ? 2 : 5, minTime: quick ? 0.1 : 0.3 };
    const out = runChild<Record<string, number | string>>('gemm-blas-child', args, { env: { OPENBLAS_CORETYPE: coretype ?? undefined }, what: `OpenBLAS peer (OPENBLAS_CORETYPE=${coretype ?? '(unset)'})` });
    return { coretype, out };
  });
}

export function benchGemm(): void {
  const info = T.nativeInfo();
  const shippedIsBuiltin = info.blas === 'builtin';
  const cases: Case[] = [];
  const quick = process.env.VLMOE_BENCH_QUICK === '1';
  const shapes = quick ? SHAPES.filter(([m]) => m <= 512) : SHAPES;
  const torch = runTorchBest('torch_ops.py', { shapes }, { argv: ['gemm'] });
  const blas = info.blasAvailable ? blasPeers(shapes, quick) : [];
  const kernels = (core: unknown) => /'([^']+)'/.exec(String(core))?.[1] ?? String(core);
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
      let direct: number | null = null;
      if (info.blasAvailable) {
        direct = timeit(() => native.blasSgemmDirect(M, N, K, a.storage.handle, b.storage.handle, c.storage.handle), opts);
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
      if (viaBlas !== null) cases.push(makeCase(`matmul ${label} (openblas path${tag('openblas')})`, 'GFLOP/s', g(viaBlas)!, g(direct), 'OpenBLAS cblas_sgemm (this process)', 'higher'));
      cases.push(makeCase(`matmul ${label} (builtin ${info.gemmKernel}${tag('builtin')})`, 'GFLOP/s', g(builtin)!, g(direct), 'OpenBLAS cblas_sgemm (this process)', 'higher'));
      const shipped = shippedIsBuiltin ? builtin : viaBlas!;
      // the bar: OpenBLAS in its own process under each kernel set, results checked against float64
      for (const p of blas) {
        const ok = (p.out[`${label}_err`] as number) <= 1;
        cases.push(makeCase(`matmul ${label} (shipped: ${info.blas}) vs OPENBLAS_CORETYPE=${p.coretype ?? '(unset)'}`, 'GFLOP/s', g(shipped)!, ok ? g(p.out[label] as number) : null, `OpenBLAS cblas_sgemm, '${kernels(p.out.core)}' kernels${ok ? '' : ': WRONG RESULTS (no rate)'}`, 'higher'));
      }
      if (torch) cases.push(makeCase(`matmul ${label} (shipped: ${info.blas})`, 'GFLOP/s', g(shipped)!, g(torch.values[label] ?? null), peerName(torch, label, 'matmul'), 'higher'));
    });
  }
  printTable(`GEMM float32, ${info.threads} threads, shipped path = ${info.blas} (${info.gemmChoice})`, cases);
  console.log(`\nwrote ${writeResults('gemm', cases, { blasPeers: blas, peerRuns: torch?.runs.map((r) => ({ setting: r.label, ...r.out })) ?? null })}`);
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
