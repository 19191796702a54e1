/** Misuse that PyTorch refuses must fail loudly here too (findings of the core review). */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

describe('in-place ops and autograd', () => {
  it('refuses in-place updates of tensors in a graph', () => {
    const x = T.tensor([1, 2, 3], { requiresGrad: true });
    const h = x.mul(2);
    expect(() => h.mul_(3)).toThrow(/part of an autograd graph.*'affine'/);
    expect(() => x.slice(0, 0, 2).mul_(10)).toThrow(/part of an autograd graph/);
    T.noGrad(() => h.mul_(3)); // explicit: allowed without recording
  });

  it('detects saved tensors modified in place before backward', () => {
    const x = T.tensor([0.1, 0.2, 0.3], { requiresGrad: true });
    const y = x.exp();
    T.noGrad(() => y.add_(100));
    expect(() => y.sum().backward()).toThrow(/saved by 'exp'.*modified in place/);
  });

  it('checks the dtype and device of an explicit upstream gradient', () => {
    const x = T.tensor([1, 2, 3], { requiresGrad: true });
    const y = T.softmax(x, 0);
    expect(() => y.backward(T.ones([3], { dtype: 'float64' }))).toThrow(/float64 on cpu, the tensor float32 on cpu/);
  });

  it('in-place ops whose source overlaps the destination read the source as it was', () => {
    const x = T.arange(0, 9).float().reshape([3, 3]);
    x.add_(x.t());
    expect(x.toArray()).toEqual([[0, 4, 8], [4, 8, 12], [8, 12, 16]]);
  });
});

describe('memory and shapes', () => {
  it('refuses absurd shapes with a clear error instead of hanging', () => {
    expect(() => T.zeros([2e9, 2e9])).toThrow(/more memory than any device has/);
  });

  it('data() views keep their tensor alive until it is disposed', () => {
    const d = T.ones([4]).mul(3).data();
    expect((d as unknown as { tensor: T.Tensor }).tensor).toBeInstanceOf(T.Tensor);
    expect(d[0]).toBe(3);
  });

  it('interleaved async scopes do not leave a dead scope on the stack', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = T.scope(async () => {
      await gate;
      return 1;
    });
    const fast = T.scope(async () => 2);
    await fast;
    release();
    await slow;
    expect(T.scopeDepth()).toBe(0);
  });
});

describe('threads', () => {
  it('a worker thread loading the addon gets a clear error, not a crash', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      try { require(${JSON.stringify(require.resolve('../../native-cuda/build/Release/vlmoe_native.node'))}); parentPort.postMessage('loaded'); }
      catch (e) { parentPort.postMessage(String(e.message)); }`;
    const msg = await new Promise<string>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.once('message', (m) => { resolve(m as string); void w.terminate(); });
      w.once('error', reject);
    });
    expect(msg).toMatch(/already loaded by another JavaScript thread/);
  });
});
