/**
 * The fused cross-entropy kernel (T.fusedCrossEntropy; what T.crossEntropy runs on CUDA) on
 * every device (helpers/devices.ts) against the composed crossEntropy on the CPU in float64:
 * losses for each reduction, gradients, finite differences, and the error for a bad target.
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices, tol } from './helpers/devices.js';
import { Rng, expectClose, flat } from './helpers/ref_nn.js';

const rng = new Rng(31);
type TDT = 'int64' | 'int32';
type Red = 'none' | 'sum' | 'mean';

/** Targets in [0, C) with about a fifth of the rows set to `ignore` (the first row always kept, the second ignored when N > 1). */
function targets(N: number, C: number, ignore = -100): number[] {
  return Array.from({ length: N }, (_, i) => (i === 1 || (i > 1 && rng.next() < 0.2) ? ignore : rng.int(0, C)));
}

/** Loss (for `reduction`) and the gradient of Σ loss·w with respect to the logits, on the CPU composed path in float64. */
function composed(logits: number[], shape: number[], tgt: number[], tdt: TDT, opts: T.CrossEntropyOptions, w: number[]) {
  const X = T.tensor(logits, { dtype: 'float64', shape, requiresGrad: true });
  const L = T.crossEntropy(X, T.tensor(tgt, { dtype: tdt, shape: shape.slice(0, -1) }), opts);
  T.sum(T.mul(L, T.tensor(w.slice(0, L.numel), { dtype: 'float64', shape: L.shape }))).backward();
  return { loss: flat(L), grad: flat(X.grad!) };
}

/** The same with the fused op on `device` (logits in `dtype`). */
function fused(device: string, dtype: 'float32' | 'float64', logits: number[], shape: number[], tgt: number[], tdt: TDT, opts: T.CrossEntropyOptions, w: number[],
  op: typeof T.fusedCrossEntropy = T.fusedCrossEntropy) {
  const X = T.toDevice(T.tensor(logits, { dtype, shape }), device);
  X.requiresGrad = true;
  const Y = T.toDevice(T.tensor(tgt, { dtype: tdt, shape: shape.slice(0, -1) }), device);
  const L = op(X, Y, opts);
  T.sum(T.mul(L, T.toDevice(T.tensor(w.slice(0, L.numel), { dtype: L.dtype as 'float32' | 'float64', shape: L.shape }), device))).backward();
  return { loss: flat(T.toDevice(L, 'cpu')), grad: flat(T.toDevice(X.grad!, 'cpu')), lossDtype: L.dtype, gradDtype: X.grad!.dtype };
}

describeDevices('fused cross entropy', (device) => {
  const cases: [number, number][] = [[5, 1], [7, 3], [9, 1000], [3, 30522]];
  for (const [N, C] of cases) {
    it(`N ${N}, C ${C}: losses and gradients equal the composed path's (float64), each reduction, smoothing 0 and 0.1, int64 and int32 targets`, () => {
      const logits = rng.uniforms(N * C, -4, 4);
      const w = rng.uniforms(N, 0.5, 1.5);
      for (const tdt of ['int64', 'int32'] as TDT[]) {
        const tgt = targets(N, C);
        for (const labelSmoothing of [0, 0.1]) {
          for (const reduction of ['none', 'sum', 'mean'] as Red[]) {
            const opts = { labelSmoothing, reduction };
            const want = composed(logits, [N, C], tgt, tdt, opts, w);
            const got = fused(device, 'float64', logits, [N, C], tgt, tdt, opts, w);
            expect(got.lossDtype).toBe('float64');
            const what = `${tdt} ε ${labelSmoothing} ${reduction}`;
            expectClose(got.loss, want.loss, 1e-12, 1e-11, `${what} loss`);
            expectClose(got.grad, want.grad, 1e-12, 1e-11, `${what} grad`);
            // ignored rows: zero loss (none) and zero gradient
            if (reduction === 'none') expect(got.loss[1]).toBe(0);
            expect(got.grad.slice(C, 2 * C).every((v) => v === 0)).toBe(true);
          }
        }
      }
    });
  }

  it('float32 logits: close to the float64 reference; loss float32; crossEntropy on this device agrees', () => {
    const [N, C] = [6, 300];
    const logits = rng.uniforms(N * C, -5, 5), w = rng.uniforms(N, 0.5, 1.5), tgt = targets(N, C);
    for (const reduction of ['none', 'mean'] as Red[]) {
      const opts = { labelSmoothing: 0.1, reduction };
      const want = composed(logits, [N, C], tgt, 'int64', opts, w);
      const got = fused(device, 'float32', logits, [N, C], tgt, 'int64', opts, w);
      expect(got.lossDtype).toBe('float32');
      expect(got.gradDtype).toBe('float32');
      const r = tol(device, 'float32') * 10;
      expectClose(got.loss, want.loss, r, r, `${reduction} loss`);
      expectClose(got.grad, want.grad, r, r, `${reduction} grad`);
      const viaCe = fused(device, 'float32', logits, [N, C], tgt, 'int64', opts, w, T.crossEntropy);
      expectClose(viaCe.loss, want.loss, r, r, `crossEntropy ${reduction} loss`);
      expectClose(viaCe.grad, want.grad, r, r, `crossEntropy ${reduction} grad`);
    }
  });

  it('extra leading dims, a custom ignoreIndex equal to a class, every row ignored (mean 0)', () => {
    const [C] = [4];
    const logits = rng.uniforms(2 * 3 * C, -2, 2), w = rng.uniforms(6, 0.5, 1.5);
    const tgt = [3, 3, 1, 0, 3, 2];
    for (const reduction of ['none', 'sum', 'mean'] as Red[]) {
      const opts = { ignoreIndex: 3, labelSmoothing: 0.2, reduction };
      const want = composed(logits, [2, 3, C], tgt, 'int32', opts, w);
      const got = fused(device, 'float64', logits, [2, 3, C], tgt, 'int32', opts, w);
      expectClose(got.loss, want.loss, 1e-12, 1e-11, `${reduction} loss`);
      expectClose(got.grad, want.grad, 1e-12, 1e-11, `${reduction} grad`);
    }
    const X = T.toDevice(T.tensor(logits.slice(0, 2 * C), { dtype: 'float64', shape: [2, C] }), device);
    const Y = T.toDevice(T.tensor([-100, -100], { dtype: 'int64' }), device);
    expect(T.fusedCrossEntropy(X, Y).item()).toBe(0);
    expect(T.fusedCrossEntropy(X, Y, { reduction: 'sum' }).item()).toBe(0);
  });

  it('finite differences (gradcheck) on a tiny case, each reduction, with smoothing and an ignored row', () => {
    const tgt = T.tensor([1, -100, 3, 0], { dtype: 'int64' });
    for (const reduction of ['none', 'sum', 'mean'] as Red[])
      for (const labelSmoothing of [0, 0.2]) {
        const x = T.tensor(rng.uniforms(20, -2, 2), { dtype: 'float64', shape: [4, 5], requiresGrad: true });
        // gradcheck perturbs float64 CPU leaves; the op runs on the device (toDevice is differentiable)
        const r = T.gradcheck((a) => T.toDevice(T.fusedCrossEntropy(T.toDevice(a!, device), T.toDevice(tgt, device), { reduction, labelSmoothing }), 'cpu'), [x]);
        expect(r.failure, JSON.stringify(r)).toBeUndefined();
        expect(r.ok).toBe(true);
      }
  });

  it('a target out of range (not ignoreIndex) is an error naming it; later ops still work', () => {
    const X = T.toDevice(T.randn([3, 5], { dtype: 'float32' }), device);
    for (const [bad, dt] of [[7, 'int64'], [-3, 'int32']] as [number, TDT][]) {
      const Y = T.toDevice(T.tensor([0, bad, 4], { dtype: dt }), device);
      const re = new RegExp(`cross_entropy.*target ${bad} .*out of range for 5 classes`);
      expect(() => flat(T.toDevice(T.fusedCrossEntropy(X, Y, { reduction: 'none' }), 'cpu'))).toThrow(re);
      if (device !== 'cpu') expect(() => T.crossEntropy(X, Y).item()).toThrow(re);
    }
    const ok = T.fusedCrossEntropy(X, T.toDevice(T.tensor([0, 1, 4], { dtype: 'int64' }), device));
    expect(Number.isFinite(ok.item())).toBe(true);
  });

  it('dispatch: crossEntropy uses the fused kernel on CUDA only (the CPU keeps the composed path)', () => {
    const X = T.toDevice(T.randn([2, 3]), device);
    X.requiresGrad = true;
    const L = T.crossEntropy(X, T.toDevice(T.tensor([0, 2], { dtype: 'int64' }), device), { reduction: 'none' });
    if (device === 'cpu') expect(L.gradFn!.name).not.toBe('fusedCrossEntropy');
    else expect(L.gradFn!.name).toBe('fusedCrossEntropy');
  });

  it('bfloat16 / float16 logits: CUDA only (float32 math and loss, gradient in the logits dtype)', () => {
    const [N, C] = [5, 700];
    const logits = rng.uniforms(N * C, -4, 4), w = rng.uniforms(N, 0.5, 1.5), tgt = targets(N, C);
    for (const half of ['bfloat16', 'float16'] as const) {
      const X = T.toDevice(T.cast(T.tensor(logits, { shape: [N, C] }), half), device);
      const Y = T.toDevice(T.tensor(tgt, { dtype: 'int64' }), device);
      if (device === 'cpu') {
        expect(() => T.fusedCrossEntropy(X, Y)).toThrow(/supported on CUDA only/);
        continue;
      }
      X.requiresGrad = true;
      const L = T.fusedCrossEntropy(X, Y, { reduction: 'none', labelSmoothing: 0.1 });
      expect(L.dtype).toBe('float32');
      T.sum(T.mul(L, T.toDevice(T.tensor(w), device))).backward();
      expect(X.grad!.dtype).toBe(half);
      // reference: the composed path on the rounded values in float64
      const rounded = flat(T.cast(T.toDevice(X.detach(), 'cpu'), 'float64'));
      const want = composed(rounded, [N, C], tgt, 'int64', { reduction: 'none', labelSmoothing: 0.1 }, w);
      expectClose(flat(T.toDevice(L, 'cpu')), want.loss, 1e-5, 1e-5, `${half} loss`);
      expectClose(flat(T.cast(T.toDevice(X.grad!, 'cpu'), 'float32')), want.grad, 2e-3, 1e-2, `${half} grad`);
    }
  });
});
