import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng, expectClose, flat, numel, refExpand, refLayerNorm, refMatmul, refSoftmax, refTranspose, stridesOf } from './helpers/ref_nn.js';

const rng = new Rng(7);
const f64 = (vals: number[], shape: number[], requiresGrad = false) => T.tensor(vals, { dtype: 'float64', shape, requiresGrad });
const rand64 = (shape: number[], requiresGrad = false) => f64(rng.uniforms(numel(shape), -2, 2), shape, requiresGrad);
const check = (fn: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[]) => {
  const r = T.gradcheck(fn, xs);
  expect(r.failure, JSON.stringify(r)).toBeUndefined();
  expect(r.ok).toBe(true);
};

describe('softmax / logSoftmax', () => {
  const shape = [2, 3, 5];
  for (const log of [false, true]) {
    const fn = log ? T.logSoftmax : T.softmax;
    const name = log ? 'logSoftmax' : 'softmax';
    it(`${name} over every dim matches the float64 reference (with scale)`, () => {
      const x = rng.uniforms(numel(shape), -3, 3);
      const X = f64(x, shape);
      for (const dim of [0, 1, 2, -1, -3]) {
        expectClose(flat(fn(X, dim)), refSoftmax(x, shape, dim, { log }), 1e-14, 1e-12, `dim ${dim}`);
        expectClose(flat(fn(X, dim, { scale: 0.37 })), refSoftmax(x, shape, dim, { log, scale: 0.37 }), 1e-14, 1e-12, `dim ${dim} scaled`);
      }
      // float32 against the same reference
      const X32 = T.tensor(x, { shape });
      expectClose(flat(fn(X32, 1, { scale: 2 })), refSoftmax(x, shape, 1, { log, scale: 2 }), 1e-6, 1e-5);
      // method forms and the default dim (-1)
      expectClose(flat(log ? X.logSoftmax() : X.softmax()), refSoftmax(x, shape, -1, { log }), 1e-14, 1e-12);
    });
    it(`${name} with a bool keep-mask (broadcast) on the last and on other dims; fully masked rows give ${log ? '-Infinity' : '0'}`, () => {
      const x = rng.uniforms(numel(shape), -3, 3);
      const X = f64(x, shape);
      const masks: [boolean[], number[]][] = [
        [[true, false, true, true, false], [5]],
        [[true, false, true], [3, 1]],
        [Array.from({ length: 30 }, (_, i) => i % 5 !== 0 && i % 7 !== 3), shape],
        [[false, false, false, false, false], [1, 1, 5]], // everything masked
      ];
      for (const [m, ms] of masks) {
        const keep = refExpand(m, ms, shape);
        for (const dim of [-1, 1, 0]) {
          const y = fn(X, dim, { mask: T.tensor(m, { shape: ms }) });
          expectClose(flat(y), refSoftmax(x, shape, dim, { log, keep }), 1e-14, 1e-12, `mask ${JSON.stringify(ms)} dim ${dim}`);
        }
      }
      // a row that is fully masked: exactly 0 (softmax) / -Infinity (logSoftmax), never NaN
      const y = flat(fn(f64([1, 2, 3, 4], [2, 2]), -1, { mask: T.tensor([[false, false], [true, false]]) }));
      expect(y.slice(0, 2)).toEqual(log ? [-Infinity, -Infinity] : [0, 0]);
      expect(y[2]).toBeCloseTo(log ? 0 : 1, 12);
    });
    it(`${name} with an additive float mask (incl. -Infinity entries) and scale`, () => {
      const x = rng.uniforms(numel(shape), -3, 3);
      const m = rng.uniforms(15, -2, 2).map((v, i) => (i % 4 === 1 ? -Infinity : v));
      const add = refExpand(m, [3, 5], shape);
      expectClose(flat(fn(f64(x, shape), -1, { mask: f64(m, [3, 5]), scale: 0.5 })), refSoftmax(x, shape, -1, { log, scale: 0.5, add }), 1e-14, 1e-12);
      expectClose(flat(fn(f64(x, shape), 1, { mask: f64(m, [3, 5]) })), refSoftmax(x, shape, 1, { log, add }), 1e-14, 1e-12);
      // a float32 mask is cast to the input's dtype
      expectClose(flat(fn(f64(x, shape), -1, { mask: T.tensor(m, { shape: [3, 5] }) })), refSoftmax(x, shape, -1, { log, add: add.map((v) => Math.fround(v)) }), 1e-14, 1e-12);
    });
    it(`${name} gradients (gradcheck): every dim, scale, masks, non-contiguous input`, () => {
      for (const dim of [0, 1, -1]) check((a) => fn(a!, dim), [rand64(shape, true)]);
      check((a) => fn(a!, -1, { scale: 0.3 }), [rand64([4, 6], true)]);
      check((a) => fn(a!.transpose(0, 1), -1, { scale: 1.7 }), [rand64([6, 4], true)]);
      const bm = T.tensor([[true, false, true, true], [false, false, false, false], [true, true, true, false]]);
      const safe = (y: T.Tensor) => T.where(T.isfinite(y), y, 0);
      check((a) => safe(fn(a!, -1, { mask: bm })), [rand64([3, 4], true)]);
      check((a) => safe(fn(a!, 0, { mask: bm, scale: 2 })), [rand64([3, 4], true)]);
      // the gradient of an additive float mask
      check((a, m) => fn(a!, -1, { mask: m!, scale: 0.5 }), [rand64([2, 3, 4], true), rand64([3, 4], true)]);
      check((a, m) => fn(a!, 1, { mask: m! }), [rand64([2, 3, 4], true), rand64([2, 3, 1], true)]);
    });
    it(`${name}: fully masked rows and masked entries get zero gradient`, () => {
      const x = f64([1, 2, 3, 4, 5, 6], [2, 3], true);
      const y = fn(x, -1, { mask: T.tensor([[false, false, false], [true, false, true]]) });
      T.where(T.isfinite(y), y, 0).mul(f64([1, 2, 3, 4, 5, 6], [2, 3])).sum().backward();
      const g = flat(x.grad!);
      expect(g.slice(0, 3)).toEqual([0, 0, 0]);
      expect(Math.abs(g[4]!)).toBe(0);
      expect(g.every(Number.isFinite)).toBe(true);
    });
  }
  it('is stable for huge inputs, handles empty and size-1 dims, and casts integer input', () => {
    const y = flat(T.softmax(T.tensor([1000, 1001, 1002]), -1));
    expectClose(y, refSoftmax([0, 1, 2], [3], -1), 1e-6, 1e-5);
    expect(flat(T.logSoftmax(T.tensor([-1e4, 0]), -1))).toEqual([-1e4, 0]);
    expect(T.softmax(T.zeros([0, 3]), -1).shape).toEqual([0, 3]);
    expect(T.softmax(T.zeros([3, 0]), -1).shape).toEqual([3, 0]);
    expect(T.softmax(T.zeros([3, 0]), 0).shape).toEqual([3, 0]);
    expect(flat(T.softmax(T.tensor([[5], [7]]), -1))).toEqual([1, 1]);
    expect(flat(T.logSoftmax(T.tensor([[5], [7]]), -1))).toEqual([0, 0]);
    const yi = T.softmax(T.tensor([1, 2, 3], { dtype: 'int64' }));
    expect(yi.dtype).toBe('float32');
    expectClose(flat(yi), refSoftmax([1, 2, 3], [3], -1), 1e-7, 1e-6);
    expect(T.softmax(T.tensor(3), 0).item()).toBe(1);
  });
  it('clear errors for bad dims and masks', () => {
    expect(() => T.softmax(T.zeros([2, 3]), 2)).toThrow(/softmax: dim 2 is out of range.*\[2, 3\]/);
    expect(() => T.softmax(T.zeros([2, 3]), -1, { mask: T.ones([4], { dtype: 'bool' }) })).toThrow(/softmax.*\[4\].*\[2, 3\]/);
    expect(() => T.logSoftmax(T.zeros([2, 3]), -1, { mask: T.ones([2, 2, 3], { dtype: 'bool' }) })).toThrow(/logSoftmax: mask \[2, 2, 3\] does not broadcast to \[2, 3\]/);
    expect(() => T.softmax(T.zeros([2, 3]), -1, { mask: T.ones([3], { dtype: 'int64' }) })).toThrow(/mask must be bool .* or floating .*, got int64/);
    expect(() => T.softmax(T.zeros([2, 3]), -1, { scale: Number.NaN })).toThrow(/scale must be finite/);
  });
});

describe('layerNorm', () => {
  for (const dtype of ['float64', 'float32'] as const) {
    const tol = dtype === 'float64' ? 1e-12 : 2e-5;
    it(`matches the reference with and without weight / bias, normalizedShape of 1 and 2 dims (${dtype})`, () => {
      for (const [shape, ns] of [[[4, 6], [6]], [[2, 3, 5], [5]], [[2, 3, 5], [3, 5]], [[7], [7]], [[3, 1], [1]], [[2, 2, 3, 4], [2, 3, 4]]] as [number[], number[]][]) {
        const cols = numel(ns), rows = numel(shape) / cols;
        const x = rng.uniforms(numel(shape), -3, 3), w = rng.uniforms(cols), b = rng.uniforms(cols);
        const X = T.tensor(x, { dtype, shape }), W = T.tensor(w, { dtype, shape: ns }), B = T.tensor(b, { dtype, shape: ns });
        const nsArg = ns.length === 1 && rng.next() < 0.5 ? ns[0]! : ns;
        expectClose(flat(T.layerNorm(X, nsArg, W, B)), refLayerNorm(x, rows, cols, w, b), tol, tol, `${shape} ${ns} w b`);
        expectClose(flat(T.layerNorm(X, nsArg, W)), refLayerNorm(x, rows, cols, w), tol, tol, `${shape} ${ns} w`);
        expectClose(flat(T.layerNorm(X, nsArg, null, B)), refLayerNorm(x, rows, cols, null, b), tol, tol, `${shape} ${ns} b`);
        expectClose(flat(T.layerNorm(X, nsArg)), refLayerNorm(x, rows, cols), tol, tol, `${shape} ${ns}`);
        expectClose(flat(T.layerNorm(X, nsArg, null, null, 0.1)), refLayerNorm(x, rows, cols, null, null, 0.1), tol, tol, `${shape} ${ns} eps`);
        expect(T.layerNorm(X, nsArg).shape).toEqual(shape);
      }
    });
  }
  it('non-contiguous input and parameters', () => {
    const x = rng.uniforms(24, -2, 2), w = rng.uniforms(8), b = rng.uniforms(8);
    const X = f64(refTranspose(x, 4, 6), [6, 4]).t(); // [4, 6] view
    const W = f64(w, [8]).slice(0, 0, 8, 2); // [4] strided... not 6
    expect(() => T.layerNorm(X, 6, W)).toThrow(/weight \[4\] does not match normalizedShape \[6\]/);
    const W6 = f64(w.slice(0, 6).flatMap((v) => [v, 0]), [12]).slice(0, 0, 12, 2);
    const B6 = f64(b.slice(0, 6), [6]);
    expectClose(flat(T.layerNorm(X, 6, W6, B6)), refLayerNorm(x, 4, 6, w.slice(0, 6), b.slice(0, 6)), 1e-12, 1e-12);
  });
  it('constant rows give the bias (zero variance, no NaN); empty inputs give empty outputs', () => {
    const y = flat(T.layerNorm(T.full([2, 4], 3, { dtype: 'float64' }), 4, null, f64([1, 2, 3, 4], [4])));
    expect(y).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect(T.layerNorm(T.zeros([0, 4]), 4).shape).toEqual([0, 4]);
    const x0 = T.zeros([0, 4], { requiresGrad: true });
    const w0 = T.ones([4], { requiresGrad: true });
    T.layerNorm(x0, 4, w0).sum().backward();
    expect(flat(w0.grad!)).toEqual([0, 0, 0, 0]);
  });
  it('gradients (gradcheck) for x, weight and bias, 1- and 2-dim normalizedShape', () => {
    check((x, w, b) => T.layerNorm(x!, 5, w!, b!), [rand64([3, 5], true), rand64([5], true), rand64([5], true)]);
    check((x, w, b) => T.layerNorm(x!, [3, 4], w!, b!), [rand64([2, 3, 4], true), rand64([3, 4], true), rand64([3, 4], true)]);
    check((x) => T.layerNorm(x!, [2, 3]), [rand64([4, 2, 3], true)]);
    check((x, w) => T.layerNorm(x!.transpose(0, 1), 4, w!), [rand64([4, 3], true), rand64([4], true)]);
    // only the parameters require grad
    check((x, w, b) => T.layerNorm(x!, 6, w!, b!), [rand64([2, 6]), rand64([6], true), rand64([6], true)]);
    // only the bias
    check((x, w, b) => T.layerNorm(x!, 6, w!, b!), [rand64([2, 6]), rand64([6]), rand64([6], true)]);
  });
  it('float32 gradients agree with float64 ones', () => {
    const x = rng.uniforms(40, -2, 2), w = rng.uniforms(10), g = rng.uniforms(40);
    const grads = (dtype: 'float32' | 'float64') => {
      const X = T.tensor(x, { dtype, shape: [4, 10], requiresGrad: true }), W = T.tensor(w, { dtype, requiresGrad: true });
      T.layerNorm(X, 10, W).mul(T.tensor(g, { dtype, shape: [4, 10] })).sum().backward();
      return [flat(X.grad!), flat(W.grad!)];
    };
    const [a, b] = [grads('float32'), grads('float64')];
    expectClose(a[0]!, b[0]!, 1e-4, 1e-4);
    expectClose(a[1]!, b[1]!, 1e-4, 1e-4);
  });
  it('clear errors', () => {
    expect(() => T.layerNorm(T.zeros([2, 3]), 4)).toThrow(/layerNorm: normalizedShape \[4\] does not match the input's trailing dims \[2, 3\]/);
    expect(() => T.layerNorm(T.zeros([3]), [2, 3])).toThrow(/normalizedShape \[2, 3\]/);
    expect(() => T.layerNorm(T.zeros([2, 3]), 3, T.ones([4]))).toThrow(/weight \[4\]/);
    expect(() => T.layerNorm(T.zeros([2, 3]), 3, null, T.ones([2]))).toThrow(/bias \[2\]/);
    expect(() => T.layerNorm(T.zeros([2, 3], { dtype: 'int64' }), 3)).toThrow(/floating/);
    expect(() => T.layerNorm(T.zeros([2, 3]), 3, T.ones([3], { dtype: 'float64' }))).toThrow(/dtype/);
  });
});

describe('dropout', () => {
  it('same Generator seed ⇒ same mask; the generator advances between calls', () => {
    const x = T.ones([1000]);
    const a = flat(T.dropout(x, 0.5, true, new T.Generator(123)));
    const b = flat(T.dropout(x, 0.5, true, new T.Generator(123)));
    const c = flat(T.dropout(x, 0.5, true, new T.Generator(124)));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const g = new T.Generator(5);
    const d1 = flat(T.dropout(x, 0.5, true, g)), d2 = flat(T.dropout(x, 0.5, true, g));
    expect(d1).not.toEqual(d2);
    // the mask does not depend on the values or dtype
    const y = flat(T.dropout(T.full([1000], 3, { dtype: 'float64' }), 0.5, true, new T.Generator(123)));
    expect(y.map((v) => v !== 0)).toEqual(a.map((v) => v !== 0));
    // the default generator follows manualSeed
    T.manualSeed(99);
    const e1 = flat(T.dropout(x, 0.3));
    T.manualSeed(99);
    expect(flat(T.dropout(x, 0.3))).toEqual(e1);
  });
  it('dropoutSlice: each slice gets the whole tensor\'s mask and gradient; the generator advances by the whole', () => {
    const whole = [3, 6, 5];
    const x = T.randn(whole, { dtype: 'float64', generator: new T.Generator(4) });
    const g = new T.Generator(21);
    const xw = T.clone(x).requiresGrad_();
    const yw = T.dropout(xw, 0.4, true, g);
    T.sum(T.mul(yw, yw)).backward();
    const after = flat(T.dropout(T.ones([50]), 0.4, true, g));
    for (const [dim, start, n] of [[1, 0, 2], [1, 4, 2], [2, 1, 3], [0, 2, 1]] as const) {
      const gs = new T.Generator(21);
      const xs = T.clone(x.narrow(dim, start, n)).requiresGrad_();
      const ys = T.dropoutSlice(xs, 0.4, true, gs, { whole, dim, start });
      T.sum(T.mul(ys, ys)).backward();
      // dropped entries are x·0 here (−0 for negative x) where dropout writes +0: compare values
      const z = (a: number[]) => a.map((v) => v + 0);
      expect(z(flat(ys)), `dim ${dim} at ${start}`).toEqual(z(flat(yw.narrow(dim, start, n))));
      expect(z(flat(xs.grad!)), `grad, dim ${dim} at ${start}`).toEqual(z(flat(xw.grad!.narrow(dim, start, n))));
      expect(flat(T.dropout(T.ones([50]), 0.4, true, gs)), 'the generator is where the whole draw leaves it').toEqual(after);
    }
    expect(() => T.dropoutSlice(x.narrow(1, 0, 2), 0.4, true, g, { whole: [3, 6, 5], dim: 1, start: 5 })).toThrow(/is not a slice of \[3, 6, 5\] at 5 along dim 1/);
    expect(flat(T.dropoutSlice(x, 0.4, false, g, { whole, dim: 0, start: 0 }))).toEqual(flat(x));
  });
  it('p = 0 and eval mode are the identity; p = 1 gives zeros', () => {
    const x = T.randn([3, 4]);
    expect(flat(T.dropout(x, 0))).toEqual(flat(x));
    expect(flat(T.dropout(x, 0.7, false))).toEqual(flat(x));
    expect(flat(T.dropout(x, 1))).toEqual(new Array(12).fill(0));
    const xg = T.randn([5], { requiresGrad: true });
    T.dropout(xg, 1).sum().backward();
    expect(flat(xg.grad!)).toEqual([0, 0, 0, 0, 0]);
  });
  it('kept values are scaled by 1/(1-p), the expectation is preserved and the drop rate is p', () => {
    const n = 200_000, p = 0.3;
    const y = flat(T.dropout(T.ones([n]), p, true, new T.Generator(1)));
    let zeros = 0, sum = 0;
    for (const v of y) {
      if (v === 0) zeros++;
      else expect(v).toBeCloseTo(1 / (1 - p), 6);
      sum += v;
    }
    expect(Math.abs(zeros / n - p)).toBeLessThan(0.01);
    expect(Math.abs(sum / n - 1)).toBeLessThan(0.015);
  });
  it('backward uses the forward mask (also for non-contiguous input)', () => {
    const x = T.randn([6, 5], { dtype: 'float64', requiresGrad: true });
    const p = 0.4;
    const y = T.dropout(x.t(), p, true, new T.Generator(77));
    const up = T.randn([5, 6], { dtype: 'float64' });
    y.mul(up).sum().backward();
    const yv = flat(y), uv = flat(up), xv = flat(x.t()), g = flat(x.grad!.t());
    for (let i = 0; i < yv.length; ++i) {
      const kept = yv[i] !== 0;
      expect(g[i]).toBeCloseTo(kept ? uv[i]! / (1 - p) : 0, 12);
      if (kept) expect(yv[i]).toBeCloseTo(xv[i]! / (1 - p), 12);
    }
    // gradcheck with a fixed generator state per call
    const r = T.gradcheck((a) => T.dropout(a!, 0.5, true, new T.Generator(3)), [T.randn([4, 4], { dtype: 'float64', requiresGrad: true })]);
    expect(r.ok).toBe(true);
  });
  it('rejects bad p and integer input', () => {
    expect(() => T.dropout(T.ones([2]), 1.5)).toThrow(/p must be in \[0, 1\]/);
    expect(() => T.dropout(T.ones([2]), -0.1)).toThrow(/p must be in \[0, 1\]/);
    expect(() => T.dropout(T.ones([2]), Number.NaN)).toThrow(/p must be in \[0, 1\]/);
    expect(() => T.dropout(T.ones([2], { dtype: 'int64' }), 0.5)).toThrow(/floating/);
    expect(T.dropout(T.zeros([0, 3]), 0.5).shape).toEqual([0, 3]);
  });
});

/** softmax(q kᵀ · scale + mask) v in float64 JS, mask already broadcast to [..., Lq, Lk]. */
function refAttention(q: number[], qs: number[], k: number[], ks: number[], v: number[], vs: number[], scale: number, keep?: boolean[], add?: number[]): number[] {
  const kt: number[] = [];
  const Lk = ks[ks.length - 2]!, D = ks[ks.length - 1]!;
  const nb = numel(ks) / (Lk * D);
  for (let b = 0; b < nb; ++b) kt.push(...refTranspose(k.slice(b * Lk * D, (b + 1) * Lk * D), Lk, D));
  const kts = [...ks.slice(0, -2), D, Lk];
  const [s, ss] = refMatmul(q, qs, kt, kts);
  const p = refSoftmax(s, ss, -1, { scale, keep, add });
  return refMatmul(p, ss, v, vs)[0];
}

describe('scaledDotProductAttention', () => {
  const qs = [2, 3, 4, 8], ks = [2, 3, 6, 8], vs = [2, 3, 6, 5];
  const q = rng.uniforms(numel(qs)), k = rng.uniforms(numel(ks)), v = rng.uniforms(numel(vs));
  const Q = () => f64(q, qs), K = () => f64(k, ks), V = () => f64(v, vs);
  const sc = ss(qs);
  function ss(s: number[]) {
    return [...s.slice(0, -1), ks[ks.length - 2]!];
  }
  it('default scale 1/sqrt(D) and an explicit scale', () => {
    const out = T.scaledDotProductAttention(Q(), K(), V());
    expect(out.shape).toEqual([2, 3, 4, 5]);
    expectClose(flat(out), refAttention(q, qs, k, ks, v, vs, 1 / Math.sqrt(8)), 1e-13, 1e-11);
    expectClose(flat(T.scaledDotProductAttention(Q(), K(), V(), { scale: 0.9 })), refAttention(q, qs, k, ks, v, vs, 0.9), 1e-13, 1e-11);
  });
  it('bool and float attention masks (broadcast), fully masked query rows give 0', () => {
    const bm = Array.from({ length: 24 }, (_, i) => (i % 5 !== 2) && i < 18); // [4, 6]; row 3 fully masked
    const keep = refExpand(bm, [4, 6], sc);
    const out = flat(T.scaledDotProductAttention(Q(), K(), V(), { attnMask: T.tensor(bm, { shape: [4, 6] }) }));
    expectClose(out, refAttention(q, qs, k, ks, v, vs, 1 / Math.sqrt(8), keep), 1e-13, 1e-11);
    const fm = rng.uniforms(3 * 4 * 6, -1, 1);
    const add = refExpand(fm, [3, 4, 6], sc);
    expectClose(flat(T.scaledDotProductAttention(Q(), K(), V(), { attnMask: f64(fm, [3, 4, 6]), scale: 0.5 })), refAttention(q, qs, k, ks, v, vs, 0.5, undefined, add), 1e-13, 1e-11);
    // per-batch key padding mask [2, 1, 1, 6]
    const pad = [true, true, true, true, false, false, true, true, true, true, true, false];
    expectClose(flat(T.scaledDotProductAttention(Q(), K(), V(), { attnMask: T.tensor(pad, { shape: [2, 1, 1, 6] }) })), refAttention(q, qs, k, ks, v, vs, 1 / Math.sqrt(8), refExpand(pad, [2, 1, 1, 6], sc)), 1e-13, 1e-11);
  });
  it('isCausal (square and Lq < Lk: top-left aligned like torch.tril)', () => {
    const L = 6;
    const tril = (lq: number, lk: number) => Array.from({ length: lq * lk }, (_, i) => i % lk <= Math.floor(i / lk));
    const qq = rng.uniforms(2 * L * 8);
    const out = T.scaledDotProductAttention(f64(qq, [2, L, 8]), f64(k.slice(0, 2 * L * 8), [2, L, 8]), f64(v.slice(0, 2 * L * 5), [2, L, 5]), { isCausal: true });
    expectClose(flat(out), refAttention(qq, [2, L, 8], k.slice(0, 2 * L * 8), [2, L, 8], v.slice(0, 2 * L * 5), [2, L, 5], 1 / Math.sqrt(8), refExpand(tril(L, L), [L, L], [2, L, L])), 1e-13, 1e-11);
    const out2 = T.scaledDotProductAttention(Q(), K(), V(), { isCausal: true });
    expectClose(flat(out2), refAttention(q, qs, k, ks, v, vs, 1 / Math.sqrt(8), refExpand(tril(4, 6), [4, 6], sc)), 1e-13, 1e-11);
    // the first query attends only to the first key
    expectClose(flat(out).slice(0, 5), v.slice(0, 5), 1e-13, 1e-13);
  });
  it('gradients (gradcheck) for q, k, v and a float mask; with isCausal; with a transposed k', () => {
    const r = (s: number[]) => rand64(s, true);
    check((a, b, c) => T.scaledDotProductAttention(a!, b!, c!), [r([2, 3, 4]), r([2, 5, 4]), r([2, 5, 3])]);
    check((a, b, c) => T.scaledDotProductAttention(a!, b!, c!, { isCausal: true, scale: 0.7 }), [r([1, 2, 4, 3]), r([1, 2, 4, 3]), r([1, 2, 4, 2])]);
    check((a, b, c, m) => T.scaledDotProductAttention(a!, b!, c!, { attnMask: m! }), [r([3, 4]), r([5, 4]), r([5, 2]), r([3, 5])]);
    check((a, b, c) => T.scaledDotProductAttention(a!, b!.transpose(-2, -1), c!, { attnMask: T.tensor([[true, false, true], [false, false, false]]) }), [r([2, 2, 4]), r([2, 4, 3]), r([2, 3, 2])]);
  });
  it('dropout is seeded and off outside training', () => {
    const a = flat(T.scaledDotProductAttention(Q(), K(), V(), { dropoutP: 0.5, generator: new T.Generator(4) }));
    const b = flat(T.scaledDotProductAttention(Q(), K(), V(), { dropoutP: 0.5, generator: new T.Generator(4) }));
    expect(a).toEqual(b);
    const plain = flat(T.scaledDotProductAttention(Q(), K(), V()));
    expect(a).not.toEqual(plain);
    expect(flat(T.scaledDotProductAttention(Q(), K(), V(), { dropoutP: 0.5, training: false }))).toEqual(plain);
  });
  it('clear errors', () => {
    expect(() => T.scaledDotProductAttention(T.ones([4]), T.ones([4]), T.ones([4]))).toThrow(/at least 2 dims/);
    expect(() => T.scaledDotProductAttention(T.ones([3, 4]), T.ones([5, 3]), T.ones([5, 2]))).toThrow(/q \[3, 4\], k \[5, 3\], v \[5, 2\]/);
    expect(() => T.scaledDotProductAttention(T.ones([3, 4]), T.ones([5, 4]), T.ones([6, 2]))).toThrow(/do not fit/);
    expect(() => T.scaledDotProductAttention(T.ones([3, 4]), T.ones([5, 4]), T.ones([5, 2]), { isCausal: true, attnMask: T.ones([3, 5], { dtype: 'bool' }) })).toThrow(/either attnMask or isCausal/);
    expect(() => T.scaledDotProductAttention(T.ones([3, 4]), T.ones([5, 4]), T.ones([5, 2]), { attnMask: T.ones([3, 4], { dtype: 'bool' }) })).toThrow(/attnMask \[3, 4\] does not broadcast/);
  });
});

describe('large inputs (threaded kernels)', () => {
  it('softmax / logSoftmax over many long rows match the reference', () => {
    const rows = 300, cols = 1000;
    const x = rng.uniforms(rows * cols, -5, 5);
    const keep = x.map((_, i) => (i * 7919) % 13 !== 0);
    for (const log of [false, true]) {
      const fn = log ? T.logSoftmax : T.softmax;
      expectClose(flat(fn(T.tensor(x, { shape: [rows, cols] }), -1, { scale: 0.7 })), refSoftmax(x, [rows, cols], -1, { log, scale: 0.7 }), 2e-6, 1e-4);
      expectClose(flat(fn(f64(x, [rows, cols]), -1, { mask: T.tensor(keep, { shape: [rows, cols] }) })), refSoftmax(x, [rows, cols], -1, { log, keep }), 1e-14, 1e-11);
    }
  });
  it('layerNorm forward and weight / bias gradients summed over many rows', () => {
    const rows = 3000, cols = 48;
    const x = rng.uniforms(rows * cols, -3, 3), w = rng.uniforms(cols), b = rng.uniforms(cols), g = rng.uniforms(rows * cols);
    const X = f64(x, [rows, cols], true), W = f64(w, [cols], true), B = f64(b, [cols], true);
    const y = T.layerNorm(X, cols, W, B);
    expectClose(flat(y), refLayerNorm(x, rows, cols, w, b), 1e-12, 1e-12);
    y.backward(f64(g, [rows, cols]));
    const xhat = refLayerNorm(x, rows, cols);
    const dw = new Array<number>(cols).fill(0), db = new Array<number>(cols).fill(0);
    for (let i = 0; i < rows * cols; ++i) {
      dw[i % cols] += g[i]! * xhat[i]!;
      db[i % cols] += g[i]!;
    }
    expectClose(flat(W.grad!), dw, 1e-10, 1e-10);
    expectClose(flat(B.grad!), db, 1e-10, 1e-10);
    // dx of a row: rstd · (ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)), ĝ = g·w
    const dx = flat(X.grad!);
    for (const r of [0, 1777, rows - 1]) {
      const row = x.slice(r * cols, (r + 1) * cols);
      const mu = row.reduce((p, q) => p + q, 0) / cols;
      const rs = 1 / Math.sqrt(row.reduce((p, q) => p + (q - mu) ** 2, 0) / cols + 1e-5);
      const gh = g.slice(r * cols, (r + 1) * cols).map((v, j) => v * w[j]!);
      const xh = xhat.slice(r * cols, (r + 1) * cols);
      const m1 = gh.reduce((p, q) => p + q, 0) / cols, m2 = gh.reduce((p, q, j) => p + q * xh[j]!, 0) / cols;
      expectClose(dx.slice(r * cols, (r + 1) * cols), gh.map((v, j) => rs * (v - m1 - xh[j]! * m2)), 1e-12, 1e-10, `row ${r}`);
    }
  });
  it('embedding backward with many duplicate indices and wide rows', () => {
    const n = 50, d = 300, m = 4000;
    const ids = rng.ints(m, 0, n);
    const W = T.zeros([n, d], { dtype: 'float64', requiresGrad: true });
    const g = rng.uniforms(m * d);
    T.embedding(T.tensor(ids, { dtype: 'int64' }), W).backward(f64(g, [m, d]));
    const want = new Array<number>(n * d).fill(0);
    ids.forEach((id, j) => {
      for (let c = 0; c < d; ++c) want[id * d + c] += g[j * d + c]!;
    });
    expectClose(flat(W.grad!), want, 1e-11, 1e-12);
  });
});

// keep the stride helper referenced (used by other suites through the helpers module)
void stridesOf;
