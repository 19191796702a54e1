/**
 * Views (src/ops/views.ts) against plain index-math references: reshape/view, permute,
 * transpose, t, narrow, slice (with steps), select, expand, squeeze/unsqueeze, flatten and
 * contiguous — on contiguous and non-contiguous inputs, size-0 and size-1 dims. Views must
 * share storage (writes through one are seen by the other) and carry gradients back.
 */
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import {
  EXACT, LAYOUTS, Rng, expand as refExpand, expectClose, layoutTensor, numel, permute as refPermute, randRef, ref, reshape as refReshape,
  select as refSelect, slice as refSlice, toTensor, transpose as refTranspose, values, type Ref,
} from './helpers/ref.js';

function gradOk(fn: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[]): void {
  const r = T.gradcheck(fn, inputs);
  expect(r.ok, `gradcheck failed: ${JSON.stringify(r.failure)} (max abs error ${r.maxAbsError})`).toBe(true);
}

/** Asserts `v` is a view of `base`: same storage, and a write through v shows up in base at the right place. */
function expectSharedWrite(base: T.Tensor, v: T.Tensor): void {
  expect(v.storage).toBe(base.storage);
  if (v.numel === 0) return;
  // distinct values everywhere first, so the write is visible wherever it lands
  T.noGrad(() => T.copy_(base, T.reshape(T.arange(0, base.numel, 1, { dtype: base.dtype }), base.shape)));
  const before = values(base);
  T.noGrad(() => T.fill_(v, -777));
  const after = values(base);
  const changed = after.filter((x, i) => x !== before[i]).length;
  // every element of v is now -777 and exactly the distinct positions it covers changed
  expect(values(v).every((x) => x === -777)).toBe(true);
  expect(changed).toBeGreaterThan(0);
  expect(changed).toBeLessThanOrEqual(v.numel);
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) for (let i = 0; i <= p.length; ++i) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  return out;
}

const BASE_SHAPES: number[][] = [[], [1], [6], [3, 4], [2, 3, 4], [4, 1, 3], [0, 3], [2, 0, 3], [2, 3, 1, 2]];

describe('reshape / view / flatten', () => {
  it('reshape to every compatible shape (with -1) equals the row-major reference, for any layout', () => {
    const rng = new Rng(1);
    const targets: Record<string, number[][]> = {
      '[]': [[1], [1, 1], [-1]],
      '[1]': [[], [1, 1, 1], [-1]],
      '[6]': [[2, 3], [3, -1], [1, 6, 1], [6]],
      '[3,4]': [[12], [4, 3], [2, 6], [-1, 2], [2, 2, 3], [1, 12, 1]],
      '[2,3,4]': [[6, 4], [2, 12], [24], [4, 3, 2], [2, 3, 2, 2], [-1, 4], [3, -1]],
      '[4,1,3]': [[4, 3], [12], [4, 3, 1], [1, 4, 1, 3, 1], [2, 2, 3]],
      '[0,3]': [[3, 0], [0], [-1, 3], [0, 1, 3]],
      '[2,0,3]': [[0, 2], [6, 0], [0]],
      '[2,3,1,2]': [[6, 2], [2, 6], [12], [3, 4]],
    };
    for (const shape of BASE_SHAPES) {
      const a = randRef(rng, shape);
      for (const target of targets[JSON.stringify(shape).replace(/ /g, '')]!) {
        const resolved = target.map((s) => (s === -1 ? (numel(target) === 0 ? 0 : -numel(shape) / numel(target)) : s));
        for (const layout of LAYOUTS) {
          T.scope(() => {
            const x = layoutTensor(a, layout);
            const y = T.reshape(x, target);
            expectClose(y, refReshape(a, resolved), EXACT, `${JSON.stringify(shape)} -> ${JSON.stringify(target)} ${layout}`);
            expect(y.isContiguous() || y.storage === x.storage).toBe(true);
          });
        }
      }
    }
  });

  it('view shares storage when the layout allows it and says "use reshape" otherwise', () => {
    const x = T.arange(0, 24, 1, { dtype: 'float32' }).reshape([2, 3, 4]);
    for (const s of [[6, 4], [24], [2, 12], [4, 6], [2, 3, 2, 2]]) expectSharedWrite(x, T.view(x, s));
    // splitting and merging only the dims that are still row-major in a permuted tensor
    const p = T.permute(T.arange(0, 24, 1, { dtype: 'float32' }).reshape([2, 3, 4]), [1, 0, 2]); // strides [4, 12, 1]
    const v = T.view(p, [3, 2, 2, 2]);
    expect(v.strides).toEqual([4, 12, 2, 1]);
    expectClose(v, refReshape(refPermute(ref([2, 3, 4], [...Array(24).keys()]), [1, 0, 2]), [3, 2, 2, 2]), EXACT);
    expectSharedWrite(p, v);
    const sl = T.arange(0, 24, 1, { dtype: 'float32' }).reshape([4, 6]).narrow(1, 1, 4); // rows of 4 with stride 6
    expectClose(T.view(sl, [4, 2, 2]), refReshape(refSlice(ref([4, 6], [...Array(24).keys()]), 1, 1, 5), [4, 2, 2]), EXACT);
    expect(() => T.view(sl, [16])).toThrow(/view: a tensor of shape \[4, 4\] with strides \[6, 1\] cannot be viewed as \[16\]; use reshape/);
    expect(() => T.view(T.ones([3, 4]).t(), [12])).toThrow(/use reshape/);
    // reshape copies in that case (a new storage)
    const r = T.reshape(sl, [16]);
    expect(r.storage).not.toBe(sl.storage);
    expectClose(r, refReshape(refSlice(ref([4, 6], [...Array(24).keys()]), 1, 1, 5), [16]), EXACT);
    // size-1 dims with arbitrary strides do not block a view
    const one = T.ones([3, 1, 4]).slice(1, 0, 1);
    expect(T.view(one, [12]).storage).toBe(one.storage);
  });

  it('reshape/view/flatten of expanded (stride-0) views: views where possible, copies otherwise', () => {
    const a = ref([1, 4], [1, 2, 3, 4]);
    const e = T.expand(toTensor(a), [3, 4]);
    const v = T.view(e, [3, 2, 2]);
    expect(v.strides).toEqual([0, 2, 1]);
    expect(v.storage).toBe(e.storage);
    expectClose(v, refReshape(refExpand(a, [3, 4]), [3, 2, 2]), EXACT);
    expect(() => T.view(e, [12])).toThrow(/use reshape/);
    const f = T.flatten(e);
    expect(f.storage).not.toBe(e.storage);
    expectClose(f, refReshape(refExpand(a, [3, 4]), [12]), EXACT);
    expectClose(T.reshape(T.t(e), [2, 6]), refReshape(refTranspose(refExpand(a, [3, 4]), 0, 1), [2, 6]), EXACT);
  });

  it('reshape/view errors name the op and both shapes', () => {
    const x = T.ones([2, 3]);
    expect(() => T.reshape(x, [4, 2])).toThrow(/reshape: shape \[4, 2\] is invalid for a tensor of 6 elements \[2, 3\]/);
    expect(() => T.view(x, [-1, -1])).toThrow(/view: only one dimension can be -1/);
    expect(() => T.reshape(x, [-1, 4])).toThrow(/reshape: shape \[-1, 4\] is invalid/);
    expect(() => T.reshape(x, [2, 1.5, 2])).toThrow(/reshape: invalid size 1.5/);
    expect(() => T.reshape(x, [-2, -3])).toThrow(/reshape: invalid size -2/);
    expect(() => T.reshape(T.zeros([0, 3]), [-1, 0])).toThrow(/reshape/);
  });

  it('flatten over dim ranges; method forms take varargs or arrays', () => {
    const rng = new Rng(2);
    const a = randRef(rng, [2, 3, 4, 5]);
    const x = layoutTensor(a, 'offset-permuted');
    expectClose(T.flatten(x), refReshape(a, [120]), EXACT);
    expectClose(T.flatten(x, 1), refReshape(a, [2, 60]), EXACT);
    expectClose(T.flatten(x, 1, 2), refReshape(a, [2, 12, 5]), EXACT);
    expectClose(T.flatten(x, -2, -1), refReshape(a, [2, 3, 20]), EXACT);
    expectClose(T.flatten(x, 2, 2), a, EXACT);
    expect(T.flatten(T.tensor(3)).shape).toEqual([1]);
    expect(() => T.flatten(x, 2, 1)).toThrow(/flatten: startDim 2 comes after endDim 1/);
    const c = T.ones([2, 3, 4]);
    expect(c.reshape(4, 6).shape).toEqual([4, 6]);
    expect(c.reshape([4, 6]).shape).toEqual([4, 6]);
    expect(c.view(-1).shape).toEqual([24]);
    expect(c.flatten(0, 1).shape).toEqual([6, 4]);
  });
});

describe('permute / transpose / t', () => {
  it('every permutation of 3-D and 4-D tensors, on every layout, shares storage', () => {
    const rng = new Rng(3);
    for (const shape of [[2, 3, 4], [2, 1, 3, 2], [0, 2, 3]]) {
      const a = randRef(rng, shape);
      for (const perm of permutations(shape.length)) {
        for (const layout of LAYOUTS) {
          T.scope(() => {
            const x = layoutTensor(a, layout);
            const y = T.permute(x, perm);
            expectClose(y, refPermute(a, perm), EXACT, `${JSON.stringify(shape)} ${JSON.stringify(perm)} ${layout}`);
            expect(y.storage).toBe(x.storage);
          });
        }
      }
      // negative dims
      const neg = shape.length === 3 ? [-1, 0, -2] : [-1, 0, -2, 1];
      const pos = neg.map((d) => (d < 0 ? d + shape.length : d));
      T.scope(() => expectClose(T.permute(toTensor(a), neg), refPermute(a, pos), EXACT, `negative dims ${JSON.stringify(shape)}`));
    }
    const c = T.permute(T.ones([2, 3, 4]), [2, 0, 1]).contiguous();
    expect(c.isContiguous()).toBe(true);
  });

  it('transpose and t', () => {
    const rng = new Rng(4);
    const a = randRef(rng, [2, 3, 4]);
    for (const layout of LAYOUTS) {
      const x = layoutTensor(a, layout);
      for (const [d0, d1] of [[0, 1], [0, 2], [1, 2], [-1, 0], [1, 1]]) {
        expectClose(T.transpose(x, d0!, d1!), refTranspose(a, d0!, d1!), EXACT, `${d0},${d1} ${layout}`);
      }
    }
    const m = randRef(rng, [3, 5]);
    expectClose(T.t(toTensor(m)), refTranspose(m, 0, 1), EXACT);
    const v = T.ones([4]);
    expect(T.t(v)).toBe(v);
    expect(() => T.t(T.ones([2, 2, 2]))).toThrow(/t: expects a tensor of at most 2 dims, got shape \[2, 2, 2\]/);
    const base = T.zeros([3, 5]);
    expectSharedWrite(base, base.t());
  });

  it('errors: wrong number of dims, repeated dims, out-of-range dims', () => {
    const x = T.ones([2, 3, 4]);
    expect(() => T.permute(x, [0, 1])).toThrow(/permute: expected 3 dims for shape \[2, 3, 4\], got \[0, 1\]/);
    expect(() => T.permute(x, [0, 1, 1])).toThrow(/permute: repeated dim in \[0, 1, 1\]/);
    expect(() => T.permute(x, [0, 1, 3])).toThrow(/permute: dim 3 is out of range for a tensor of shape \[2, 3, 4\]/);
    expect(() => T.transpose(x, 0, 3)).toThrow(/transpose: dim 3 is out of range/);
    expect(() => T.permute(x, [0, 1, -1])).not.toThrow();
  });
});

describe('slice / narrow / select', () => {
  it('slice with start/end/step (negative, clamped, empty) on every layout equals the reference', () => {
    const rng = new Rng(5);
    const a = randRef(rng, [5, 7]);
    const specs: [number, number | undefined, number | undefined, number | undefined][] = [
      [0, 1, 4, 1], [1, 2, undefined, 1], [1, -3, undefined, 1], [1, 0, -1, 2], [1, 1, 7, 3], [0, -100, 100, 1], [1, 5, 2, 1],
      [1, 7, undefined, 1], [0, 0, 5, 4], [1, -2, -1, 1], [0, undefined, undefined, 2], [-1, 1, undefined, 5], [1, 6, 7, 1],
    ];
    for (const layout of LAYOUTS) {
      for (const [dim, start, end, step] of specs) {
        T.scope(() => {
          const x = layoutTensor(a, layout);
          const y = T.slice(x, dim, start, end, step);
          expectClose(y, refSlice(a, dim, start ?? 0, end, step ?? 1), EXACT, `slice(${dim}, ${start}, ${end}, ${step}) ${layout}`);
          expect(y.storage).toBe(x.storage);
        });
      }
    }
    // slices of slices
    const b = randRef(rng, [20]);
    const y = T.slice(T.slice(layoutTensor(b, 'strided'), 0, 1, 19, 2), 0, 1, undefined, 3);
    expectClose(y, refSlice(refSlice(b, 0, 1, 19, 2), 0, 1, undefined, 3), EXACT);
    expect(() => T.slice(T.ones([4]), 0, 0, 4, 0)).toThrow(/slice: step must be a positive integer, got 0/);
    expect(() => T.slice(T.ones([4]), 0, 0, 4, -1)).toThrow(/slice: step must be a positive integer/);
    expect(() => T.slice(T.ones([4]), 1)).toThrow(/slice: dim 1 is out of range/);
  });

  it('narrow and select (negative indices) on every layout', () => {
    const rng = new Rng(6);
    const a = randRef(rng, [3, 4, 5]);
    for (const layout of LAYOUTS) {
      const x = layoutTensor(a, layout);
      expectClose(T.narrow(x, 1, 1, 2), refSlice(a, 1, 1, 3), EXACT, `narrow ${layout}`);
      expectClose(T.narrow(x, -1, -2, 2), refSlice(a, 2, 3, 5), EXACT, `narrow neg ${layout}`);
      expectClose(T.narrow(x, 0, 3, 0), refSlice(a, 0, 3, 3), EXACT, `narrow empty ${layout}`);
      for (const [dim, idx] of [[0, 0], [0, 2], [1, -1], [2, 3], [-1, -5]]) {
        const y = T.select(x, dim!, idx!);
        expectClose(y, refSelect(a, dim!, idx!), EXACT, `select(${dim}, ${idx}) ${layout}`);
        expect(y.storage).toBe(x.storage);
      }
    }
    expect(T.select(T.tensor([7, 8]), 0, 1).shape).toEqual([]);
    expect(T.select(T.tensor([7, 8]), 0, 1).item()).toBe(8);
    expect(() => T.narrow(T.ones([3, 4]), 1, 2, 3)).toThrow(/narrow: start 2 \+ length 3 exceeds dim 1 of size 4 in \[3, 4\]/);
    expect(() => T.narrow(T.ones([3, 4]), 1, 0, -1)).toThrow(/narrow/);
    expect(() => T.select(T.ones([3, 4]), 1, 4)).toThrow(/select: index 4 is out of range for dim 1 of size 4/);
    expect(() => T.select(T.ones([3, 4]), 0, -4)).toThrow(/select: index -4 is out of range/);
  });

  it('writes through slices, narrows and selects reach the base', () => {
    const base = T.zeros([4, 6]);
    expectSharedWrite(base, T.slice(base, 1, 1, undefined, 2));
    expectSharedWrite(base, T.narrow(base, 0, 1, 2));
    expectSharedWrite(base, T.select(base, 1, 3));
    expectSharedWrite(base, T.select(T.t(base), 0, 0));
    const x = T.zeros([3, 4]);
    T.noGrad(() => T.copy_(T.slice(x, 1, 0, undefined, 3), T.tensor([[1, 2], [3, 4], [5, 6]])));
    expect(x.toArray()).toEqual([[1, 0, 0, 2], [3, 0, 0, 4], [5, 0, 0, 6]]);
    // and the other way: writing the base is seen by an existing view
    const v = T.select(x, 0, 2);
    T.fill_(x, 9);
    expect(v.toArray()).toEqual([9, 9, 9, 9]);
    // the live data() view of a contiguous tensor aliases the storage too
    const d = x.data() as Float32Array;
    d[5] = -1;
    expect(T.select(x, 0, 1).toArray()).toEqual([9, -1, 9, 9]);
  });
});

describe('expand / squeeze / unsqueeze / contiguous', () => {
  it('expand (new leading dims, -1, size-1 dims, size 0) equals broadcasting; stride 0 aliases', () => {
    const rng = new Rng(7);
    const cases: [number[], number[]][] = [[[1, 4], [3, 4]], [[3, 1], [3, 5]], [[4], [2, 3, 4]], [[1], [0]], [[2, 1, 3], [4, 2, 5, 3]], [[3, 1], [-1, 2]], [[], [2, 2]], [[1, 1], [1, 1]]];
    for (const [from, to] of cases) {
      const a = randRef(rng, from);
      const resolved = to.map((s, i) => (s === -1 ? from[i - (to.length - from.length)]! : s));
      for (const layout of LAYOUTS) {
        T.scope(() => {
          const x = layoutTensor(a, layout);
          const y = T.expand(x, to);
          expectClose(y, refExpand(a, resolved), EXACT, `${JSON.stringify(from)} -> ${JSON.stringify(to)} ${layout}`);
          expect(y.storage).toBe(x.storage);
        });
      }
    }
    const base = T.tensor([[1], [2]]);
    const e = T.expand(base, [2, 3]);
    expect(e.strides[1]).toBe(0);
    T.fill_(T.select(base, 0, 0), 5);
    expect(e.toArray()).toEqual([[5, 5, 5], [2, 2, 2]]);
    expect(T.ones([3]).expandAs(T.ones([2, 3])).shape).toEqual([2, 3]);
    expect(T.ones([3]).expand(2, 3).shape).toEqual([2, 3]);
  });

  it('expand errors', () => {
    expect(() => T.expand(T.ones([3]), [4])).toThrow(/expand: cannot expand \[3\] to \[4\] \(dim 0: 3 to 4\)/);
    expect(() => T.expand(T.ones([2, 3]), [3])).toThrow(/expand: target shape \[3\] has fewer dims than \[2, 3\]/);
    expect(() => T.expand(T.ones([3]), [-1, 3])).toThrow(/expand: -1 is not allowed for a new leading dim/);
    expect(() => T.expand(T.ones([1]), [-2])).toThrow(/expand: invalid size -2/);
    expect(() => T.expand(T.ones([1]), [2.5])).toThrow(/expand: invalid size 2.5/);
  });

  it('squeeze / unsqueeze (all, one dim, negative dims, non-1 dims are kept) share storage', () => {
    const rng = new Rng(8);
    const a = randRef(rng, [1, 3, 1, 2]);
    for (const layout of LAYOUTS) {
      const x = layoutTensor(a, layout);
      expectClose(T.squeeze(x), refReshape(a, [3, 2]), EXACT, layout);
      expectClose(T.squeeze(x, 0), refReshape(a, [3, 1, 2]), EXACT, layout);
      expectClose(T.squeeze(x, -2), refReshape(a, [1, 3, 2]), EXACT, layout);
      expectClose(T.squeeze(x, 1), a, EXACT, layout);
      for (const [d, s] of [[0, [1, 1, 3, 1, 2]], [4, [1, 3, 1, 2, 1]], [-1, [1, 3, 1, 2, 1]], [-5, [1, 1, 3, 1, 2]], [2, [1, 3, 1, 1, 2]]] as const) {
        const y = T.unsqueeze(x, d);
        expectClose(y, refReshape(a, s as unknown as number[]), EXACT, `unsqueeze ${d} ${layout}`);
        expect(y.storage).toBe(x.storage);
      }
    }
    expect(T.squeeze(T.tensor(3)).shape).toEqual([]);
    expect(T.unsqueeze(T.tensor(3), 0).shape).toEqual([1]);
    expect(T.unsqueeze(T.tensor(3), -1).shape).toEqual([1]);
    expect(() => T.unsqueeze(T.ones([2]), 2)).toThrow(/unsqueeze: dim 2 is out of range/);
    const base = T.zeros([2, 3]);
    expectSharedWrite(base, T.unsqueeze(base, 1));
    expectSharedWrite(base, T.squeeze(T.unsqueeze(T.t(base), 0)));
    // an unsqueezed view of a non-contiguous tensor can still be viewed back
    const tt = T.unsqueeze(T.t(T.zeros([2, 3])), 2);
    expect(T.squeeze(tt, 2).strides).toEqual([1, 3]);
  });

  it('contiguous returns the tensor itself when contiguous, else a copy with its own storage', () => {
    const rng = new Rng(9);
    const a = randRef(rng, [3, 4]);
    const x = toTensor(a);
    expect(T.contiguous(x)).toBe(x);
    for (const layout of ['transposed', 'strided', 'offset-permuted'] as const) {
      const v = layoutTensor(a, layout);
      expect(v.isContiguous()).toBe(false);
      const c = T.contiguous(v);
      expect(c.isContiguous()).toBe(true);
      expect(c.storage).not.toBe(v.storage);
      expectClose(c, a, EXACT, layout);
    }
    expect(T.ones([3, 1]).expand([3, 4]).isContiguous()).toBe(false);
    expect(T.ones([1, 4]).slice(0, 0, 1).isContiguous()).toBe(true);
  });
});

describe('storage lifetime across views', () => {
  it('a view keeps the storage alive after its base is disposed, and freeing both frees it', () => {
    const before = T.memory().cpu.live;
    const base = T.arange(0, 1000, 1, { dtype: 'float64' });
    const v = T.slice(base, 0, 10, 20);
    expect(T.memory().cpu.live - before).toBe(8000);
    base.dispose();
    expect(base.disposed).toBe(true);
    expect(T.memory().cpu.live - before).toBe(8000);
    expect(v.toArray()).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    v.dispose();
    expect(T.memory().cpu.live - before).toBe(0);
  });

  it('every view op on a disposed tensor throws a clear error', () => {
    const ops: [string, (x: T.Tensor) => unknown][] = [
      ['reshape', (x) => T.reshape(x, [6])], ['view', (x) => T.view(x, [6])], ['flatten', (x) => T.flatten(x)],
      ['permute', (x) => T.permute(x, [1, 0])], ['transpose', (x) => T.transpose(x, 0, 1)], ['t', (x) => T.t(x)],
      ['slice', (x) => T.slice(x, 1, 0, 2)], ['narrow', (x) => T.narrow(x, 1, 0, 2)], ['select', (x) => T.select(x, 0, 1)],
      ['expand', (x) => T.expand(x, [4, 2, 3])], ['squeeze', (x) => T.squeeze(x)], ['unsqueeze', (x) => T.unsqueeze(x, 0)],
      ['contiguous', (x) => T.contiguous(x)], ['toArray', (x) => x.toArray()], ['item', (x) => x.item()], ['data', (x) => x.data()],
    ];
    for (const [name, f] of ops) {
      const owner = T.ones([2, 3]);
      const view = T.reshape(owner, [2, 3]);
      view.dispose();
      expect(() => f(view), `${name} (view)`).toThrow(/disposed/);
      const lone = T.ones([2, 3]);
      lone.dispose();
      expect(() => f(lone), name).toThrow(/disposed/);
    }
  });
});

describe('autograd through views', () => {
  const rng = new Rng(10);
  const x64 = (shape: number[]) => toTensor(randRef(rng, shape, -1, 1, false), 'float64', true);

  it('gradcheck of every view op (and chains of them)', () => {
    const cases: [string, number[], (x: T.Tensor) => T.Tensor][] = [
      ['reshape', [2, 3, 4], (x) => T.reshape(x, [4, 6])],
      ['reshape (copy)', [3, 4], (x) => T.reshape(T.t(x), [12])],
      ['view', [2, 3, 4], (x) => T.view(x, [6, -1])],
      ['flatten', [2, 3, 4], (x) => T.flatten(x, 1)],
      ['permute', [2, 3, 4], (x) => T.permute(x, [2, 0, 1])],
      ['transpose', [2, 3, 4], (x) => T.transpose(x, 0, 2)],
      ['t', [3, 4], (x) => T.t(x)],
      ['slice', [5, 4], (x) => T.slice(x, 0, 1, 5, 2)],
      ['slice neg', [5, 4], (x) => T.slice(x, 1, -3, -1)],
      ['narrow', [5, 4], (x) => T.narrow(x, 1, 1, 2)],
      ['select', [3, 4], (x) => T.select(x, 1, -1)],
      ['expand', [3, 1], (x) => T.expand(x, [2, 3, 4])],
      ['squeeze', [3, 1, 2], (x) => T.squeeze(x)],
      ['unsqueeze', [3, 2], (x) => T.unsqueeze(x, 1)],
      ['contiguous', [3, 4], (x) => T.contiguous(T.t(x))],
      ['chain', [4, 6], (x) => T.select(T.expand(T.unsqueeze(T.slice(T.t(x), 0, 1, undefined, 2), 0), [2, 3, 4]), 2, 1)],
      ['chain 2', [2, 3, 4], (x) => T.reshape(T.narrow(T.permute(x, [1, 2, 0]), 1, 1, 3), [-1])],
    ];
    for (const [name, shape, fn] of cases) {
      const r = T.gradcheck(fn, [x64(shape)]);
      expect(r.ok, `${name}: ${JSON.stringify(r.failure)}`).toBe(true);
    }
  });

  it('several views of one tensor accumulate into one gradient; nonlinear ops on views', () => {
    gradOk((x) => T.add(T.mul(T.select(x, 0, 0), T.select(x, 0, 1)), T.sum(T.t(x), 1)), [x64([2, 3])]);
    gradOk((x) => T.mul(T.slice(x, 0, 0, undefined, 2), T.slice(x, 0, 1, undefined, 2)), [x64([6])]);
    gradOk((x) => T.exp(T.expand(T.narrow(x, 0, 1, 1), [3, 4])), [x64([3, 4])]);
    const x = T.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    T.add(T.sum(T.select(x, 1, 0)), T.sum(T.slice(x, 1, 0, undefined, 2))).backward();
    expect(x.grad!.toArray()).toEqual([[2, 0, 1], [2, 0, 1]]);
    const y = T.tensor([1, 2], { requiresGrad: true });
    T.sum(T.expand(T.unsqueeze(y, 0), [3, 2])).backward();
    expect(y.grad!.toArray()).toEqual([3, 3]);
  });
});

describe('many dims', () => {
  it('elementwise ops accept more than 12 dims when the extra ones have size 1', () => {
    const shape = [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3];
    const a = T.arange(0, 6).float().reshape(shape);
    const b = T.add(a, a);
    expect(b.shape).toEqual(shape);
    expect(b.reshape([-1]).toArray()).toEqual([0, 2, 4, 6, 8, 10]);
  });
});
