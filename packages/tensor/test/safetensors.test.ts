/**
 * safetensors (src/serialization/safetensors.ts): float16/bfloat16 conversions against a
 * plain nearest-value reference, byte-exact output against the reference crate's test
 * vectors, round trips of every dtype, the PyTorch-written fixture (test/fixtures/
 * make_safetensors.py), validation errors, atomic saves and non-contiguous / CUDA input.
 * When /usr/bin/python3 has torch, PyTorch also reads a file we wrote and checks it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { Rng } from './helpers/rng.js';

const FIXTURE = new URL('./fixtures/torch.safetensors', import.meta.url);
const FIXTURE_PATH = decodeURIComponent(FIXTURE.pathname);
const SCRIPT_PATH = decodeURIComponent(new URL('./fixtures/make_safetensors.py', import.meta.url).pathname);
interface Expected { dtype: string; shape: number[]; values: (number | string | boolean)[] }
const expected = JSON.parse(fs.readFileSync(new URL('./fixtures/torch_safetensors.json', import.meta.url), 'utf8')) as {
  torch: string; metadata: Record<string, string>; tensors: Record<string, Expected>;
};

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-safetensors-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- plain references ------------------------------------------------------------------------

/** IEEE binary16 code → value, from the definition. */
function refHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * Math.pow(2, -24) : s * (1024 + m) * Math.pow(2, e - 25);
}
/** bfloat16 code → value, from the definition (8-bit exponent, 7-bit mantissa). */
function refBf16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 7) & 0xff, m = h & 0x7f;
  if (e === 255) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * Math.pow(2, -133) : s * (128 + m) * Math.pow(2, e - 134);
}

/**
 * Non-negative codes 0 .. infCode in increasing value (code = index); the inf code stands
 * for the next step up the ladder (65536 for float16, 2^128 for bfloat16), which is what
 * round-to-nearest-even overflows to.
 */
function ladder(decode: (h: number) => number, infCode: number, next: number): Float64Array {
  const l = new Float64Array(infCode + 1);
  for (let h = 0; h < infCode; ++h) l[h] = decode(h);
  l[infCode] = next;
  return l;
}
const HALF = ladder(refHalf, 0x7c00, 65536);
const BF16 = ladder(refBf16, 0x7f80, 2 ** 128);

/** Nearest code on the ladder, ties to the even code; NaN → -1. */
function refRound(x: number, l: Float64Array): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x), top = l.length - 1;
  if (a >= l[top]!) return sign | top;
  let lo = 0, hi = top; // l[lo] <= a < l[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (l[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - l[lo]!, dh = l[hi]! - a;
  return sign | (dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi);
}

const isNaNHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isNaNBf16 = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

/** Float32 inputs that exercise rounding: specials, every kind of tie, overflow, subnormals, random bits. */
function trickyFloat32(l: Float64Array, seed: number): Float32Array {
  const rng = new Rng(seed);
  const v: number[] = [0, -0, Infinity, -Infinity, NaN, 1, -1, 1 / 3, 3.4028234663852886e38, -1.401298464324817e-45, 1e-40, 1.1754942e-38];
  const top = l.length - 1;
  // exact midpoints (ties) and near-midpoints around every region, including max → inf and 0 → smallest subnormal
  for (const c of [0, 1, 2, 3, top - 2, top - 1, ...rng.ints(400, 0, top)]) {
    const a = l[c]!, b = l[c + 1] ?? a;
    for (const k of [0, 1, 7, 8, 9, 15]) {
      const x = Math.fround(a + ((b - a) * k) / 16);
      v.push(x, -x);
    }
  }
  const bits = new Uint32Array(v.length + 4000);
  const f = new Float32Array(bits.buffer);
  f.set(v);
  for (let i = v.length; i < bits.length; ++i) bits[i] = Math.floor(rng.next() * 2 ** 32);
  return f;
}

/** Bytes of a tensor's elements. */
function bytes(t: T.Tensor): Uint8Array {
  const d = t.dataSync();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** A float32 CPU tensor holding exactly these bits (NaN payloads included). */
function f32Bits(f: Float32Array, shape = [f.length]): T.Tensor {
  const t = T.empty(shape, { dtype: 'float32' });
  new Uint8Array((t.data() as Float32Array).buffer, (t.data() as Float32Array).byteOffset, f.byteLength).set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  return t;
}

/** A safetensors file from a header (object or raw string) and data bytes; `n` overrides the length field. */
function stFile(header: unknown, data: Uint8Array = new Uint8Array(0), n?: number): Uint8Array {
  const h = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

// ---- float16 / bfloat16 ----------------------------------------------------------------------

describe('float16 / bfloat16 conversions', () => {
  const all = new Uint16Array(65536).map((_, i) => i);

  it('decode every float16 and bfloat16 code exactly', () => {
    const h = T.float16ToFloat32(all), b = T.bfloat16ToFloat32(all);
    for (let c = 0; c < 65536; ++c) {
      if (!Object.is(h[c], Math.fround(refHalf(c)))) expect.fail(`float16 0x${c.toString(16)}: got ${h[c]}, expected ${refHalf(c)}`);
      if (!Object.is(b[c], Math.fround(refBf16(c)))) expect.fail(`bfloat16 0x${c.toString(16)}: got ${b[c]}, expected ${refBf16(c)}`);
    }
  });

  it('encode(decode(code)) gives back every non-NaN code; NaNs stay NaN', () => {
    const h = T.float32ToFloat16(T.float16ToFloat32(all)), b = T.float32ToBfloat16(T.bfloat16ToFloat32(all));
    for (let c = 0; c < 65536; ++c) {
      if (isNaNHalf(c) ? !isNaNHalf(h[c]!) : h[c] !== c) expect.fail(`float16 0x${c.toString(16)} came back as 0x${h[c]!.toString(16)}`);
      if (isNaNBf16(c) ? !isNaNBf16(b[c]!) : b[c] !== c) expect.fail(`bfloat16 0x${c.toString(16)} came back as 0x${b[c]!.toString(16)}`);
    }
  });

  for (const [name, l, enc, isNaNCode] of [
    ['float16', HALF, T.float32ToFloat16, isNaNHalf],
    ['bfloat16', BF16, T.float32ToBfloat16, isNaNBf16],
  ] as const) {
    it(`float32 → ${name} rounds to nearest even (ties, overflow to inf, subnormals, NaN) like the reference`, () => {
      const x = trickyFloat32(l, name.length);
      const got = enc(x);
      let ties = 0;
      for (let i = 0; i < x.length; ++i) {
        const want = refRound(x[i]!, l);
        if (want < 0) {
          if (!isNaNCode(got[i]!)) expect.fail(`${name}(NaN) = 0x${got[i]!.toString(16)} is not NaN`);
          if ((got[i]! & 0x8000) !== (new Uint32Array(x.buffer)[i]! >>> 31) << 15) expect.fail(`${name}(NaN) lost its sign`);
          continue;
        }
        if (got[i] !== want) expect.fail(`${name}(${x[i]}) = 0x${got[i]!.toString(16)}, expected 0x${want.toString(16)}`);
        const a = Math.abs(x[i]!), c = want & 0x7fff;
        if (a !== l[c] && (a - (l[c - 1] ?? -1) === l[c]! - a || (l[c + 1] ?? -1) - a === a - l[c]!)) ties++;
      }
      expect(ties).toBeGreaterThan(100); // the exact ties really were exercised
    });
  }

  it('hand-picked float16 cases', () => {
    const cases: [number, number][] = [
      [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [Math.fround(2 ** -25 * 1.0000001), 0x0001], [3 * 2 ** -25, 0x0002], [-(2 ** -26), 0x8000],
      [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [-0, 0x8000],
    ];
    const got = T.float32ToFloat16(new Float32Array(cases.map((c) => c[0])));
    cases.forEach(([x, h], i) => expect(got[i], `float16(${x})`).toBe(h));
  });

  it('hand-picked bfloat16 cases', () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [3.3895313892515355e38, 0x7f7f], [3.4028234663852886e38, 0x7f80],
      [-3.4028234663852886e38, 0xff80], [2 ** -133, 0x0001], [2 ** -134, 0x0000], [3 * 2 ** -134, 0x0002], [-0, 0x8000],
    ];
    const got = T.float32ToBfloat16(new Float32Array(cases.map((c) => c[0])));
    cases.forEach(([x, h], i) => expect(got[i], `bfloat16(${x})`).toBe(h));
  });
});

// ---- format ----------------------------------------------------------------------------------

describe('serialize: the reference layout', () => {
  it('matches the reference crate test vectors byte for byte', () => {
    // safetensors/src/tensor.rs tests: test_serialization, test_empty, test_serialization_forced_alignement
    const data = [0, 1, 2, 3, 4, 5];
    const one = T.serialize({ 'attn.0': T.tensor(data, { shape: [1, 2, 3] }) });
    expect(one.length).toBe(8 + 64 + 24);
    expect(Array.from(one.subarray(0, 8))).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(one.subarray(8, 72)).toString()).toBe('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(Array.from(one.subarray(72, 80))).toEqual([0, 0, 0, 0, 0, 0, 128, 63]);

    const aligned = T.serialize({ attn0: T.tensor(data, { shape: [1, 1, 2, 3] }) });
    expect(Array.from(aligned.subarray(0, 8))).toEqual([72, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(aligned.subarray(8, 80)).toString()).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');

    expect(Array.from(T.serialize({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const meta = T.serialize({}, { metadata: { framework: 'pt' } });
    expect(Array.from(meta.subarray(0, 8))).toEqual([40, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(meta.subarray(8)).toString()).toBe('{"__metadata__":{"framework":"pt"}}     ');
  });

  it('orders tensors by descending alignment, then by UTF-8 name, contiguously', () => {
    const bytes = T.serialize({
      b: T.zeros([3], { dtype: 'uint8' }), a: T.zeros([2], { dtype: 'bool' }), z: T.zeros([1]), é: T.zeros([1]), y: T.zeros([1], { dtype: 'int64' }),
      h: T.zeros([3]), q: T.zeros([2], { dtype: 'int32' }),
    }, { dtypes: { h: 'bfloat16', q: 'int16' } });
    const h = T.readSafetensorsHeader(bytes);
    expect(h.tensors.map((e) => [e.name, e.dtype, e.dataOffsets])).toEqual([
      ['y', 'I64', [0, 8]], ['z', 'F32', [8, 12]], ['é', 'F32', [12, 16]], ['h', 'BF16', [16, 22]], ['q', 'I16', [22, 26]],
      ['b', 'U8', [26, 29]], ['a', 'BOOL', [29, 31]],
    ]);
    expect(h.dataStart % 8).toBe(0);
    // header entries appear in data order, like the reference writer's
    const json = Buffer.from(bytes.subarray(8, h.dataStart)).toString();
    expect(Object.keys(JSON.parse(json))).toEqual(['y', 'z', 'é', 'h', 'q', 'b', 'a']);
  });
});

describe('round trips', () => {
  it('every dtype, bit for bit (NaN payloads, -0, subnormals, int extremes, 0-dim, empty)', () => {
    const f = new Float32Array([NaN, -0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38, 1 / 3, -2.5]);
    new Uint32Array(f.buffer)[0] = 0x7fa12345; // a signalling NaN with a payload
    const src: Record<string, T.Tensor> = {
      f32: f32Bits(f, [2, 4]),
      f64: T.tensor(new Float64Array([Math.PI, -0, 5e-324, -1.7976931348623157e308, Infinity, NaN]), { shape: [3, 2] }),
      i32: T.tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1])),
      i64: T.tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]), { shape: [3, 1] }),
      u8: T.tensor(new Uint8Array([0, 1, 128, 255])),
      bool: T.tensor([[true, false], [false, true]]),
      scalar: T.tensor(7, { dtype: 'int64', shape: [] }),
      empty: T.zeros([0, 5], { dtype: 'float64' }),
      empty1: T.zeros([3, 0], { dtype: 'bool' }),
    };
    const file = T.serialize(src);
    const { tensors, metadata } = T.deserialize(file);
    expect(metadata).toEqual({});
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const u = tensors[name]!;
      expect([u.dtype, u.shape, u.device], name).toEqual([t.dtype, t.shape, 'cpu']);
      expect(bytes(u), name).toEqual(bytes(t));
    }
    expect(Number(tensors.scalar!.item())).toBe(7);
  });

  it('float32 stored as BF16 / F16 loads as float32 with the correctly rounded value', () => {
    const x = trickyFloat32(HALF, 7).subarray(0, 3000);
    const t = f32Bits(x);
    const file = T.serialize({ h: t, b: t, keep: t }, { dtypes: { h: 'float16', b: 'bfloat16' } });
    const h = T.readSafetensorsHeader(file);
    expect(Object.fromEntries(h.tensors.map((e) => [e.name, e.dtype]))).toEqual({ h: 'F16', b: 'BF16', keep: 'F32' });
    expect(file.length).toBe(h.dataStart + x.length * (2 + 2 + 4));
    const { tensors } = T.deserialize(file);
    expect(tensors.h!.dtype).toBe('float32');
    expect(tensors.b!.dtype).toBe('float32');
    expect(bytes(tensors.keep!)).toEqual(bytes(t));
    const gh = tensors.h!.dataSync() as Float32Array, gb = tensors.b!.dataSync() as Float32Array;
    for (let i = 0; i < x.length; ++i) {
      const wh = refRound(x[i]!, HALF), wb = refRound(x[i]!, BF16);
      if (wh < 0 ? !Number.isNaN(gh[i]) : !Object.is(gh[i], refHalf(wh))) expect.fail(`F16 of ${x[i]} loaded as ${gh[i]}`);
      if (wb < 0 ? !Number.isNaN(gb[i]) : !Object.is(gb[i], refBf16(wb))) expect.fail(`BF16 of ${x[i]} loaded as ${gb[i]}`);
    }
  });

  it('int32 as I16 / I8 (range-checked), float64 as F32', () => {
    const i = T.tensor(new Int32Array([-128, 127, 0, -1]));
    const d = T.tensor(new Float64Array([1 / 3, 1e300, -0]));
    const { tensors } = T.deserialize(T.serialize({ a: i, b: i, d }, { dtypes: { a: 'int16', b: 'int8', d: 'float32' } }));
    expect([tensors.a!.dtype, tensors.b!.dtype, tensors.d!.dtype]).toEqual(['int32', 'int32', 'float32']);
    expect(tensors.a!.toArray()).toEqual([-128, 127, 0, -1]);
    expect(tensors.b!.toArray()).toEqual([-128, 127, 0, -1]);
    expect(Array.from(tensors.d!.dataSync() as Float32Array)).toEqual([Math.fround(1 / 3), Infinity, -0]);
    expect(() => T.serialize({ w: T.tensor(new Int32Array([1, 200])) }, { dtypes: { w: 'int8' } })).toThrow(/tensor 'w': element 1 \(200\) does not fit int8/);
    expect(() => T.serialize({ w: T.zeros([2], { dtype: 'int64' }) }, { dtypes: { w: 'bfloat16' } })).toThrow(/tensor 'w': cannot store a int64 tensor as bfloat16 \(allowed: int64\)/);
    expect(() => T.serialize({ w: T.zeros([2]) }, { dtypes: { v: 'float16' } })).toThrow(/tensor 'v': dtypes names a tensor that is not being saved/);
  });

  it('metadata round trips (unicode, none, empty) and must be strings', () => {
    const md = { format: 'pt', 'step ü': '1200', json: '{"a":[1,2]}', empty: '' };
    expect(T.deserialize(T.serialize({ x: T.ones([2]) }, { metadata: md })).metadata).toEqual(md);
    expect(T.deserialize(T.serialize({ x: T.ones([2]) })).metadata).toEqual({});
    expect(T.deserialize(T.serialize({}, { metadata: {} })).metadata).toEqual({});
    expect(() => T.serialize({}, { metadata: { step: 3 as unknown as string } })).toThrow(/metadata 'step' must be a string/);
  });

  it('non-contiguous inputs (transpose, stepped slice, expand, offset view) are written as their logical values', () => {
    const base = T.reshape(T.arange(0, 24, 1, { dtype: 'float32' }), [4, 6]);
    const views: Record<string, T.Tensor> = {
      tr: T.transpose(base, 0, 1),
      step: T.slice(base, 1, 1, 6, 2),
      ex: T.expand(T.tensor([1, 2, 3], { shape: [3, 1] }), [3, 4]),
      off: T.select(base, 0, 2),
    };
    expect(views.tr!.isContiguous()).toBe(false);
    const { tensors } = T.deserialize(T.serialize(views, { dtypes: { step: 'bfloat16' } }));
    for (const [name, v] of Object.entries(views)) {
      expect(tensors[name]!.shape, name).toEqual(v.shape);
      expect(tensors[name]!.toArray(), name).toEqual(v.toArray());
    }
  });

  it('tensors named like Object.prototype keys are ordinary entries', () => {
    const src = Object.defineProperty({} as Record<string, T.Tensor>, '__proto__', { value: T.ones([1]), enumerable: true });
    src['constructor'] = T.zeros([2]);
    const { tensors } = T.deserialize(T.serialize(src));
    expect(Object.keys(tensors).sort()).toEqual(['__proto__', 'constructor']);
    expect(tensors['constructor']!.shape).toEqual([2]);
    expect(Object.getOwnPropertyDescriptor(tensors, '__proto__')!.value.shape).toEqual([1]);
  });
});

// ---- the PyTorch fixture ---------------------------------------------------------------------

function expectFixtureValues(tensors: Record<string, T.Tensor>): void {
  const loadsAs: Record<string, string> = { F64: 'float64', F32: 'float32', F16: 'float32', BF16: 'float32', I64: 'int64', I32: 'int32', I16: 'int32', I8: 'int32', U8: 'uint8', BOOL: 'bool' };
  expect(Object.keys(tensors).sort()).toEqual(Object.keys(expected.tensors).sort());
  for (const [name, e] of Object.entries(expected.tensors)) {
    const t = tensors[name]!;
    expect([t.dtype, t.shape], name).toEqual([loadsAs[e.dtype], e.shape]);
    const got = Array.from(t.dataSync() as ArrayLike<number | bigint>);
    const want = e.values.map((v) =>
      e.dtype === 'I64' ? BigInt(v as string) : e.dtype === 'BOOL' ? (v ? 1 : 0) : v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v);
    expect(got.length, name).toBe(want.length);
    got.forEach((g, i) => {
      if (!Object.is(g, want[i])) expect.fail(`${name}[${i}]: got ${String(g)}, expected ${String(want[i])}`);
    });
  }
}

describe(`PyTorch ${expected.torch} fixture (make_safetensors.py)`, () => {
  it('loads with the right dtypes, shapes, values and metadata (deserialize and loadFile)', () => {
    const a = T.deserialize(fs.readFileSync(FIXTURE));
    expectFixtureValues(a.tensors);
    expect(a.metadata).toEqual(expected.metadata);
    const b = T.loadFile(FIXTURE_PATH);
    expectFixtureValues(b.tensors);
    expect(b.metadata).toEqual(expected.metadata);
  });

  it('loadFileAsync agrees', async () => {
    expectFixtureValues((await T.loadFileAsync(FIXTURE_PATH)).tensors);
  });

  it('writing the loaded tensors back in their stored dtypes reproduces the file byte for byte', () => {
    const file = new Uint8Array(fs.readFileSync(FIXTURE));
    const { tensors, metadata } = T.deserialize(file);
    const out = T.serialize(tensors, { metadata, dtypes: { bf16: 'bfloat16', f16: 'float16', i16: 'int16', i8: 'int8' } });
    expect(Buffer.compare(Buffer.from(out), Buffer.from(file))).toBe(0);
  });
});

// ---- errors ----------------------------------------------------------------------------------

describe('invalid files give clear errors naming the file and the tensor', () => {
  const f32 = (n: number) => new Uint8Array(n * 4);
  const entry = (dtype: string, shape: number[], b: number, e: number) => ({ dtype, shape, data_offsets: [b, e] });
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated before the length', new Uint8Array(5), /ckpt\.st: file is truncated: 5 bytes/],
    ['header length beyond the file', stFile({}, new Uint8Array(0), 500), /header length 500 runs past the end of the file \(10 bytes\)/],
    ['header length over the limit', stFile({}, new Uint8Array(0), 2 ** 40), /header length 1099511627776 is over the 100 MB limit/],
    ['bad JSON', stFile('{"a": {'), /header is not valid JSON/],
    ['header not an object', stFile('[1,2]'), /header must be a JSON object/],
    ['bad UTF-8', stFile(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /ckpt\.st: header is not valid UTF-8/],
    ['unknown dtype', stFile({ w: entry('F8_E4M3', [2], 0, 2) }, new Uint8Array(2)), /tensor 'w': unknown or unsupported dtype "F8_E4M3"/],
    ['bad shape', stFile({ w: entry('F32', [-1], 0, 4) }, f32(1)), /tensor 'w': shape must be an array of non-negative integers/],
    ['bad offsets', stFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32(1)), /tensor 'w': data_offsets must be \[begin, end\]/],
    ['offsets reversed', stFile({ w: entry('F32', [0], 4, 0) }, f32(1)), /tensor 'w': data_offsets \[4, 0\] end before they begin/],
    ['shape·itemsize ≠ bytes', stFile({ w: entry('F32', [2, 3], 0, 20) }, new Uint8Array(20)), /tensor 'w': shape \[2, 3\] × 4 bytes \(F32\) = 24 bytes, but data_offsets \[0, 20\] hold 20/],
    ['offsets beyond the data (truncated)', stFile({ a: entry('F32', [2], 0, 8), w: entry('F32', [4], 8, 24) }, f32(4)), /tensor 'w': data_offsets \[8, 24\] run past the end of the data section \(16 bytes\): the file is truncated/],
    ['overlap', stFile({ a: entry('F32', [2], 0, 8), w: entry('F32', [1], 4, 8) }, f32(2)), /tensor 'w': data_offsets \[4, 8\] overlap tensor 'a' \[0, 8\]/],
    ['gap', stFile({ a: entry('F32', [1], 0, 4), w: entry('F32', [1], 8, 12) }, f32(3)), /tensor 'w': data_offsets \[8, 12\] leave a gap of 4 bytes after tensor 'a'/],
    ['gap at the start', stFile({ w: entry('F32', [1], 4, 8) }, f32(2)), /tensor 'w': .* leave a gap of 4 bytes at the start of the data section/],
    ['trailing bytes', stFile({ w: entry('F32', [1], 0, 4) }, f32(2)), /4 bytes after the last tensor are not described by the header/],
    ['metadata not strings', stFile({ __metadata__: { step: 3 } }), /__metadata__ 'step' must be a string/],
  ];
  for (const [what, file, re] of cases) {
    it(what, () => {
      expect(() => T.deserialize(file, { source: 'ckpt.st' })).toThrow(re);
      try {
        T.deserialize(file, { source: 'ckpt.st' });
      } catch (e) {
        expect(e).toBeInstanceOf(T.SafetensorsError);
        expect((e as Error).message.startsWith('safetensors ckpt.st: ')).toBe(true);
      }
    });
  }

  it('loadFile names the path; a truncated file on disk is caught before reading tensors', () => {
    const good = T.serialize({ a: T.ones([4]), b: T.ones([4]) });
    const p = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(p, good.subarray(0, good.length - 3));
    expect(() => T.loadFile(p)).toThrow(new RegExp(`safetensors ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensor 'b': data_offsets \\[16, 32\\] run past`));
    fs.writeFileSync(p, good.subarray(0, 6));
    expect(() => T.loadFile(p)).toThrow(/file is truncated: 6 bytes/);
    expect(() => T.loadFile(path.join(dir, 'missing.safetensors'))).toThrow(/ENOENT/);
  });

  it('bad inputs to serialize are named', () => {
    const gone = T.ones([2]);
    gone.dispose();
    expect(() => T.serialize({ gone })).toThrow(/safetensors serialize: tensor 'gone': tensor of shape \[2\] was disposed/);
    expect(() => T.serialize({ x: [1, 2] as unknown as T.Tensor })).toThrow(/tensor 'x': expected a Tensor/);
    expect(() => T.serialize({ __metadata__: T.ones([1]) })).toThrow(/'__metadata__' is reserved/);
  });

  it('BOOL bytes other than 0/1 load as true', () => {
    const { tensors } = T.deserialize(stFile({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, new Uint8Array([0, 2, 1])));
    expect(tensors.m!.toArray()).toEqual([false, true, true]);
    expect(Array.from(tensors.m!.dataSync() as Uint8Array)).toEqual([0, 1, 1]);
  });

  it('misaligned input buffers still load (F16, I16, F64 at odd offsets)', () => {
    const file = T.serialize({ d: T.tensor(new Float64Array([1.5, -2])), h: T.ones([3]), s: T.tensor(new Int32Array([-3, 9])) }, { dtypes: { h: 'float16', s: 'int16' } });
    const shifted = new Uint8Array(file.length + 1).subarray(1);
    shifted.set(file);
    const { tensors } = T.deserialize(shifted);
    expect([tensors.d!.toArray(), tensors.h!.toArray(), tensors.s!.toArray()]).toEqual([[1.5, -2], [1, 1, 1], [-3, 9]]);
  });
});

// ---- files -----------------------------------------------------------------------------------

describe('saveFile / loadFile (atomic)', () => {
  const tmpFiles = () => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

  it('saves, replaces and loads; no temporary file is left', async () => {
    const p = path.join(dir, 'model.safetensors');
    T.saveFile(p, { w: T.ones([2, 2]), b: T.zeros([2], { dtype: 'int64' }) }, { metadata: { step: '1' } });
    expect(Array.from(fs.readFileSync(p))).toEqual(Array.from(T.serialize({ w: T.ones([2, 2]), b: T.zeros([2], { dtype: 'int64' }) }, { metadata: { step: '1' } })));
    fs.chmodSync(p, 0o640);
    T.saveFile(p, { w: T.full([3], 5) }, { metadata: { step: '2' } });
    const r = T.loadFile(p);
    expect(r.metadata).toEqual({ step: '2' });
    expect(r.tensors.w!.toArray()).toEqual([5, 5, 5]);
    expect(fs.statSync(p).mode & 0o777).toBe(0o640); // permissions of the replaced file are kept
    await T.saveFileAsync(p, { w: T.full([2], 7) }, { dtypes: { w: 'bfloat16' } });
    expect(T.loadFile(p).tensors.w!.toArray()).toEqual([7, 7]);
    expect(tmpFiles()).toEqual([]);
  });

  it('a failure part-way through the write leaves the previous file intact and removes the temporary file', async () => {
    const p = path.join(dir, 'ckpt.safetensors');
    T.saveFile(p, { w: T.full([4], 1) }, { metadata: { step: '100' } });
    const before = fs.readFileSync(p);
    let seenTmpBytes = -1;
    // a tensor that throws when its data is read; it sorts last, so the header and 'a' are already in the temp file
    const boom = new Proxy(T.full([1000], 2), {
      get(target, prop) {
        if (prop === 'data' || prop === 'dataSync')
          return () => {
            const tmps = tmpFiles();
            seenTmpBytes = tmps.length === 1 ? fs.statSync(path.join(dir, tmps[0]!)).size : -1;
            throw new Error('device lost while reading');
          };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    expect(() => T.saveFile(p, { a: T.full([1000], 3), z: boom }, { metadata: { step: '200' } })).toThrow('device lost while reading');
    expect(seenTmpBytes).toBeGreaterThan(4000); // really part-way: header and 'a' had been written
    expect(fs.readFileSync(p).equals(before)).toBe(true);
    expect(tmpFiles()).toEqual([]);
    expect(T.loadFile(p).metadata).toEqual({ step: '100' });

    await expect(T.saveFileAsync(p, { a: T.full([1000], 3), z: boom })).rejects.toThrow('device lost while reading');
    expect(fs.readFileSync(p).equals(before)).toBe(true);
    expect(tmpFiles()).toEqual([]);
  });

  it('writeFileAtomicSync: an error from the producer after some bytes keeps the target', () => {
    const p = path.join(dir, 'state.json');
    T.writeFileAtomicSync(p, (w) => w(Buffer.from('{"ok":1}')));
    expect(() => T.writeFileAtomicSync(p, (w) => {
      w(Buffer.from('{"half'));
      throw new Error('killed');
    })).toThrow('killed');
    expect(fs.readFileSync(p, 'utf8')).toBe('{"ok":1}');
    expect(tmpFiles()).toEqual([]);
    expect(() => T.saveFile(path.join(dir, 'no-such-dir', 'x.safetensors'), { a: T.ones([1]) })).toThrow(/ENOENT/);
  });
});

describe.skipIf(!T.cudaAvailable())('CUDA tensors', () => {
  it('save from and load onto cuda', () => {
    const x = T.toDevice(T.tensor([[1, 2, 3], [4, 5, 6]]), 'cuda');
    const file = T.serialize({ x, xt: T.transpose(x, 0, 1), h: x }, { dtypes: { h: 'float16' } });
    const { tensors } = T.deserialize(file, { device: 'cuda' });
    expect(tensors.x!.device).toBe('cuda:0');
    expect(tensors.x!.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(tensors.xt!.toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(tensors.h!.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
  });
});

// ---- PyTorch reads our file --------------------------------------------------------------------

const TORCH_PY = '/usr/bin/python3';
const hasTorch = fs.existsSync(TORCH_PY) &&
  spawnSync(TORCH_PY, ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'], { stdio: 'ignore' }).status === 0;

/** The file make_safetensors.py --check expects (see its docstring). */
function writeCheckFile(p: string): void {
  const { tensors, metadata } = T.loadFile(FIXTURE_PATH);
  const src = f32Bits(trickyFloat32(BF16, 11).subarray(0, 3000));
  T.saveFile(p, { ...tensors, 'f32.T': T.transpose(tensors.f32!, 0, 1), 'rounding.src': src, 'rounding.bf16': src, 'rounding.f16': src }, {
    metadata,
    dtypes: { bf16: 'bfloat16', f16: 'float16', i16: 'int16', i8: 'int8', 'rounding.bf16': 'bfloat16', 'rounding.f16': 'float16' },
  });
}

describe.skipIf(!hasTorch)('PyTorch reads a file we wrote', () => {
  it('make_safetensors.py --check passes (dtypes, shapes, bits; bf16/f16 rounding equals torch)', () => {
    const keep = process.env.VLMOE_SAFETENSORS_KEEP;
    const p = path.join(keep ?? dir, 'ours.safetensors');
    writeCheckFile(p);
    const r = spawnSync(TORCH_PY, [SCRIPT_PATH, '--check', p], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/^OK: torch/);
    expect(r.status).toBe(0);
  });
});
