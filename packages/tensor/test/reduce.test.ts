/**
 * Reductions (src/ops/reduce.ts) against plain float64 references: sum/mean/var/prod over
 * any dims with keepdim, max/min (values and first indices), argmax/argmin, logsumexp, topk
 * and cumsum — on scalars, size-1 and size-0 dims, non-contiguous inputs, reduced non-last
 * dims, and sizes that take the kernels' threaded and outer-reduction paths; gradients by
 * finite differences.
 */
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import {
  EXACT, F32, F64, LAYOUTS, Rng, expectClose, fromLines, layoutTensor, lines, randIntRef, randRef, reduce, reducers, ref, toTensor, values,
  type Ref, type Tol,
} from './helpers/ref.js';

type Dims = number | number[] | undefined;

/** Shapes with the dims lists to reduce over for each. */
const CASES: [number[], Dims[]][] = [
  [[], [undefined, 0, -1]],
  [[1], [undefined, 0]],
  [[7], [undefined, 0, -1]],
  [[3, 4], [undefined, 0, 1, -1, [0, 1], [1, 0]]],
  [[2, 3, 5], [undefined, 0, 1, 2, [0, 2], [1, 2], [0, 1], [-1, 0, 1]]],
  [[4, 1, 3], [undefined, 1, [0, 1], [0, 2]]],
  [[0], [undefined, 0]],
  [[3, 0], [undefined, 0, 1]],
  [[2, 0, 3], [0, 1, [0, 2]]],
  [[5, 70], [0, 1]],
  [[2, 3, 4, 5], [[1, 3], [0, 2], 3, [0, 1, 2]]],
];

const FLOATS: T.DType[] = ['float32', 'float64'];

function gradOk(fn: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], opts: T.GradcheckOptions = {}): void {
  const r = T.gradcheck(fn, inputs, opts);
  expect(r.ok, `gradcheck failed: ${JSON.stringify(r.failure)} (max abs error ${r.maxAbsError})`).toBe(true);
}

function dimsName(d: Dims): string {
  return d === undefined ? 'all' : JSON.stringify(d);
}

function forEachCase(seed: number, body: (a: Ref, dims: Dims, keepdim: boolean, layout: (typeof LAYOUTS)[number], what: string) => void, gen?: (rng: Rng, shape: number[]) => Ref): void {
  const rng = new Rng(seed);
  for (const [shape, dimsList] of CASES) {
    const a = gen ? gen(rng, shape) : randRef(rng, shape);
    for (const dims of dimsList) {
      for (const keepdim of [false, true]) {
        for (const layout of LAYOUTS) {
          T.scope(() => body(a, dims, keepdim, layout, `${JSON.stringify(shape)} dims=${dimsName(dims)} keepdim=${keepdim} ${layout}`));
        }
      }
    }
  }
}

// ---- sum / mean / var / prod -----------------------------------------------------------------

describe('sum / mean / var / prod forward', () => {
  it('sum over any dims, keepdim, layouts (float32, float64)', () => {
    for (const dtype of FLOATS) {
      forEachCase(1, (a, dims, keepdim, layout, what) => {
        const y = T.sum(layoutTensor(a, layout, dtype), dims, keepdim);
        expect(y.dtype).toBe(dtype);
        expectClose(y, reduce(a, dims, keepdim, reducers.sum), dtype === 'float32' ? F32 : F64, `sum ${dtype} ${what}`);
      });
    }
  });

  it('sum of integers is exact; sum of bool counts', () => {
    for (const dtype of ['int32', 'int64'] as const) {
      forEachCase(2, (a, dims, keepdim, layout, what) => {
        expectClose(T.sum(layoutTensor(a, layout, dtype), dims, keepdim), reduce(a, dims, keepdim, reducers.sum), EXACT, `sum ${dtype} ${what}`);
      }, (rng, shape) => randIntRef(rng, shape, -1000, 1000));
    }
    const b = T.tensor([[true, false, true], [true, true, true]]);
    expect(T.sum(b).item()).toBe(5);
    expect(T.sum(b, 1).toArray()).toEqual([2, 3]);
    expect(T.sum(b).dtype).toBe('int64');
    expect(T.sum(T.tensor([2 ** 31 - 1, 2 ** 31 - 1], { dtype: 'int64' })).item()).toBe(2 ** 32 - 2);
    // integer sums accumulate in int64 (as PyTorch): no uint8 / int32 overflow
    const u = T.sum(T.full([300], 1, { dtype: 'uint8' }));
    expect(u.dtype).toBe('int64');
    expect(u.item()).toBe(300);
    const i = T.sum(T.tensor([2 ** 31 - 1, 2 ** 31 - 1], { dtype: 'int32' }));
    expect(i.dtype).toBe('int64');
    expect(i.item()).toBe(2 ** 32 - 2);
    expect(T.cumsum(T.full([300], 1, { dtype: 'uint8' }), 0).dtype).toBe('int64');
    expect(T.cumsum(T.full([300], 1, { dtype: 'uint8' }), 0).toArray()).toEqual([...Array(300).keys()].map((k) => k + 1));
    expect(T.prod(T.tensor([65536, 65536], { dtype: 'int32' })).item()).toBe(2 ** 32);
  });

  it('mean over any dims, keepdim, layouts; integer input gives float32', () => {
    for (const dtype of FLOATS) {
      forEachCase(3, (a, dims, keepdim, layout, what) => {
        expectClose(T.mean(layoutTensor(a, layout, dtype), dims, keepdim), reduce(a, dims, keepdim, reducers.mean), dtype === 'float32' ? F32 : F64, `mean ${dtype} ${what}`);
      });
    }
    const m = T.mean(T.tensor([1, 2, 4], { dtype: 'int64' }));
    expect(m.dtype).toBe('float32');
    expect(m.item()).toBeCloseTo(7 / 3, 6);
    expect(Number.isNaN(T.mean(T.zeros([0])).item())).toBe(true);
  });

  it('var with correction 1 (default) and 0, keepdim, layouts', () => {
    for (const dtype of FLOATS) {
      for (const correction of [1, 0]) {
        forEachCase(4, (a, dims, keepdim, layout, what) => {
          const y = T.variance(layoutTensor(a, layout, dtype), dims, correction === 1 ? { keepdim } : { keepdim, correction });
          const tol: Tol = dtype === 'float32' ? { rtol: 1e-4, atol: 1e-5 } : F64;
          expectClose(y, reduce(a, dims, keepdim, reducers.variance(correction)), tol, `var(c=${correction}) ${dtype} ${what}`);
        });
      }
    }
    expect(T.tensor([[1, 2], [3, 5]]).var(1).toArray()).toEqual([0.5, 2]);
  });

  it('prod over one dim or all; integer and bool inputs', () => {
    const rng = new Rng(5);
    for (const dtype of FLOATS) {
      for (const [shape, dimsList] of CASES) {
        const a = randRef(rng, shape, 0.5, 1.5);
        for (const dims of dimsList) {
          if (Array.isArray(dims)) continue;
          for (const keepdim of [false, true]) {
            for (const layout of LAYOUTS) {
              T.scope(() => {
                expectClose(T.prod(layoutTensor(a, layout, dtype), dims, keepdim), reduce(a, dims, keepdim, reducers.prod), dtype === 'float32' ? F32 : F64,
                  `prod ${dtype} ${JSON.stringify(shape)} ${dimsName(dims)} ${keepdim} ${layout}`);
              });
            }
          }
        }
      }
    }
    expect(T.prod(T.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'int64' }), 1).toArray()).toEqual([6, 120]);
    expect(T.prod(T.tensor([true, true, false])).item()).toBe(0);
    expect(T.prod(T.tensor([true, true])).item()).toBe(1);
    expect(T.prod(T.zeros([0])).item()).toBe(1);
  });

  it('large reductions (threaded, chunked and outer-reduction kernel paths)', () => {
    const rng = new Rng(6);
    const big: [number[], Dims][] = [[[70000], undefined], [[1, 70000], 1], [[3, 40000], 1], [[40000, 3], 0], [[300, 600], 0], [[600, 300], 1], [[20, 30, 40], [0, 2]]];
    for (const [shape, dims] of big) {
      const a = randRef(rng, shape);
      for (const layout of ['contiguous', 'transposed'] as const) {
        T.scope(() => {
          const x = layoutTensor(a, layout);
          expectClose(T.sum(x, dims), reduce(a, dims, false, reducers.sum), { rtol: 1e-5, atol: 1e-4 }, `sum ${JSON.stringify(shape)} ${layout}`);
          if (typeof dims === 'number') {
            const r = T.max(x, dims);
            expectClose(r.values, reduce(a, dims, false, reducers.max), EXACT, `max ${JSON.stringify(shape)} ${layout}`);
            expectClose(r.indices, reduce(a, dims, false, reducers.argmax), EXACT, `argmax ${JSON.stringify(shape)} ${layout}`);
          }
        });
      }
    }
    // a sum that needs float64 accumulation to be right in float32
    const ones = T.ones([1 << 25 >> 6]);
    expect(T.sum(T.add(ones, 2 ** -20)).item()).toBe((1 << 19) * (1 + 2 ** -20));
  });

  it('float32 sums (blocks of 16 float32 addends per lane, then float64) stay within 16 units of rounding of the sum of magnitudes', () => {
    // Magnitudes over 2^-10..2^10, mixed signs and all positive. With positive addends a
    // float32 running sum is off by ~1,000 of these units at n = 70,001 (and 64 float32 lanes
    // without the float64 widening by ~280 at n = 2^20), so the bound tells the accumulations
    // apart; tails below one 1024-element block, a row of exactly one block, threaded halves
    // and the outer path are all covered.
    const rng = new Rng(62);
    const u = 2 ** -24;
    for (const [n, positive] of [7, 1023, 1024, 1025, 2000, 4113, 70001, (1 << 20) + 3].flatMap((n) => [[n, false], [n, true]] as const)) {
      const v = new Float32Array(n);
      for (let i = 0; i < n; ++i) v[i] = (positive ? rng.next() : rng.next() - 0.5) * 2 ** Math.floor(rng.next() * 21 - 10);
      let ref = 0;
      let mag = 0;
      for (let i = 0; i < n; ++i) {
        ref += v[i]!;
        mag += Math.abs(v[i]!);
      }
      T.scope(() => {
        const x = T.tensor(v);
        const s = T.sum(x).item();
        expect(Math.abs(s - ref), `n=${n}: sum ${s} vs ${ref}`).toBeLessThanOrEqual(16 * u * mag + Math.abs(ref) * u);
        expect(T.sum(x).item(), `n=${n}: repeatable`).toBe(s);
        // rows of a [3, n] tensor take the per-row path (one chunk per row, no thread split)
        const wide = x.reshape([1, n]).expand([3, n]);
        for (const r of T.sum(wide.contiguous(), 1).dataSync()) expect(Math.abs(r - ref), `n=${n}: rows`).toBeLessThanOrEqual(16 * u * mag + Math.abs(ref) * u);
        // the stride-0 view takes the outer-reduction path (float64 throughout)
        for (const r of T.sum(wide, 1).dataSync()) expect(Math.abs(r - ref), `n=${n}: expanded rows`).toBeLessThanOrEqual(Math.abs(ref) * u + 1e-12 * mag);
      });
    }
  });
});

describe('reductions of expanded (stride-0) and overlapping views', () => {
  it('sum/mean/max/argmax/prod/logsumexp/cumsum/topk over broadcast views equal the reference', () => {
    const rng = new Rng(61);
    const a = randRef(rng, [3, 1, 4], 0.5, 1.5);
    const shape = [3, 5, 4];
    const e: Ref = { shape, data: [] };
    for (let i = 0; i < 3; ++i) for (let j = 0; j < 5; ++j) for (let k = 0; k < 4; ++k) e.data.push(a.data[i * 4 + k]!);
    const x = toTensor(a).expand(shape);
    for (const dims of [undefined, 0, 1, 2, [0, 1], [1, 2]] as Dims[]) {
      expectClose(T.sum(x, dims), reduce(e, dims, false, reducers.sum), F32, `sum ${dimsName(dims)}`);
      expectClose(T.mean(x, dims, true), reduce(e, dims, true, reducers.mean), F32, `mean ${dimsName(dims)}`);
      if (dims !== undefined) expectClose(T.logsumexp(x, dims), reduce(e, dims, false, reducers.logsumexp), F32, `lse ${dimsName(dims)}`);
    }
    for (const d of [0, 1, 2]) {
      expectClose(T.max(x, d).values, reduce(e, d, false, reducers.max), EXACT, `max ${d}`);
      expectClose(T.argmax(x, d), reduce(e, d, false, reducers.argmax), EXACT, `argmax ${d}`);
      expectClose(T.prod(x, d), reduce(e, d, false, reducers.prod), F32, `prod ${d}`);
      expectClose(T.cumsum(x, d), refCumsum(e, d), F32, `cumsum ${d}`);
      const tk = T.topk(x, 2, d);
      const r = refTopk(e, 2, d, true);
      expectClose(tk.values, r.values, EXACT, `topk ${d}`);
      expectClose(tk.indices, r.indices, EXACT, `topk idx ${d}`);
    }
    expect(T.argmax(x).item()).toBe(reducers.argmax(e.data));
    const g = toTensor(randRef(rng, [3, 1, 4], -1, 1, false), 'float64', true);
    gradOk((v) => T.sum(T.mul(v.expand(shape), v.expand(shape)), 1), [g]);
    gradOk((v) => T.cumsum(v.expand(shape), 1), [g]);
  });
});

describe('sum / mean / var / prod gradients', () => {
  it('sum and mean: gradcheck over dims, keepdim, non-contiguous inputs', () => {
    const rng = new Rng(7);
    for (const [dims, keepdim] of [[undefined, false], [0, false], [1, true], [[0, 2], false], [[-1], true]] as const) {
      const x = toTensor(randRef(rng, [3, 4, 2], -1, 1, false), 'float64', true);
      gradOk((v) => T.sum(v, dims as Dims, keepdim), [x]);
      gradOk((v) => T.mean(v, dims as Dims, keepdim), [x]);
    }
    const y = toTensor(randRef(rng, [4, 3], -1, 1, false), 'float64', true);
    gradOk((v) => T.sum(v.t(), 0), [y]);
    gradOk((v) => T.mean(v.slice(0, 0, 4, 2), 1, true), [y]);
    gradOk((v) => T.sum(v.expand([2, 4, 3]), [0, 2]), [y]);
    gradOk((v) => T.sum(v), [toTensor(randRef(rng, [], -1, 1, false), 'float64', true)]);
  });

  it('var: gradcheck (both corrections)', () => {
    const rng = new Rng(8);
    const x = toTensor(randRef(rng, [3, 5], -1, 1, false), 'float64', true);
    gradOk((v) => T.variance(v), [x]);
    gradOk((v) => T.variance(v, 1, { correction: 0 }), [x]);
    gradOk((v) => T.variance(v.t(), 1, { keepdim: true }), [x]);
  });

  it('prod: gradcheck, including inputs with one and with two zeros', () => {
    const rng = new Rng(9);
    const x = toTensor(randRef(rng, [3, 4], 0.5, 1.5, false), 'float64', true);
    gradOk((v) => T.prod(v, 1), [x]);
    gradOk((v) => T.prod(v, 0, true), [x]);
    gradOk((v) => T.prod(v), [x]);
    gradOk((v) => T.prod(v.t(), 1), [x]);
    const z = T.tensor([[2, 0, 3], [0, 0, 5], [1, 2, 3]], { dtype: 'float64', requiresGrad: true });
    gradOk((v) => T.prod(v, 1), [z]);
    gradOk((v) => T.prod(v, 0), [z]);
    const w = T.tensor([2, 0, 3], { requiresGrad: true });
    T.prod(w).backward();
    expect(values(w.grad!)).toEqual([0, 6, 0]);
  });
});

// ---- max / min / argmax / argmin -----------------------------------------------------------------

describe('max / min / argmax / argmin', () => {
  const intGen = (rng: Rng, shape: number[]) => randIntRef(rng, shape, -3, 4); // many ties

  it('max/min over a dim: values and first indices, keepdim, layouts, dtypes', () => {
    for (const dtype of ['float32', 'float64', 'int32', 'int64', 'uint8'] as const) {
      forEachCase(11, (a, dims, keepdim, layout, what) => {
        if (Array.isArray(dims) || dims === undefined) return;
        const d = dims < 0 ? dims + Math.max(a.shape.length, 1) : dims;
        if (a.shape.length > 0 && a.shape[d] === 0) return;
        const x = layoutTensor(a, layout, dtype);
        for (const [name, fn, rv, ri] of [
          ['max', T.max, reducers.max, reducers.argmax],
          ['min', T.min, reducers.min, reducers.argmin],
        ] as const) {
          const r = fn(x, dims, keepdim);
          expect(r.values.dtype).toBe(dtype);
          expect(r.indices.dtype).toBe('int64');
          expectClose(r.values, reduce(a, dims, keepdim, rv), EXACT, `${name} values ${dtype} ${what}`);
          expectClose(r.indices, reduce(a, dims, keepdim, ri), EXACT, `${name} indices ${dtype} ${what}`);
          expectClose((name === 'max' ? T.argmax : T.argmin)(x, dims, keepdim), reduce(a, dims, keepdim, ri), EXACT, `arg${name} ${dtype} ${what}`);
        }
      }, dtype === 'uint8' ? (rng, shape) => randIntRef(rng, shape, 0, 5) : intGen);
    }
  });

  it('whole-tensor max/min and argmax/argmin (flattened index)', () => {
    const rng = new Rng(12);
    for (const shape of [[], [1], [7], [3, 4], [2, 3, 5], [4, 1, 3]]) {
      const a = randIntRef(rng, shape, -5, 6);
      for (const layout of LAYOUTS) {
        const x = layoutTensor(a, layout);
        expectClose(T.max(x), ref([], [reducers.max(a.data)]), EXACT, `max ${JSON.stringify(shape)} ${layout}`);
        expectClose(T.min(x), ref([], [reducers.min(a.data)]), EXACT, `min ${JSON.stringify(shape)} ${layout}`);
        expectClose(T.argmax(x), ref([], [reducers.argmax(a.data)]), EXACT, `argmax ${JSON.stringify(shape)} ${layout}`);
        expectClose(T.argmin(x), ref([], [reducers.argmin(a.data)]), EXACT, `argmin ${JSON.stringify(shape)} ${layout}`);
      }
    }
    expect(T.tensor([[1, 9], [9, 2]]).max().item()).toBe(9);
    expect(T.tensor([[1, 9], [9, 2]]).max(1).indices.toArray()).toEqual([1, 0]);
  });

  it('NaN wins max and min (first NaN index); ±inf are ordinary values', () => {
    const x = T.tensor([[1, NaN, 3, NaN], [-Infinity, 2, Infinity, 0]]);
    const mx = T.max(x, 1), mn = T.min(x, 1);
    expect(values(mx.values)).toEqual([NaN, Infinity]);
    expect(values(mx.indices)).toEqual([1, 2]);
    expect(values(mn.values)).toEqual([NaN, -Infinity]);
    expect(values(mn.indices)).toEqual([1, 0]);
    expect(Number.isNaN(T.max(x).item())).toBe(true);
    expect(T.argmax(x).item()).toBe(1);
  });

  it('gradients: dim form routes to the chosen index; whole-tensor form splits ties evenly', () => {
    const rng = new Rng(13);
    const x = toTensor(randRef(rng, [3, 4], -2, 2, false), 'float64', true);
    gradOk((v) => T.max(v, 1).values, [x]);
    gradOk((v) => T.min(v, 0, true).values, [x]);
    gradOk((v) => T.max(v.t(), 1).values, [x]);
    gradOk((v) => T.max(v), [x]);
    gradOk((v) => T.min(v), [x]);
    const t = T.tensor([[1, 3, 3], [2, 2, 0]], { requiresGrad: true });
    T.max(t, 1).values.sum().backward();
    expect(t.grad!.toArray()).toEqual([[0, 1, 0], [1, 0, 0]]);
    const u = T.tensor([1, 3, 3, 0], { requiresGrad: true });
    T.max(u).backward();
    expect(u.grad!.toArray()).toEqual([0, 0.5, 0.5, 0]);
    expect(T.argmax(u).requiresGrad).toBe(false);
  });

  it('errors: empty reductions and dims out of range', () => {
    expect(() => T.max(T.zeros([3, 0]), 1)).toThrow(/max: cannot reduce over dim 1 of size 0 in \[3, 0\]/);
    expect(() => T.min(T.zeros([0]))).toThrow(/min: cannot reduce an empty tensor/);
    expect(() => T.argmax(T.zeros([0]))).toThrow(/argmax/);
    expect(T.max(T.zeros([0, 3]), 1).values.shape).toEqual([0]);
    expect(() => T.sum(T.zeros([2, 3]), 2)).toThrow(/sum: dim 2 is out of range for a tensor of shape \[2, 3\]/);
    expect(() => T.mean(T.zeros([2, 3]), -3)).toThrow(/mean: dim -3 is out of range/);
    expect(() => T.max(T.zeros([2, 3]), 5)).toThrow(/max: dim 5 is out of range/);
    expect(() => T.prod(T.zeros([2, 3]), 2)).toThrow(/prod: dim 2 is out of range/);
    expect(() => T.cumsum(T.zeros([2, 3]), 2)).toThrow(/cumsum: dim 2 is out of range/);
    expect(() => T.logsumexp(T.zeros([2, 3]), 2)).toThrow(/logsumexp: dim 2 is out of range/);
  });
});

// ---- logsumexp ------------------------------------------------------------------------------------

describe('logsumexp', () => {
  it('forward over dims, keepdim, layouts; large and infinite inputs', () => {
    for (const dtype of FLOATS) {
      forEachCase(21, (a, dims, keepdim, layout, what) => {
        if (dims === undefined) return;
        expectClose(T.logsumexp(layoutTensor(a, layout, dtype), dims, keepdim), reduce(a, dims, keepdim, reducers.logsumexp), dtype === 'float32' ? F32 : F64, `lse ${dtype} ${what}`);
      }, (rng, shape) => randRef(rng, shape, -10, 10));
    }
    const x = T.tensor([[1000, 1000], [-1000, -1000], [-Infinity, -Infinity], [0, Infinity], [-Infinity, 3]]);
    expectClose(T.logsumexp(x, 1), ref([5], [1000 + Math.log(2), -1000 + Math.log(2), -Infinity, Infinity, 3]), F32);
    expect(T.logsumexp(T.tensor([1, 2], { dtype: 'int32' }), 0).dtype).toBe('float32');
  });

  it('gradcheck (is softmax), incl. non-contiguous input', () => {
    const rng = new Rng(22);
    const x = toTensor(randRef(rng, [3, 4], -3, 3, false), 'float64', true);
    gradOk((v) => T.logsumexp(v, 1), [x]);
    gradOk((v) => T.logsumexp(v, [0, 1], true), [x]);
    gradOk((v) => T.logsumexp(v.t(), 1), [x]);
  });
});

// ---- topk -------------------------------------------------------------------------------------

function refTopk(a: Ref, k: number, dim: number, largest: boolean): { values: Ref; indices: Ref } {
  const d = dim < 0 ? dim + a.shape.length : dim;
  const { lines: ls, others } = lines(a, d);
  const vs: number[][] = [], is: number[][] = [];
  for (const line of ls) {
    const idx = line.map((_, i) => i);
    idx.sort((i, j) => {
      const x = line[i]!, y = line[j]!;
      const xn = Number.isNaN(x), yn = Number.isNaN(y);
      if (xn || yn) {
        if (xn && yn) return i - j;
        return (largest ? xn : yn) ? -1 : 1;
      }
      if (x !== y) return largest ? y - x : x - y;
      return i - j;
    });
    is.push(idx.slice(0, k));
    vs.push(idx.slice(0, k).map((i) => line[i]!));
  }
  return { values: fromLines(vs, others, d, k), indices: fromLines(is, others, d, k) };
}

describe('topk', () => {
  it('values and indices, sorted, largest and smallest, every dim, ties by lower index, layouts', () => {
    const rng = new Rng(31);
    for (const dtype of ['float32', 'float64', 'int64'] as const) {
      for (const shape of [[6], [4, 6], [3, 5, 4], [1, 3], [3, 1], [0, 4], [4, 0]]) {
        const a = randIntRef(rng, shape, -3, 4);
        for (let dim = -shape.length; dim < shape.length; ++dim) {
          const n = shape[dim < 0 ? dim + shape.length : dim]!;
          for (const k of [...new Set([0, Math.min(1, n), Math.min(2, n), n])]) {
            for (const largest of [true, false]) {
              for (const layout of LAYOUTS) {
                T.scope(() => {
                  const r = T.topk(layoutTensor(a, layout, dtype), k, dim, largest);
                  const e = refTopk(a, k, dim, largest);
                  const what = `${dtype} ${JSON.stringify(shape)} k=${k} dim=${dim} largest=${largest} ${layout}`;
                  expect(r.values.dtype).toBe(dtype);
                  expect(r.indices.dtype).toBe('int64');
                  expectClose(r.values, e.values, EXACT, `values ${what}`);
                  expectClose(r.indices, e.indices, EXACT, `indices ${what}`);
                });
              }
            }
          }
        }
      }
    }
  });

  it('distinct random floats and NaN (counted as the largest)', () => {
    const rng = new Rng(32);
    const a = randRef(rng, [5, 40]);
    for (const largest of [true, false]) {
      const r = T.topk(toTensor(a), 7, 1, largest);
      const e = refTopk(a, 7, 1, largest);
      expectClose(r.values, e.values, EXACT);
      expectClose(r.indices, e.indices, EXACT);
    }
    const n = T.tensor([1, NaN, 3, 2]);
    expect(values(T.topk(n, 2).values)).toEqual([NaN, 3]);
    expect(values(T.topk(n, 2).indices)).toEqual([1, 2]);
    expect(values(T.topk(n, 2, -1, false).values)).toEqual([1, 2]);
    expect(values(T.topk(n, 4, -1, false).indices)).toEqual([0, 3, 2, 1]);
  });

  it('0-d input, k = 0, and k out of range', () => {
    const s = T.topk(T.tensor(5), 1);
    expect(s.values.shape).toEqual([]);
    expect(s.values.item()).toBe(5);
    expect(s.indices.item()).toBe(0);
    expect(T.topk(T.tensor(5), 0).values.numel).toBe(0);
    expect(T.topk(T.ones([3, 4]), 0, 1).values.shape).toEqual([3, 0]);
    expect(() => T.topk(T.ones([3, 4]), 5)).toThrow(/topk: k = 5 is out of range for dim -1 of size 4 in \[3, 4\]/);
    expect(() => T.topk(T.ones([3, 4]), -1)).toThrow(/topk: k = -1/);
    expect(() => T.topk(T.ones([3, 4]), 1.5)).toThrow(/topk: k = 1.5/);
  });

  it('gradients scatter back to the chosen positions (gradcheck, non-last dim)', () => {
    const rng = new Rng(33);
    const x = toTensor(randRef(rng, [4, 5], -2, 2, false), 'float64', true);
    gradOk((v) => T.topk(v, 2, 1).values, [x]);
    gradOk((v) => T.topk(v, 3, 0, false).values, [x]);
    gradOk((v) => T.topk(v.t(), 2, 1).values, [x]);
    const t = T.tensor([[1, 5, 3]], { requiresGrad: true });
    T.topk(t, 2).values.backward(T.tensor([[10, 20]]));
    expect(t.grad!.toArray()).toEqual([[0, 10, 20]]);
  });
});

// ---- cumsum -------------------------------------------------------------------------------------

function refCumsum(a: Ref, dim: number): Ref {
  const d = dim < 0 ? dim + a.shape.length : dim;
  const { lines: ls, others } = lines(a, d);
  const out = ls.map((line) => {
    let s = 0;
    return line.map((v) => (s += v));
  });
  return fromLines(out, others, d, a.shape[d]!);
}

describe('cumsum', () => {
  it('every dim, layouts, float and integer dtypes, size-0 and size-1 dims', () => {
    const rng = new Rng(41);
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as const) {
      for (const shape of [[7], [3, 4], [2, 3, 5], [4, 1, 3], [0], [3, 0], [2, 0, 3], [1]]) {
        const a = dtype.startsWith('int') ? randIntRef(rng, shape, -100, 100) : randRef(rng, shape);
        for (let dim = -shape.length; dim < shape.length; ++dim) {
          for (const layout of LAYOUTS) {
            T.scope(() => {
              const y = T.cumsum(layoutTensor(a, layout, dtype), dim);
              expect(y.dtype).toBe(dtype.startsWith('int') ? 'int64' : dtype);
              expectClose(y, refCumsum(a, dim), dtype === 'float32' ? F32 : dtype === 'float64' ? F64 : EXACT, `${dtype} ${JSON.stringify(shape)} dim=${dim} ${layout}`);
            });
          }
        }
      }
    }
    expect(T.cumsum(T.tensor([true, true, false, true]), 0).toArray()).toEqual([1, 2, 2, 3]);
  });

  it('0-d input is returned as is', () => {
    const y = T.cumsum(T.tensor(3), 0);
    expect(y.shape).toEqual([]);
    expect(y.item()).toBe(3);
    expect(T.cumsum(T.tensor(3), -1).item()).toBe(3);
  });

  it('gradcheck along each dim and through a transposed input', () => {
    const rng = new Rng(42);
    const x = toTensor(randRef(rng, [3, 4], -1, 1, false), 'float64', true);
    gradOk((v) => T.cumsum(v, 0), [x]);
    gradOk((v) => T.cumsum(v, 1), [x]);
    gradOk((v) => T.cumsum(v.t(), 1), [x]);
    gradOk((v) => T.cumsum(v, 0), [T.tensor(2, { dtype: 'float64', requiresGrad: true })]);
  });
});

// ---- method forms and disposed tensors --------------------------------------------------------------

describe('method forms and errors', () => {
  it('tensor methods match the functions', () => {
    const x = T.tensor([[1, 5, 2], [7, 0, 3]]);
    expect(x.sum(1).toArray()).toEqual([8, 10]);
    expect(x.mean(0, true).toArray()).toEqual([[4, 2.5, 2.5]]);
    expect(x.max(1).values.toArray()).toEqual([5, 7]);
    expect(x.min().item()).toBe(0);
    expect(x.argmax(1).toArray()).toEqual([1, 0]);
    expect(x.argmin().item()).toBe(4);
    expect(x.topk(2).indices.toArray()).toEqual([[1, 2], [0, 2]]);
    expect(x.cumsum(1).toArray()).toEqual([[1, 6, 8], [7, 7, 10]]);
    expectClose(x.logsumexp(1), ref([2], [reducers.logsumexp([1, 5, 2]), reducers.logsumexp([7, 0, 3])]));
    expectClose(x.var(), ref([], [reducers.variance(1)([1, 5, 2, 7, 0, 3])]), { rtol: 1e-6 });
  });

  it('a disposed tensor gives a clear error in every reduction', () => {
    const ops: [string, (x: T.Tensor) => unknown][] = [
      ['sum', (x) => T.sum(x)], ['sum dim', (x) => T.sum(x, 0)], ['mean', (x) => T.mean(x)], ['var', (x) => T.variance(x)],
      ['prod', (x) => T.prod(x)], ['prod dim', (x) => T.prod(x, 1)], ['max', (x) => T.max(x)], ['max dim', (x) => T.max(x, 1)],
      ['min', (x) => T.min(x)], ['argmax', (x) => T.argmax(x)], ['argmin dim', (x) => T.argmin(x, 0)],
      ['logsumexp', (x) => T.logsumexp(x, 1)], ['topk', (x) => T.topk(x, 1)], ['cumsum', (x) => T.cumsum(x, 0)],
    ];
    for (const [name, f] of ops) {
      const owner = T.ones([2, 3]);
      const view = owner.reshape([2, 3]);
      view.dispose();
      expect(() => f(view), `${name} (view)`).toThrow(/disposed/);
      const lone = T.ones([2, 3]);
      lone.dispose();
      expect(() => f(lone), name).toThrow(/disposed/);
    }
  });
});
