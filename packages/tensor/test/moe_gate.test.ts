/**
 * The fused MoE gating kernels (moeGate, moeCombine, moeGateBackward) against composed
 * tensor ops: softmax, topk on the logits, logsumexp, column sums; bfloat16 / float16 logits
 * on CUDA; the argument checks. The router-level comparison (every GateOutput field,
 * gradients, finite differences) is packages/moe/test/fused_gate.test.ts.
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices, tol } from './helpers/devices.js';

const floats = (t: T.Tensor) => Array.from(T.toDevice(t, 'cpu').dataSync() as ArrayLike<number>, Number);
const ints = (t: T.Tensor) => Array.from(T.toDevice(t, 'cpu').dataSync() as ArrayLike<number | bigint>, Number);

function logitsOf(S: number, E: number, seed: number, levels = 0): number[] {
  let x = seed >>> 0 || 1;
  const r = () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  return Array.from({ length: S * E }, () => (levels ? Math.floor(r() * levels) : r() * 8 - 4));
}

function close(got: number[], want: number[], rtol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i]! - want[i]!) <= rtol * (1 + Math.abs(want[i]!)))) expect.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

describeDevices('moeGate', (device) => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: gates, top-k (ties → lower index), lse and column sums equal the composed ops`, () => {
      for (const [S, E, k, levels] of [[37, 4, 1, 0], [37, 7, 3, 0], [20, 32, 8, 0], [41, 7, 2, 3], [9, 300, 5, 0], [5, 1024, 2, 4]] as const) {
        const x = T.toDevice(T.tensor(logitsOf(S, E, S * E + k, levels), { dtype, shape: [S, E] }), device);
        const g = T.moeGate(x, k, { withTopValue: true, withLse: true });
        const sm = T.softmax(x, -1);
        close(floats(g.gates), floats(sm), tol(device, dtype) * 4, `gates ${E}`);
        expect(ints(g.expertIndex), `index E=${E} k=${k}`).toEqual(ints(T.topk(x, k, -1).indices));
        close(floats(g.topValue!), floats(T.gather(g.gates, 1, g.expertIndex)), 0, 'topValue');
        close(floats(g.lse!), floats(T.logsumexp(x, -1)), tol(device, dtype) * 4, 'lse');
        close(floats(T.sum(g.colPartial, 0)), floats(T.sum(T.cast(g.gates, 'float64'), 0)), 1e-12, 'column sums');
      }
    });
  }

  if (device !== 'cpu') {
    for (const dtype of ['bfloat16', 'float16'] as const) {
      it(`${dtype} logits: float32 gates and lse from the rounded logits; backward in ${dtype}`, () => {
        const S = 19, E = 12, k = 2;
        const x32 = T.tensor(logitsOf(S, E, 7), { dtype: 'float32', shape: [S, E] });
        const xh = T.cast(T.toDevice(x32, device), dtype);
        const g = T.moeGate(xh, k, { withLse: true });
        expect(g.gates.dtype).toBe('float32');
        const ref = T.cast(xh, 'float32');
        close(floats(g.gates), floats(T.softmax(ref, -1)), 1e-5, 'gates');
        close(floats(g.lse!), floats(T.logsumexp(ref, -1)), 1e-5, 'lse');
        expect(ints(g.expertIndex)).toEqual(ints(T.topk(ref, k, -1).indices));
        const slot = T.toDevice(T.zeros([S, k], { dtype: 'int64' }), device);
        const counts = T.toDevice(T.ones([E], { dtype: 'int64' }), device);
        const dx = T.moeGateBackward(g, slot, counts, { zLoss: T.toDevice(T.ones([1]), device) }, { auxScale: E, eps: 1e-7, dtype });
        expect(dx.dtype).toBe(dtype);
        // z-loss alone: 2·lse/S·softmax
        const want = T.mul(T.mul(T.softmax(ref, -1), T.unsqueeze(g.lse!, 1)), 2 / S);
        close(floats(T.cast(dx, 'float32')), floats(want), 1e-2, 'dz');
      });
    }
  }

  it('checks k and the dtype', () => {
    const x = T.toDevice(T.zeros([3, 10]), device);
    expect(() => T.moeGate(x, 9)).toThrow(/k must be/);
    expect(() => T.moeGate(x, 0)).toThrow(/k must be/);
    expect(() => T.moeGate(T.toDevice(T.zeros([3, 10], { dtype: 'int64' }), device), 1)).toThrow(/floating/);
  });
});
