import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng, expectClose, flat, numel, stridesOf } from './helpers/ref_nn.js';

const rng = new Rng(11);
const f64 = (vals: number[], shape: number[], requiresGrad = false) => T.tensor(vals, { dtype: 'float64', shape, requiresGrad });
const rand64 = (shape: number[], requiresGrad = false) => f64(rng.uniforms(numel(shape), -2, 2), shape, requiresGrad);
const idx = (vals: number[], shape?: number[], dtype: 'int64' | 'int32' = 'int64') => T.tensor(vals, { dtype, shape: shape ?? [vals.length] });
const check = (fn: (...xs: T.Tensor[]) => T.Tensor, xs: T.Tensor[]) => {
  const r = T.gradcheck(fn, xs);
  expect(r.failure, JSON.stringify(r)).toBeUndefined();
  expect(r.ok).toBe(true);
};
const unravel = (q: number, shape: readonly number[]) => {
  const st = stridesOf(shape);
  return shape.map((s, d) => Math.floor(q / st[d]!) % s);
};
const ravel = (ix: readonly number[], shape: readonly number[]) => {
  const st = stridesOf(shape);
  return ix.reduce((a, v, d) => a + v * st[d]!, 0);
};

/** torch.gather on row-major data. */
function refGather(x: number[], xs: number[], dim: number, index: number[], is: number[]): number[] {
  return index.map((v, q) => {
    const ix = unravel(q, is);
    ix[dim] = v;
    return x[ravel(ix, xs)]!;
  });
}
function refScatterAdd(x: number[], xs: number[], dim: number, index: number[], is: number[], src: number[], ss: number[]): number[] {
  const out = x.slice();
  index.forEach((v, q) => {
    const ix = unravel(q, is);
    const s = src[ravel(ix, ss)]!;
    ix[dim] = v;
    out[ravel(ix, xs)] += s;
  });
  return out;
}
function refIndexSelect(x: number[], xs: number[], dim: number, index: number[]): [number[], number[]] {
  const os = xs.slice();
  os[dim] = index.length;
  const out = new Array<number>(numel(os));
  for (let q = 0; q < out.length; ++q) {
    const ix = unravel(q, os);
    ix[dim] = index[ix[dim]!]!;
    out[q] = x[ravel(ix, xs)]!;
  }
  return [out, os];
}

describe('indexSelect / embedding', () => {
  it('selects along every dim (int64 and int32 indices, duplicates, non-contiguous x)', () => {
    const xs = [3, 4, 5];
    const x = rng.uniforms(60);
    for (const dim of [0, 1, 2, -1]) {
      const d = dim < 0 ? dim + 3 : dim;
      const ii = rng.ints(7, 0, xs[d]!);
      const [want, os] = refIndexSelect(x, xs, d, ii);
      for (const dt of ['int64', 'int32'] as const) {
        const out = T.indexSelect(f64(x, xs), dim, idx(ii, undefined, dt));
        expect(out.shape).toEqual(os);
        expect(flat(out)).toEqual(want);
      }
    }
    // non-contiguous x: a transposed view
    const xt = f64(x, xs).transpose(0, 2); // [5, 4, 3]
    const xtv = flat(xt);
    const [w2] = refIndexSelect(xtv, [5, 4, 3], 1, [3, 0, 3]);
    expect(flat(xt.indexSelect(1, idx([3, 0, 3])))).toEqual(w2);
    // empty index, 0-dim index
    expect(T.indexSelect(f64(x, xs), 1, idx([])).shape).toEqual([3, 0, 5]);
    expect(T.indexSelect(f64(x, xs), 0, T.tensor(2, { dtype: 'int64' })).shape).toEqual([1, 4, 5]);
  });
  it('embedding: output shape = indices.shape + [dim]', () => {
    const w = rng.uniforms(10 * 3);
    const W = f64(w, [10, 3]);
    const ii = [[1, 9, 1], [0, 4, 4]];
    const out = T.embedding(idx(ii.flat(), [2, 3]), W);
    expect(out.shape).toEqual([2, 3, 3]);
    expect(flat(out)).toEqual(ii.flat().flatMap((i) => w.slice(i * 3, i * 3 + 3)));
    expect(T.embedding(idx([7]).reshape([]), W).shape).toEqual([3]);
    expect(T.embedding(idx([], [0, 2]), W).shape).toEqual([0, 2, 3]);
  });
  it('gradients accumulate duplicate indices (gradcheck and exact counts)', () => {
    check((x) => T.indexSelect(x!, 1, idx([2, 0, 2, 2])), [rand64([3, 4, 2], true)]);
    check((x) => T.indexSelect(x!, 0, idx([1, 1], undefined, 'int32')), [rand64([2, 5], true)]);
    check((w) => T.embedding(idx([3, 1, 3, 0, 3, 3], [2, 3]), w!), [rand64([5, 4], true)]);
    check((x) => T.indexSelect(x!.t(), 0, idx([1, 0, 1])), [rand64([3, 2], true)]);
    const W = T.zeros([4, 2], { requiresGrad: true });
    T.embedding(idx([3, 3, 0, 3]), W).sum().backward();
    expect(W.grad!.toArray()).toEqual([[1, 1], [0, 0], [0, 0], [3, 3]]);
  });
  it('out-of-range indices give a clear error naming the index', () => {
    expect(() => T.embedding(idx([0, 7]), T.randn([3, 2]))).toThrow(/index 7 .*out of range for a dimension of size 3/);
    expect(() => T.indexSelect(T.randn([3, 2]), 1, idx([-1]))).toThrow(/index -1 .*out of range/);
    expect(() => T.indexSelect(T.randn([3, 2]), 1, idx([2], undefined, 'int32'))).toThrow(/index 2 .*out of range for a dimension of size 2/);
    expect(() => T.indexSelect(T.randn([3, 2]), 0, T.tensor([0.5]))).toThrow(/indices must be int64 or int32, got float32/);
    expect(() => T.indexSelect(T.randn([3, 2]), 0, idx([0, 1], [1, 2]))).toThrow(/index must be 1-D/);
    expect(() => T.embedding(idx([0]), T.randn([3]))).toThrow(/weight must be 2-D/);
    expect(() => T.indexSelect(T.randn([3, 2]), 2, idx([0]))).toThrow(/dim 2 is out of range/);
  });
});

describe('gather / scatterAdd', () => {
  it('gather matches the reference along each dim, incl. a smaller index and a non-contiguous x', () => {
    const xs = [3, 4, 5], x = rng.uniforms(60);
    for (const dim of [0, 1, 2]) {
      const is = [2, 3, 4];
      is[dim] = 6; // the gathered dim may be larger than x's
      const ii = rng.ints(numel(is), 0, xs[dim]!);
      const out = T.gather(f64(x, xs), dim, idx(ii, is));
      expect(out.shape).toEqual(is);
      expect(flat(out)).toEqual(refGather(x, xs, dim, ii, is));
      expect(flat(f64(x, xs).gather(dim - 3, idx(ii, is, 'int32')))).toEqual(refGather(x, xs, dim, ii, is));
    }
    const xt = f64(x, xs).permute(2, 0, 1); // [5, 3, 4]
    const ii = rng.ints(5 * 3 * 2, 0, 4);
    expect(flat(T.gather(xt, 2, idx(ii, [5, 3, 2])))).toEqual(refGather(flat(xt), [5, 3, 4], 2, ii, [5, 3, 2]));
    // a non-contiguous index
    const it2 = idx([0, 1, 2, 3, 3, 2, 1, 0], [2, 4]).t(); // [4, 2]
    expect(flat(T.gather(f64(x.slice(0, 16), [4, 4]), 1, it2))).toEqual(refGather(x.slice(0, 16), [4, 4], 1, flat(it2), [4, 2]));
    expect(T.gather(f64(x, xs), 1, idx([], [3, 0, 5])).shape).toEqual([3, 0, 5]);
  });
  it('scatterAdd accumulates duplicates, leaves the input untouched, and works with a src larger than the index', () => {
    const xs = [3, 4], x = rng.uniforms(12);
    for (const dim of [0, 1]) {
      const is = [2, 3], ss = [3, 4];
      const ii = rng.ints(6, 0, xs[dim]!);
      const src = rng.uniforms(12);
      const X = f64(x, xs);
      const out = T.scatterAdd(X, dim, idx(ii, is), f64(src, ss));
      expectClose(flat(out), refScatterAdd(x, xs, dim, ii, is, src, ss), 1e-15, 0);
      expect(flat(X)).toEqual(x);
    }
    // all duplicates go to one slot
    expect(flat(T.scatterAdd(T.zeros([1, 3]), 1, idx([1, 1, 1, 1], [1, 4]), T.ones([1, 4])))).toEqual([0, 4, 0]);
    // a float32 src into a float64 x is cast
    expect(T.scatterAdd(T.zeros([2], { dtype: 'float64' }), 0, idx([1]), T.ones([1])).dtype).toBe('float64');
  });
  it('gradients (gradcheck): gather, scatterAdd into x and from src (also src larger than index)', () => {
    check((x) => T.gather(x!, 1, idx([0, 2, 2, 1, 0, 0], [2, 3])), [rand64([2, 4], true)]);
    check((x) => T.gather(x!, 0, idx([1, 1, 0, 2], [2, 2])), [rand64([3, 2], true)]);
    check((x, s) => T.scatterAdd(x!, 1, idx([0, 2, 2, 1], [2, 2]), s!), [rand64([2, 3], true), rand64([2, 2], true)]);
    check((x, s) => T.scatterAdd(x!, 0, idx([1, 0, 1], [1, 3]), s!), [rand64([2, 3], true), rand64([2, 4], true)]);
    check((s) => T.scatterAdd(T.zeros([3, 3], { dtype: 'float64' }), 1, idx([2, 2, 0, 1], [2, 2]), s!), [rand64([3, 5], true)]);
    const src = T.ones([2, 4], { requiresGrad: true });
    T.scatterAdd(T.zeros([2, 3]), 1, idx([0, 1, 2, 2], [2, 2]), src).sum().backward();
    expect(src.grad!.toArray()).toEqual([[1, 1, 0, 0], [1, 1, 0, 0]]);
  });
  it('clear errors for out-of-range indices and mismatched shapes', () => {
    expect(() => T.gather(T.randn([2, 3]), 1, idx([0, 3], [2, 1]))).toThrow(/gather: index 3 is out of range for a dimension of size 3/);
    expect(() => T.gather(T.randn([2, 3]), 1, idx([-2], [1, 1]))).toThrow(/gather: index -2/);
    expect(() => T.scatterAdd(T.zeros([2, 3]), 0, idx([2], [1, 1]), T.ones([1, 1]))).toThrow(/scatter_add: index 2 is out of range for a dimension of size 2/);
    expect(() => T.gather(T.randn([2, 3]), 1, idx([0], [1]))).toThrow(/gather: index \[1\] must have as many dims as the input \[2, 3\]/);
    expect(() => T.gather(T.randn([2, 3]), 1, idx([0, 0, 0], [3, 1]))).toThrow(/larger than the input/);
    expect(() => T.scatterAdd(T.zeros([2, 3]), 1, idx([0, 0], [1, 2]), T.ones([1, 1]))).toThrow(/larger than src/);
  });
});

describe('oneHot', () => {
  it('encodes int64 / int32 indices of any shape', () => {
    expect(T.oneHot(idx([0, 2, 1]), 3).toArray()).toEqual([[1, 0, 0], [0, 0, 1], [0, 1, 0]]);
    const o = T.oneHot(idx([1, 0, 3, 3], [2, 2], 'int32'), 4);
    expect(o.shape).toEqual([2, 2, 4]);
    expect(o.dtype).toBe('int64');
    expect(o.toArray()).toEqual([[[0, 1, 0, 0], [1, 0, 0, 0]], [[0, 0, 0, 1], [0, 0, 0, 1]]]);
    expect(T.oneHot(idx([]), 5).shape).toEqual([0, 5]);
    expect(T.oneHot(T.tensor(2, { dtype: 'int64' }), 3).toArray()).toEqual([0, 0, 1]);
  });
  it('out-of-range indices give a clear error naming the index', () => {
    expect(() => T.oneHot(idx([0, 5]), 3)).toThrow(/oneHot: index 5 at position 1 is out of range for numClasses 3/);
    expect(() => T.oneHot(idx([-1]), 3)).toThrow(/oneHot: index -1/);
    expect(() => T.oneHot(idx([0]), 0)).toThrow(/numClasses must be a positive integer/);
    expect(() => T.oneHot(T.tensor([1]), 3)).toThrow(/int64 or int32/);
  });
});

describe('cat / stack / split / chunk', () => {
  it('cat along any dim, with non-contiguous and empty pieces', () => {
    const a = rng.uniforms(6), b = rng.uniforms(9), c = rng.uniforms(3);
    const A = f64(a, [2, 3]), B = f64(b, [3, 3]), C = f64(c, [1, 3]);
    expect(flat(T.cat([A, B, C]))).toEqual([...a, ...b, ...c]);
    const out = T.cat([A.t(), B.t(), C.t()], 1); // [3, 6]
    expect(out.shape).toEqual([3, 6]);
    expect(flat(out.t())).toEqual([...a, ...b, ...c]);
    expect(flat(T.cat([A.t(), B.t()], -1).t())).toEqual([...a, ...b]);
    expect(T.cat([T.zeros([0, 3]), A]).toArray()).toEqual(A.toArray());
    expect(T.cat([T.zeros([2, 0]), T.zeros([2, 0])], 1).shape).toEqual([2, 0]);
    // mixed dtypes promote
    const m = T.cat([T.ones([2]), T.ones([1], { dtype: 'float64' })]);
    expect(m.dtype).toBe('float64');
  });
  it('stack along new leading, middle, last and negative dims', () => {
    const a = rng.uniforms(6), b = rng.uniforms(6);
    const A = f64(a, [2, 3]), B = f64(b, [2, 3]);
    expect(T.stack([A, B]).shape).toEqual([2, 2, 3]);
    expect(flat(T.stack([A, B]))).toEqual([...a, ...b]);
    const s1 = T.stack([A, B], 1);
    expect(s1.shape).toEqual([2, 2, 3]);
    expect(s1.toArray()).toEqual([[a.slice(0, 3), b.slice(0, 3)], [a.slice(3), b.slice(3)]]);
    const sl = T.stack([A, B], -1);
    expect(sl.shape).toEqual([2, 3, 2]);
    expect(flat(sl)).toEqual(a.flatMap((v, i) => [v, b[i]!]));
    expect(T.stack([A, B], 2).shape).toEqual([2, 3, 2]);
    expect(T.stack([T.tensor(1), T.tensor(2)]).toArray()).toEqual([1, 2]);
  });
  it('split by size and by sections, chunk like torch.chunk', () => {
    const x = T.arange(0, 10);
    expect(T.split(x, 4).map((t) => t.toArray())).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(T.split(x, [3, 0, 7]).map((t) => t.shape[0])).toEqual([3, 0, 7]);
    expect(x.split(5).length).toBe(2);
    expect(T.chunk(T.arange(0, 5), 3).map((t) => t.toArray())).toEqual([[0, 1], [2, 3], [4]]);
    expect(T.chunk(T.arange(0, 6), 4).map((t) => t.toArray())).toEqual([[0, 1], [2, 3], [4, 5]]); // torch gives 3 chunks
    expect(T.chunk(T.arange(0, 2), 5).length).toBe(2);
    const m = T.arange(0, 12).reshape(3, 4);
    const [p, q] = T.chunk(m, 2, 1);
    expect(p!.toArray()).toEqual([[0, 1], [4, 5], [8, 9]]);
    expect(q!.toArray()).toEqual([[2, 3], [6, 7], [10, 11]]);
    expect(m.split([1, 2], 0).map((t) => t.shape)).toEqual([[1, 4], [2, 4]]);
    // split pieces are views of the same storage
    expect(p!.storage).toBe(m.storage);
    expect(T.split(T.zeros([0, 2]), 3).map((t) => t.shape)).toEqual([[0, 2]]);
  });
  it('gradients (gradcheck) through cat, stack, split and chunk', () => {
    check((a, b, c) => T.cat([a!, b!, c!], 1), [rand64([2, 1], true), rand64([2, 3], true), rand64([2, 2], true)]);
    check((a, b) => T.cat([a!.t(), b!], 0), [rand64([3, 2], true), rand64([1, 3])]);
    check((a, b) => T.stack([a!, b!], 1), [rand64([2, 3], true), rand64([2, 3], true)]);
    check((x) => { const [a, b, c] = T.split(x!, [1, 2, 1], 1); return T.cat([c!.mul(2), a!, b!.mul(b!)], 1); }, [rand64([2, 4], true)]);
    check((x) => { const ps = T.chunk(x!, 3, 0); return ps[0]!.sum().add(ps[2]!.mul(ps[2]!).sum()); }, [rand64([5, 2], true)]);
    // mixed dtypes: each input gets a gradient of its own dtype
    const a = T.ones([2], { requiresGrad: true }), b = T.ones([2], { dtype: 'float64', requiresGrad: true });
    T.cat([a, b]).sum().backward();
    expect(a.grad!.dtype).toBe('float32');
    expect(b.grad!.dtype).toBe('float64');
  });
  it('clear errors', () => {
    expect(() => T.cat([])).toThrow(/non-empty list/);
    expect(() => T.cat([T.ones([2, 3]), T.ones([2, 4])])).toThrow(/cat: shapes \[2, 3\], \[2, 4\] differ outside dim 0/);
    expect(() => T.cat([T.ones([2, 3]), T.ones([3])])).toThrow(/cat: shapes/);
    expect(() => T.cat([T.tensor(1), T.tensor(2)])).toThrow(/zero-dimensional/);
    expect(() => T.stack([T.ones([2]), T.ones([3])])).toThrow(/stack: all shapes must match, got \[2\], \[3\]/);
    expect(() => T.split(T.ones([5]), [2, 2])).toThrow(/sum to 4, but dim 0 has size 5/);
    expect(() => T.split(T.ones([5]), 0)).toThrow(/positive integer/);
    expect(() => T.chunk(T.ones([5]), 0)).toThrow(/positive integer/);
    expect(() => T.cat([T.ones([2])], 1)).toThrow(/dim 1 is out of range/);
  });
});
