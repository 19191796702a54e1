import { afterAll, describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng, expectClose, flat, numel, refMatmul, refMm, refTranspose } from './helpers/ref_nn.js';
import { describeDevices, tol, type TestDevice } from './helpers/devices.js';

const rng = new Rng(42);
type DT = 'float32' | 'float64';

/** A [R, C] tensor from row-major values; `trans` stores it as [C, R] and returns the transposed view. */
function mat(vals: number[], R: number, C: number, dtype: DT, trans = false): T.Tensor {
  if (!trans) return T.tensor(vals, { dtype, shape: [R, C] });
  return T.tensor(refTranspose(vals, R, C), { dtype, shape: [C, R] }).t();
}

/** Tolerance bound per output element: |Σ a·b| error ≤ c·Σ|a||b|. */
function absBound(a: number[], b: number[], M: number, K: number, N: number): number[] {
  return refMm(a.map(Math.abs), b.map(Math.abs), M, K, N);
}

function expectGemmClose(got: ArrayLike<number>, want: number[], bound: number[], dtype: DT, what: string): void {
  const c = dtype === 'float32' ? 2e-6 : 1e-14;
  for (let i = 0; i < want.length; ++i) {
    const err = Math.abs(Number(got[i]) - want[i]!);
    if (!(err <= c * bound[i]! + 1e-30)) expect.fail(`${what}: element ${i} got ${got[i]} want ${want[i]} (err ${err}, bound ${c * bound[i]!})`);
  }
}

afterAll(() => T.useBuiltinGemm(false));

describe('matmul shapes (torch.matmul semantics)', () => {
  const cases: [number[], number[]][] = [
    [[5], [5]],
    [[4], [4, 3]],
    [[3, 4], [4]],
    [[3, 4], [4, 2]],
    [[2, 3, 4], [4]],
    [[4], [2, 4, 3]],
    [[2, 3, 4], [4, 5]],
    [[3, 4], [2, 4, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[2, 1, 3, 4], [5, 4, 6]],
    [[1, 3, 4], [2, 1, 4, 2]],
    [[2, 2, 1, 4], [2, 1, 4, 3]],
    [[1, 1], [1, 1]],
  ];
  for (const [as, bs] of cases) {
    for (const dtype of ['float32', 'float64'] as DT[]) {
      it(`${JSON.stringify(as)} · ${JSON.stringify(bs)} ${dtype}`, () => {
        const a = rng.uniforms(numel(as)), b = rng.uniforms(numel(bs));
        const [want, shape] = refMatmul(a, as, b, bs);
        const out = T.matmul(T.tensor(a, { dtype, shape: as }), T.tensor(b, { dtype, shape: bs }));
        expect(out.shape).toEqual(shape);
        expect(out.dtype).toBe(dtype);
        expectClose(flat(out), want, dtype === 'float32' ? 1e-5 : 1e-13, 1e-5);
      });
    }
  }

  it('method form and 1-D · 1-D gives a 0-dim tensor', () => {
    const out = T.tensor([1, 2, 3]).matmul(T.tensor([4, 5, 6]));
    expect(out.shape).toEqual([]);
    expect(out.item()).toBe(32);
  });

  it('empty dims: K = 0 gives zeros, M = 0 / N = 0 / batch 0 give empty results', () => {
    const z = T.matmul(T.ones([3, 0]), T.ones([0, 4]));
    expect(z.shape).toEqual([3, 4]);
    expect(flat(z)).toEqual(new Array(12).fill(0));
    expect(T.matmul(T.ones([0, 3]), T.ones([3, 4])).shape).toEqual([0, 4]);
    expect(T.matmul(T.ones([2, 3]), T.ones([3, 0])).shape).toEqual([2, 0]);
    expect(T.matmul(T.ones([0, 2, 3]), T.ones([3, 4])).shape).toEqual([0, 2, 4]);
    expect(T.bmm(T.ones([0, 2, 3]), T.ones([0, 3, 4])).shape).toEqual([0, 2, 4]);
    const zb = T.linear(T.ones([2, 0]), T.ones([3, 0]), T.tensor([1, 2, 3]));
    expect(zb.toArray()).toEqual([[1, 2, 3], [1, 2, 3]]);
    expect(flat(T.linear(T.ones([2, 0]), T.ones([3, 0])))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(T.linear(T.ones([0, 4]), T.ones([3, 4]), T.ones([3])).shape).toEqual([0, 3]);
  });

  it('clear errors name both shapes', () => {
    expect(() => T.matmul(T.ones([2, 3]), T.ones([4, 5]))).toThrow(/\[2, 3\].*\[4, 5\]/);
    expect(() => T.matmul(T.ones([2, 3, 4]), T.ones([3, 4, 5]))).toThrow(/batch dims.*\[2, 3, 4\].*\[3, 4, 5\]/);
    expect(() => T.matmul(T.ones([]), T.ones([3]))).toThrow(/at least one dimension/);
    expect(() => T.mm(T.ones([2, 3]), T.ones([2, 3]))).toThrow(/mm: shapes \[2, 3\] and \[2, 3\]/);
    expect(() => T.bmm(T.ones([2, 3, 4]), T.ones([3, 4, 5]))).toThrow(/bmm: shapes \[2, 3, 4\] and \[3, 4, 5\]/);
    expect(() => T.bmm(T.ones([3, 4]), T.ones([4, 5]))).toThrow(/bmm/);
    expect(() => T.matmul(T.ones([2, 2]), T.ones([2, 2], { dtype: 'float64' }))).toThrow(/dtypes differ/);
    expect(() => T.matmul(T.ones([2, 2], { dtype: 'int64' }), T.ones([2, 2], { dtype: 'int64' }))).toThrow(/float32 or float64/);
    expect(() => T.linear(T.ones([2, 3]), T.ones([4, 5]))).toThrow(/linear: input \[2, 3\].*\[4, 5\]/);
    expect(() => T.linear(T.ones([2, 3]), T.ones([4, 3]), T.ones([5]))).toThrow(/bias \[5\] must be \[4\]/);
    expect(() => T.linear(T.ones([2, 3]), T.ones([4, 3]), T.ones([4], { dtype: 'float64' }))).toThrow(/linear: bias dtype float64 differs from the input's float32/);
    expect(() => T.linear(T.ones([2, 3]), T.ones([4, 3]), T.ones([4], { dtype: 'int64' }))).toThrow(/bias dtype int64/);
  });
});

describe('GEMM paths against a float64 reference', () => {
  const sizes: [number, number, number][] = [
    [1, 1, 1], [1, 7, 1], [7, 1, 7], [7, 7, 7], [1, 129, 7], [129, 7, 1], [7, 129, 129], [129, 129, 129],
    [1000, 129, 7], [7, 129, 1000], [1000, 1, 1], [1, 1000, 129],
    // K = 45: the transposed-B pack's 16-, 8- and 1-wide k steps (2 x 16 + 8 + 5)
    [33, 45, 70],
  ];
  const data = sizes.map(([M, K, N]) => {
    const a = rng.uniforms(M * K), b = rng.uniforms(K * N);
    return { M, K, N, a, b, want: refMm(a, b, M, K, N), bound: absBound(a, b, M, K, N) };
  });
  for (const builtin of [false, true]) {
    const path = builtin ? 'builtin' : 'openblas';
    describe(path, () => {
      it('nativeInfo reports the active path', () => {
        T.useBuiltinGemm(builtin);
        const info = T.nativeInfo() as { blas: string; blasAvailable: boolean };
        expect(info.blas).toBe(builtin || !info.blasAvailable ? 'builtin' : 'openblas');
      });
      for (const dtype of ['float32', 'float64'] as DT[]) {
        it(`all sizes × all transpose combinations, ${dtype}`, () => {
          T.useBuiltinGemm(builtin);
          for (const { M, K, N, a, b, want, bound } of data) {
            for (const ta of [false, true])
              for (const tb of [false, true]) {
                T.scope(() => {
                  const A = mat(a, M, K, dtype, ta), B = mat(b, K, N, dtype, tb);
                  const out = T.mm(A, B);
                  expect(out.shape).toEqual([M, N]);
                  expectGemmClose(out.data() as Float32Array, want, bound, dtype, `${path} ${dtype} ${M}x${K}x${N} ta=${ta} tb=${tb}`);
                });
              }
          }
        });
      }
      it('batched with transposed operands and broadcast batch (bmm and matmul)', () => {
        T.useBuiltinGemm(builtin);
        const B = 3, M = 9, K = 17, N = 5;
        const a = rng.uniforms(B * M * K), b = rng.uniforms(K * N);
        const want: number[] = [];
        for (let q = 0; q < B; ++q) want.push(...refMm(a.slice(q * M * K, (q + 1) * M * K), b, M, K, N));
        for (const dtype of ['float32', 'float64'] as DT[]) {
          T.scope(() => {
            // a stored [B, K, M] and transposed; b broadcast over the batch (stride-0 batch).
            const at: number[] = [];
            for (let q = 0; q < B; ++q) at.push(...refTranspose(a.slice(q * M * K, (q + 1) * M * K), M, K));
            const A = T.tensor(at, { dtype, shape: [B, K, M] }).transpose(1, 2);
            const Bt = T.tensor(refTranspose(b, K, N), { dtype, shape: [N, K] }).t();
            expectClose(flat(T.matmul(A, Bt)), want, dtype === 'float32' ? 2e-5 : 1e-13, 1e-5, 'matmul');
            expectClose(flat(T.bmm(A, Bt.unsqueeze(0).expand(B, K, N))), want, dtype === 'float32' ? 2e-5 : 1e-13, 1e-5, 'bmm');
          });
        }
      });
      it('agrees with mmReference (the native triple loop)', () => {
        T.useBuiltinGemm(builtin);
        for (const [M, K, N] of [[1, 1, 1], [7, 129, 7], [129, 7, 129], [33, 65, 17]] as const) {
          T.scope(() => {
            const a = rng.uniforms(M * K), b = rng.uniforms(K * N);
            for (const ta of [false, true])
              for (const tb of [false, true]) {
                const A = mat(a, M, K, 'float64', ta), B = mat(b, K, N, 'float64', tb);
                expectClose(flat(T.mm(A, B)), flat(T.mmReference(A, B)), 1e-12, 1e-12, `${M}x${K}x${N}`);
                const A32 = mat(a, M, K, 'float32', ta), B32 = mat(b, K, N, 'float32', tb);
                expectClose(flat(T.mm(A32, B32)), flat(T.mmReference(A32, B32)), 1e-4, 1e-4);
              }
          });
        }
      });
    });
  }
  it('mmReference matches the float64 JS reference', () => {
    const M = 13, K = 29, N = 11;
    const a = rng.uniforms(M * K), b = rng.uniforms(K * N);
    expectClose(flat(T.mmReference(mat(a, M, K, 'float64'), mat(b, K, N, 'float64', true))), refMm(a, b, M, K, N), 1e-13, 1e-12);
    expect(() => T.mmReference(T.ones([2, 3]), T.ones([2, 3], { dtype: 'float64' }))).toThrow(/dtypes differ/);
  });
});

describe('non-contiguous operands', () => {
  for (const builtin of [false, true]) {
    it(`strided slices, column blocks, expanded rows and permuted batches (${builtin ? 'builtin' : 'openblas'})`, () => {
      T.useBuiltinGemm(builtin);
      T.scope(() => {
        const base = rng.uniforms(8 * 12);
        const big = T.tensor(base, { dtype: 'float64', shape: [8, 12] });
        const cols = (i0: number, n: number) => base.flatMap((_, i) => (i % 12 >= i0 && i % 12 < i0 + n ? [base[i]!] : []));
        // column block (ld = 12 > 5 columns)
        const A = big.narrow(1, 2, 5); // [8, 5]
        const b = rng.uniforms(5 * 3);
        expectClose(flat(T.mm(A, T.tensor(b, { dtype: 'float64', shape: [5, 3] }))), refMm(cols(2, 5), b, 8, 5, 3), 1e-13, 1e-12, 'column block');
        // step-2 slice (needs a copy)
        const S = big.slice(1, 0, 12, 2); // [8, 6]
        const sv = base.filter((_, i) => i % 2 === 0);
        const c = rng.uniforms(6 * 4);
        expectClose(flat(T.mm(S, T.tensor(c, { dtype: 'float64', shape: [6, 4] }))), refMm(sv, c, 8, 6, 4), 1e-13, 1e-12, 'step slice');
        // transposed column block on the right
        const R = big.narrow(1, 1, 4).t(); // [4, 8]
        const rv = refTranspose(cols(1, 4), 8, 4);
        const d = rng.uniforms(3 * 4);
        expectClose(flat(T.mm(T.tensor(d, { dtype: 'float64', shape: [3, 4] }), R)), refMm(d, rv, 3, 4, 8), 1e-13, 1e-12, 'transposed block');
        // expanded (stride-0) rows
        const row = rng.uniforms(5);
        const E = T.tensor(row, { dtype: 'float64', shape: [1, 5] }).expand(4, 5);
        const e = rng.uniforms(5 * 2);
        expectClose(flat(T.mm(E, T.tensor(e, { dtype: 'float64', shape: [5, 2] }))), refMm([...row, ...row, ...row, ...row], e, 4, 5, 2), 1e-13, 1e-12, 'expanded');
        // permuted batch dims: [K, B, M] -> [B, M, K] view
        const Bn = 3, M = 4, K = 6, N = 2;
        const p = rng.uniforms(K * Bn * M);
        const P = T.tensor(p, { dtype: 'float64', shape: [K, Bn, M] }).permute(1, 2, 0);
        const q = rng.uniforms(Bn * K * N);
        const want: number[] = [];
        for (let bi = 0; bi < Bn; ++bi) {
          const am: number[] = [];
          for (let i = 0; i < M; ++i) for (let k = 0; k < K; ++k) am.push(p[k * Bn * M + bi * M + i]!);
          want.push(...refMm(am, q.slice(bi * K * N, (bi + 1) * K * N), M, K, N));
        }
        expectClose(flat(T.bmm(P, T.tensor(q, { dtype: 'float64', shape: [Bn, K, N] }))), want, 1e-13, 1e-12, 'permuted batch');
        // an offset view (select a batch)
        const s1 = T.tensor(q, { dtype: 'float64', shape: [Bn, K, N] }).select(0, 2);
        expectClose(flat(T.mm(P.select(0, 2), s1)), want.slice(2 * M * N), 1e-13, 1e-12, 'offset view');
      });
    });
  }
  it('the inputs are left unchanged', () => {
    const a = T.randn([3, 4]), b = T.randn([5, 4]);
    const a0 = flat(a), b0 = flat(b);
    T.matmul(a, b.t());
    T.linear(a, b, T.ones([5]));
    expect(flat(a)).toEqual(a0);
    expect(flat(b)).toEqual(b0);
  });
});

describe('linear', () => {
  const ref = (x: number[], rows: number, inF: number, w: number[], outF: number, b?: number[]) => {
    const y = refMm(x, refTranspose(w, outF, inF), rows, inF, outF);
    return b ? y.map((v, i) => v + b[i % outF]!) : y;
  };
  for (const dtype of ['float32', 'float64'] as DT[]) {
    it(`x·Wᵀ + b, with and without bias, 1-D / 2-D / 3-D x, ${dtype}`, () => {
      const tol = dtype === 'float32' ? 1e-5 : 1e-13;
      const inF = 7, outF = 5;
      const w = rng.uniforms(outF * inF), b = rng.uniforms(outF);
      const W = T.tensor(w, { dtype, shape: [outF, inF] }), Bt = T.tensor(b, { dtype });
      for (const xs of [[inF], [3, inF], [2, 3, inF], [1, 1, inF]]) {
        const x = rng.uniforms(numel(xs));
        const rows = numel(xs) / inF;
        const X = T.tensor(x, { dtype, shape: xs });
        const y = T.linear(X, W, Bt);
        expect(y.shape).toEqual([...xs.slice(0, -1), outF]);
        expectClose(flat(y), ref(x, rows, inF, w, outF, b), tol, 1e-5, 'bias');
        expectClose(flat(T.linear(X, W)), ref(x, rows, inF, w, outF), tol, 1e-5, 'no bias');
        expectClose(flat(T.linear(X, W, null)), ref(x, rows, inF, w, outF), tol, 1e-5, 'null bias');
      }
    });
  }
  for (const builtin of [false, true]) {
    it(`transposed weight, non-contiguous x and strided bias (${builtin ? 'builtin' : 'openblas'})`, () => {
      T.useBuiltinGemm(builtin);
      const inF = 6, outF = 4, rows = 5;
      const w = rng.uniforms(outF * inF), x = rng.uniforms(rows * inF), b = rng.uniforms(outF * 2);
      const Wt = T.tensor(refTranspose(w, outF, inF), { dtype: 'float64', shape: [inF, outF] }).t();
      const Xt = T.tensor(refTranspose(x, rows, inF), { dtype: 'float64', shape: [inF, rows] }).t();
      const Bs = T.tensor(b, { dtype: 'float64' }).slice(0, 0, 8, 2);
      const bb = b.filter((_, i) => i % 2 === 0);
      expectClose(flat(T.linear(Xt, Wt, Bs)), ref(x, rows, inF, w, outF, bb), 1e-13, 1e-12);
      // x as a 3-D permuted view
      const X3 = T.tensor(x, { dtype: 'float64', shape: [rows, inF] }).reshape(5, 1, 6).permute(1, 0, 2);
      expectClose(flat(T.linear(X3, Wt, Bs)), ref(x, rows, inF, w, outF, bb), 1e-13, 1e-12);
    });
  }
});

describe('gradients (gradcheck, float64)', () => {
  const g = (fn: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[]) => {
    const r = T.gradcheck(fn, xs);
    expect(r.failure, JSON.stringify(r)).toBeUndefined();
    expect(r.ok).toBe(true);
  };
  const rq = (shape: number[]) => T.randn(shape, { dtype: 'float64', requiresGrad: true });
  for (const builtin of [false, true]) {
    describe(builtin ? 'builtin GEMM' : 'openblas GEMM', () => {
      it('matmul for every rank combination', () => {
        T.useBuiltinGemm(builtin);
        const cases: [number[], number[]][] = [
          [[4], [4]], [[4], [4, 3]], [[3, 4], [4]], [[3, 4], [4, 2]], [[2, 3, 4], [4, 5]], [[3, 4], [2, 4, 5]],
          [[2, 1, 3, 4], [5, 4, 6]], [[2, 3, 4], [4]], [[4], [2, 4, 3]],
        ];
        for (const [as, bs] of cases) g((a, b) => T.matmul(a!, b!), [rq(as), rq(bs)]);
      });
      it('matmul with transposed / non-contiguous operands', () => {
        T.useBuiltinGemm(builtin);
        g((a, b) => T.matmul(a!.t(), b!.slice(1, 0, 6, 2)), [rq([4, 3]), rq([4, 6])]);
        g((a, b) => T.matmul(a!.transpose(1, 2), b!.permute(0, 2, 1)), [rq([2, 4, 3]), rq([2, 5, 4])]);
      });
      it('bmm and mm', () => {
        T.useBuiltinGemm(builtin);
        g((a, b) => T.bmm(a!, b!), [rq([3, 2, 4]), rq([3, 4, 5])]);
        g((a, b) => T.bmm(a!, b!.transpose(1, 2)), [rq([2, 3, 4]), rq([2, 5, 4])]);
        g((a, b) => T.mm(a!, b!), [rq([3, 4]), rq([4, 2])]);
        // only one input requires grad
        g((a, b) => T.mm(a!, b!), [rq([3, 4]), T.randn([4, 2], { dtype: 'float64' })]);
        g((a, b) => T.mm(a!, b!), [T.randn([3, 4], { dtype: 'float64' }), rq([4, 2])]);
      });
      it('linear with and without bias, 3-D x', () => {
        T.useBuiltinGemm(builtin);
        g((x, w, b) => T.linear(x!, w!, b!), [rq([3, 4]), rq([5, 4]), rq([5])]);
        g((x, w) => T.linear(x!, w!), [rq([2, 3, 4]), rq([5, 4])]);
        g((x, w, b) => T.linear(x!, w!, b!), [rq([2, 3, 4]), rq([5, 4]), rq([5])]);
        g((x, w, b) => T.linear(x!, w!.t(), b!), [rq([4]), rq([4, 5]), rq([5])]);
        g((x, w, b) => T.linear(x!, w!, b!), [T.randn([2, 4], { dtype: 'float64' }), rq([3, 4]), rq([3])]);
      });
    });
  }
  it('broadcast matmul gradients have the input shapes and sum over broadcast batches', () => {
    T.useBuiltinGemm(false);
    const a = T.ones([2, 1, 3, 4], { dtype: 'float64', requiresGrad: true });
    const b = T.ones([5, 4, 6], { dtype: 'float64', requiresGrad: true });
    T.matmul(a, b).sum().backward();
    expect(a.grad!.shape).toEqual([2, 1, 3, 4]);
    expect(b.grad!.shape).toEqual([5, 4, 6]);
    expect(new Set(flat(a.grad!))).toEqual(new Set([30])); // 5 batches · 6 columns
    expect(new Set(flat(b.grad!))).toEqual(new Set([6])); // 2 batches · 3 rows
  });
  it('gradients through empty dims are empty or zero', () => {
    const a = T.ones([3, 0], { requiresGrad: true }), b = T.ones([0, 4], { requiresGrad: true });
    T.matmul(a, b).sum().backward();
    expect(a.grad!.shape).toEqual([3, 0]);
    expect(b.grad!.shape).toEqual([0, 4]);
    const x = T.ones([0, 5], { requiresGrad: true }), w = T.ones([2, 5], { requiresGrad: true }), bias = T.ones([2], { requiresGrad: true });
    T.linear(x, w, bias).sum().backward();
    expect(x.grad!.shape).toEqual([0, 5]);
    expect(flat(w.grad!)).toEqual(new Array(10).fill(0));
    expect(flat(bias.grad!)).toEqual([0, 0]);
  });
  it('linear bias gradient sums over all leading dims', () => {
    const x = T.ones([2, 3, 4], { dtype: 'float64' });
    const w = T.ones([5, 4], { dtype: 'float64', requiresGrad: true });
    const b = T.zeros([5], { dtype: 'float64', requiresGrad: true });
    T.linear(x, w, b).sum().backward();
    expect(flat(b.grad!)).toEqual([6, 6, 6, 6, 6]);
    expect(new Set(flat(w.grad!))).toEqual(new Set([6]));
  });
});

// The same products on every device (cuda:0 runs cuBLAS, then our own kernel via
// useBuiltinGemm; both against the float64 reference), with fresh outputs poisoned.
describeDevices('matmul', (device) => {
  const on = (vals: number[], shape: number[], dtype: DT) => T.toDevice(T.tensor(vals, { dtype, shape }), device);
  for (const builtin of [false, true]) {
    for (const dtype of ['float32', 'float64'] as DT[]) {
      it(`${builtin ? 'own kernel' : 'default path'}, ${dtype}: tile edges, transposed views, batches with a broadcast operand, K = 0`, () => {
        T.useBuiltinGemm(builtin);
        try {
          for (const [M, K, N] of [[1, 1, 1], [33, 65, 17], [64, 32, 96], [130, 300, 70]] as const) {
            for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
              const a = rng.uniforms(M * K), b = rng.uniforms(K * N);
              // transposed views made on the device (stored [K, M] / [N, K])
              const A = ta ? on(refTranspose(a, M, K), [K, M], dtype).t() : on(a, [M, K], dtype);
              const B = tb ? on(refTranspose(b, K, N), [N, K], dtype).t() : on(b, [K, N], dtype);
              const out = T.matmul(A, B);
              expect(out.device).toBe(device === 'cpu' ? 'cpu' : 'cuda:0');
              expectGemmCloseOn(flat(out), refMm(a, b, M, K, N), absBound(a, b, M, K, N), device, dtype, `${device} ${M}x${K}x${N} ta=${ta} tb=${tb}`);
            }
          }
          // [3, M, K] · [K, N]: B broadcast over the batch (stride 0)
          const M = 20, K = 40, N = 36;
          const a = rng.uniforms(3 * M * K), b = rng.uniforms(K * N);
          const got = flat(T.matmul(on(a, [3, M, K], dtype), on(b, [K, N], dtype)));
          for (let i = 0; i < 3; i++) {
            const ai = a.slice(i * M * K, (i + 1) * M * K);
            expectGemmCloseOn(got.slice(i * M * N, (i + 1) * M * N), refMm(ai, b, M, K, N), absBound(ai, b, M, K, N), device, dtype, `${device} batch ${i}`);
          }
          // K = 0: zeros
          expect(flat(T.matmul(on([], [4, 0], dtype), on([], [0, 5], dtype)))).toEqual(new Array(20).fill(0));
        } finally {
          T.useBuiltinGemm(false);
        }
      });
    }
  }
});

function expectGemmCloseOn(got: ArrayLike<number>, want: number[], bound: number[], device: TestDevice, dtype: DT, what: string): void {
  const c = dtype === 'float64' ? 1e-14 : tol(device, dtype);
  for (let i = 0; i < want.length; ++i) {
    const err = Math.abs(Number(got[i]) - want[i]!);
    if (!(err <= c * bound[i]! + 1e-30)) expect.fail(`${what}: element ${i} got ${got[i]} want ${want[i]} (err ${err}, bound ${c * bound[i]!})`);
  }
}
