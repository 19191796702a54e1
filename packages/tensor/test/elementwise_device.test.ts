/**
 * Elementwise kernels on every device (helpers/devices.ts) against the CPU: contiguous
 * operands of lengths around the vector width (CUDA's 16-byte vector path and its scalar
 * tail), views whose first element is not 16-byte aligned (the general path), broadcasts,
 * and the casts (float32 ↔ bfloat16 / float16, integer and bool casts).
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices } from './helpers/devices.js';
import { Rng, expectClose, flat } from './helpers/ref_nn.js';

const rng = new Rng(41);
const LENGTHS = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 1029];
/** Element offsets of the view into a larger storage: 0 and 4 floats keep 16-byte alignment, 1 and 3 break it. */
const OFFSETS = [0, 1, 3, 4];

describeDevices('elementwise: vector path, scalar tail, unaligned views', (device) => {
  const on = (t: T.Tensor) => T.toDevice(t, device);
  const back = (t: T.Tensor) => flat(T.toDevice(t, 'cpu'));
  const view = (vals: number[], off: number, dtype: T.DType = 'float32') => {
    const base = on(T.tensor([...rng.uniforms(off, -1, 1), ...vals, 0.5], { dtype }));
    return T.narrow(base, 0, off, vals.length);
  };

  it('unary, binary, compare, predicate: exact (arithmetic) or within float32 ulps (exp)', () => {
    for (const n of LENGTHS)
      for (const off of OFFSETS) {
        const a = rng.uniforms(n, -3, 3), b = rng.uniforms(n, -3, 3);
        if (n > 2) a[2] = NaN;
        const [A, B] = [view(a, off), view(b, off)];
        const [Ac, Bc] = [T.tensor(a), T.tensor(b)];
        const what = `n ${n} offset ${off}`;
        expect(back(T.add(A, B)).map(String), `${what} add`).toEqual(flat(T.add(Ac, Bc)).map(String));
        expect(back(T.mul(A, B)).map(String), `${what} mul`).toEqual(flat(T.mul(Ac, Bc)).map(String));
        expect(back(T.neg(A)).map(String), `${what} neg`).toEqual(flat(T.neg(Ac)).map(String));
        expect(back(T.lt(A, B)), `${what} lt`).toEqual(flat(T.lt(Ac, Bc)));
        expect(back(T.isnan(A)), `${what} isnan`).toEqual(flat(T.isnan(Ac)));
        expectClose(back(T.exp(A)), flat(T.exp(Ac)), 1e-6, 1e-6, `${what} exp`);
        // a broadcast operand (the general path) next to the contiguous one
        if (n > 0) expect(back(T.add(A, view([0.25], 0))).map(String), `${what} broadcast`).toEqual(flat(T.add(Ac, 0.25)).map(String));
      }
  });

  it('casts: float32 ↔ bfloat16 / float16 (bit-identical to the CPU), float32 → int32 / float64, bool → float32', () => {
    for (const n of LENGTHS)
      for (const off of OFFSETS) {
        const a = rng.uniforms(n, -70000, 70000);
        if (n > 3) a[3] = 1e-6;
        const A = view(a, off), Ac = T.tensor(a);
        const what = `n ${n} offset ${off}`;
        for (const half of ['bfloat16', 'float16'] as const) {
          const H = T.cast(A, half), Hc = T.cast(Ac, half);
          expect(back(H).map(String), `${what} → ${half}`).toEqual(flat(Hc).map(String));
          expect(back(T.cast(H, 'float32')).map(String), `${what} ${half} → float32`).toEqual(flat(T.cast(Hc, 'float32')).map(String));
          // a half view (offset in half elements) copied to a contiguous half tensor
          const Hv = view(flat(Hc), off, half);
          expect(back(T.contiguous(T.cast(T.cast(Hv, 'float32'), half))).map(String), `${what} ${half} view`).toEqual(flat(Hc).map(String));
        }
        expect(back(T.cast(A, 'int32')), `${what} → int32`).toEqual(flat(T.cast(Ac, 'int32')));
        expect(back(T.cast(A, 'float64')), `${what} → float64`).toEqual(flat(T.cast(Ac, 'float64')));
        const m = T.gt(A, 0);
        expect(back(T.cast(m, 'float32')), `${what} bool → float32`).toEqual(flat(T.cast(T.gt(Ac, 0), 'float32')));
      }
  });
});
