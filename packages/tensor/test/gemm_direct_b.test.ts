/**
 * The builtin GEMM reads B in place (no packing) when a tile has few rows (at most 4 micro-
 * panels of A: the ~32 tokens an expert gets in a MoE layer). The kernel then does exactly the
 * arithmetic of the packed path, so: every builtin kernel (AVX-512, AVX2, portable), B
 * contiguous or a column block of a wider matrix, row counts around the threshold, K over one
 * and two KC blocks, N with and without a narrower last panel — the same bits as with
 * VLMOE_GEMM_PACK_B=always, and within the float32 bound of a float64 reference.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/gemm_child.mjs', import.meta.url));
// [M, K, N, seed]: M around 4·MR (MR = 8 AVX-512, 6 AVX2, 4 portable), K past KC (384 / 256), N past NR (32 / 16 / 8)
const SHAPES = [[1, 7, 33, 1], [5, 129, 32, 2], [8, 64, 100, 3], [23, 400, 31, 4], [24, 300, 64, 5], [25, 129, 97, 6], [32, 257, 65, 7], [33, 500, 40, 8], [16, 1, 48, 9]];

function run(env: Record<string, string>): { kernel: string; results: Float32Array[] } {
  const r = spawnSync(process.execPath, [CHILD, JSON.stringify(SHAPES)], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { kernel: string; results: string[] };
  return { kernel: out.kernel, results: out.results.map((b) => new Float32Array(Uint8Array.from(Buffer.from(b, 'base64')).buffer)) };
}

/** float64 A·B of the same draws, and Σ|a||b| per element (the float32 error bound's scale). */
function reference(M: number, K: number, N: number, seed: number): { want: Float64Array; mag: Float64Array } {
  const gen = new T.Generator(seed);
  const a = T.randn([M, K], { generator: gen }).dataSync();
  const wide = T.randn([K, N + 13], { generator: gen }).dataSync();
  const want = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0, m = 0;
      for (let k = 0; k < K; k++) {
        const p = a[i * K + k]! * wide[k * (N + 13) + 5 + j]!;
        s += p;
        m += Math.abs(p);
      }
      want[i * N + j] = s;
      mag[i * N + j] = m;
    }
  return { want, mag };
}

const x86 = ['avx512', 'avx2-fma'].includes(T.nativeInfo().gemmKernel);
const kernels = [...(T.nativeInfo().gemmKernel === 'avx512' ? ['avx512'] : []), ...(x86 ? ['avx2'] : []), 'portable'];

describe('builtin GEMM, B read in place for few rows', () => {
  const refs = SHAPES.map(([M, K, N, seed]) => reference(M!, K!, N!, seed!));
  for (const kernel of kernels) {
    it(`${kernel} kernel: the same bits as packing B, within the float32 bound`, () => {
      const direct = run({ VLMOE_GEMM_SIMD: kernel });
      const packed = run({ VLMOE_GEMM_SIMD: kernel, VLMOE_GEMM_PACK_B: 'always' });
      expect(direct.kernel).toBe(kernel === 'avx2' ? 'avx2-fma' : kernel);
      SHAPES.forEach(([M, K, N], s) => {
        const { want, mag } = refs[s]!;
        for (const layout of [0, 1]) {
          const d = direct.results[2 * s + layout]!, p = packed.results[2 * s + layout]!;
          const what = `${kernel} ${M}x${K}x${N} ${layout ? 'strided' : 'contiguous'} B`;
          expect(Array.from(d), what).toEqual(Array.from(p));
          for (let i = 0; i < want.length; i++) {
            if (!(Math.abs(d[i]! - want[i]!) <= K! * 2 ** -23 * mag[i]! + 1e-30)) expect.fail(`${what}: element ${i} got ${d[i]} want ${want[i]}`);
          }
        }
      });
    });
  }
});
