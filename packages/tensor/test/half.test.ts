/**
 * bfloat16 / float16 storage dtypes: rounding (round to nearest even, NaN, ±inf, float16
 * subnormals and overflow) against the safetensors writer's JS conversions, casts between
 * every dtype, fill, and matmul / linear with float32 accumulation on every device.
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { float32ToBfloat16, float32ToFloat16 } from '../src/serialization/safetensors.js';
import { describeDevices } from './helpers/devices.js';
import { Rng, expectClose, flat, refMm } from './helpers/ref_nn.js';

const rng = new Rng(99);
const special = [0, -0, 1, -1, 0.1, 1 / 3, 65504, 65519, 65520, 1e5, -1e5, 6e-8, 5.96e-8, 2.98e-8, 3e-8, 1e-10, 3.4e38, Infinity, -Infinity, NaN, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
const values = [...special, ...rng.uniforms(5000, -100, 100), ...rng.uniforms(2000, -1e-4, 1e-4)];
/** The value a bit pattern stands for (the JS reference, through float32). */
const bf16Value = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

describeDevices('bfloat16 / float16', (device) => {
  it('casts from float32 round to nearest even, like the reference conversions (NaN, ±inf, float16 subnormals and overflow)', () => {
    const f32 = new Float32Array(values);
    const want = { bfloat16: Array.from(float32ToBfloat16(f32), bf16Value), float16: Array.from(float32ToFloat16(f32), f16Value) };
    for (const dt of ['bfloat16', 'float16'] as const) {
      const h = T.toDevice(T.tensor(Array.from(f32), { dtype: 'float32' }), device).to(dt);
      expect(h.dtype).toBe(dt);
      const got = Array.from(h.dataSync() as Float32Array);
      got.forEach((v, i) => {
        const w = want[dt][i]!;
        if (!(Object.is(v, w) || (Number.isNaN(v) && Number.isNaN(w)))) expect.fail(`${dt}: ${values[i]} → ${v}, want ${w}`);
      });
      // and back: widening is exact
      expect(Array.from(h.to('float32').dataSync() as Float32Array).map(String)).toEqual(got.map(String));
    }
  });

  it('casts to and from every dtype; tensor() and fill make half tensors; float64 goes through float32', () => {
    for (const dt of ['bfloat16', 'float16'] as const) {
      const h = T.toDevice(T.tensor([1.5, -2, 3.25, 0, 7], { dtype: dt }), device);
      expect(flat(h.to('int32'))).toEqual([1, -2, 3, 0, 7]);
      expect(flat(h.to('int64'))).toEqual([1, -2, 3, 0, 7]);
      expect(flat(h.to('bool'))).toEqual([1, 1, 1, 0, 1]);
      expect(flat(h.to('float64'))).toEqual([1.5, -2, 3.25, 0, 7]);
      expect(flat(T.toDevice(T.tensor([3, 250], { dtype: 'uint8' }), device).to(dt))).toEqual([3, 250]);
      expect(flat(h.to(dt === 'bfloat16' ? 'float16' : 'bfloat16'))).toEqual([1.5, -2, 3.25, 0, 7]);
      expect(flat(T.full([3], 0.1, { dtype: dt, device }))).toEqual(Array(3).fill(dt === 'bfloat16' ? bf16Value(0x3dcd) : f16Value(0x2e66)));
      // strided views cast element by element
      const m = T.toDevice(T.tensor([[1, 2, 3], [4, 5, 6]], { dtype: dt }), device);
      expect(flat(m.t().to('float32'))).toEqual([1, 4, 2, 5, 3, 6]);
      // other kernels refuse the storage dtype by name
      expect(() => flat(T.exp(h))).toThrow(new RegExp(`dtype ${dt} is a storage type here`));
    }
  });

  it('matmul / linear of half operands: float32 accumulation of the rounded inputs, output rounded once', () => {
    const [M, K, N] = [37, 300, 45];
    const a = rng.uniforms(M * K), b = rng.uniforms(K * N);
    for (const dt of ['bfloat16', 'float16'] as const) {
      const ah = T.toDevice(T.tensor(a, { dtype: dt, shape: [M, K] }), device), bh = T.toDevice(T.tensor(b, { dtype: dt, shape: [K, N] }), device);
      // reference: the product of the rounded inputs in float64, rounded to dt
      const ar = flat(ah), br = flat(bh);
      const exact = refMm(ar, br, M, K, N);
      const y = T.matmul(ah, bh);
      expect(y.dtype).toBe(dt);
      const rounded = flat(T.tensor(exact, { dtype: dt }));
      const got = flat(y);
      // float32 accumulation may move a result across one rounding boundary: compare to 1 ulp of dt
      const ulp = dt === 'bfloat16' ? 2 ** -7 : 2 ** -10;
      got.forEach((v, i) => expect(Math.abs(v - rounded[i]!)).toBeLessThanOrEqual(ulp * Math.abs(rounded[i]!) + 1e-6));
      // transposed operands and batches
      const bt = T.toDevice(T.tensor(b, { dtype: dt, shape: [K, N] }).t().contiguous(), device).t();
      expectClose(flat(T.matmul(ah, bt)), got, 1e-6, 1e-6, `${dt} transposed B`);
      // linear with a bias: x·Wᵀ + b
      const w = T.toDevice(T.tensor(b.slice(0, N * K), { dtype: dt, shape: [N, K] }), device), bias = T.toDevice(T.tensor(b.slice(0, N), { dtype: dt }), device);
      const lin = flat(T.linear(ah, w, bias));
      const wr = flat(w), biasr = flat(bias);
      const refLin = refMm(ar, Array.from({ length: K * N }, (_, q) => wr[(q % N) * K + Math.floor(q / N)]!), M, K, N).map((v, i) => v + biasr[i % N]!);
      lin.forEach((v, i) => expect(Math.abs(v - refLin[i]!)).toBeLessThanOrEqual(2 * ulp * (Math.abs(refLin[i]!) + 1)));
    }
  });
});

describeDevices('autocast', (device) => {
  it('float32 products inside autocast multiply the rounded operands (float32 result); backward too; other ops stay float32', () => {
    const [M, K, N] = [20, 64, 12];
    const a = rng.uniforms(M * K), w = rng.uniforms(N * K), g = rng.uniforms(M * N);
    for (const dt of ['bfloat16', 'float16'] as const) {
      const x = T.toDevice(T.tensor(a, { shape: [M, K] }), device).requiresGrad_(true);
      const wt = T.toDevice(T.tensor(w, { shape: [N, K] }), device).requiresGrad_(true);
      const gt = T.toDevice(T.tensor(g, { shape: [M, N] }), device);
      const y = T.autocast(dt, () => {
        const out = T.linear(x, wt);
        T.sum(T.mul(out, gt)).backward();
        return out;
      });
      expect(y.dtype).toBe('float32');
      expect(T.autocastDType()).toBeNull();
      const r = (v: number[], shape: number[]) => flat(T.tensor(v, { dtype: dt, shape }));
      const ar = r(a, [M, K]), wr = r(w, [N, K]), gr = r(g, [M, N]);
      const wT = Array.from({ length: K * N }, (_, q) => wr[(q % N) * K + Math.floor(q / N)]!);
      expectClose(flat(y), refMm(ar, wT, M, K, N), 1e-5, 1e-5, `${dt} forward`);
      // dx = g·W and dW = gᵀ·x, each from rounded operands
      expectClose(flat(x.grad!), refMm(gr, wr, M, N, K), 1e-5, 1e-5, `${dt} dx`);
      const gT = Array.from({ length: N * M }, (_, q) => gr[(q % M) * N + Math.floor(q / M)]!);
      expectClose(flat(wt.grad!), refMm(gT, ar, N, M, K), 1e-5, 1e-5, `${dt} dW`);
      // outside the scope: full float32
      const full = T.matmul(x, wt.t());
      expect(Math.max(...flat(full).map((v, i) => Math.abs(v - flat(y)[i]!)))).toBeGreaterThan(0);
    }
    expect(() => T.autocast('int8' as never, () => 0)).toThrow(/autocast: dtype must be/);
  });
});
