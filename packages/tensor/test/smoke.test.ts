import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

describe('smoke', () => {
  it('adds and differentiates', () => {
    const a = T.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    const b = T.tensor([10, 20, 30]);
    const c = a.add(b).mul(a).sum();
    expect(c.item()).toBe(1 * 11 + 2 * 22 + 3 * 33 + 4 * 14 + 5 * 25 + 6 * 36);
    c.backward();
    expect(a.grad!.toArray()).toEqual([[12, 24, 36], [18, 30, 42]]);
  });
  it('matmul, softmax, layerNorm', () => {
    const a = T.randn([4, 5]);
    const b = T.randn([5, 3]);
    const m = a.matmul(b);
    expect(m.shape).toEqual([4, 3]);
    const s = T.softmax(m, -1);
    const rows = s.sum(-1).toArray() as number[];
    for (const r of rows) expect(r).toBeCloseTo(1, 5);
    const ln = T.layerNorm(a, 5);
    expect(ln.mean(-1).abs().max().item()).toBeLessThan(1e-5);
  });
});
