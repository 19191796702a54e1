import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng, expectClose, flat, refMm } from './helpers/ref_nn.js';

const rng = new Rng(61);
const f64 = (vals: number[], shape: number[], requiresGrad = false) => T.tensor(vals, { dtype: 'float64', shape, requiresGrad });
const rand = (n: number) => rng.uniforms(n, -2, 2);

/**
 * A random routing of S tokens × k choices onto R rows: distinct rows, some assignments
 * dropped (−1), and (when R is larger than the kept count) rows no assignment targets.
 */
function randomRows(S: number, k: number, R: number, dropRate: number): number[] {
  const free = Array.from({ length: R }, (_, i) => i);
  for (let i = R - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [free[i], free[j]] = [free[j]!, free[i]!];
  }
  const row: number[] = [];
  for (let a = 0; a < S * k; a++) row.push(free.length && rng.next() >= dropRate ? free.pop()! : -1);
  return row;
}

function refPermute(x: number[], S: number, k: number, d: number, R: number, row: number[], w?: number[]): number[] {
  const out = new Array<number>(R * d).fill(0);
  for (let a = 0; a < S * k; a++) {
    if (row[a]! < 0) continue;
    const s = Math.floor(a / k);
    for (let i = 0; i < d; i++) out[row[a]! * d + i] = (w ? w[a]! : 1) * x[s * d + i]!;
  }
  return out;
}

function refUnpermute(y: number[], S: number, k: number, d: number, row: number[], w?: number[]): number[] {
  const out = new Array<number>(S * d).fill(0);
  for (let a = 0; a < S * k; a++) {
    if (row[a]! < 0) continue;
    const s = Math.floor(a / k);
    for (let i = 0; i < d; i++) out[s * d + i] += (w ? w[a]! : 1) * y[row[a]! * d + i]!;
  }
  return out;
}

const check = (fn: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[]) => {
  const r = T.gradcheck(fn, xs);
  expect(r.failure, JSON.stringify(r)).toBeUndefined();
  expect(r.ok).toBe(true);
};

describe('moePermute / moeUnpermute', () => {
  for (const [S, k, d, extra, drop] of [[37, 1, 5, 0, 0.2], [29, 2, 7, 6, 0.3], [16, 3, 4, 0, 0], [9, 2, 1, 3, 1]] as const) {
    it(`match loops for S=${S} k=${k} d=${d} (${extra} padding rows, drop rate ${drop}), weighted and not`, () => {
      const R = S * k + extra;
      const row = randomRows(S, k, R, drop);
      const x = rand(S * d), w = rand(S * k), y = rand(R * d);
      const rowT = T.tensor(row, { dtype: 'int64', shape: [S, k] });
      for (const dtype of ['float64', 'float32'] as const) {
        const tol = dtype === 'float64' ? 1e-12 : 1e-5;
        const xt = T.tensor(x, { dtype, shape: [S, d] }), wt = T.tensor(w, { dtype, shape: [S, k] }), yt = T.tensor(y, { dtype, shape: [R, d] });
        expectClose(flat(T.moePermute(xt, rowT, R)), refPermute(x, S, k, d, R, row), tol, tol, 'permute');
        expectClose(flat(T.moePermute(xt, rowT, R, wt)), refPermute(x, S, k, d, R, row, w), tol, tol, 'weighted permute');
        expectClose(flat(T.moeUnpermute(yt, rowT)), refUnpermute(y, S, k, d, row), tol, tol, 'unpermute');
        expectClose(flat(T.moeUnpermute(yt, rowT, wt)), refUnpermute(y, S, k, d, row, w), tol, tol, 'weighted unpermute');
      }
      // int32 rows work the same
      const r32 = T.tensor(row, { dtype: 'int32', shape: [S, k] });
      expectClose(flat(T.moeUnpermute(f64(y, [R, d]), r32, f64(w, [S, k]))), refUnpermute(y, S, k, d, row, w), 1e-12, 1e-12);
    });

    it(`gradients agree with finite differences for S=${S} k=${k} d=${d}`, () => {
      const R = S * k + extra;
      const row = T.tensor(randomRows(S, k, R, drop), { dtype: 'int64', shape: [S, k] });
      check((x, w) => T.moePermute(x!, row, R, w), [f64(rand(S * d), [S, d], true), f64(rand(S * k), [S, k], true)]);
      check((y, w) => T.moeUnpermute(y!, row, w), [f64(rand(R * d), [R, d], true), f64(rand(S * k), [S, k], true)]);
      check((x) => T.moePermute(x!, row, R), [f64(rand(S * d), [S, d], true)]);
      check((y) => T.moeUnpermute(y!, row), [f64(rand(R * d), [R, d], true)]);
    });
  }

  it('a token whose choices are all dropped comes back as zeros', () => {
    const row = T.tensor([0, -1, -1, -1, 1, 2], { dtype: 'int64', shape: [3, 2] });
    const out = flat(T.moeUnpermute(f64([1, 2, 3, 4, 5, 6], [3, 2]), row, f64([0.5, 0.5, 0.9, 0.1, 1, 2], [3, 2])));
    expect(out).toEqual([0.5, 1, 0, 0, 3 + 10, 4 + 12]);
  });

  it('rejects duplicate rows, rows out of range and mismatched shapes, naming the assignment', () => {
    const x = f64(rand(6), [3, 2]);
    expect(() => T.moePermute(x, T.tensor([0, 1, 1], { dtype: 'int64', shape: [3, 1] }), 3)).toThrow(/assignments 1 and 2 both map to row 1/);
    expect(() => T.moePermute(x, T.tensor([0, 5, 1], { dtype: 'int64', shape: [3, 1] }), 3)).toThrow(/row 5 of assignment 1 \(token 1, choice 0\) is outside \[-1, 3\)/);
    expect(() => T.moePermute(x, T.tensor([0, -2, 1], { dtype: 'int64', shape: [3, 1] }), 3)).toThrow(/outside/);
    expect(() => T.moePermute(x, T.tensor([0, 1], { dtype: 'int64', shape: [2, 1] }), 3)).toThrow(/row must be \[3, k\]/);
    expect(() => T.moePermute(x, T.tensor([0, 1, 2], { dtype: 'int64', shape: [3, 1] }), 3, f64([1, 1], [2, 1]))).toThrow(/weight must be \[3, 1\]/);
    expect(() => T.moePermute(x, T.tensor([0, 1, 2], { dtype: 'float64', shape: [3, 1] }), 3)).toThrow(/int64 or int32/);
    expect(() => T.moeUnpermute(x, T.tensor([0, 1, 2], { dtype: 'int64', shape: [3, 1] }), T.tensor([1, 1, 1], { dtype: 'float32', shape: [3, 1] }))).toThrow(/share one dtype/);
  });
});

describe('groupedLinear', () => {
  function refGrouped(x: number[], w: number[], b: number[] | null, sizes: number[], K: number, N: number): number[] {
    const out: number[] = [];
    let off = 0;
    sizes.forEach((n, g) => {
      const y = refMm(x.slice(off * K, (off + n) * K), w.slice(g * K * N, (g + 1) * K * N), n, K, N);
      for (let r = 0; r < n; r++) for (let c = 0; c < N; c++) out.push(y[r * N + c]! + (b ? b[g * N + c]! : 0));
      off += n;
    });
    return out;
  }

  for (const sizes of [[3, 0, 5, 1], [0, 0, 4], [7], [2, 3, 0]]) {
    it(`matches one matmul per group for sizes ${sizes.join(',')}, optimised and reference paths`, () => {
      const G = sizes.length, K = 6, N = 5, R = sizes.reduce((a, b) => a + b, 0);
      const x = rand(R * K), w = rand(G * K * N), b = rand(G * N);
      for (const dtype of ['float64', 'float32'] as const) {
        const tol = dtype === 'float64' ? 1e-12 : 1e-5;
        const xt = T.tensor(x, { dtype, shape: [R, K] }), wt = T.tensor(w, { dtype, shape: [G, K, N] }), bt = T.tensor(b, { dtype, shape: [G, N] });
        for (const reference of [false, true]) {
          expectClose(flat(T.groupedLinear(xt, wt, bt, sizes, { reference })), refGrouped(x, w, b, sizes, K, N), tol, tol, 'with bias');
          expectClose(flat(T.groupedLinear(xt, wt, null, T.tensor(sizes, { dtype: 'int64' }), { reference })), refGrouped(x, w, null, sizes, K, N), tol, tol, 'no bias');
        }
      }
    });

    it(`gradients agree with finite differences for sizes ${sizes.join(',')}`, () => {
      const G = sizes.length, K = 4, N = 3, R = sizes.reduce((a, b) => a + b, 0);
      check((x, w, b) => T.groupedLinear(x!, w!, b!, sizes), [f64(rand(R * K), [R, K], true), f64(rand(G * K * N), [G, K, N], true), f64(rand(G * N), [G, N], true)]);
      const x = f64(rand(R * K), [R, K]);
      check((w) => T.groupedLinear(x, w!, null, sizes, { reference: true }), [f64(rand(G * K * N), [G, K, N], true)]);
    });
  }

  // groups smaller than a thread's share of the rows run concurrently, one builtin GEMM each
  // (also when OpenBLAS is the dispatcher's choice); the big one keeps the threaded GEMM
  it('many small groups beside a big one: equal to one matmul per group on both GEMM paths, forward and backward', () => {
    const sizes = [1, 9, 0, 4, 7, 2, 5, 3, 0, 6, 8, 1, 2, 60], G = sizes.length, K = 19, N = 23, R = sizes.reduce((a, b) => a + b, 0);
    const x = rand(R * K), w = rand(G * K * N), b = rand(G * N), dy = rand(R * N);
    const builtinBefore = T.nativeInfo().blas === 'builtin';
    try {
      for (const builtin of T.nativeInfo().blasAvailable ? [true, false] : [true]) {
        T.useBuiltinGemm(builtin);
        for (const dtype of ['float64', 'float32'] as const) {
          const tol = dtype === 'float64' ? 1e-12 : 1e-5;
          const wt = T.tensor(w, { dtype, shape: [G, K, N] }).requiresGrad_(true), xt = T.tensor(x, { dtype, shape: [R, K] }).requiresGrad_(true);
          const y = T.groupedLinear(xt, wt, T.tensor(b, { dtype, shape: [G, N] }), sizes);
          expectClose(flat(y), refGrouped(x, w, b, sizes, K, N), tol, tol, `forward, ${builtin ? 'builtin' : 'openblas'} ${dtype}`);
          T.mul(y, T.tensor(dy, { dtype, shape: [R, N] })).sum().backward();
          const xref = T.tensor(x, { dtype, shape: [R, K] }).requiresGrad_(true), wref = T.tensor(w, { dtype, shape: [G, K, N] }).requiresGrad_(true);
          T.mul(T.groupedLinear(xref, wref, null, sizes, { reference: true }), T.tensor(dy, { dtype, shape: [R, N] })).sum().backward();
          expectClose(flat(xt.grad!), flat(xref.grad!), tol, tol, `dx, ${builtin ? 'builtin' : 'openblas'} ${dtype}`);
          expectClose(flat(wt.grad!), flat(wref.grad!), tol, tol, `dw, ${builtin ? 'builtin' : 'openblas'} ${dtype}`);
        }
      }
    } finally {
      T.useBuiltinGemm(builtinBefore);
    }
  });

  it('an empty group gets zero weight and bias gradients', () => {
    const x = f64(rand(8), [2, 4]);
    const w = f64(rand(2 * 4 * 3), [2, 4, 3], true), b = f64(rand(6), [2, 3], true);
    T.groupedLinear(x, w, b, [2, 0]).sum().backward();
    expect(flat(w.grad!).slice(12)).toEqual(new Array(12).fill(0));
    expect(flat(b.grad!).slice(3)).toEqual([0, 0, 0]);
    expect(flat(b.grad!).slice(0, 3)).toEqual([2, 2, 2]);
  });

  it('rejects sizes that do not add up and mismatched shapes', () => {
    const x = f64(rand(8), [2, 4]), w = f64(rand(24), [2, 4, 3]);
    expect(() => T.groupedLinear(x, w, null, [1, 2])).toThrow(/group sizes sum to 3 but the input has 2 rows/);
    expect(() => T.groupedLinear(x, w, null, [3, -1])).toThrow(/group 1 has negative size -1/);
    expect(() => T.groupedLinear(x, w, null, [2])).toThrow(/1 group sizes for 2 weight matrices/);
    expect(() => T.groupedLinear(f64(rand(6), [2, 3]), w, null, [1, 1])).toThrow(/has 3 features but weight \[2, 4, 3\] takes 4/);
    expect(() => T.groupedLinear(x, w, f64(rand(3), [1, 3]), [1, 1])).toThrow(/bias must be \[2, 3\]/);
  });
});

describe('expertFFN (fused grouped FFN)', () => {
  const composed = (x: T.Tensor, w1: T.Tensor, b1: T.Tensor | null, w2: T.Tensor, b2: T.Tensor | null, sizes: number[], act: T.ExpertActivation) => {
    const h = T.groupedLinear(x, w1, b1, sizes);
    const a = act === 'relu' ? T.relu(h) : T.gelu(h, act === 'gelu_tanh' ? 'tanh' : 'none');
    return T.groupedLinear(a, w2, b2, sizes);
  };

  for (const [sizes, act] of [[[3, 0, 5, 1], 'gelu'], [[6], 'gelu_tanh'], [[0, 4, 2], 'relu'], [[1, 1, 1, 1, 1], 'gelu']] as const) {
    it(`equals groupedLinear → ${act} → groupedLinear for sizes ${sizes.join(',')}, forward and gradients`, () => {
      const G = sizes.length, D = 5, H = 7, R = (sizes as readonly number[]).reduce((a, b) => a + b, 0);
      const mk = (shape: number[]) => f64(rand(shape.reduce((a, b) => a * b, 1)), shape, true);
      const x = mk([R, D]), w1 = mk([G, D, H]), b1 = mk([G, H]), w2 = mk([G, H, D]), b2 = mk([G, D]);
      const wts = f64(rand(R * D), [R, D]);
      const grads = (fn: () => T.Tensor) => {
        for (const t of [x, w1, b1, w2, b2]) t.zeroGrad();
        const y = fn();
        T.mul(y, wts).sum().backward();
        return [flat(y), ...[x, w1, b1, w2, b2].map((t) => flat(t.grad!))];
      };
      const want = grads(() => composed(x, w1, b1, w2, b2, [...sizes], act));
      for (const reference of [false, true]) {
        const got = grads(() => T.expertFFN(x, w1, b1, w2, b2, [...sizes], { activation: act, reference }));
        got.forEach((g, i) => expectClose(g, want[i]!, 1e-12, 1e-10, `output ${i}`));
      }
      // float32 agrees with float64 to single precision
      const y32 = T.expertFFN(T.cast(x, 'float32'), T.cast(w1, 'float32'), T.cast(b1, 'float32'), T.cast(w2, 'float32'), T.cast(b2, 'float32'), [...sizes], { activation: act });
      expectClose(flat(y32), want[0]!, 1e-4, 1e-4, 'float32');
    });
  }

  it('gradients agree with finite differences (no biases)', () => {
    const sizes = [2, 0, 3];
    check((x, w1, w2) => T.expertFFN(x!, w1!, null, w2!, null, sizes), [f64(rand(20), [5, 4], true), f64(rand(3 * 4 * 6), [3, 4, 6], true), f64(rand(3 * 6 * 4), [3, 6, 4], true)]);
  });

  it('rejects mismatched shapes and unknown activations', () => {
    const x = f64(rand(8), [2, 4]), w1 = f64(rand(2 * 4 * 3), [2, 4, 3]), w2 = f64(rand(2 * 3 * 4), [2, 3, 4]);
    expect(() => T.expertFFN(x, w1, null, f64(rand(24), [2, 4, 3]), null, [1, 1])).toThrow(/w2 must be \[2, 3, 4\]/);
    expect(() => T.expertFFN(x, w1, f64(rand(3), [1, 3]), w2, null, [1, 1])).toThrow(/b1 must be \[2, 3\]/);
    expect(() => T.expertFFN(x, w1, null, w2, null, [2, 1])).toThrow(/group sizes sum to 3 but the input has 2 rows/);
    expect(() => T.expertFFN(x, w1, null, w2, null, [1, 1], { activation: 'swish' as never })).toThrow(/activation must be/);
  });
});
