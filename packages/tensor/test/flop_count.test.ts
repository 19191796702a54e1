import { describe, expect, test } from 'vitest';
import * as T from '../src/index.js';

/** The FLOPs of running fn (the counter's growth). */
function flopsOf(fn: () => void): number {
  const before = T.flopCount();
  fn();
  return T.flopCount() - before;
}

describe('flopCount (FlopCounterMode-style counts of the matrix-multiply kernels)', () => {
  const g = () => new T.Generator(3);

  test('matmul: 2·B·M·N·K forward; backward adds one product per input that needs a gradient', () => {
    const a = T.randn([3, 5, 7], { generator: g(), requiresGrad: true });
    const b = T.randn([7, 4], { generator: g(), requiresGrad: true });
    let y!: T.Tensor;
    expect(flopsOf(() => (y = T.matmul(a, b)))).toBe(2 * 3 * 5 * 4 * 7);
    expect(flopsOf(() => y.sum().backward())).toBe(2 * (2 * 3 * 5 * 4 * 7));
    // no gradient wanted: nothing counted but the forward
    expect(flopsOf(() => T.noGrad(() => T.matmul(a, b)))).toBe(2 * 3 * 5 * 4 * 7);
  });

  test('linear: 2·rows·in·out (the bias is not a product)', () => {
    const lin = new T.nn.Linear(6, 9, { generator: g() });
    expect(flopsOf(() => T.noGrad(() => lin.forward(T.randn([4, 6], { generator: g() }))))).toBe(2 * 4 * 6 * 9);
  });

  test('fused attention: 2·B·H·Lq·Lk·(D + Dv) forward, twice that backward', () => {
    const [B, H, Lq, Lk, D] = [2, 3, 5, 6, 4];
    const q = T.randn([B, H, Lq, D], { generator: g(), requiresGrad: true });
    const k = T.randn([B, H, Lk, D], { generator: g(), requiresGrad: true });
    const v = T.randn([B, H, Lk, D], { generator: g(), requiresGrad: true });
    let o!: T.Tensor;
    const fwd = 2 * B * H * Lq * Lk * (D + D);
    expect(flopsOf(() => (o = T.flashAttention(q, k, v)))).toBe(fwd);
    expect(flopsOf(() => o.sum().backward())).toBe(2 * fwd);
  });

  test('grouped and fused expert GEMMs: 2·R·K·N per product, forward and backward', () => {
    const [G, R, Dm, Hh] = [3, 10, 4, 8];
    const sizes = [3, 0, 7];
    const x = T.randn([R, Dm], { generator: g(), requiresGrad: true });
    const w = T.randn([G, Dm, Hh], { generator: g(), requiresGrad: true });
    let y!: T.Tensor;
    expect(flopsOf(() => (y = T.groupedLinear(x, w, null, sizes)))).toBe(2 * R * Dm * Hh);
    expect(flopsOf(() => y.sum().backward())).toBe(2 * (2 * R * Dm * Hh)); // dx and dw
    const w1 = T.randn([G, Dm, Hh], { generator: g(), requiresGrad: true });
    const w2 = T.randn([G, Hh, Dm], { generator: g(), requiresGrad: true });
    const x2 = T.randn([R, Dm], { generator: g(), requiresGrad: true });
    let z!: T.Tensor;
    expect(flopsOf(() => (z = T.expertFFN(x2, w1, null, w2, null, sizes)))).toBe(2 * (2 * R * Dm * Hh));
    expect(flopsOf(() => z.sum().backward())).toBe(4 * (2 * R * Dm * Hh)); // dhid, dw2, dx, dw1
  });
});
