import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng, expectClose, flat, numel, refBceWithLogits, refCrossEntropyRows, refExpand } from './helpers/ref_nn.js';

const rng = new Rng(23);
const f64 = (vals: number[], shape: number[], requiresGrad = false) => T.tensor(vals, { dtype: 'float64', shape, requiresGrad });
const rand64 = (shape: number[], requiresGrad = false) => f64(rng.uniforms(numel(shape), -2, 2), shape, requiresGrad);
const idx = (vals: number[], shape?: number[]) => T.tensor(vals, { dtype: 'int64', shape: shape ?? [vals.length] });
const check = (fn: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[]) => {
  const r = T.gradcheck(fn, xs);
  expect(r.failure, JSON.stringify(r)).toBeUndefined();
  expect(r.ok).toBe(true);
};
const sumArr = (a: number[]) => a.reduce((p, q) => p + q, 0);

describe('crossEntropy', () => {
  const N = 6, C = 5;
  const logits = rng.uniforms(N * C, -3, 3);
  const target = [0, 4, -100, 2, 2, 1];
  for (const smoothing of [0, 0.1, 1]) {
    it(`reductions mean / sum / none with ignoreIndex, labelSmoothing ${smoothing}`, () => {
      const { losses, valid } = refCrossEntropyRows(logits, N, C, target, -100, smoothing);
      const X = f64(logits, [N, C]), Y = idx(target);
      const none = T.crossEntropy(X, Y, { reduction: 'none', labelSmoothing: smoothing });
      expect(none.shape).toEqual([N]);
      expectClose(flat(none), losses, 1e-14, 1e-12);
      expectClose([T.crossEntropy(X, Y, { reduction: 'sum', labelSmoothing: smoothing }).item()], [sumArr(losses)], 1e-13, 1e-12);
      expectClose([T.crossEntropy(X, Y, { labelSmoothing: smoothing }).item()], [sumArr(losses) / valid], 1e-13, 1e-12);
    });
  }
  it('a custom ignoreIndex, int32 targets, extra leading dims and float32 logits', () => {
    const t2 = [3, 3, 1, 0, 3, 4];
    const { losses, valid } = refCrossEntropyRows(logits, N, C, t2, 3);
    expect(valid).toBe(3);
    expectClose([T.crossEntropy(f64(logits, [2, 3, C]), T.tensor(t2, { dtype: 'int32', shape: [2, 3] }), { ignoreIndex: 3 }).item()], [sumArr(losses) / 3], 1e-13, 1e-12);
    const none = T.crossEntropy(T.tensor(logits, { shape: [2, 3, C] }), idx(t2, [2, 3]), { ignoreIndex: 3, reduction: 'none' });
    expect(none.shape).toEqual([2, 3]);
    expectClose(flat(none), losses, 1e-5, 1e-5);
    // all targets ignored: mean is 0 (not NaN), sum 0
    expect(T.crossEntropy(f64(logits.slice(0, 10), [2, C]), idx([-100, -100])).item()).toBe(0);
    // a single 1-D row of logits with a 0-dim target
    const one = refCrossEntropyRows(logits.slice(0, C), 1, C, [2]).losses[0]!;
    expect(T.crossEntropy(f64(logits.slice(0, C), [C]), T.tensor(2, { dtype: 'int64' })).item()).toBeCloseTo(one, 12);
  });
  it('gradients (gradcheck) with ignoreIndex and labelSmoothing for each reduction, non-contiguous logits', () => {
    for (const reduction of ['mean', 'sum', 'none'] as const)
      for (const labelSmoothing of [0, 0.2]) {
        check((x) => T.crossEntropy(x!, idx([1, -100, 3, 0]), { reduction, labelSmoothing }), [rand64([4, 5], true)]);
      }
    check((x) => T.crossEntropy(x!.t(), idx([1, 2, 0]), { labelSmoothing: 0.3, ignoreIndex: 2 }), [rand64([4, 3], true)]);
    check((x) => T.crossEntropy(x!, idx([1, 2, 0, 0, 1, 1], [2, 3])), [rand64([2, 3, 4], true)]);
  });
  it('gradient of the mean equals (softmax - onehot)/valid on kept rows and 0 on ignored rows', () => {
    const X = f64(logits, [N, C], true);
    T.crossEntropy(X, idx(target)).backward();
    const g = flat(X.grad!);
    expect(g.slice(2 * C, 3 * C)).toEqual([0, 0, 0, 0, 0]);
    for (let i = 0; i < N; ++i) if (target[i] !== -100) expect(sumArr(g.slice(i * C, (i + 1) * C))).toBeCloseTo(0, 12);
  });
  it('clear errors', () => {
    expect(() => T.crossEntropy(T.randn([3, 4]), T.tensor([0, 1, 2]))).toThrow(/targets must be int64 or int32/);
    expect(() => T.crossEntropy(T.randn([3, 4]), idx([0, 1]))).toThrow(/logits \[3, 4\] and targets \[2\] do not match/);
    expect(() => T.crossEntropy(T.randn([3, 4]), idx([0, 1, 2]), { labelSmoothing: 1.5 })).toThrow(/labelSmoothing must be in \[0, 1\]/);
    expect(() => T.crossEntropy(T.randn([2, 4]), idx([0, 4]))).toThrow(/index 4 is out of range for a dimension of size 4/);
  });
});

describe('binaryCrossEntropyWithLogits', () => {
  const shape = [3, 4];
  const x = rng.uniforms(12, -4, 4), y = rng.uniforms(12, 0, 1);
  it('matches the reference for soft targets, each reduction', () => {
    const ref = refBceWithLogits(x, y);
    const X = f64(x, shape), Y = f64(y, shape);
    expectClose(flat(T.binaryCrossEntropyWithLogits(X, Y, { reduction: 'none' })), ref, 1e-14, 1e-12);
    expect(T.binaryCrossEntropyWithLogits(X, Y, { reduction: 'sum' }).item()).toBeCloseTo(sumArr(ref), 12);
    expect(T.binaryCrossEntropyWithLogits(X, Y).item()).toBeCloseTo(sumArr(ref) / 12, 13);
    // float32 targets with float64 logits; bool / int targets
    expect(T.binaryCrossEntropyWithLogits(X, T.tensor(y, { shape })).dtype).toBe('float64');
    const hard = y.map((v) => (v > 0.5 ? 1 : 0));
    expectClose(flat(T.binaryCrossEntropyWithLogits(X, T.tensor(hard.map((v) => v === 1), { shape }), { reduction: 'none' })), refBceWithLogits(x, hard), 1e-14, 1e-12);
  });
  it('posWeight broadcast over the last dim (as torch pos_weight)', () => {
    const pw = [0.5, 1, 2, 3];
    const ref = refBceWithLogits(x, y, refExpand(pw, [4], shape));
    expectClose(flat(T.binaryCrossEntropyWithLogits(f64(x, shape), f64(y, shape), { posWeight: f64(pw, [4]), reduction: 'none' })), ref, 1e-14, 1e-12);
    expect(T.binaryCrossEntropyWithLogits(f64(x, shape), f64(y, shape), { posWeight: T.tensor(pw) }).item()).toBeCloseTo(sumArr(ref) / 12, 12);
  });
  it('is stable for large |logits|', () => {
    const out = flat(T.binaryCrossEntropyWithLogits(T.tensor([100, -100, 50, -50]), T.tensor([0, 1, 1, 0]), { reduction: 'none' }));
    expectClose(out, [100, 100, 0, 0], 1e-6, 1e-6);
    const pw = flat(T.binaryCrossEntropyWithLogits(T.tensor([-100, 100]), T.tensor([1, 0]), { reduction: 'none', posWeight: T.tensor([3]) }));
    expectClose(pw, [300, 100], 1e-4, 1e-6);
  });
  it('gradients (gradcheck) incl. posWeight and logits exactly 0 (d/dx = sigmoid(x)·(...) - ...)', () => {
    check((a, b) => T.binaryCrossEntropyWithLogits(a!, b!), [rand64(shape, true), f64(y, shape)]);
    check((a, b) => T.binaryCrossEntropyWithLogits(a!, b!, { reduction: 'none' }), [rand64(shape, true), f64(y, shape, true)]);
    check((a, b, p) => T.binaryCrossEntropyWithLogits(a!, b!, { posWeight: p!, reduction: 'sum' }), [rand64(shape, true), f64(y, shape), f64([0.5, 1, 2, 3], [4], true)]);
    // exactly zero logits (a zero-initialised head): gradient is (sigmoid(0)(1 + (pw-1)y) - pw·y) / n
    const z = T.zeros([4], { dtype: 'float64', requiresGrad: true });
    const yy = [0, 1, 0.25, 1];
    T.binaryCrossEntropyWithLogits(z, f64(yy, [4]), { reduction: 'sum' }).backward();
    expectClose(flat(z.grad!), yy.map((v) => 0.5 - v), 1e-15, 0);
    const z2 = T.zeros([4], { dtype: 'float64', requiresGrad: true });
    T.binaryCrossEntropyWithLogits(z2, f64(yy, [4]), { reduction: 'sum', posWeight: f64([2], [1]) }).backward();
    expectClose(flat(z2.grad!), yy.map((v) => 0.5 * (1 + v) - 2 * v), 1e-15, 0);
  });
  it('clear errors', () => {
    expect(() => T.binaryCrossEntropyWithLogits(T.zeros([2, 3]), T.zeros([3, 2]))).toThrow(/logits \[2, 3\] and targets \[3, 2\] differ/);
    expect(() => T.binaryCrossEntropyWithLogits(T.zeros([2, 3]), T.zeros([2, 3]), { posWeight: T.ones([2]) })).toThrow(/posWeight/);
  });
});

describe('normalize / cosineSimilarity', () => {
  const refNorm = (x: number[], rows: number, cols: number, p: number, eps: number) => {
    const out: number[] = [];
    for (let r = 0; r < rows; ++r) {
      const row = x.slice(r * cols, (r + 1) * cols);
      const n = p === 2 ? Math.sqrt(sumArr(row.map((v) => v * v))) : sumArr(row.map(Math.abs));
      out.push(...row.map((v) => v / Math.max(n, eps)));
    }
    return out;
  };
  it('p = 2 and p = 1 along the last and other dims, zero vectors stay 0', () => {
    const x = rng.uniforms(12, -2, 2);
    expectClose(flat(T.normalize(f64(x, [3, 4]))), refNorm(x, 3, 4, 2, 1e-12), 1e-15, 1e-13);
    expectClose(flat(T.normalize(f64(x, [3, 4]), 1)), refNorm(x, 3, 4, 1, 1e-12), 1e-15, 1e-13);
    const xt = flat(f64(x, [3, 4]).t());
    expectClose(flat(T.normalize(f64(x, [3, 4]), 2, 0).t()), refNorm(xt, 4, 3, 2, 1e-12), 1e-15, 1e-13);
    expect(flat(T.normalize(T.zeros([2, 3])))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => T.normalize(T.zeros([2]), 3)).toThrow(/p must be 1 or 2/);
  });
  it('cosineSimilarity with broadcasting and zero vectors', () => {
    const a = rng.uniforms(12, -2, 2), b = rng.uniforms(4, -2, 2);
    const want = [0, 1, 2].map((r) => {
      const ar = a.slice(r * 4, r * 4 + 4);
      const dot = sumArr(ar.map((v, i) => v * b[i]!));
      return dot / Math.max(Math.sqrt(sumArr(ar.map((v) => v * v))) * Math.sqrt(sumArr(b.map((v) => v * v))), 1e-8);
    });
    expectClose(flat(T.cosineSimilarity(f64(a, [3, 4]), f64(b, [1, 4]))), want, 1e-15, 1e-13);
    expectClose(flat(T.cosineSimilarity(f64(a, [3, 4]).t(), f64(b, [4, 1]), 0)), want, 1e-15, 1e-13);
    expectClose(flat(T.cosineSimilarity(f64(a, [3, 4]), f64(a, [3, 4]))), [1, 1, 1], 1e-15, 1e-14);
    expect(flat(T.cosineSimilarity(T.zeros([2, 3]), T.ones([2, 3])))).toEqual([0, 0]);
  });
  it('gradients (gradcheck), finite for zero vectors', () => {
    check((x) => T.normalize(x!), [rand64([3, 4], true)]);
    check((x) => T.normalize(x!, 1, 0), [rand64([3, 4], true)]);
    check((a, b) => T.cosineSimilarity(a!, b!), [rand64([3, 4], true), rand64([1, 4], true)]);
    check((a, b) => T.cosineSimilarity(a!, b!, 0), [rand64([4, 2], true), rand64([4, 2], true)]);
    const z = T.zeros([2, 3], { dtype: 'float64', requiresGrad: true });
    T.normalize(z).mul(f64([1, 2, 3, 4, 5, 6], [2, 3])).sum().backward();
    expect(flat(z.grad!).every(Number.isFinite)).toBe(true);
    const za = T.zeros([3], { dtype: 'float64', requiresGrad: true });
    const zb = f64([1, 2, 3], [3], true);
    T.cosineSimilarity(za, zb).backward();
    expect([...flat(za.grad!), ...flat(zb.grad!)].every(Number.isFinite)).toBe(true);
  });
});
