import { describe, expect, it } from 'vitest';
import { argBlock, info, native } from '../src/index.js';

describe('addon', () => {
  it('reports its build and machine', () => {
    const i = info();
    expect(typeof i.cudaCompiled).toBe('boolean');
    expect(i.cudaDevices).toBeGreaterThanOrEqual(0);
    expect(['openblas', 'builtin']).toContain(i.blas);
    expect(['avx512', 'avx2-fma', 'portable']).toContain(i.gemmKernel);
    expect(['avx512', 'avx2-fma', 'portable']).toContain(i.simd);
    expect(i.threads).toBeGreaterThanOrEqual(1);
  });

  it('exports dtype and op codes', () => {
    expect(native.dtypes).toEqual({ float32: 0, float64: 1, int32: 2, int64: 3, bool: 4, uint8: 5, bfloat16: 6, float16: 7 });
    expect(native.ops.unary.copy).toBe(0);
    expect(Object.keys(native.ops.binary)).toContain('add');
    expect(Object.keys(native.ops.compare)).toEqual(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
  });

  it('allocates, views, copies and frees CPU memory', () => {
    const before = native.memory().cpu.live;
    const h = native.alloc(-1, 16);
    expect(native.memory().cpu.live).toBe(before + 16);
    const ab = native.arrayBuffer(h);
    const f = new Float32Array(ab);
    native.write(h, 0, new Float32Array([1, 2, 3, 4]));
    expect(Array.from(f)).toEqual([1, 2, 3, 4]);
    const out = new Float32Array(2);
    native.read(h, 8, out);
    expect(Array.from(out)).toEqual([3, 4]);
    native.free(h, ab);
    expect(ab.byteLength).toBe(0); // the stale view is detached, not dangling
    expect(native.memory().cpu.live).toBe(before);
  });

  it('rejects freed handles and out-of-bounds access with clear errors', () => {
    const h = native.alloc(-1, 8);
    native.free(h);
    expect(() => native.free(h)).toThrow(/not live/);
    expect(() => native.arrayBuffer(h)).toThrow(/not live/);
    const g = native.alloc(-1, 8);
    expect(() => native.write(g, 4, new Float32Array(2))).toThrow(/outside the storage/);
    // An elementwise view that reaches past the storage is refused before any kernel runs.
    argBlock.set([1, 4, g, 0, 1, g, 0, 1, 0, 0]);
    expect(() => native.ew(0, native.ops.unary.neg!, 0, 0)).toThrow(/reaches outside its storage/);
    native.free(g);
  });

  it('runs an elementwise kernel through the argument block', () => {
    const h = native.alloc(-1, 16);
    const f = new Float32Array(native.arrayBuffer(h));
    f.set([0, 1, -1, 2]);
    argBlock.set([1, 4, h, 0, 1, h, 0, 1, 0, 0]);
    native.ew(0, native.ops.unary.exp!, 0, 0);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(Math.E, 6);
    expect(f[2]).toBeCloseTo(1 / Math.E, 6);
    native.free(h);
  });

  it('reuses cached CPU blocks and can return them', () => {
    const big = 1 << 20;
    const h = native.alloc(-1, big);
    native.free(h);
    expect(native.memory().cpu.cached).toBeGreaterThanOrEqual(big);
    native.emptyCache();
    expect(native.memory().cpu.cached).toBe(0);
  });

  it('carries kernel exceptions from worker threads back as JS errors', () => {
    // gather with an out-of-range index on a tensor large enough to be threaded
    const n = 1 << 17;
    const x = native.alloc(-1, 4 * n), idx = native.alloc(-1, 8 * n), out = native.alloc(-1, 4 * n);
    const ix = new BigInt64Array(native.arrayBuffer(idx));
    ix.fill(0n);
    ix[n - 1] = BigInt(n + 5);
    argBlock.set([1, n, out, 0, 1, idx, 0, 1, x, 0, 0, 1, n]);
    expect(() => native.gather(0, 3)).toThrow(new RegExp(`index ${n + 5} is out of range`));
    for (const h of [x, idx, out]) native.free(h);
  });
});
