/**
 * groupedLinear / expertFFN under autocast on every device (helpers/devices.ts). On CUDA the
 * grouped GEMMs multiply bfloat16 / float16 operands with float32 accumulation (float32
 * results, like linear); on the CPU (float32 / float64 grouped GEMM only) autocast changes
 * nothing: the results and gradients are the float32 ones, bit for bit.
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices } from './helpers/devices.js';
import { Rng, expectClose, flat } from './helpers/ref_nn.js';

const rng = new Rng(53);
const SIZES = [3, 0, 5, 2];
const [G, R, D, H] = [SIZES.length, 10, 8, 16];

interface Case {
  name: string;
  shapes: number[][];
  run: (xs: T.Tensor[]) => T.Tensor;
}

const CASES: Case[] = [
  { name: 'groupedLinear', shapes: [[R, D], [G, D, H], [G, H]], run: ([x, w, b]) => T.groupedLinear(x!, w!, b!, SIZES) },
  {
    name: 'expertFFN (gelu)',
    shapes: [[R, D], [G, D, H], [G, H], [G, H, D], [G, D]],
    run: ([x, w1, b1, w2, b2]) => T.expertFFN(x!, w1!, b1!, w2!, b2!, SIZES),
  },
  {
    name: 'expertFFN (relu, no biases)',
    shapes: [[R, D], [G, D, H], [G, H, D]],
    run: ([x, w1, w2]) => T.expertFFN(x!, w1!, null, w2!, null, SIZES, { activation: 'relu' }),
  },
];

/** Output and gradients (of Σ out·r) with inputs `vals` in `dtype` on `device`, optionally inside autocast. */
function run(c: Case, vals: number[][], r: number[], device: string, dtype: 'float32' | 'float64', half: T.AutocastDType | null) {
  const xs = vals.map((v, i) => {
    const t = T.toDevice(T.tensor(v, { dtype, shape: c.shapes[i]! }), device);
    t.requiresGrad = true;
    return t;
  });
  return T.autocast(half, () => {
    const y = c.run(xs);
    T.sum(T.mul(y, T.toDevice(T.tensor(r, { dtype, shape: y.shape }), device))).backward();
    return { dtype: y.dtype, y: flat(T.toDevice(y, 'cpu')), grads: xs.map((x) => flat(T.toDevice(x.grad!, 'cpu'))), gradDtypes: xs.map((x) => x.grad!.dtype) };
  });
}

const roundTo = (v: number[], half: 'bfloat16' | 'float16') => flat(T.cast(T.cast(T.tensor(v), half), 'float64'));

describeDevices('MoE grouped GEMMs under autocast', (device) => {
  for (const c of CASES)
    for (const half of ['bfloat16', 'float16'] as const) {
      it(`${c.name}, autocast ${half}: ${device === 'cpu' ? 'the float32 result, bit for bit (CPU grouped GEMM is float32)' : 'half operands, float32 accumulation and result'}`, () => {
        const vals = c.shapes.map((s) => rng.uniforms(s.reduce((a, b) => a * b, 1), -1, 1));
        const r = rng.uniforms(R * (c.name === 'groupedLinear' ? H : D), -1, 1);
        const plain = run(c, vals, r, device, 'float32', null);
        const auto = run(c, vals, r, device, 'float32', half);
        expect(auto.dtype).toBe('float32');
        expect(auto.gradDtypes.every((d) => d === 'float32')).toBe(true);
        if (device === 'cpu') {
          expect(auto.y.map(String)).toEqual(plain.y.map(String));
          auto.grads.forEach((g, i) => expect(g.map(String), `grad ${i}`).toEqual(plain.grads[i]!.map(String)));
          return;
        }
        // reference: float64 on the CPU with the GEMM operands (x and the weights, not the biases) rounded to `half`
        const weights = c.name === 'groupedLinear' ? [0, 1] : c.shapes.length === 5 ? [0, 1, 3] : [0, 1, 2];
        const want = run(c, vals.map((v, i) => (weights.includes(i) ? roundTo(v, half) : v)), r, 'cpu', 'float64', null);
        // the hidden activations and dy are rounded to `half` too before their GEMMs: a few half ulps
        expectClose(auto.y, want.y, 3e-2, 3e-2, `${half} output`);
        auto.grads.forEach((g, i) => expectClose(g, want.grads[i]!, 3e-2, 3e-2, `${half} grad ${i}`));
        // and it differs from the float32 product (the operands were rounded)
        expect(auto.y.some((v, i) => v !== plain.y[i])).toBe(true);
      });
    }

  it('the reference path and float64 inputs ignore autocast', () => {
    const x = T.toDevice(T.tensor(rng.uniforms(R * D, -1, 1), { shape: [R, D] }), device);
    const w = T.toDevice(T.tensor(rng.uniforms(G * D * H, -1, 1), { shape: [G, D, H] }), device);
    const a = flat(T.toDevice(T.groupedLinear(x, w, null, SIZES, { reference: true }), 'cpu'));
    const b = flat(T.toDevice(T.autocast('bfloat16', () => T.groupedLinear(x, w, null, SIZES, { reference: true })), 'cpu'));
    expect(b.map(String)).toEqual(a.map(String));
    const x64 = T.cast(x, 'float64'), w64 = T.cast(w, 'float64');
    const c = T.autocast('bfloat16', () => T.groupedLinear(x64, w64, null, SIZES));
    expect(c.dtype).toBe('float64');
    expectClose(flat(T.toDevice(c, 'cpu')), flat(T.toDevice(T.groupedLinear(x64, w64, null, SIZES), 'cpu')), 1e-12, 1e-12, 'float64');
  });
});
