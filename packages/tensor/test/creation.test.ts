/**
 * Creation (src/ops/creation.ts), random generation (src/generator.ts), dtypes
 * (src/dtype.ts) and data access (toArray / item / data / dataSync): values and dtypes of
 * tensors built from nested arrays, typed arrays and constants; determinism of seeded
 * Philox draws; rough statistics of rand / randn / randint on 100k samples.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { values } from './helpers/ref.js';

// ---- tensor(): nested arrays, typed arrays, dtypes -------------------------------------------------

describe('tensor()', () => {
  it('infers shapes from nested arrays (scalars, empty and size-1 dims)', () => {
    const cases: [unknown, number[]][] = [
      [5, []], [[5], [1]], [[1, 2, 3], [3]], [[[1, 2, 3], [4, 5, 6]], [2, 3]], [[], [0]], [[[], []], [2, 0]],
      [[[[]]], [1, 1, 0]], [[[[1]], [[2]]], [2, 1, 1]],
    ];
    for (const [data, shape] of cases) {
      const t = T.tensor(data as number[]);
      expect(t.shape, JSON.stringify(data)).toEqual(shape);
      expect(t.dtype).toBe('float32');
      expect(t.toArray()).toEqual(data);
      expect(t.isContiguous()).toBe(true);
      expect(t.numel).toBe(shape.reduce((a, b) => a * b, 1));
    }
  });

  it('infers dtypes from the data', () => {
    expect(T.tensor([1.5, 2]).dtype).toBe('float32');
    expect(T.tensor([true, false]).dtype).toBe('bool');
    expect(T.tensor(true).dtype).toBe('bool');
    expect(T.tensor([1n, 2n]).dtype).toBe('int64');
    expect(T.tensor(new Float32Array([1])).dtype).toBe('float32');
    expect(T.tensor(new Float64Array([1])).dtype).toBe('float64');
    expect(T.tensor(new Int32Array([1])).dtype).toBe('int32');
    expect(T.tensor(new BigInt64Array([1n])).dtype).toBe('int64');
    expect(T.tensor(new Uint8Array([1])).dtype).toBe('uint8');
  });

  it('converts to an explicit dtype: truncation, 0/1 bools, wrapping uint8, exact int64', () => {
    expect(T.tensor([1.9, -1.9, 0.5], { dtype: 'int32' }).toArray()).toEqual([1, -1, 0]);
    expect(T.tensor([1.9, -1.9, 0.5], { dtype: 'int64' }).toArray()).toEqual([1, -1, 0]);
    expect(T.tensor([0.1], { dtype: 'float64' }).toArray()).toEqual([0.1]);
    expect(T.tensor([0.1]).toArray()).toEqual([Math.fround(0.1)]);
    expect(T.tensor([255, 256, -1], { dtype: 'uint8' }).toArray()).toEqual([255, 0, 255]);
    expect(T.tensor([true, false], { dtype: 'float32' }).toArray()).toEqual([1, 0]);
    expect(T.tensor([1n, -3n], { dtype: 'float64' }).toArray()).toEqual([1, -3]);
    const big = T.tensor([2n ** 62n + 1n, -(2n ** 60n)]);
    expect(Array.from(big.data() as BigInt64Array)).toEqual([2n ** 62n + 1n, -(2n ** 60n)]);
    expect(Array.from(T.tensor([2 ** 53], { dtype: 'int64' }).data() as BigInt64Array)).toEqual([2n ** 53n]);
  });

  it('bool tensors hold 0/1 whatever the source (nonzero and NaN are true)', () => {
    const fromNums = T.tensor([0, 2, 0.5, -1, NaN, -0], { dtype: 'bool' });
    expect(Array.from(fromNums.data() as Uint8Array)).toEqual([0, 1, 1, 1, 1, 0]);
    expect(fromNums.toArray()).toEqual([false, true, true, true, true, false]);
    const fromBytes = T.tensor(new Uint8Array([0, 2, 255]), { dtype: 'bool' });
    expect(Array.from(fromBytes.data() as Uint8Array)).toEqual([0, 1, 1]);
    // kernels see proper bools
    expect(T.logicalXor(fromBytes, T.tensor([true, true, true])).toArray()).toEqual([true, false, false]);
    expect(T.eq(fromBytes, T.tensor([false, true, true])).toArray()).toEqual([true, true, true]);
    expect(T.tensor([2n, 0n], { dtype: 'bool' }).toArray()).toEqual([true, false]);
  });

  it('typed arrays with a shape, subarrays, and copies (the tensor never aliases the input)', () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = T.tensor(src, { shape: [2, 3] });
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    src[0] = 100;
    expect(t.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(T.tensor(src.subarray(2, 4)).toArray()).toEqual([3, 4]);
    expect(T.tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 1, 2] }).toArray()).toEqual([[[1, 2]], [[3, 4]]]);
    expect(T.tensor([1, 2, 3, 4], { shape: [2, 2] }).toArray()).toEqual([[1, 2], [3, 4]]);
    expect(T.tensor(new Float64Array(0), { shape: [3, 0] }).shape).toEqual([3, 0]);
  });

  it('clear errors for ragged arrays, shape mismatches, non-finite int64 values, bad shapes', () => {
    expect(() => T.tensor([[1, 2], [3]])).toThrow(/tensor: ragged nested array at \[1\]: expected length 2/);
    expect(() => T.tensor([[1, 2], 3] as unknown as number[][])).toThrow(/tensor: ragged nested array at \[1\]/);
    expect(() => T.tensor([1, [2]] as unknown as number[])).toThrow(/tensor: ragged nested array at \[1\]/);
    expect(() => T.tensor([1, 2, 3], { shape: [2, 2] })).toThrow(/tensor: 3 values do not fill shape \[2, 2\]/);
    expect(() => T.tensor(new Float32Array(5), { shape: [2, 3] })).toThrow(/tensor: 5 values do not fill shape \[2, 3\]/);
    expect(() => T.tensor([1, NaN], { dtype: 'int64' })).toThrow(/tensor: NaN \(element 1\) cannot be stored as int64/);
    expect(() => T.tensor([Infinity], { dtype: 'int64' })).toThrow(/cannot be stored as int64/);
    expect(() => T.tensor([1], { shape: [-1] })).toThrow();
    expect(() => T.zeros([2, -1])).toThrow(/invalid shape \[2, -1\]: sizes must be non-negative integers/);
    expect(() => T.ones([1.5])).toThrow(/invalid shape \[1.5\]/);
  });

  it('requiresGrad option (floating dtypes only)', () => {
    const x = T.tensor([1, 2], { requiresGrad: true });
    expect(x.requiresGrad).toBe(true);
    expect(x.isLeaf).toBe(true);
    expect(() => T.tensor([1, 2], { dtype: 'int64', requiresGrad: true })).toThrow(/requiresGrad_: only floating tensors can require gradients, got int64/);
    expect(T.zeros([2], { dtype: 'float64', requiresGrad: true }).requiresGrad).toBe(true);
    expect(() => T.ones([2], { dtype: 'bool', requiresGrad: true })).toThrow(/requiresGrad_/);
  });
});

// ---- constants --------------------------------------------------------------------------------------

describe('zeros / ones / full / *Like / empty / arange / eye', () => {
  it('zeros, ones and full for every dtype and shape', () => {
    for (const dtype of T.DTYPES) {
      for (const shape of [[], [1], [3], [2, 3], [0], [2, 0, 4]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const z = T.zeros(shape, { dtype }), o = T.ones(shape, { dtype });
        expect(z.dtype).toBe(dtype);
        expect(z.shape).toEqual(shape);
        expect(values(z)).toEqual(new Array(n).fill(0));
        expect(values(o)).toEqual(new Array(n).fill(1));
        const f = T.full(shape, 7, { dtype });
        expect(values(f)).toEqual(new Array(n).fill(dtype === 'bool' ? 1 : 7));
      }
    }
    expect(values(T.full([2], 2.7, { dtype: 'int32' }))).toEqual([2, 2]);
    expect(values(T.full([2], -2.7, { dtype: 'int64' }))).toEqual([-2, -2]);
    expect(values(T.full([2], 2.7, { dtype: 'float64' }))).toEqual([2.7, 2.7]);
    expect(values(T.full([2], NaN))).toEqual([NaN, NaN]);
    expect(values(T.full([2], -Infinity))).toEqual([-Infinity, -Infinity]);
    expect(values(T.full([3], 0.5, { dtype: 'bool' }))).toEqual([1, 1, 1]);
    // large fills take the threaded path
    const big = T.full([200000], 3);
    expect(T.sum(big).item()).toBe(600000);
  });

  it('*Like keep shape and dtype unless overridden; empty has shape and dtype', () => {
    const x = T.ones([2, 3], { dtype: 'int32' });
    for (const [name, t, v] of [['zerosLike', T.zerosLike(x), 0], ['onesLike', T.onesLike(x), 1], ['fullLike', T.fullLike(x, 4), 4]] as const) {
      expect(t.shape, name).toEqual([2, 3]);
      expect(t.dtype, name).toBe('int32');
      expect(values(t)).toEqual(new Array(6).fill(v));
    }
    expect(T.zerosLike(x, { dtype: 'float64' }).dtype).toBe('float64');
    expect(T.onesLike(T.ones([2]), { requiresGrad: true }).requiresGrad).toBe(true);
    const e = T.empty([4, 5], { dtype: 'float64' });
    expect(e.shape).toEqual([4, 5]);
    expect(e.dtype).toBe('float64');
    expect(T.emptyLike(x).shape).toEqual([2, 3]);
    expect(T.emptyLike(x).dtype).toBe('int32');
  });

  it('arange: int64 for integers, float32 otherwise, negative steps, empty ranges, explicit dtype', () => {
    const a = T.arange(5);
    expect(a.dtype).toBe('int64');
    expect(a.toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(T.arange(2, 7).toArray()).toEqual([2, 3, 4, 5, 6]);
    expect(T.arange(2, 9, 3).toArray()).toEqual([2, 5, 8]);
    expect(T.arange(5, 0, -1).toArray()).toEqual([5, 4, 3, 2, 1]);
    expect(T.arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(T.arange(3, 3).shape).toEqual([0]);
    expect(T.arange(5, 0).shape).toEqual([0]);
    expect(T.arange(0).shape).toEqual([0]);
    const f = T.arange(1, 2.5, 0.5);
    expect(f.dtype).toBe('float32');
    expect(f.toArray()).toEqual([1, 1.5, 2]);
    const tenths = T.arange(0, 1, 0.1, { dtype: 'float64' });
    expect(tenths.shape).toEqual([10]);
    expect(values(tenths).map((v, i) => Math.abs(v - i * 0.1) < 1e-12)).toEqual(new Array(10).fill(true));
    expect(T.arange(0, 0.3, 0.1).shape).toEqual([3]);
    expect(T.arange(0, 4, 1, { dtype: 'int32' }).dtype).toBe('int32');
    expect(() => T.arange(0, 5, 0)).toThrow(/arange: step must be non-zero/);
    expect(() => T.arange(0, Infinity)).toThrow(/arange: start, end and step must be finite/);
    expect(() => T.arange(0, NaN)).toThrow(/arange: start, end and step must be finite/);
  });

  it('eye', () => {
    expect(T.eye(3).toArray()).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    expect(T.eye(1).toArray()).toEqual([[1]]);
    expect(T.eye(0).shape).toEqual([0, 0]);
    const i = T.eye(2, { dtype: 'int64' });
    expect(i.dtype).toBe('int64');
    expect(i.toArray()).toEqual([[1, 0], [0, 1]]);
    expect(T.eye(2, { dtype: 'bool' }).toArray()).toEqual([[true, false], [false, true]]);
  });
});

// ---- random -----------------------------------------------------------------------------------

function stats(v: number[]): { mean: number; std: number; skew: number; kurt: number } {
  const n = v.length;
  let m = 0;
  for (const x of v) m += x;
  m /= n;
  let m2 = 0, m3 = 0, m4 = 0;
  for (const x of v) {
    const d = x - m;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean: m, std: Math.sqrt(m2), skew: m3 / m2 ** 1.5, kurt: m4 / (m2 * m2) };
}

function correlation(a: number[], b: number[]): number {
  const sa = stats(a), sb = stats(b);
  let c = 0;
  for (let i = 0; i < a.length; ++i) c += (a[i]! - sa.mean) * (b[i]! - sb.mean);
  return c / a.length / (sa.std * sb.std);
}

const N = 100_000;

describe('random generation', () => {
  const threads = T.nativeInfo().threads as number;
  afterAll(() => T.setNumThreads(threads));

  it('rand: uniform [0, 1) in float32 and float64 (range, moments, histogram, no serial correlation)', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const v = values(T.rand([N], { dtype, generator: new T.Generator(1) }));
      expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...v)).toBeLessThan(1);
      const s = stats(v);
      expect(Math.abs(s.mean - 0.5)).toBeLessThan(0.005);
      expect(Math.abs(s.std - Math.sqrt(1 / 12))).toBeLessThan(0.003);
      const bins = new Array(10).fill(0);
      for (const x of v) bins[Math.floor(x * 10)]++;
      for (const b of bins) expect(Math.abs(b - N / 10)).toBeLessThan(450);
      expect(Math.abs(correlation(v.slice(1), v.slice(0, -1)))).toBeLessThan(0.015);
    }
  });

  it('uniform(low, high) stays in [low, high) and is centred', () => {
    const v = values(T.uniform([N], -3, 5, { generator: new T.Generator(2) }));
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...v)).toBeLessThan(5);
    expect(Math.abs(stats(v).mean - 1)).toBeLessThan(0.04);
    expect(values(T.uniform([3], 2, 2))).toEqual([2, 2, 2]);
    expect(() => T.uniform([3], 6, 5)).toThrow(/uniform: expected finite low <= high, got low 6, high 5/);
  });

  it('randn: standard normal moments (mean, std, skew, kurtosis, 1-sigma mass) and mean/std options', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const v = values(T.randn([N], { dtype, generator: new T.Generator(3) }));
      const s = stats(v);
      expect(Math.abs(s.mean)).toBeLessThan(0.012);
      expect(Math.abs(s.std - 1)).toBeLessThan(0.01);
      expect(Math.abs(s.skew)).toBeLessThan(0.04);
      expect(Math.abs(s.kurt - 3)).toBeLessThan(0.08);
      const inside = v.filter((x) => Math.abs(x) < 1).length / N;
      expect(Math.abs(inside - 0.682689)).toBeLessThan(0.006);
      expect(v.every(Number.isFinite)).toBe(true);
    }
    const w = values(T.randn([N], { mean: 10, std: 0.5, generator: new T.Generator(4) }));
    const s = stats(w);
    expect(Math.abs(s.mean - 10)).toBeLessThan(0.01);
    expect(Math.abs(s.std - 0.5)).toBeLessThan(0.006);
    expect(values(T.randn([3], { std: 0, mean: 2 }))).toEqual([2, 2, 2]);
    expect(() => T.randn([3], { std: -1 })).toThrow(/randn: expected a finite mean and a finite std >= 0/);
  });

  it('randint: integers in [low, high), every value hit about equally, for each integer dtype', () => {
    const v = values(T.randint(-3, 5, [N], { generator: new T.Generator(5) }));
    expect(T.randint(-3, 5, [2]).dtype).toBe('int64');
    const counts = new Map<number, number>();
    for (const x of v) {
      expect(Number.isInteger(x)).toBe(true);
      counts.set(x, (counts.get(x) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3, 4]);
    for (const c of counts.values()) expect(Math.abs(c - N / 8)).toBeLessThan(550);
    for (const [dtype, lo, hi] of [['int32', -100, 100], ['uint8', 0, 256], ['bool', 0, 2], ['float32', 0, 10], ['int64', 2 ** 40, 2 ** 40 + 3]] as const) {
      const t = T.randint(lo, hi, [5000], { dtype, generator: new T.Generator(6) });
      expect(t.dtype).toBe(dtype);
      const u = values(t);
      expect(Math.min(...u)).toBe(lo);
      expect(Math.max(...u)).toBe(hi - 1);
    }
    expect(() => T.randint(3, 3, [2])).toThrow(/randint: high \(3\) must be greater than low \(3\)/);
    expect(() => T.randint(0.5, 3, [2])).toThrow(/randint: low \(0.5\) and high \(3\) must be integers/);
    expect(() => T.randint(0, 300, [2], { dtype: 'uint8' })).toThrow(/randint: \[0, 300\) does not fit dtype uint8/);
    expect(() => T.randint(-1, 1, [2], { dtype: 'bool' })).toThrow(/does not fit dtype bool/);
  });

  it('rand and randn refuse integer dtypes with a clear message', () => {
    expect(() => T.rand([2], { dtype: 'int32' })).toThrow(/rand: expected a floating dtype, got int32/);
    expect(() => T.randn([2], { dtype: 'int64' })).toThrow(/randn: expected a floating dtype, got int64/);
    expect(() => T.randLike(T.ones([2], { dtype: 'int64' }))).toThrow(/rand: expected a floating dtype/);
  });

  it('same seed gives identical tensors; different seeds differ; offsets continue the stream', () => {
    for (const draw of [
      (g: T.Generator) => T.rand([1000], { generator: g }),
      (g: T.Generator) => T.randn([1000], { dtype: 'float64', generator: g }),
      (g: T.Generator) => T.randint(0, 1000, [1000], { generator: g }),
      (g: T.Generator) => T.uniform([1000], -1, 1, { generator: g }),
    ]) {
      const a = values(draw(new T.Generator(42))), b = values(draw(new T.Generator(42)));
      expect(a).toEqual(b);
      const c = values(draw(new T.Generator(43)));
      expect(c.filter((x, i) => x === a[i]!).length).toBeLessThan(20);
    }
    // counter-based: two draws from one generator equal one draw of the total size
    const g = new T.Generator(7);
    const first = values(T.rand([10], { generator: g })), second = values(T.rand([20], { generator: g }));
    expect(g.offset).toBe(30);
    expect([...first, ...second]).toEqual(values(T.rand([30], { generator: new T.Generator(7) })));
    // shapes do not matter, only element counts
    expect(values(T.randn([3, 4], { generator: new T.Generator(8) }))).toEqual(values(T.randn([12], { generator: new T.Generator(8) })));
    // seeds above 2^32 are distinct from their low 32 bits
    expect(values(T.rand([4], { generator: new T.Generator(2 ** 32) }))).not.toEqual(values(T.rand([4], { generator: new T.Generator(0) })));
    // empty draws do not advance the stream
    const h = new T.Generator(9);
    T.rand([0, 5], { generator: h });
    expect(h.offset).toBe(0);
  });

  it('manualSeed, the default generator, getState/setState replay', () => {
    T.manualSeed(123);
    const a = values(T.rand([50]));
    const b = values(T.randn([50]));
    T.manualSeed(123);
    expect(values(T.rand([50]))).toEqual(a);
    expect(values(T.randn([50]))).toEqual(b);
    expect(values(T.rand([50], { generator: new T.Generator(123) }))).toEqual(a);
    expect(T.manualSeed(5)).toBe(T.defaultGenerator);
    expect(T.defaultGenerator.seed).toBe(5);
    expect(T.defaultGenerator.offset).toBe(0);
    const g = new T.Generator(11);
    T.rand([17], { generator: g });
    const state = g.getState();
    const next = values(T.randn([25], { generator: g }));
    g.setState(state);
    expect(values(T.randn([25], { generator: g }))).toEqual(next);
    expect(() => T.manualSeed(-1)).toThrow(/seed must be a non-negative safe integer, got -1/);
    expect(() => new T.Generator(1.5)).toThrow(/seed must be a non-negative safe integer/);
    expect(() => g.setState({ seed: 1, offset: -5 })).toThrow(/offset must be a non-negative safe integer, got -5/);
    expect(() => g.setState({ seed: 1, offset: 0.5 })).toThrow(/offset must be a non-negative safe integer/);
    T.manualSeed(0);
  });

  it('values do not depend on the number of native threads', () => {
    const draw = () => [
      values(T.rand([50000], { generator: new T.Generator(77) })),
      values(T.randn([50000], { generator: new T.Generator(78) })),
      values(T.randint(0, 10, [50000], { generator: new T.Generator(79) })),
    ];
    T.setNumThreads(1);
    const one = draw();
    T.setNumThreads(Math.max(2, threads));
    const many = draw();
    T.setNumThreads(threads);
    expect(many).toEqual(one);
  });

  it('*Like variants take shape, dtype and the generator', () => {
    const x = T.zeros([3, 4], { dtype: 'float64' });
    const r = T.randLike(x, { generator: new T.Generator(1) });
    expect(r.shape).toEqual([3, 4]);
    expect(r.dtype).toBe('float64');
    expect(values(r)).toEqual(values(T.rand([12], { dtype: 'float64', generator: new T.Generator(1) })));
    expect(T.randnLike(x).dtype).toBe('float64');
    const i = T.randintLike(T.zeros([5], { dtype: 'int32' }), 0, 3);
    expect(i.dtype).toBe('int32');
    expect(values(i).every((v) => v >= 0 && v < 3)).toBe(true);
    expect(T.randLike(x, { dtype: 'float32' }).dtype).toBe('float32');
    expect(T.rand([2], { requiresGrad: true }).requiresGrad).toBe(true);
  });
});

// ---- dtypes and data access ------------------------------------------------------------------------

describe('dtypes and data access', () => {
  it('dtype table, sizes, floating check and promotion', () => {
    expect([...T.DTYPES]).toEqual(['float32', 'float64', 'int32', 'int64', 'bool', 'uint8', 'bfloat16', 'float16']);
    expect(T.dtypeSize).toEqual({ float32: 4, float64: 8, int32: 4, int64: 8, bool: 1, uint8: 1, bfloat16: 2, float16: 2 });
    expect(T.DTYPES.filter(T.isFloating)).toEqual(['float32', 'float64', 'bfloat16', 'float16']);
    for (const half of ['bfloat16', 'float16'] as const) {
      const order = ['bool', 'uint8', 'int32', 'int64', half, 'float32', 'float64'] as const;
      for (let i = 0; i < order.length; ++i) {
        for (let j = 0; j < order.length; ++j) {
          expect(T.promoteTypes(order[i]!, order[j]!)).toBe(order[Math.max(i, j)]);
        }
      }
    }
    expect(T.promoteTypes('bfloat16', 'float16')).toBe('float32'); // as PyTorch
  });

  it('data() is a live view of contiguous CPU tensors (incl. offset views); a copy otherwise', () => {
    const x = T.tensor([[1, 2, 3], [4, 5, 6]]);
    const d = x.data() as Float32Array;
    expect(d).toBeInstanceOf(Float32Array);
    d[4] = 50;
    expect(x.toArray()).toEqual([[1, 2, 3], [4, 50, 6]]);
    const row = T.select(x, 0, 1);
    const rd = row.data() as Float32Array;
    expect(Array.from(rd)).toEqual([4, 50, 6]);
    rd[0] = 40;
    expect(x.toArray()).toEqual([[1, 2, 3], [40, 50, 6]]);
    const col = T.select(x, 1, 0);
    const cd = col.data();
    expect(Array.from(cd as Float32Array)).toEqual([1, 40]);
    (cd as Float32Array)[0] = -1;
    expect(x.toArray()).toEqual([[1, 2, 3], [40, 50, 6]]);
    for (const [dtype, ctor] of [['float64', Float64Array], ['int32', Int32Array], ['int64', BigInt64Array], ['bool', Uint8Array], ['uint8', Uint8Array]] as const) {
      expect(T.zeros([2], { dtype }).data()).toBeInstanceOf(ctor);
      expect(T.zeros([2], { dtype }).dataSync()).toBeInstanceOf(ctor);
    }
    expect(T.zeros([0]).data().length).toBe(0);
    expect(T.zeros([3, 0]).t().data().length).toBe(0);
  });

  it('dataSync() is an independent copy that outlives the tensor; a data() view empties on dispose', () => {
    const x = T.tensor([1, 2, 3]);
    const copy = x.dataSync();
    const live = x.data();
    copy[0] = 9;
    expect(x.toArray()).toEqual([1, 2, 3]);
    x.dispose();
    expect(Array.from(copy as Float32Array)).toEqual([9, 2, 3]);
    expect(live.length).toBe(0);
    expect(Array.from(T.tensor([[1, 2], [3, 4]]).t().dataSync() as Float32Array)).toEqual([1, 3, 2, 4]);
  });

  it('toArray and item across dtypes and shapes', () => {
    expect(T.tensor(3.5).toArray()).toBe(3.5);
    expect(T.tensor(true).toArray()).toBe(true);
    expect(T.tensor([[true], [false]]).toArray()).toEqual([[true], [false]]);
    expect(T.tensor([[1n, 2n]]).toArray()).toEqual([[1, 2]]);
    expect(T.zeros([2, 0, 3]).toArray()).toEqual([[], []]);
    expect(T.tensor(2.5).item()).toBe(2.5);
    expect(T.tensor([[[7]]], { dtype: 'int64' }).item()).toBe(7);
    expect(T.tensor([4], { dtype: 'uint8' }).item()).toBe(4);
    expect(() => T.tensor([1, 2]).item()).toThrow(/item: expected a tensor with one element, got shape \[2\]/);
    expect(() => T.zeros([0]).item()).toThrow(/item: expected a tensor with one element, got shape \[0\]/);
  });

  it('a disposed tensor: data access throws a clear error, dispose is idempotent', () => {
    const x = T.ones([2]);
    x.dispose();
    x.dispose();
    expect(x.disposed).toBe(true);
    expect(() => x.item()).toThrow(/item: tensor of shape \[2\] was disposed/);
    expect(() => x.data()).toThrow(/data: tensor of shape \[2\] was disposed/);
    expect(() => x.dataSync()).toThrow(/dataSync: tensor of shape \[2\] was disposed/);
    expect(() => x.toArray()).toThrow(/disposed/);
    for (const [name, f] of [['zerosLike', T.zerosLike], ['onesLike', T.onesLike], ['emptyLike', T.emptyLike], ['randLike', T.randLike], ['randnLike', T.randnLike]] as const) {
      expect(() => f(x), name).toThrow(new RegExp(`${name}: tensor of shape \\[2\\] was disposed`));
    }
    expect(() => T.fullLike(x, 1)).toThrow(/fullLike: .*disposed/);
    expect(() => T.randintLike(x, 0, 2)).toThrow(/randintLike: .*disposed/);
  });
});
