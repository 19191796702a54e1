import { describe, expect, it } from 'vitest';
import { argBlock, info, native } from '../src/index.js';

const devices = info().cudaDevices;
if (devices === 0) {
  console.log(`CUDA tests skipped: ${info().cudaCompiled ? 'no CUDA device is visible' : 'this build has no CUDA support (no nvcc at build time)'}`);
}

describe.skipIf(devices === 0)('cuda backend', () => {
  it('copies host -> device -> host', () => {
    const h = native.alloc(0, 4 * 1000);
    const src = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
    native.write(h, 0, src);
    const back = new Float32Array(1000);
    native.read(h, 0, back);
    expect(back).toEqual(src);
    native.free(h);
    expect(() => native.arrayBuffer(native.alloc(0, 4))).toThrow(/cuda/);
  });

  it('fills and runs elementwise kernels like the CPU', () => {
    const n = 4097;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const run = (device: number, op: string) => {
      const a = native.alloc(device, 4 * n), o = native.alloc(device, 4 * n);
      native.write(a, 0, x);
      argBlock.set([1, n, o, 0, 1, a, 0, 1, 0, 0]);
      native.ew(0, native.ops.unary[op]!, 0, 0);
      native.synchronize(device);
      const r = new Float32Array(n);
      native.read(o, 0, r);
      native.free(a);
      native.free(o);
      return r;
    };
    for (const op of ['neg', 'exp', 'tanh', 'sigmoid', 'gelu', 'relu']) {
      const c = run(-1, op), g = run(0, op);
      for (let i = 0; i < n; ++i) expect(Math.abs(c[i]! - g[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(c[i]!)));
    }
  });

  it('draws the same random numbers as the CPU for the same seed', () => {
    const n = 1000;
    const draw = (device: number) => {
      const h = native.alloc(device, 4 * n);
      argBlock.set([h, 0, n, 42, 7, 0, 1]);
      native.random(1, 0);
      const r = new Float32Array(n);
      native.read(h, 0, r);
      native.free(h);
      return r;
    };
    const c = draw(-1), g = draw(0);
    for (let i = 0; i < n; ++i) expect(g[i]).toBeCloseTo(c[i]!, 5);
  });
});
