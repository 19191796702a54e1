import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { expectClose, flat } from './helpers/ref_nn.js';

const f64 = (vals: number[], shape?: number[], requiresGrad = false) => T.tensor(vals, { dtype: 'float64', shape: shape ?? [vals.length], requiresGrad });

describe('backward basics', () => {
  it('gradients accumulate across two backward() calls; zeroGrad clears', () => {
    const x = f64([1, 2, 3], undefined, true);
    x.mul(x).sum().backward();
    expect(flat(x.grad!)).toEqual([2, 4, 6]);
    x.mul(3).sum().backward();
    expect(flat(x.grad!)).toEqual([5, 7, 9]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    x.mul(x).sum().backward();
    expect(flat(x.grad!)).toEqual([2, 4, 6]);
  });
  it('the first accumulated grad is a copy, not an alias of an internal gradient', () => {
    const x = f64([1, 2], undefined, true);
    const g = f64([5, 6]);
    x.backward(g); // the root is the leaf itself
    expect(flat(x.grad!)).toEqual([5, 6]);
    expect(x.grad).not.toBe(g);
    x.backward(g);
    expect(flat(x.grad!)).toEqual([10, 12]);
    expect(flat(g)).toEqual([5, 6]);
  });
  it('backward with an explicit upstream gradient (non-scalar root)', () => {
    const x = f64([1, 2, 3, 4], [2, 2], true);
    const y = x.mul(x); // dy/dx = 2x
    y.backward(f64([1, 10, 100, 1000], [2, 2]));
    expect(flat(x.grad!)).toEqual([2, 40, 600, 8000]);
    // a non-contiguous upstream gradient
    const x2 = f64([1, 2, 3, 4], [2, 2], true);
    x2.mul(2).backward(f64([1, 2, 3, 4], [2, 2]).t());
    expect(flat(x2.grad!)).toEqual([2, 6, 4, 8]);
  });
  it('clear errors: implicit grad for a non-scalar, wrong gradient shape, nothing requires grad', () => {
    const x = f64([1, 2, 3], undefined, true);
    expect(() => x.mul(2).backward()).toThrow(/implicitly created only for scalar outputs, got shape \[3\]/);
    expect(() => x.mul(2).backward(f64([1, 2]))).toThrow(/gradient shape \[2\] does not match the tensor's shape \[3\]/);
    expect(() => f64([1]).mul(2).sum().backward()).toThrow(/does not require grad/);
    expect(() => T.ones([2], { dtype: 'int64' }).requiresGrad_()).toThrow(/only floating tensors/);
  });
  it('retainGraph allows a second backward; without it the second backward fails clearly', () => {
    const x = f64([1, 2, 3], undefined, true);
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expectClose(flat(x.grad!), [1, 2, 3].map((v) => 3 * Math.exp(v)), 1e-12, 1e-12);
    expect(() => y.backward()).toThrow(/already freed by an earlier backward\(\).*retainGraph: true/);
    // the grad from the failed call was not partially added
    expectClose(flat(x.grad!), [1, 2, 3].map((v) => 3 * Math.exp(v)), 1e-12, 1e-12);
    // a branch of a freed graph also fails
    const a = f64([1, 2], undefined, true);
    const h = a.mul(a);
    h.sum().backward();
    expect(() => h.mul(2).sum().backward()).toThrow(/'mul'.*already freed/);
    // ...and leaves no partial gradients behind on other leaves of the new graph
    const b = f64([5, 6], undefined, true);
    expect(() => h.mul(b).sum().backward()).toThrow(/already freed/);
    expect(b.grad).toBeNull();
  });
});

describe('grad mode', () => {
  it('noGrad records nothing; enableGrad turns it back on inside', () => {
    const x = f64([1, 2], undefined, true);
    const y = T.noGrad(() => x.mul(2).add(1).exp());
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(T.isGradEnabled()).toBe(true);
    T.noGrad(() => {
      expect(T.isGradEnabled()).toBe(false);
      const z = T.enableGrad(() => x.mul(3));
      expect(z.requiresGrad).toBe(true);
      expect(T.isGradEnabled()).toBe(false);
      const w = T.matmul(x.reshape(1, 2), x.reshape(2, 1));
      expect(w.gradFn).toBeNull();
    });
    // restored after a throw
    expect(() => T.noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(T.isGradEnabled()).toBe(true);
    expect(x.grad).toBeNull();
  });
  it('detach shares storage but is cut from the graph', () => {
    const x = f64([1, 2, 3], undefined, true);
    const y = x.mul(2);
    const d = y.detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.gradFn).toBeNull();
    expect(d.storage).toBe(y.storage);
    // gradient stops at the detached value: d(x·detach(2x))/dx = 2x (not 4x)
    x.mul(d).sum().backward();
    expect(flat(x.grad!)).toEqual([2, 4, 6]);
    // in-place writes through the detached view are visible in the original
    T.noGrad(() => d.fill_(7));
    expect(flat(y)).toEqual([7, 7, 7]);
  });
  it('ops whose inputs do not require grad record nothing', () => {
    const a = f64([1, 2]), b = f64([3, 4]);
    const c = T.softmax(T.matmul(a.reshape(2, 1), b.reshape(1, 2)), -1);
    expect(c.requiresGrad).toBe(false);
    expect(c.gradFn).toBeNull();
  });
});

describe('graph structure', () => {
  it('a shared input used by two branches gets the sum of both gradients', () => {
    const xv = [0.5, -1, 2];
    const x = f64(xv, undefined, true);
    const a = x.mul(x); // 2x
    const b = x.exp(); // exp(x)
    a.add(b).add(x.mul(3)).sum().backward(); // and x itself as a third path
    expectClose(flat(x.grad!), xv.map((v) => 2 * v + Math.exp(v) + 3), 1e-14, 1e-14);
  });
  it('diamond: an intermediate consumed twice is back-propagated once, after both consumers', () => {
    const x = f64([1, 2], undefined, true);
    const h = x.mul(3); // shared intermediate
    const y = h.mul(h).add(h.exp()).sum(); // d/dh = 2h + exp(h), dh/dx = 3
    y.backward();
    expectClose(flat(x.grad!), [3, 6].map((h) => 3 * (2 * h + Math.exp(h))), 1e-10, 1e-12);
  });
  it('autograd through views: slice, narrow, select, transpose, permute, reshape, expand, squeeze, unsqueeze', () => {
    const x = f64([1, 2, 3, 4, 5, 6], [2, 3], true);
    const parts = [
      x.slice(1, 0, 3, 2).mul(2).sum(), // cols 0, 2 → 2
      x.select(0, 1).mul(x.select(0, 1)).sum(), // row 1 → 2x
      x.t().reshape(6).narrow(0, 1, 2).sum(), // t() flat: [1,4,2,5,3,6] → elements 4 and 2
      x.unsqueeze(0).expand(4, 2, 3).sum(), // 4 each
      x.permute(1, 0).squeeze().mul(f64([1, 10, 100, 1000, 1e4, 1e5], [3, 2])).sum(),
    ];
    parts.reduce((p, q) => p.add(q)).backward();
    const want = [1, 2, 3, 4, 5, 6].map((v, i) => {
      const r = Math.floor(i / 3), c = i % 3;
      let g = 0;
      if (c % 2 === 0) g += 2;
      if (r === 1) g += 2 * v;
      if (i === 3 || i === 1) g += 1;
      g += 4;
      g += [1, 10, 100, 1000, 1e4, 1e5][c * 2 + r]!;
      return g;
    });
    expect(flat(x.grad!)).toEqual(want);
  });
  it('gradcheck through a chain of views and a reduction', () => {
    const r = T.gradcheck((x) => x!.t().reshape(3, 4).slice(0, 1, 3).mul(x!.reshape(3, 4).slice(0, 0, 2)).sum(1), [T.randn([4, 3], { dtype: 'float64', requiresGrad: true })]);
    expect(r.ok).toBe(true);
  });
  it('a leaf that does not require grad gets no grad; non-leaf tensors keep no grad', () => {
    const x = f64([1, 2], undefined, true);
    const c = f64([3, 4]);
    const h = x.mul(c);
    h.sum().backward();
    expect(c.grad).toBeNull();
    expect(h.grad).toBeNull();
    expect(h.isLeaf).toBe(false);
    expect(x.isLeaf).toBe(true);
    expect(() => h.requiresGrad_(false)).toThrow(/non-leaf/);
  });
});

describe('registerPostAccumulateGradHook', () => {
  it('fires once per leaf per backward, after the grad is complete', () => {
    const w = f64([1, 2], undefined, true);
    const b = f64([0.5], undefined, true);
    const seen: { who: string; grad: number[] }[] = [];
    w.registerPostAccumulateGradHook((t) => seen.push({ who: 'w', grad: flat(t.grad!) }));
    b.registerPostAccumulateGradHook((t) => seen.push({ who: 'b', grad: flat(t.grad!) }));
    // w is used by three ops; its hook must see the full gradient once
    const y = w.mul(w).sum().add(w.mul(3).sum()).add(w.exp().sum()).add(b.mul(w.sum()).sum());
    y.backward();
    const gw = [1, 2].map((v) => 2 * v + 3 + Math.exp(v) + 0.5);
    expect(seen.filter((s) => s.who === 'w').length).toBe(1);
    expect(seen.filter((s) => s.who === 'b').length).toBe(1);
    expectClose(seen.find((s) => s.who === 'w')!.grad, gw, 1e-12, 1e-12);
    expectClose(seen.find((s) => s.who === 'b')!.grad, [3], 1e-12, 1e-12);
    // a second backward fires again, with the accumulated grad
    seen.length = 0;
    w.mul(w).sum().backward();
    expect(seen.length).toBe(1);
    expectClose(seen[0]!.grad, gw.map((g, i) => g + 2 * (i + 1)), 1e-12, 1e-12);
  });
  it('fires in reverse order of use (the leaf finished first fires first), and can be removed', () => {
    const a = f64([1], undefined, true), b = f64([2], undefined, true);
    const order: string[] = [];
    const offA = a.registerPostAccumulateGradHook(() => order.push('a'));
    b.registerPostAccumulateGradHook(() => order.push('b'));
    // b is used only at the end of the forward, so its gradient completes first
    a.mul(2).exp().mul(b).sum().backward();
    expect(order).toEqual(['b', 'a']);
    offA();
    order.length = 0;
    a.mul(b).sum().backward();
    expect(order).toEqual(['b']);
  });
  it('is only for leaves', () => {
    const x = f64([1], undefined, true);
    expect(() => x.mul(2).registerPostAccumulateGradHook(() => {})).toThrow(/only leaf tensors/);
  });
});

describe('disposed tensors', () => {
  it('using a disposed tensor throws a clear error naming the op', () => {
    const a = T.ones([2, 2]);
    a.dispose();
    a.dispose(); // idempotent
    expect(a.disposed).toBe(true);
    expect(() => a.add(1)).toThrow(/affine: tensor of shape \[2, 2\] was disposed/);
    expect(() => T.matmul(a, a)).toThrow(/matmul: tensor of shape \[2, 2\] was disposed/);
    expect(() => T.softmax(a)).toThrow(/softmax: .*disposed/);
    expect(() => T.layerNorm(a, 2)).toThrow(/layerNorm: .*disposed/);
    expect(() => a.dataSync()).toThrow(/dataSync: .*disposed/);
    expect(() => a.item()).toThrow(/disposed/);
    expect(() => T.cat([a, T.ones([2, 2])])).toThrow(/cat: .*disposed/);
    expect(() => T.crossEntropy(a, T.tensor([0, 1], { dtype: 'int64' }))).toThrow(/disposed/);
    expect(() => T.linear(T.ones([2, 2]), a)).toThrow(/linear: .*disposed/);
  });
});

describe('disposed tensors in a graph', () => {
  it('backward through a disposed saved tensor fails clearly (never reads a reused buffer)', () => {
    const x = T.randn([2, 3], { requiresGrad: true });
    const y = T.softmax(x);
    const z = y.mul(2).sum();
    y.dispose();
    const junk = T.full([2, 3], 100); // may take over the freed buffer
    expect(() => z.backward()).toThrow(/saved by 'softmax' for its backward was disposed/);
    expect(x.grad).toBeNull();
    junk.dispose();
  });
});

describe('gradcheck itself', () => {
  it('passes correct gradients and reports the first wrong one', () => {
    const x = T.randn([3, 2], { dtype: 'float64', requiresGrad: true });
    expect(T.gradcheck((a) => a!.mul(a!).exp(), [x]).ok).toBe(true);
    // x·detach(x) has gradient x, but the function's derivative is 2x
    const r = T.gradcheck((a) => a!.mul(a!.detach()), [x]);
    expect(r.ok).toBe(false);
    expect(r.failure!.input).toBe(0);
    expect(r.failure!.numeric).toBeCloseTo(2 * r.failure!.analytic, 5);
  });
  it('casts float32 and non-contiguous inputs to float64 leaves; integer inputs pass through', () => {
    expect(T.gradcheck((a) => a!.exp(), [T.randn([3], { requiresGrad: true })]).ok).toBe(true);
    expect(T.gradcheck((a) => a!.mul(2), [T.randn([3, 4], { dtype: 'float64', requiresGrad: true }).t()]).ok).toBe(true);
    const r = T.gradcheck((a, i) => T.gather(a!, 0, i!), [T.randn([3], { dtype: 'float64', requiresGrad: true }), T.tensor([2, 0, 2], { dtype: 'int64' })]);
    expect(r.ok).toBe(true);
    // only inputs that require grad are checked
    expect(T.gradcheck((a, b) => a!.mul(b!.detach()), [T.randn([2], { dtype: 'float64' }), T.randn([2], { dtype: 'float64', requiresGrad: true })]).ok).toBe(false);
    expect(T.gradcheck((a, b) => a!.mul(b!.detach()), [T.randn([2], { dtype: 'float64', requiresGrad: true }), T.randn([2], { dtype: 'float64' })]).ok).toBe(true);
    // maxElements samples large inputs
    expect(T.gradcheck((a) => a!.square().sum(), [T.randn([100], { dtype: 'float64', requiresGrad: true })], { maxElements: 10 }).ok).toBe(true);
  });
});

describe('leaf gradients taken without a copy', () => {
  it('a gradient shared by two leaves is never aliased: in-place updates of one .grad leave the other alone', () => {
    const a = T.tensor([1, 2, 3], { requiresGrad: true });
    const b = T.tensor([4, 5, 6], { requiresGrad: true });
    a.add(b).mul(3).sum().backward(); // add's backward hands the same tensor to both leaves
    expect(a.grad!.storage).not.toBe(b.grad!.storage);
    a.grad!.add_(1);
    expect(b.grad!.toArray()).toEqual([3, 3, 3]);
    expect(a.grad!.toArray()).toEqual([4, 4, 4]);
  });

  it('a taken gradient survives the scope it was made in and accumulates on the next backward', () => {
    const w = T.tensor([1, -2, 3, 0.5], { requiresGrad: true });
    T.scope(() => w.mul(w).sum().backward());
    expect(w.grad!.disposed).toBe(false);
    expect(w.grad!.toArray()).toEqual([2, -4, 6, 1]);
    T.scope(() => w.mul(2).sum().backward());
    expect(w.grad!.toArray()).toEqual([4, -2, 8, 3]);
  });

  it('a gradient that is a view of another tensor is copied, not taken', () => {
    const w = T.tensor([1, 2, 3, 4], { requiresGrad: true });
    const seed = T.tensor([[1, 2], [3, 4]]);
    w.reshape(2, 2).backward(seed); // reshape's backward returns a view of the caller's gradient
    expect(w.grad!.storage).not.toBe(seed.storage);
    w.grad!.add_(10);
    expect(seed.toArray()).toEqual([[1, 2], [3, 4]]);
  });
});

describe('customOp', () => {
  it('records a user-defined op whose backward matches finite differences', () => {
    const cube = (x: T.Tensor) => T.customOp('cube', [x], () => x.mul(x).mul(x), (g) => [g.mul(x.mul(x).mul(3))], [x]);
    const r = T.gradcheck((x) => cube(x!), [T.randn([5], { dtype: 'float64', requiresGrad: true })]);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const x = T.tensor([1, 2], { requiresGrad: true });
    expect(T.noGrad(() => cube(x)).requiresGrad).toBe(false);
    expect(cube(T.tensor([1, 2])).requiresGrad).toBe(false);
  });
});
