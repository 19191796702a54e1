/**
 * Elementwise ops (src/ops/elementwise.ts) against plain float64 references: every op on
 * several shapes (scalars, size-1 and size-0 dims), memory layouts (transposed, strided,
 * offset views, expanded) and broadcasting; gradients by finite differences (gradcheck)
 * and, for float32 backward kernels, against analytic derivatives.
 */
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import {
  EXACT, F32, F64, LAYOUTS, Rng, erf, expectClose, layoutTensor, map, randIntRef, randRef, ref, refOps, toTensor, values, zip, zip3,
  type Ref, type Tol,
} from './helpers/ref.js';

const SHAPES: number[][] = [[], [1], [7], [3, 4], [2, 3, 5], [0], [3, 0], [1, 5], [4, 1, 3]];
const FLOATS: T.DType[] = ['float32', 'float64'];

function tolFor(dtype: T.DType, f32: Tol = F32): Tol {
  return dtype === 'float64' ? F64 : f32;
}

function gradOk(fn: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], opts: T.GradcheckOptions = {}): void {
  const r = T.gradcheck(fn, inputs, opts);
  expect(r.ok, `gradcheck failed: ${JSON.stringify(r.failure)} (max abs error ${r.maxAbsError})`).toBe(true);
}

// ---- unary -------------------------------------------------------------------------------------

interface UnaryCase {
  name: string;
  fn: (x: T.Tensor) => T.Tensor;
  ref: (x: number) => number;
  /** input generator (default uniform [-3, 3)) */
  gen?: (rng: Rng) => number;
  /** derivative (for the float32 backward check); absent: not differentiable */
  d?: (x: number) => number;
  tol32?: Tol;
}

const awayFromZero = (lo: number, hi: number) => (rng: Rng) => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(lo, hi);
const positive = (lo: number, hi: number) => (rng: Rng) => rng.uniform(lo, hi);
const sig = (x: number) => refOps.sigmoid(x);
const K = Math.sqrt(2 / Math.PI);
const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

const UNARY: UnaryCase[] = [
  { name: 'neg', fn: T.neg, ref: (x) => -x, d: () => -1 },
  { name: 'exp', fn: T.exp, ref: Math.exp, gen: positive(-6, 6), d: Math.exp },
  { name: 'log', fn: T.log, ref: Math.log, gen: positive(0.05, 8), d: (x) => 1 / x },
  { name: 'sqrt', fn: T.sqrt, ref: Math.sqrt, gen: positive(0.05, 8), d: (x) => 0.5 / Math.sqrt(x) },
  { name: 'rsqrt', fn: T.rsqrt, ref: (x) => 1 / Math.sqrt(x), gen: positive(0.05, 8), d: (x) => -0.5 * x ** -1.5 },
  { name: 'abs', fn: T.abs, ref: Math.abs, gen: awayFromZero(0.1, 3), d: Math.sign },
  { name: 'sign', fn: T.sign, ref: refOps.sign, gen: awayFromZero(0.1, 3) },
  { name: 'square', fn: T.square, ref: (x) => x * x, d: (x) => 2 * x },
  { name: 'reciprocal', fn: T.reciprocal, ref: (x) => 1 / x, gen: awayFromZero(0.2, 4), d: (x) => -1 / (x * x) },
  { name: 'tanh', fn: T.tanh, ref: Math.tanh, gen: positive(-5, 5), d: (x) => 1 - Math.tanh(x) ** 2 },
  { name: 'sigmoid', fn: T.sigmoid, ref: sig, gen: positive(-10, 10), d: (x) => sig(x) * (1 - sig(x)) },
  { name: 'relu', fn: T.relu, ref: refOps.relu, gen: awayFromZero(0.05, 3), d: (x) => (x > 0 ? 1 : 0) },
  {
    name: 'gelu(erf)', fn: (x) => T.gelu(x), ref: refOps.gelu, gen: positive(-6, 6),
    d: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + x * phi(x),
  },
  {
    name: 'gelu(tanh)', fn: (x) => T.gelu(x, 'tanh'), ref: refOps.geluTanh, gen: positive(-6, 6),
    d: (x) => {
      const u = K * (x + 0.044715 * x ** 3), t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
    },
  },
  { name: 'clamp(-0.5, 0.7)', fn: (x) => T.clamp(x, -0.5, 0.7), ref: (x) => Math.min(Math.max(x, -0.5), 0.7), d: (x) => (x > -0.5 && x < 0.7 ? 1 : 0),
    gen: (rng) => { const v = rng.uniform(-2, 2); return Math.abs(v + 0.5) < 0.02 || Math.abs(v - 0.7) < 0.02 ? v + 0.1 : v; } },
  { name: 'clamp(min)', fn: (x) => T.clamp(x, 0.25), ref: (x) => Math.max(x, 0.25), d: (x) => (x > 0.25 ? 1 : 0), gen: awayFromZero(0.3, 2) },
  { name: 'clamp(max)', fn: (x) => T.clamp(x, undefined, -0.25), ref: (x) => Math.min(x, -0.25), d: (x) => (x < -0.25 ? 1 : 0), gen: awayFromZero(0.3, 2) },
  { name: 'affine', fn: (x) => T.affine(x, 1.5, -0.25), ref: (x) => 1.5 * x - 0.25, d: () => 1.5 },
  { name: 'pow 3', fn: (x) => T.pow(x, 3), ref: (x) => x ** 3, d: (x) => 3 * x * x },
  { name: 'pow 2', fn: (x) => T.pow(x, 2), ref: (x) => x ** 2, d: (x) => 2 * x },
  { name: 'pow 1', fn: (x) => T.pow(x, 1), ref: (x) => x, d: () => 1 },
  { name: 'pow 0', fn: (x) => T.pow(x, 0), ref: () => 1, d: () => 0 },
  { name: 'pow 0.5', fn: (x) => T.pow(x, 0.5), ref: Math.sqrt, gen: positive(0.05, 6), d: (x) => 0.5 / Math.sqrt(x) },
  { name: 'pow -1.5', fn: (x) => T.pow(x, -1.5), ref: (x) => x ** -1.5, gen: positive(0.2, 6), d: (x) => -1.5 * x ** -2.5 },
  { name: 'add scalar', fn: (x) => T.add(x, 2.5), ref: (x) => x + 2.5, d: () => 1 },
  { name: 'add scalar alpha', fn: (x) => T.add(x, 2, -0.5), ref: (x) => x - 1, d: () => 1 },
  { name: 'sub scalar', fn: (x) => T.sub(x, 0.75), ref: (x) => x - 0.75, d: () => 1 },
  { name: 'mul scalar', fn: (x) => T.mul(x, -3), ref: (x) => -3 * x, d: () => -3 },
  { name: 'div scalar', fn: (x) => T.div(x, 4), ref: (x) => x / 4, d: () => 0.25 },
  { name: 'maximum scalar', fn: (x) => T.maximum(x, 0.3), ref: (x) => Math.max(x, 0.3), d: (x) => (x > 0.3 ? 1 : 0), gen: awayFromZero(0.4, 2) },
  { name: 'minimum scalar', fn: (x) => T.minimum(x, 0.3), ref: (x) => Math.min(x, 0.3), d: (x) => (x < 0.3 ? 1 : 0), gen: awayFromZero(0.4, 2) },
  { name: 'floor', fn: T.floor, ref: Math.floor },
  { name: 'ceil', fn: T.ceil, ref: Math.ceil },
  { name: 'round', fn: T.round, ref: (x) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r; } },
];

function genRef(rng: Rng, shape: number[], gen: ((rng: Rng) => number) | undefined, f32: boolean): Ref {
  const base = randRef(rng, shape, -3, 3, f32);
  if (!gen) return base;
  return { shape: base.shape, data: base.data.map(() => (f32 ? Math.fround(gen(rng)) : gen(rng))) };
}

describe('unary ops: forward against float64 references', () => {
  it.each(UNARY.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const rng = new Rng(11);
    for (const dtype of FLOATS) {
      for (const shape of SHAPES) {
        const a = genRef(rng, shape, c.gen, dtype === 'float32');
        const e = map(a, c.ref);
        for (const layout of LAYOUTS) {
          T.scope(() => {
            const x = layoutTensor(a, layout, dtype);
            const y = c.fn(x);
            expect(y.dtype).toBe(dtype);
            expectClose(y, e, tolFor(dtype, c.tol32), `${c.name} ${dtype} ${JSON.stringify(shape)} ${layout}`);
          });
        }
      }
    }
  });

  it('every unary op reads expanded (stride-0) inputs', () => {
    const rng = new Rng(3);
    for (const c of UNARY) {
      const a = genRef(rng, [1, 4], c.gen, true);
      T.scope(() => {
        const x = toTensor(a).expand([3, 4]);
        const e = map({ shape: [3, 4], data: [...a.data, ...a.data, ...a.data] }, c.ref);
        expectClose(c.fn(x), e, F32, c.name);
      });
    }
  });

  // Float32 exp flushes results below FLT_MIN (x < -87.34) to 0 by design; atol covers that.
  const SPECIAL = [0, -0, Infinity, -Infinity, NaN, 88.5, 88.7, 88.72, 88.73, -88, -87.5, -100, 1e-30, -20, 20, 0.1249, 0.1251];
  const SPECIAL_OPS = [
    ['exp', T.exp, Math.exp],
    ['tanh', T.tanh, Math.tanh],
    ['sigmoid', T.sigmoid, refOps.sigmoid],
    ['gelu', (x: T.Tensor) => T.gelu(x), refOps.gelu],
    ['gelu tanh', (x: T.Tensor) => T.gelu(x, 'tanh'), refOps.geluTanh],
  ] as const;
  const specialTol = (dtype: T.DType): Tol => (dtype === 'float32' ? { rtol: 1e-5, atol: 1e-37 } : F64);

  it('special values one at a time (the scalar kernels): 0, ±inf, NaN, the float32 range ends', () => {
    for (const [name, fn, f] of SPECIAL_OPS) {
      for (const dtype of FLOATS) {
        for (const v of SPECIAL) {
          const a = ref([1], [Math.fround(v)]);
          expectClose(fn(toTensor(a, dtype)), map(a, (x) => (dtype === 'float32' ? Math.fround(f(x)) : f(x))), specialTol(dtype), `${name} ${dtype} ${v}`);
        }
      }
    }
    const pos = [0, Infinity, NaN, -1, 1e-40, 1e-30, 1, 3e38, -0, -Infinity];
    for (const dtype of FLOATS) {
      for (const v of pos) {
        const a = ref([1], [Math.fround(v)]);
        expectClose(T.log(toTensor(a, dtype)), map(a, Math.log), dtype === 'float32' ? F32 : F64, `log ${dtype} ${v}`);
        expectClose(T.sqrt(toTensor(a, dtype)), map(a, Math.sqrt), dtype === 'float32' ? F32 : F64, `sqrt ${dtype} ${v}`);
      }
    }
  });

  it('special values in long rows (the 8-lane AVX2 kernels agree with the scalar ones)', () => {
    const a = ref([2, SPECIAL.length], [...SPECIAL, ...SPECIAL.map((v) => -v)].map(Math.fround));
    for (const [name, fn, f] of SPECIAL_OPS) {
      for (const dtype of FLOATS) {
        const e = map(a, (x) => (dtype === 'float32' ? Math.fround(f(x)) : f(x)));
        expectClose(fn(toTensor(a, dtype)), e, specialTol(dtype), `${name} ${dtype}`);
      }
    }
    const pos = ref([16], [0, Infinity, NaN, -1, 1e-40, 1e-30, 1, 3e38, -0, -Infinity, 2, 0.5, 1e10, 1e-10, 7, 1 + 2 ** -20].map(Math.fround));
    for (const dtype of FLOATS) expectClose(T.log(toTensor(pos, dtype)), map(pos, Math.log), dtype === 'float32' ? F32 : F64, `log ${dtype}`);
  });

  it('sign, abs, relu, clamp and maximum propagate NaN', () => {
    const x = T.tensor([NaN, -2, 0, 3]);
    expect(values(T.sign(x))).toEqual([NaN, -1, 0, 1]);
    expect(values(T.abs(x))).toEqual([NaN, 2, 0, 3]);
    expect(values(T.clamp(x, -1, 1))).toEqual([NaN, -1, 0, 1]);
    expect(values(T.maximum(x, T.tensor([0, 0, NaN, 0])))).toEqual([NaN, 0, NaN, 3]);
    expect(values(T.minimum(x, T.tensor([0, 0, NaN, 0])))).toEqual([NaN, -2, NaN, 0]);
  });

  it('integer inputs: neg/abs/sign/square/relu/clamp/affine keep the dtype; float-only ops promote to float32', () => {
    for (const dtype of ['int32', 'int64'] as const) {
      const x = T.tensor([-3, 0, 5, -1], { dtype });
      expect(T.neg(x).dtype).toBe(dtype);
      expect(values(T.neg(x))).toEqual([3, 0, -5, 1]);
      expect(values(T.abs(x))).toEqual([3, 0, 5, 1]);
      expect(values(T.sign(x))).toEqual([-1, 0, 1, -1]);
      expect(values(T.square(x))).toEqual([9, 0, 25, 1]);
      expect(values(T.relu(x))).toEqual([0, 0, 5, 0]);
      expect(values(T.clamp(x, -1, 2))).toEqual([-1, 0, 2, -1]);
      expect(values(T.affine(x, 2, 1))).toEqual([-5, 1, 11, -1]);
      expect(T.affine(x, 2, 1).dtype).toBe(dtype);
      const ax = T.affine(x, 0.5, 0);
      expect(ax.dtype).toBe('float32');
      expect(values(ax)).toEqual([-1.5, 0, 2.5, -0.5]);
      const ex = T.exp(x);
      expect(ex.dtype).toBe('float32');
      expectClose(ex, ref([4], [-3, 0, 5, -1].map(Math.exp)));
      expectClose(T.sqrt(T.abs(x)), ref([4], [3, 0, 5, 1].map(Math.sqrt)));
    }
    const u = T.tensor([3, 200, 5], { dtype: 'uint8' });
    expect(values(T.clamp(u, 4))).toEqual([4, 200, 5]);
    expect(values(T.clamp(u, undefined, 100))).toEqual([3, 100, 5]);
  });

  it('clamp: one-sided bounds, int64 beyond 2^31, fractional bounds on integers, bad bounds', () => {
    const big = T.tensor([3e9, -3e9, 5], { dtype: 'int64' });
    expect(values(T.clamp(big, 0))).toEqual([3e9, 0, 5]);
    expect(values(T.clamp(big, undefined, 4))).toEqual([4, -3e9, 4]);
    expect(values(T.clamp(big))).toEqual([3e9, -3e9, 5]);
    const i = T.tensor([0, 1, 2], { dtype: 'int32' });
    const c = T.clamp(i, 0.5, 1.5);
    expect(c.dtype).toBe('float32');
    expect(values(c)).toEqual([0.5, 1, 1.5]);
    expect(() => T.clamp(T.ones([2]), 1, 0)).toThrow(/clamp: min 1 is greater than max 0/);
  });

  it('pow with a scalar exponent on integer input gives float32', () => {
    const x = T.tensor([1, 2, 3], { dtype: 'int64' });
    const y = T.pow(x, 2);
    expect(y.dtype).toBe('float32');
    expect(values(y)).toEqual([1, 4, 9]);
  });
});

describe('unary ops: gradients', () => {
  const diff = UNARY.filter((c) => c.d);
  it.each(diff.map((c) => [c.name, c] as const))('%s: gradcheck (contiguous and through a transposed input)', (_n, c) => {
    const rng = new Rng(5);
    const a = genRef(rng, [3, 4], c.gen, false);
    const x = toTensor(a, 'float64', true);
    gradOk(c.fn, [x]);
    const at = genRef(rng, [4, 3], c.gen, false);
    gradOk((v) => c.fn(v.t()), [toTensor(at, 'float64', true)]);
  });

  it.each(diff.map((c) => [c.name, c] as const))('%s: float32 backward matches the analytic derivative', (_n, c) => {
    const rng = new Rng(9);
    const a = genRef(rng, [5, 6], c.gen, true);
    const g = randRef(rng, [5, 6], -1, 1);
    const x = toTensor(a, 'float32', true);
    c.fn(x).backward(toTensor(g));
    expect(x.grad!.dtype).toBe('float32');
    expectClose(x.grad!, zip(a, g, (v, gv) => gv * c.d!(v)), { rtol: 1e-4, atol: 1e-5 }, c.name);
  });

  it('gelu gradients at large |x| stay finite', () => {
    for (const approx of ['none', 'tanh'] as const) {
      const x = T.tensor([-30, -10, 10, 30], { requiresGrad: true });
      T.gelu(x, approx).sum().backward();
      expectClose(x.grad!, ref([4], [0, 0, 1, 1]), { rtol: 1e-5, atol: 1e-6 }, approx);
    }
  });
});

// ---- binary -------------------------------------------------------------------------------------

const PAIRS: [number[], number[]][] = [
  [[3, 4], [3, 4]],
  [[3, 4], [4]],
  [[3, 1], [1, 4]],
  [[2, 3, 4], [3, 1]],
  [[], [2, 3]],
  [[5], []],
  [[0, 4], [1, 4]],
  [[2, 0], [2, 1]],
  [[4, 1, 3], [2, 1]],
  [[1], [1]],
  [[2, 1, 3, 1], [1, 4, 1, 2]],
];

interface BinaryCase {
  name: string;
  fn: (a: T.Tensor, b: T.Tensor) => T.Tensor;
  ref: (a: number, b: number) => number;
  genA?: (rng: Rng) => number;
  genB?: (rng: Rng) => number;
  /** partial derivatives (float32 backward check) */
  da?: (a: number, b: number) => number;
  db?: (a: number, b: number) => number;
}

const BINARY: BinaryCase[] = [
  { name: 'add', fn: T.add, ref: (a, b) => a + b, da: () => 1, db: () => 1 },
  { name: 'add alpha', fn: (a, b) => T.add(a, b, -2.5), ref: (a, b) => a - 2.5 * b, da: () => 1, db: () => -2.5 },
  { name: 'sub', fn: T.sub, ref: (a, b) => a - b, da: () => 1, db: () => -1 },
  { name: 'mul', fn: T.mul, ref: (a, b) => a * b, da: (_a, b) => b, db: (a) => a },
  { name: 'div', fn: T.div, ref: (a, b) => a / b, genB: awayFromZero(0.3, 3), da: (_a, b) => 1 / b, db: (a, b) => -a / (b * b) },
  { name: 'pow', fn: T.pow, ref: (a, b) => a ** b, genA: positive(0.2, 3), genB: positive(-2, 2), da: (a, b) => b * a ** (b - 1), db: (a, b) => a ** b * Math.log(a) },
  { name: 'maximum', fn: T.maximum, ref: refOps.maximum, da: (a, b) => (a > b ? 1 : 0), db: (a, b) => (b > a ? 1 : 0) },
  { name: 'minimum', fn: T.minimum, ref: refOps.minimum, da: (a, b) => (a < b ? 1 : 0), db: (a, b) => (b < a ? 1 : 0) },
];

describe('binary ops: forward with broadcasting and layouts', () => {
  it.each(BINARY.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const rng = new Rng(21);
    for (const dtype of FLOATS) {
      const f32 = dtype === 'float32';
      for (const [sa, sb] of PAIRS) {
        for (const [pa, pb] of [[sa, sb], [sb, sa]] as const) {
          const a = genRef(rng, pa, c.genA, f32);
          const b = genRef(rng, pb, c.genB, f32);
          const e = zip(a, b, c.ref);
          LAYOUTS.forEach((la, k) => {
            const lb = LAYOUTS[(k + 1) % LAYOUTS.length]!;
            T.scope(() => {
              const y = c.fn(layoutTensor(a, la, dtype), layoutTensor(b, lb, dtype));
              expect(y.dtype).toBe(dtype);
              expectClose(y, e, tolFor(dtype), `${c.name} ${dtype} ${JSON.stringify(pa)}(${la}) ${JSON.stringify(pb)}(${lb})`);
            });
          });
        }
      }
    }
  });

  it('expanded operands and an output feeding itself', () => {
    const rng = new Rng(4);
    for (const c of BINARY) {
      const a = genRef(rng, [1, 5], c.genA, true), b = genRef(rng, [3, 1], c.genB, true);
      T.scope(() => {
        const y = c.fn(toTensor(a).expand([3, 5]), toTensor(b).expand([3, 5]));
        expectClose(y, zip(a, b, c.ref), F32, c.name);
        const x = toTensor(a);
        expectClose(c.fn(x, x), zip(a, a, c.ref), F32, `${c.name} (x, x)`);
      });
    }
  });

  it('integer arithmetic is exact and keeps the dtype; division is true division', () => {
    const rng = new Rng(8);
    for (const dtype of ['int32', 'int64', 'uint8'] as const) {
      const a = dtype === 'uint8' ? randIntRef(rng, [4, 5], 0, 25) : randIntRef(rng, [4, 5], -50, 50);
      const b = randIntRef(rng, [5], 1, 9);
      const ta = toTensor(a, dtype), tb = toTensor(b, dtype);
      for (const [name, fn, f] of [
        ['add', T.add, (x: number, y: number) => x + y],
        ['mul', T.mul, (x: number, y: number) => x * y],
        ['maximum', T.maximum, Math.max],
        ['minimum', T.minimum, Math.min],
      ] as const) {
        const y = fn(ta, tb);
        expect(y.dtype, name).toBe(dtype);
        expectClose(y, zip(a, b, f), EXACT, `${name} ${dtype}`);
      }
      if (dtype !== 'uint8') expectClose(T.sub(ta, tb), zip(a, b, (x, y) => x - y), EXACT, `sub ${dtype}`);
      const q = T.div(ta, tb);
      expect(q.dtype).toBe('float32');
      expectClose(q, zip(a, b, (x, y) => x / y), F32, `div ${dtype}`);
    }
    expect(values(T.add(T.tensor([250], { dtype: 'uint8' }), T.tensor([10], { dtype: 'uint8' })))).toEqual([4]); // wraps like PyTorch
  });

  it('type promotion', () => {
    const f32 = T.tensor([1.5, 2]), f64 = T.tensor([1.5, 2], { dtype: 'float64' });
    const i32 = T.tensor([1, 2], { dtype: 'int32' }), i64 = T.tensor([1, 2], { dtype: 'int64' });
    const u8 = T.tensor([1, 2], { dtype: 'uint8' }), b = T.tensor([true, false]);
    expect(T.add(f32, f64).dtype).toBe('float64');
    expect(T.add(i32, f32).dtype).toBe('float32');
    expect(values(T.add(i32, f32))).toEqual([2.5, 4]);
    expect(T.add(i32, i64).dtype).toBe('int64');
    expect(T.add(u8, i32).dtype).toBe('int32');
    expect(T.mul(b, f32).dtype).toBe('float32');
    expect(values(T.mul(b, f32))).toEqual([1.5, 0]);
    expect(values(T.add(b, i32))).toEqual([2, 2]);
    expect(T.add(i32, 2).dtype).toBe('int32');
    expect(T.add(i32, 2.5).dtype).toBe('float32');
    expect(values(T.add(i32, 2.5))).toEqual([3.5, 4.5]);
    expect(T.mul(f32, 1e-3).dtype).toBe('float32');
    expect(T.div(i64, 2).dtype).toBe('float32');
    expect(values(T.div(i64, 2))).toEqual([0.5, 1]);
    expect(T.promoteTypes('int32', 'float32')).toBe('float32');
    expect(T.promoteTypes('bool', 'uint8')).toBe('uint8');
  });

  it('bool tensors with scalars behave as 0/1 integers', () => {
    const b = T.tensor([true, false]);
    expect(values(T.add(b, 1))).toEqual([2, 1]);
    expect(values(T.mul(b, 3))).toEqual([3, 0]);
    expect(values(T.mul(b, 0.5))).toEqual([0.5, 0]);
    expect(values(T.sub(b, 1))).toEqual([0, -1]);
  });
});

describe('binary ops: gradients', () => {
  const GPAIRS: [number[], number[]][] = [[[3, 4], [3, 4]], [[3, 4], [4]], [[3, 1], [1, 4]], [[2, 3, 4], [3, 1]], [[], [2, 3]]];
  it.each(BINARY.map((c) => [c.name, c] as const))('%s: gradcheck with broadcasting', (_n, c) => {
    const rng = new Rng(31);
    for (const [sa, sb] of GPAIRS) {
      const a = genRef(rng, sa, c.genA, false);
      let b = genRef(rng, sb, c.genB, false);
      if (c.name === 'maximum' || c.name === 'minimum') {
        // keep |a - b| away from 0 so finite differences do not straddle a kink
        const z = zip(a, b, (x, y) => x - y);
        if (z.data.some((v) => Math.abs(v) < 1e-3)) b = map(b, (v) => v + 0.0123);
      }
      gradOk(c.fn, [toTensor(a, 'float64', true), toTensor(b, 'float64', true)]);
      // only one side requiring grad
      gradOk(c.fn, [toTensor(a, 'float64', true), toTensor(b, 'float64')]);
      gradOk(c.fn, [toTensor(a, 'float64'), toTensor(b, 'float64', true)]);
    }
    // non-contiguous inputs
    const a = genRef(rng, [4, 3], c.genA, false), b = genRef(rng, [3, 8], c.genB, false);
    gradOk((x, y) => c.fn(x.t(), y.slice(1, 0, 8, 2)), [toTensor(a, 'float64', true), toTensor(b, 'float64', true)]);
  });

  it.each(BINARY.map((c) => [c.name, c] as const))('%s: float32 backward reduces broadcast gradients', (_n, c) => {
    const rng = new Rng(13);
    const a = genRef(rng, [3, 1], c.genA, true), b = genRef(rng, [4], c.genB, true);
    const g = randRef(rng, [3, 4], -1, 1);
    const ta = toTensor(a, 'float32', true), tb = toTensor(b, 'float32', true);
    c.fn(ta, tb).backward(toTensor(g));
    const ga = zip3(a, b, g, (x, y, gv) => gv * c.da!(x, y));
    const gb = zip3(a, b, g, (x, y, gv) => gv * c.db!(x, y));
    const rowSum = { shape: [3, 1], data: [0, 1, 2].map((i) => ga.data.slice(i * 4, i * 4 + 4).reduce((s, v) => s + v, 0)) };
    const colSum = { shape: [4], data: [0, 1, 2, 3].map((j) => gb.data[j]! + gb.data[4 + j]! + gb.data[8 + j]!) };
    expectClose(ta.grad!, rowSum, { rtol: 1e-4, atol: 1e-5 }, `${c.name} da`);
    expectClose(tb.grad!, colSum, { rtol: 1e-4, atol: 1e-5 }, `${c.name} db`);
  });

  it('maximum/minimum split the gradient evenly on ties', () => {
    const a = T.tensor([1, 2, 3], { requiresGrad: true }), b = T.tensor([1, 5, 0], { requiresGrad: true });
    T.maximum(a, b).sum().backward();
    expect(values(a.grad!)).toEqual([0.5, 0, 1]);
    expect(values(b.grad!)).toEqual([0.5, 1, 0]);
  });

  it('pow gradients at x = 0 and y = 0 follow PyTorch (0, not NaN)', () => {
    const x = T.tensor([0, 0, 2, 0], { requiresGrad: true, dtype: 'float64' });
    const y = T.tensor([2, 0, 0, 0.5], { requiresGrad: true, dtype: 'float64' });
    T.pow(x, y).sum().backward();
    expect(values(x.grad!)).toEqual([0, 0, 0, Infinity]);
    expect(values(y.grad!)).toEqual([0, 0, Math.log(2), 0]);
    const z = T.tensor([0, 3], { requiresGrad: true });
    T.pow(z, 0).sum().backward();
    expect(values(z.grad!)).toEqual([0, 0]);
    const w = T.tensor([0, 3], { requiresGrad: true });
    T.pow(w, 3).sum().backward();
    expect(values(w.grad!)).toEqual([0, 27]);
  });

  it('an input used twice accumulates both gradients', () => {
    const x = T.tensor([1, 2, 3], { requiresGrad: true, dtype: 'float64' });
    T.mul(x, x).sum().backward();
    expect(values(x.grad!)).toEqual([2, 4, 6]);
    gradOk((v) => T.div(T.mul(v, v), T.add(v, 5)), [T.tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true })]);
  });
});

describe('large tensors (threaded kernels) on non-contiguous layouts', () => {
  it('unary, binary, compare, where and cast agree with the reference on 120k-element views', () => {
    const rng = new Rng(71);
    const a = randRef(rng, [300, 400]), b = randRef(rng, [300, 400]), row = randRef(rng, [400]);
    const c = randIntRef(rng, [300, 1], 0, 2);
    for (const layout of ['transposed', 'strided', 'offset-permuted'] as const) {
      T.scope(() => {
        const x = layoutTensor(a, layout), y = layoutTensor(b, layout === 'transposed' ? 'strided' : 'transposed');
        expectClose(T.tanh(x), map(a, Math.tanh), F32, `tanh ${layout}`);
        expectClose(T.exp(x), map(a, Math.exp), F32, `exp ${layout}`);
        expectClose(T.square(x), map(a, (v) => v * v), F32, `square ${layout}`);
        expectClose(T.mul(x, y), zip(a, b, (p, q) => p * q), F32, `mul ${layout}`);
        expectClose(T.sub(x, toTensor(row)), zip(a, row, (p, q) => p - q), F32, `sub row ${layout}`);
        expectClose(T.gt(x, y), zip(a, b, (p, q) => +(p > q)), EXACT, `gt ${layout}`);
        expectClose(T.where(toTensor(c, 'bool'), x, y), zip3(c, a, b, (cv, p, q) => (cv ? p : q)), EXACT, `where ${layout}`);
        expectClose(T.cast(x, 'float64'), a, EXACT, `cast ${layout}`);
        const z = T.zeros([400, 300]).t();
        T.copy_(z, x);
        expectClose(z, a, EXACT, `copy_ into transposed ${layout}`);
        T.add_(z, y, 2);
        expectClose(z, zip(a, b, (p, q) => Math.fround(p + Math.fround(2 * q))), F32, `add_ ${layout}`);
      });
    }
  });
});

describe('rank limits', () => {
  it('12-dim tensors work; more dims give a clear error (never a crash)', () => {
    const s12 = [2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1];
    const x = T.ones(s12);
    expect(T.add(x, x).shape).toEqual(s12);
    expect(T.sum(T.add(T.permute(x, [...Array(12).keys()].reverse()), 1)).item()).toBe(128);
    const s13 = [...s12, 2];
    const y = T.ones(s13);
    let err: unknown = null;
    try {
      expect(values(T.exp(y)).every((v) => Math.abs(v - Math.E) < 1e-6)).toBe(true);
    } catch (e) {
      err = e;
    }
    if (err) expect(String(err)).toMatch(/more than 12 dims/);
  });
});

// ---- comparisons and logic -----------------------------------------------------------------------

describe('comparisons, logic, predicates', () => {
  const CMP = [
    ['eq', T.eq, (a: number, b: number) => +(a === b)],
    ['ne', T.ne, (a: number, b: number) => +(a !== b)],
    ['lt', T.lt, (a: number, b: number) => +(a < b)],
    ['le', T.le, (a: number, b: number) => +(a <= b)],
    ['gt', T.gt, (a: number, b: number) => +(a > b)],
    ['ge', T.ge, (a: number, b: number) => +(a >= b)],
  ] as const;

  it.each(CMP.map((c) => [c[0], c] as const))('%s: broadcasting, layouts, dtypes, scalars', (_n, [name, fn, f]) => {
    const rng = new Rng(17);
    for (const dtype of ['float32', 'float64', 'int32', 'int64', 'uint8'] as const) {
      for (const [sa, sb] of PAIRS) {
        const lo = dtype === 'uint8' ? 0 : -3;
        const a = randIntRef(rng, sa, lo, lo + 5), b = randIntRef(rng, sb, lo, lo + 5);
        LAYOUTS.forEach((la, k) => {
          T.scope(() => {
            const y = fn(layoutTensor(a, la, dtype), layoutTensor(b, LAYOUTS[(k + 2) % 4]!, dtype));
            expect(y.dtype).toBe('bool');
            expectClose(y, zip(a, b, f), EXACT, `${name} ${dtype} ${la}`);
          });
        });
        T.scope(() => expectClose(fn(toTensor(a, dtype), 1), map(a, (v) => f(v, 1)), EXACT, `${name} scalar`));
      }
    }
    // mixed dtypes compare by value; fractional scalars against integer tensors
    const i = T.tensor([0, 1, 2], { dtype: 'int32' });
    expectClose(fn(i, T.tensor([1, 1, 1.5])), ref([3], [0, 1, 2].map((v, k) => f(v, [1, 1, 1.5][k]!))), EXACT, `${name} mixed`);
    expectClose(fn(i, 0.5), ref([3], [0, 1, 2].map((v) => f(v, 0.5))), EXACT, `${name} int vs 0.5`);
    // NaN compares false except ne
    expectClose(fn(T.tensor([NaN, 1]), T.tensor([NaN, NaN])), ref([2], [f(NaN, NaN), f(1, NaN)]), EXACT, `${name} NaN`);
    // bool tensors
    const bt = T.tensor([true, false, true]), bf = T.tensor([true, true, false]);
    expectClose(fn(bt, bf), ref([3], [f(1, 1), f(0, 1), f(1, 0)]), EXACT, `${name} bool`);
  });

  it('logicalAnd/Or/Xor/Not on bool and numeric inputs, broadcasting, layouts', () => {
    const rng = new Rng(23);
    const ops = [
      [T.logicalAnd, (a: number, b: number) => +(a !== 0 && b !== 0)],
      [T.logicalOr, (a: number, b: number) => +(a !== 0 || b !== 0)],
      [T.logicalXor, (a: number, b: number) => +((a !== 0) !== (b !== 0))],
    ] as const;
    for (const [sa, sb] of PAIRS) {
      const a = randIntRef(rng, sa, 0, 2), b = randIntRef(rng, sb, -1, 2);
      for (const [fn, f] of ops) {
        LAYOUTS.forEach((la, k) => {
          T.scope(() => {
            const y = fn(layoutTensor(a, la, 'bool'), layoutTensor(b, LAYOUTS[(k + 1) % 4]!, 'float32'));
            expect(y.dtype).toBe('bool');
            expectClose(y, zip(a, b, f), EXACT, `${fn.name} ${la}`);
          });
        });
      }
      T.scope(() => {
        expectClose(T.logicalNot(layoutTensor(b, 'transposed', 'int32')), map(b, (v) => +(v === 0)), EXACT, 'not int');
        expectClose(T.logicalNot(layoutTensor(a, 'strided', 'bool')), map(a, (v) => +(v === 0)), EXACT, 'not bool');
      });
    }
    expect(values(T.logicalAnd(T.tensor([NaN, 0, 2]), T.tensor([1, 1, 1])))).toEqual([1, 0, 1]);
  });

  it('isnan / isfinite on floats (incl. ±inf, NaN, layouts) and integers', () => {
    const data = [0, NaN, Infinity, -Infinity, -1.5, 3e38, NaN, 1e-40];
    const a = ref([2, 4], data);
    for (const dtype of FLOATS) {
      for (const layout of LAYOUTS) {
        const x = layoutTensor(a, layout, dtype);
        expectClose(T.isnan(x), map(a, (v) => +Number.isNaN(v)), EXACT, `isnan ${dtype} ${layout}`);
        expectClose(T.isfinite(x), map(a, (v) => +Number.isFinite(v)), EXACT, `isfinite ${dtype} ${layout}`);
      }
    }
    const i = T.tensor([[1, 2], [3, 4]], { dtype: 'int64' });
    expect(T.isnan(i).toArray()).toEqual([[false, false], [false, false]]);
    expect(T.isfinite(i).toArray()).toEqual([[true, true], [true, true]]);
  });
});

// ---- where / maskedFill ----------------------------------------------------------------------------

describe('where and maskedFill', () => {
  const TRIPLES: [number[], number[], number[]][] = [
    [[3, 4], [3, 4], [3, 4]],
    [[3, 1], [1, 4], []],
    [[4], [3, 4], [3, 1]],
    [[2, 1, 3], [4, 1], [3]],
    [[0, 3], [3], [1, 3]],
    [[], [2], [2]],
  ];

  it('forward with broadcasting of all three operands and layouts', () => {
    const rng = new Rng(41);
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as const) {
      for (const [sc, sa, sb] of TRIPLES) {
        const c = randIntRef(rng, sc, 0, 2), a = randRef(rng, sa), b = randRef(rng, sb);
        const cast = (r: Ref) => (dtype.startsWith('int') ? map(r, Math.trunc) : r);
        const e = zip3(c, cast(a), cast(b), (cv, av, bv) => (cv ? av : bv));
        LAYOUTS.forEach((l, k) => {
          T.scope(() => {
            const y = T.where(layoutTensor(c, l, 'bool'), layoutTensor(cast(a), LAYOUTS[(k + 1) % 4]!, dtype), layoutTensor(cast(b), LAYOUTS[(k + 2) % 4]!, dtype));
            expect(y.dtype).toBe(dtype);
            expectClose(y, e, dtype === 'float64' ? F64 : EXACT, `where ${dtype} ${l}`);
          });
        });
      }
    }
  });

  it('scalars, numeric conditions and promotion', () => {
    const c = T.tensor([[1, 0, 2]]);
    const x = T.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'int32' });
    expect(T.where(c, x, -1).toArray()).toEqual([[1, -1, 3], [4, -1, 6]]);
    expect(T.where(c, x, -1).dtype).toBe('int32');
    expect(T.where(c, 7, x).toArray()).toEqual([[7, 2, 7], [7, 5, 7]]);
    const f = T.where(c, x, 0.5);
    expect(f.dtype).toBe('float32');
    expect(f.toArray()).toEqual([[1, 0.5, 3], [4, 0.5, 6]]);
    const s = T.where(T.tensor([true, false]), 1, 2);
    expect(s.toArray()).toEqual([1, 2]);
    expect(T.where(c, x, T.tensor([0.25], { dtype: 'float64' })).dtype).toBe('float64');
  });

  it('gradients flow to the chosen side and sum over broadcast dims', () => {
    const rng = new Rng(43);
    const c = toTensor(randIntRef(rng, [3, 1], 0, 2), 'bool');
    gradOk((a, b) => T.where(c, a, b), [toTensor(randRef(rng, [1, 4], -1, 1, false), 'float64', true), toTensor(randRef(rng, [3, 4], -1, 1, false), 'float64', true)]);
    gradOk((a) => T.where(c, a, 0), [toTensor(randRef(rng, [3, 4], -1, 1, false), 'float64', true)]);
    gradOk((b) => T.where(c, 1.5, b), [toTensor(randRef(rng, [4], -1, 1, false), 'float64', true)]);
    const a = T.tensor([1, 2, 3], { requiresGrad: true });
    T.where(T.tensor([true, false, true]), a, T.zeros([3])).sum().backward();
    expect(values(a.grad!)).toEqual([1, 0, 1]);
  });

  it('maskedFill: broadcast masks, numeric masks, keeps the dtype, rejects masks that grow the tensor', () => {
    const rng = new Rng(47);
    const a = randRef(rng, [3, 4]);
    const m = randIntRef(rng, [4], 0, 2);
    for (const layout of LAYOUTS) {
      const y = T.maskedFill(layoutTensor(a, layout), toTensor(m, 'bool'), -9);
      expectClose(y, zip(a, m, (v, mv) => (mv ? -9 : v)), EXACT, layout);
    }
    expect(T.maskedFill(T.tensor([1, 2, 3]), T.tensor([0, 5, 0]), 0).toArray()).toEqual([1, 0, 3]);
    const i = T.maskedFill(T.tensor([1, 2], { dtype: 'int32' }), T.tensor([true, false]), 7);
    expect(i.dtype).toBe('int32');
    expect(i.toArray()).toEqual([7, 2]);
    expect(T.maskedFill(T.tensor([1, 2], { dtype: 'int64' }), T.tensor([true, false]), -3).toArray()).toEqual([-3, 2]);
    expect(T.maskedFill(T.ones([2, 3]), T.tensor([true, false, true]), -Infinity).toArray()).toEqual([[-Infinity, 1, -Infinity], [-Infinity, 1, -Infinity]]);
    expect(() => T.maskedFill(T.ones([4]), T.ones([3, 4], { dtype: 'bool' }), 0)).toThrow(/maskedFill: mask of shape \[3, 4\] does not broadcast to the tensor's shape \[4\]/);
    expect(() => T.maskedFill(T.ones([4]), T.ones([3], { dtype: 'bool' }), 0)).toThrow(/maskedFill.*\[4\].*\[3\]/);
    const x = T.tensor([1, 2, 3], { requiresGrad: true, dtype: 'float64' });
    gradOk((v) => T.maskedFill(v, T.tensor([true, false, false]), 2), [x]);
  });
});

// ---- casts ------------------------------------------------------------------------------------

describe('casts', () => {
  it('float -> integer truncates toward zero; -> bool is "nonzero" (NaN is true)', () => {
    const x = T.tensor([-1.7, -0.5, 0, -0, 0.5, 2.9, 100.99]);
    expect(T.cast(x, 'int32').toArray()).toEqual([-1, 0, 0, 0, 0, 2, 100]);
    expect(T.cast(x, 'int64').toArray()).toEqual([-1, 0, 0, 0, 0, 2, 100]);
    expect(x.long().dtype).toBe('int64');
    expect(x.int().dtype).toBe('int32');
    expect(T.cast(T.tensor([0, -0, 0.25, NaN, -Infinity]), 'bool').toArray()).toEqual([false, false, true, true, true]);
    expect(T.cast(T.tensor([0, 1.9, 255]), 'uint8').toArray()).toEqual([0, 1, 255]);
  });

  it('integer / bool -> float, float64 <-> float32 rounding, round trips through every dtype', () => {
    expect(T.tensor([true, false]).float().toArray()).toEqual([1, 0]);
    expect(T.tensor([-3, 7], { dtype: 'int32' }).double().toArray()).toEqual([-3, 7]);
    expect(T.tensor([2 ** 40 + 3], { dtype: 'int64' }).double().toArray()).toEqual([2 ** 40 + 3]);
    const d = T.tensor([0.1, 1 / 3, 1e-50, 1e300], { dtype: 'float64' });
    expect(d.float().toArray()).toEqual([0.1, 1 / 3, 1e-50, 1e300].map(Math.fround));
    const rng = new Rng(51);
    const a = randIntRef(rng, [3, 5], 0, 100);
    for (const from of T.DTYPES) {
      if (from === 'bool') continue;
      for (const to of T.DTYPES) {
        for (const layout of LAYOUTS) {
          T.scope(() => {
            const y = T.cast(layoutTensor(a, layout, from), to);
            expect(y.dtype).toBe(to);
            expectClose(y, to === 'bool' ? map(a, (v) => +(v !== 0)) : a, EXACT, `${from} -> ${to} ${layout}`);
          });
        }
      }
    }
  });

  it('to(dtype) is identity for the same dtype; method forms', () => {
    const x = T.tensor([1, 2]);
    expect(x.to('float32')).toBe(x);
    expect(x.to('int64').dtype).toBe('int64');
    expect(x.bool().dtype).toBe('bool');
    expect(x.double().dtype).toBe('float64');
  });

  it('gradients flow through float casts (and come back in the source dtype)', () => {
    const x = T.tensor([1, 2, 3], { requiresGrad: true });
    T.mul(x.double(), T.tensor([1, 2, 3], { dtype: 'float64' })).sum().backward();
    expect(x.grad!.dtype).toBe('float32');
    expect(values(x.grad!)).toEqual([1, 2, 3]);
    gradOk((v) => T.exp(T.cast(v, 'float32')).double(), [T.tensor([0.1, 0.2], { dtype: 'float64', requiresGrad: true })], { atol: 1e-3, rtol: 1e-3, eps: 1e-3 });
    // integer casts cut the graph
    const y = T.cast(T.tensor([1.5], { requiresGrad: true }), 'int32');
    expect(y.requiresGrad).toBe(false);
  });
});

// ---- in-place -------------------------------------------------------------------------------

describe('in-place ops', () => {
  it('add_/sub_/mul_ with broadcasting, alpha, scalars, casts and non-contiguous destinations', () => {
    const rng = new Rng(61);
    for (const layout of LAYOUTS) {
      const a = randRef(rng, [3, 4]), b = randRef(rng, [4]);
      let x = layoutTensor(a, layout);
      expect(T.add_(x, toTensor(b))).toBe(x);
      expectClose(x, zip(a, b, (p, q) => p + q), F32, `add_ ${layout}`);
      x = layoutTensor(a, layout);
      T.add_(x, toTensor(b), 0.5);
      expectClose(x, zip(a, b, (p, q) => p + 0.5 * q), F32, `add_ alpha ${layout}`);
      x = layoutTensor(a, layout);
      T.sub_(x, toTensor(b));
      expectClose(x, zip(a, b, (p, q) => p - q), F32, `sub_ ${layout}`);
      x = layoutTensor(a, layout);
      T.mul_(x, toTensor(b, 'float64'));
      expectClose(x, zip(a, b, (p, q) => Math.fround(p * q)), F32, `mul_ cast ${layout}`);
      x = layoutTensor(a, layout);
      T.add_(x, 2, 3);
      T.mul_(x, -1);
      T.sub_(x, 0.5);
      expectClose(x, map(a, (p) => -(p + 6) - 0.5), F32, `scalars ${layout}`);
    }
    const i = T.tensor([1, 2, 3], { dtype: 'int32' });
    T.add_(i, T.tensor([1.9, 1.9, 1.9]));
    expect(i.toArray()).toEqual([2, 3, 4]);
  });

  it('copy_ broadcasts and casts into any layout; fill_/zero_ work on views and NaN contents', () => {
    const base = T.zeros([3, 4]);
    T.copy_(base.t(), T.tensor([1, 2, 3], { dtype: 'int64' }));
    expect(base.toArray()).toEqual([[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]);
    const nanBuf = T.full([2, 6], NaN);
    T.fill_(nanBuf.slice(1, 0, undefined, 2), 5);
    expect(values(nanBuf)).toEqual([5, NaN, 5, NaN, 5, NaN, 5, NaN, 5, NaN, 5, NaN]);
    T.zero_(nanBuf.t());
    expect(values(nanBuf)).toEqual(new Array(12).fill(0));
    const infBuf = T.full([2, 2], Infinity);
    T.fill_(infBuf.t(), 1);
    expect(values(infBuf)).toEqual([1, 1, 1, 1]);
    const b = T.zeros([2, 3], { dtype: 'bool' });
    T.fill_(b.t(), 1);
    expect(b.toArray()).toEqual([[true, true, true], [true, true, true]]);
    const i = T.zeros([2, 3], { dtype: 'int64' });
    T.fill_(i.select(1, 1), 7);
    expect(i.toArray()).toEqual([[0, 7, 0], [0, 7, 0]]);
    const e = T.zeros([0, 3]);
    T.fill_(e, 1);
    T.fill_(e.t(), 1);
    expect(e.shape).toEqual([0, 3]);
  });

  it('clamp_ on floats and integers, one-sided', () => {
    const f = T.tensor([[-2, 0.5], [3, NaN]]);
    T.clamp_(f.t(), -1, 1);
    expect(values(f)).toEqual([-1, 0.5, 1, NaN]);
    const i = T.tensor([3, -3, 5], { dtype: 'int32' });
    T.clamp_(i, 0);
    expect(i.toArray()).toEqual([3, 0, 5]);
    const j = T.tensor([3e9, -3e9], { dtype: 'int64' });
    T.clamp_(j, undefined, 0);
    expect(j.toArray()).toEqual([0, -3e9]);
    const u = T.tensor([1, 200], { dtype: 'uint8' });
    T.clamp_(u, undefined, 100);
    expect(u.toArray()).toEqual([1, 100]);
  });

  it('refuses in-place updates of expanded (memory-sharing) destinations, except fill_', () => {
    const e = T.zeros([1]).expand([3]);
    expect(() => T.add_(e, T.tensor([1, 2, 3]))).toThrow(/add_: the destination of shape \[3\] with strides \[0\] has elements sharing memory/);
    expect(() => T.mul_(e, 2)).toThrow(/mul_: the destination/);
    expect(() => T.copy_(e, T.tensor([1, 2, 3]))).toThrow(/copy_: the destination/);
    expect(() => T.clamp_(e, 0, 1)).toThrow(/clamp_: the destination/);
    T.fill_(e, 4);
    expect(e.toArray()).toEqual([4, 4, 4]);
    const one = T.zeros([1, 3]).expand([1, 3]);
    T.add_(one, 1);
    expect(one.toArray()).toEqual([[1, 1, 1]]);
  });

  it('in-place writes through a view are visible in the base', () => {
    const x = T.arange(0, 12, 1, { dtype: 'float32' }).reshape([3, 4]);
    T.add_(x.select(0, 1), 100);
    T.mul_(x.narrow(1, 3, 1), 0);
    expect(x.toArray()).toEqual([[0, 1, 2, 0], [104, 105, 106, 0], [8, 9, 10, 0]]);
  });

  it('refuses in-place updates of leaves that require grad (unless under noGrad) and non-broadcastable sources', () => {
    const w = T.ones([3], { requiresGrad: true });
    expect(() => T.add_(w, 1)).toThrow(/add_: in-place update of a leaf that requires grad/);
    expect(() => T.mul_(w, 2)).toThrow(/mul_/);
    expect(() => T.fill_(w, 2)).toThrow(/fill_/);
    expect(() => T.copy_(w, T.zeros([3]))).toThrow(/copy_/);
    T.noGrad(() => T.add_(w, 1));
    expect(w.toArray()).toEqual([2, 2, 2]);
    expect(() => T.add_(T.zeros([3]), T.zeros([2, 3]))).toThrow(/add_: source of shape \[2, 3\] does not broadcast to the destination's shape \[3\]/);
    expect(() => T.copy_(T.zeros([3]), T.zeros([4]))).toThrow(/copy_.*\[3\].*\[4\]|copy_.*\[4\].*\[3\]/);
    expect(() => T.mul_(T.zeros([3]), T.zeros([2]))).toThrow(/mul_/);
  });
});

// ---- errors -------------------------------------------------------------------------------------

describe('errors', () => {
  it('broadcast mismatches name the op and both shapes', () => {
    const a = T.ones([2, 3]), b = T.ones([4]);
    const cases: [string, () => unknown][] = [
      ['add', () => T.add(a, b)], ['sub', () => T.sub(a, b)], ['mul', () => T.mul(a, b)], ['div', () => T.div(a, b)],
      ['pow', () => T.pow(a, b)], ['maximum', () => T.maximum(a, b)], ['minimum', () => T.minimum(a, b)],
      ['eq', () => T.eq(a, b)], ['lt', () => T.lt(a, b)], ['ge', () => T.ge(a, b)],
      ['logicalAnd', () => T.logicalAnd(a, b)], ['logicalXor', () => T.logicalXor(a, b)], ['where', () => T.where(a, a, b)],
    ];
    for (const [op, f] of cases) expect(f, op).toThrow(new RegExp(`^${op}: shapes \\[2, 3\\] and \\[4\\] cannot be broadcast`));
    expect(() => T.add(T.ones([2, 3, 4]), T.ones([5, 1]))).toThrow(/add: shapes \[2, 3, 4\] and \[5, 1\].*dim 1: 3 vs 5/);
  });

  it('a disposed tensor gives a clear error in every elementwise op (never a crash or a silent read)', () => {
    const cases: [string, (x: T.Tensor, ok: T.Tensor) => unknown][] = [
      ['neg', (x) => T.neg(x)], ['exp', (x) => T.exp(x)], ['gelu', (x) => T.gelu(x)], ['clamp', (x) => T.clamp(x, 0, 1)],
      ['affine', (x) => T.affine(x, 1, 2)], ['pow', (x) => T.pow(x, 3)],
      ['add a', (x, ok) => T.add(x, ok)], ['add b', (x, ok) => T.add(ok, x)], ['add scalar', (x) => T.add(x, 1)],
      ['mul b', (x, ok) => T.mul(ok, x)], ['div b', (x, ok) => T.div(ok, x)], ['maximum b', (x, ok) => T.maximum(ok, x)],
      ['eq b', (x, ok) => T.eq(ok, x)], ['lt a', (x) => T.lt(x, 0)],
      ['logicalAnd a', (x, ok) => T.logicalAnd(x, ok)], ['logicalOr b', (x, ok) => T.logicalOr(ok, x)], ['logicalNot', (x) => T.logicalNot(x)],
      ['isnan', (x) => T.isnan(x)], ['isfinite', (x) => T.isfinite(x)],
      ['where cond', (x, ok) => T.where(x, ok, ok)], ['where a', (x, ok) => T.where(T.tensor([true, false]), x, ok)],
      ['where b', (x, ok) => T.where(T.tensor([true, false]), ok, x)], ['where scalar b', (x) => T.where(T.tensor([true, false]), x, 0)],
      ['maskedFill x', (x) => T.maskedFill(x, T.tensor([true, false]), 0)], ['maskedFill mask', (x, ok) => T.maskedFill(ok, x, 0)],
      ['cast', (x) => T.cast(x, 'int32')], ['clone', (x) => T.clone(x)], ['contiguous', (x) => T.contiguous(x)],
      ['add_ dst', (x, ok) => T.add_(x, ok)], ['add_ src', (x, ok) => T.add_(ok, x)], ['mul_ src', (x, ok) => T.mul_(ok, x)],
      ['copy_ src', (x, ok) => T.copy_(ok, x)], ['copy_ dst', (x, ok) => T.copy_(x, ok)], ['fill_', (x) => T.fill_(x, 1)],
      ['clamp_', (x) => T.clamp_(x, 0)], ['zero_', (x) => T.zero_(x)],
    ];
    for (const dtype of ['float32', 'bool'] as const) {
      for (const [name, f] of cases) {
        // a disposed view whose storage is still alive elsewhere, and a fully freed tensor
        const owner = T.ones([2], { dtype });
        const view = owner.reshape([2]);
        view.dispose();
        const ok = T.ones([2], { dtype });
        expect(() => f(view, ok), `${name} ${dtype} (view)`).toThrow(/disposed/);
        const lone = T.ones([2], { dtype });
        lone.dispose();
        expect(() => f(lone, ok), `${name} ${dtype}`).toThrow(/disposed/);
      }
    }
  });
});
