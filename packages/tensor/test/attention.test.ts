/**
 * flashAttention (the fused native kernel, forward and backward) on every device against the
 * composed path (matmul, softmax, matmul) run on the CPU in float64: outputs and the
 * gradients of Σ out·w for q, k and v, over shapes that are not multiples of any tile size,
 * Lq ≠ Lk, several head dims, one and many (batch, head) pairs, and every mask kind — none,
 * bool key padding, additive, causal, and rows with every key masked. Fresh outputs are
 * poisoned (VLMOE_POISON), so an element a kernel skips fails. Also: shape / mask errors, a
 * finite-difference check, and scaledDotProductAttention's choice of path.
 */
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices, type TestDevice } from './helpers/devices.js';
import { Rng, expectClose, flat } from './helpers/ref_nn.js';

const rng = new Rng(11);
type DT = 'float32' | 'float64' | 'bfloat16';

interface Case {
  name: string;
  B: number; H: number; Lq: number; Lk: number; D: number; Dv: number;
  mask?: 'bool-padding' | 'additive' | 'bool-full-row' | 'additive-full-row' | 'bool-2d';
  causal?: boolean;
  scale?: number;
}

interface Data { q: number[]; k: number[]; v: number[]; w: number[]; mask?: { vals: number[]; shape: number[]; bool: boolean } }

function makeData(c: Case): Data {
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const d: Data = {
    q: rng.uniforms(n([c.B, c.H, c.Lq, c.D]), -2, 2),
    k: rng.uniforms(n([c.B, c.H, c.Lk, c.D]), -2, 2),
    v: rng.uniforms(n([c.B, c.H, c.Lk, c.Dv]), -2, 2),
    w: rng.uniforms(n([c.B, c.H, c.Lq, c.Dv]), -1, 1),
  };
  switch (c.mask) {
    case 'bool-padding': { // [B, 1, 1, Lk]: batch b keeps its first Lk - 3b keys
      const vals = Array.from({ length: c.B * c.Lk }, (_, i) => (i % c.Lk < c.Lk - 3 * Math.floor(i / c.Lk) ? 1 : 0));
      d.mask = { vals, shape: [c.B, 1, 1, c.Lk], bool: true };
      break;
    }
    case 'bool-2d': // [Lq, Lk], random keep pattern with every row keeping key 0
      d.mask = { vals: Array.from({ length: c.Lq * c.Lk }, (_, i) => (i % c.Lk === 0 || rng.next() < 0.6 ? 1 : 0)), shape: [c.Lq, c.Lk], bool: true };
      break;
    case 'additive': // [1, H, Lq, Lk], with some -inf
      d.mask = { vals: Array.from({ length: c.H * c.Lq * c.Lk }, (_, i) => (i % 7 === 3 ? -Infinity : rng.uniform(-1, 1))), shape: [1, c.H, c.Lq, c.Lk], bool: false };
      break;
    case 'bool-full-row': { // [B, 1, Lq, Lk]: in batch 0, query rows 1 and Lq-1 see no key; batch 1 sees no key at all
      const vals: number[] = [];
      for (let b = 0; b < c.B; ++b)
        for (let i = 0; i < c.Lq; ++i)
          for (let j = 0; j < c.Lk; ++j) vals.push(b === 1 || (b === 0 && (i === 1 || i === c.Lq - 1)) ? 0 : (j + i) % 5 !== 0 ? 1 : 0);
      d.mask = { vals, shape: [c.B, 1, c.Lq, c.Lk], bool: true };
      break;
    }
    case 'additive-full-row': { // [B, H, Lq, Lk]: row 2 of every head all -inf
      const vals: number[] = [];
      for (let b = 0; b < c.B * c.H; ++b)
        for (let i = 0; i < c.Lq; ++i)
          for (let j = 0; j < c.Lk; ++j) vals.push(i === 2 ? -Infinity : rng.uniform(-0.5, 0.5));
      d.mask = { vals, shape: [c.B, c.H, c.Lq, c.Lk], bool: false };
      break;
    }
  }
  return d;
}

interface Result { out: number[]; dq: number[]; dk: number[]; dv: number[] }

const toF32 = (t: T.Tensor): number[] => flat(T.toDevice(T.isHalf(t.dtype) ? T.cast(t, 'float32') : t, 'cpu'));

/** Runs flash (or the composed reference) on `device` in `dtype`; returns out and the gradients of Σ out·w. */
function run(c: Case, d: Data, device: string, dtype: DT, path: 'flash' | 'composed'): Result {
  return T.scope(() => {
    const leaf = (vals: number[], shape: number[]) => {
      // bfloat16 leaves: rounded on the CPU, moved, then made leaves
      const base = T.tensor(vals, { dtype: dtype === 'bfloat16' ? 'float32' : dtype, shape });
      const t = T.toDevice(dtype === 'bfloat16' ? T.cast(base, 'bfloat16') : base, device).detach();
      t.requiresGrad = true;
      return t;
    };
    const q = leaf(d.q, [c.B, c.H, c.Lq, c.D]), k = leaf(d.k, [c.B, c.H, c.Lk, c.D]), v = leaf(d.v, [c.B, c.H, c.Lk, c.Dv]);
    let mask: T.Tensor | undefined;
    if (d.mask) {
      const m = d.mask;
      mask = m.bool
        ? T.toDevice(T.tensor(m.vals.map((x) => x > 0), { dtype: 'bool', shape: m.shape }), device)
        : T.toDevice(T.tensor(m.vals, { dtype: dtype === 'bfloat16' ? 'float32' : dtype, shape: m.shape }), device);
    }
    let opts: T.AttentionOptions = { attnMask: mask, isCausal: c.causal, scale: c.scale };
    if (path === 'composed' && mask && c.causal) {
      // scaledDotProductAttention takes one of the two: fold the causal rule into the mask
      const keep = T.le(T.unsqueeze(T.arange(0, c.Lk, 1, { device }), 0), T.unsqueeze(T.arange(0, c.Lq, 1, { device }), 1));
      opts = { attnMask: mask.dtype === 'bool' ? T.logicalAnd(mask, keep) : T.where(keep, mask, -Infinity), scale: c.scale };
    }
    const out = path === 'flash' ? T.flashAttention(q, k, v, opts) : T.scaledDotProductAttention(q, k, v, opts);
    const w = T.toDevice(T.tensor(d.w, { dtype: out.dtype === 'bfloat16' ? 'float32' : out.dtype, shape: out.shape }), device);
    T.sum(T.mul(T.isHalf(out.dtype) ? T.cast(out, 'float32') : out, w)).backward();
    return { out: toF32(out), dq: toF32(q.grad!), dk: toF32(k.grad!), dv: toF32(v.grad!) };
  });
}

/** The reference: the composed path on the CPU in float64 (for bfloat16, from the bf16-rounded inputs). */
function reference(c: Case, d: Data, dtype: DT): Result {
  if (dtype !== 'bfloat16') return run(c, d, 'cpu', 'float64', 'composed');
  const round = (xs: number[]) => flat(T.cast(T.cast(T.tensor(xs, { dtype: 'float32' }), 'bfloat16'), 'float64'));
  return run(c, { ...d, q: round(d.q), k: round(d.k), v: round(d.v) }, 'cpu', 'float64', 'composed');
}

function compare(c: Case, device: TestDevice, dtype: DT): void {
  const d = makeData(c);
  const want = reference(c, d, dtype);
  const got = run(c, d, device, dtype, 'flash');
  const [ato, rto, atg, rtg] = dtype === 'float64' ? [1e-11, 1e-9, 1e-10, 1e-8] : dtype === 'float32' ? [2e-5, 2e-5, 1e-4, 1e-4] : [3e-2, 2e-2, 6e-2, 3e-2];
  const what = `${c.name} [${dtype}]`;
  expectClose(got.out, want.out, ato, rto, `${what} out`);
  for (const x of got.out) expect(Number.isNaN(x), `${what} out has NaN`).toBe(false);
  expectClose(got.dq, want.dq, atg, rtg, `${what} dq`);
  expectClose(got.dk, want.dk, atg, rtg, `${what} dk`);
  expectClose(got.dv, want.dv, atg, rtg, `${what} dv`);
}

const CASES: Case[] = [
  { name: 'B·H = 1, Lq 37 ≠ Lk 53, D 16', B: 1, H: 1, Lq: 37, Lk: 53, D: 16, Dv: 16 },
  { name: 'B 2, H 3, Lq 45, Lk 29, D 32, Dv 24', B: 2, H: 3, Lq: 45, Lk: 29, D: 32, Dv: 24 },
  { name: 'B 2, H 2, L 70, D 64', B: 2, H: 2, Lq: 70, Lk: 70, D: 64, Dv: 64 },
  { name: 'one query row, scale 0.3', B: 1, H: 2, Lq: 1, Lk: 33, D: 16, Dv: 8, scale: 0.3 },
  { name: 'bool padding mask [B,1,1,Lk]', B: 3, H: 2, Lq: 41, Lk: 35, D: 32, Dv: 32, mask: 'bool-padding' },
  { name: 'bool mask [Lq, Lk]', B: 2, H: 1, Lq: 19, Lk: 40, D: 16, Dv: 16, mask: 'bool-2d' },
  { name: 'additive mask [1,H,Lq,Lk] with -inf', B: 2, H: 3, Lq: 33, Lk: 65, D: 64, Dv: 32, mask: 'additive' },
  { name: 'causal, Lq = Lk = 67', B: 2, H: 2, Lq: 67, Lk: 67, D: 32, Dv: 32, causal: true },
  { name: 'causal, Lq 50 > Lk 31', B: 1, H: 3, Lq: 50, Lk: 31, D: 16, Dv: 16, causal: true },
  { name: 'causal, Lq 20 < Lk 45', B: 1, H: 1, Lq: 20, Lk: 45, D: 64, Dv: 64, causal: true },
  { name: 'fully masked rows (bool) and a fully masked batch', B: 2, H: 2, Lq: 36, Lk: 34, D: 32, Dv: 16, mask: 'bool-full-row' },
  { name: 'fully masked row (additive -inf) with causal', B: 1, H: 2, Lq: 40, Lk: 40, D: 16, Dv: 16, mask: 'additive-full-row', causal: true },
];

describeDevices('flashAttention', (device) => {
  const dtypes: DT[] = device === 'cpu' ? ['float32', 'float64'] : ['float32', 'float64', 'bfloat16'];
  for (const dtype of dtypes) {
    it(`${dtype}: forward and dq, dk, dv match the composed path in float64`, () => {
      for (const c of CASES) compare(c, device, dtype);
    });
  }

  it('fully masked rows give exactly 0 output and 0 gradients', () => {
    const c = CASES.find((x) => x.mask === 'bool-full-row')!;
    const d = makeData(c);
    const got = run(c, d, device, 'float32', 'flash');
    const rowsOut = (b: number, h: number, i: number) => got.out.slice(((b * c.H + h) * c.Lq + i) * c.Dv, ((b * c.H + h) * c.Lq + i + 1) * c.Dv);
    const rowsQ = (b: number, h: number, i: number) => got.dq.slice(((b * c.H + h) * c.Lq + i) * c.D, ((b * c.H + h) * c.Lq + i + 1) * c.D);
    for (const h of [0, 1]) {
      for (const i of [1, c.Lq - 1]) {
        expect(rowsOut(0, h, i).every((x) => x === 0)).toBe(true);
        expect(rowsQ(0, h, i).every((x) => x === 0)).toBe(true);
      }
      for (let i = 0; i < c.Lq; ++i) expect(rowsOut(1, h, i).every((x) => x === 0)).toBe(true);
    }
    // batch 1 sees no key: dk, dv of batch 1 are 0
    const half = c.H * c.Lk;
    expect(got.dk.slice(half * c.D).every((x) => x === 0)).toBe(true);
    expect(got.dv.slice(half * c.Dv).every((x) => x === 0)).toBe(true);
  });

  it('scaledDotProductAttention: fused on CUDA (dropout off, 4-D), composed on the CPU', () => {
    const c: Case = { name: 'dispatch', B: 2, H: 2, Lq: 9, Lk: 11, D: 8, Dv: 8, mask: 'bool-padding' };
    const d = makeData(c);
    const sdpa = run(c, d, device, 'float32', 'composed');
    const flash = run(c, d, device, 'float32', 'flash');
    if (device === 'cpu') {
      // the CPU keeps its composed path: the fused kernel sums in float64, so results differ in the last bits
      expectClose(sdpa.out, flash.out, 1e-5, 1e-5, 'cpu sdpa vs flash');
    } else {
      // the same kernel: the forward is deterministic; dq's atomic adds may round in another order
      expect(sdpa.out).toEqual(flash.out);
      expect(sdpa.dk).toEqual(flash.dk);
      expect(sdpa.dv).toEqual(flash.dv);
      expectClose(sdpa.dq, flash.dq, 1e-6, 1e-6, 'cuda sdpa vs flash dq');
    }
  });

  it('errors: bad shapes, dtypes and masks name the problem', () => {
    const t = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => T.toDevice(T.zeros(shape, { dtype }), device);
    const q = t([1, 2, 5, 8]), k = t([1, 2, 7, 8]), v = t([1, 2, 7, 4]);
    expect(() => T.flashAttention(t([2, 5, 8]), k, v)).toThrow(/flashAttention: q, k, v must be 4-D/);
    expect(() => T.flashAttention(q, t([1, 2, 7, 6]), v)).toThrow(/do not fit \[B, H, Lq, D\]/);
    expect(() => T.flashAttention(q, k, t([1, 2, 6, 4]))).toThrow(/do not fit/);
    expect(() => T.flashAttention(q, t([2, 2, 7, 8]), t([2, 2, 7, 4]))).toThrow(/do not fit/);
    expect(() => T.flashAttention(q, k, v, { attnMask: T.toDevice(T.ones([1, 1, 5, 6], { dtype: 'bool' }), device) })).toThrow(/attnMask \[1, 1, 5, 6\] does not broadcast/);
    expect(() => T.flashAttention(q, k, v, { attnMask: T.toDevice(T.ones([1, 1, 1, 1, 7], { dtype: 'bool' }), device) })).toThrow(/does not broadcast/);
    expect(() => T.flashAttention(q, k, v, { attnMask: t([1, 1, 5, 7], 'int32') })).toThrow(/attnMask must be bool/);
    const gm = t([5, 7]);
    gm.requiresGrad = true;
    expect(() => T.flashAttention(q, k, v, { attnMask: gm })).toThrow(/requires grad/);
    expect(() => T.flashAttention(q, k, v, { scale: NaN })).toThrow(/scale must be finite/);
    expect(() => T.flashAttention(t([1, 1, 2, 2], 'int32'), t([1, 1, 2, 2], 'int32'), t([1, 1, 2, 2], 'int32'))).toThrow(/floating dtype/);
  });

  it('empty sequences: Lk = 0 gives zeros, Lq = 0 gives empty output and zero dk, dv', () => {
    const mk = (shape: number[]) => {
      const x = T.toDevice(T.tensor(rng.uniforms(shape.reduce((a, b) => a * b, 1)), { shape }), device).detach();
      x.requiresGrad = true;
      return x;
    };
    const q = mk([1, 2, 3, 4]), k = mk([1, 2, 0, 4]), v = mk([1, 2, 0, 4]);
    const out = T.flashAttention(q, k, v);
    expect(flat(T.toDevice(out, 'cpu'))).toEqual(new Array(24).fill(0));
    T.sum(out).backward();
    expect(flat(T.toDevice(q.grad!, 'cpu'))).toEqual(new Array(24).fill(0));
    const q0 = mk([1, 2, 0, 4]), k0 = mk([1, 2, 5, 4]), v0 = mk([1, 2, 5, 4]);
    const o0 = T.flashAttention(q0, k0, v0);
    expect(o0.shape).toEqual([1, 2, 0, 4]);
    T.sum(o0).backward();
    expect(flat(T.toDevice(k0.grad!, 'cpu'))).toEqual(new Array(40).fill(0));
  });
});

describe('flashAttention gradcheck (finite differences, float64, CPU)', () => {
  const mk = (shape: number[]) => {
    const x = T.tensor(rng.uniforms(shape.reduce((a, b) => a * b, 1), -1, 1), { dtype: 'float64', shape });
    x.requiresGrad = true;
    return x;
  };
  it('no mask, causal, and an additive mask with a fully masked row', () => {
    const q = mk([1, 2, 5, 4]), k = mk([1, 2, 7, 4]), v = mk([1, 2, 7, 3]);
    expect(T.gradcheck((a, b, c) => T.flashAttention(a!, b!, c!), [q, k, v]).ok).toBe(true);
    expect(T.gradcheck((a, b, c) => T.flashAttention(a!, b!, c!, { isCausal: true, scale: 0.7 }), [q, k, v]).ok).toBe(true);
    const add = T.tensor(Array.from({ length: 5 * 7 }, (_, i) => (Math.floor(i / 7) === 3 || i % 4 === 1 ? -Infinity : Math.sin(i))), { dtype: 'float64', shape: [5, 7] });
    const r = T.gradcheck((a, b, c) => T.flashAttention(a!, b!, c!, { attnMask: add }), [q, k, v]);
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });
});
