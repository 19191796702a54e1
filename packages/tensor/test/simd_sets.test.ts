/**
 * The CPU kernel sets agree: on a CPU with AVX-512 the 16-lane kernels (vec_math.h at V16)
 * give exactly the bits of the 8-lane AVX2 kernels (VLMOE_SIMD=avx2) for every float32 op with
 * hand-written SIMD — the same algorithm lane by lane, and reductions whose partial sums are
 * fixed in the source — so results do not depend on the machine's vector width. Special values
 * (±0, subnormals, ±inf, NaN, exp's overflow and underflow edges) and loop tails included.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/simd_child.mjs', import.meta.url));
const STREAM_CHILD = fileURLToPath(new URL('./fixtures/stream_child.mjs', import.meta.url));

function run(simd: string | undefined, child = CHILD, extra: Record<string, string> = {}): Record<string, string> {
  const env = { ...process.env, ...extra };
  if (simd === undefined) delete env.VLMOE_SIMD;
  else env.VLMOE_SIMD = simd;
  const r = spawnSync(process.execPath, [child], { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
}

/** base64 bytes → float32 values (copied: a pooled Buffer's offset need not be 4-aligned). */
const floats = (b64: string) => new Float32Array(Uint8Array.from(Buffer.from(b64, 'base64')).buffer);

describe('kernel sets', () => {
  it('VLMOE_SIMD caps the set; an unknown value is named on stderr and ignored', () => {
    expect(run('portable').simd).toBe('portable');
    const env = { ...process.env, VLMOE_SIMD: 'avx1024' };
    const r = spawnSync(process.execPath, ['-e', "import('@vlmoe/tensor').then((T) => console.log(T.nativeInfo().simd))"], { encoding: 'utf8', env, cwd: fileURLToPath(new URL('..', import.meta.url)) });
    expect(r.stderr).toContain('VLMOE_SIMD=avx1024 is not one of portable, avx2, avx512; ignored');
    expect(r.stdout.trim()).toBe(T.nativeInfo().simd);
  });

  it.skipIf(T.nativeInfo().simd !== 'avx512')('AVX-512 and AVX2 give the same bits for every op with hand-written SIMD', () => {
    const wide = run(undefined), narrow = run('avx2');
    expect(wide.simd).toBe('avx512');
    expect(narrow.simd).toBe('avx2-fma');
    const ops = Object.keys(wide).filter((k) => k !== 'simd');
    expect(ops.length).toBeGreaterThanOrEqual(13);
    for (const op of ops) {
      const a = floats(wide[op]!), b = floats(narrow[op]!);
      expect(a.length, op).toBe(b.length);
      let diff = -1;
      for (let i = 0; i < a.length && diff < 0; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) diff = i;
      expect(diff, `${op}: first differing element ${diff}: ${a[diff]} (avx512) vs ${b[diff]} (avx2)`).toBe(-1);
    }
  });

  // outputs of ≥ 16 MiB are written with non-temporal stores (elementwise.cpp): the same bits
  // as ordinary stores, on both vector widths
  it.skipIf(T.nativeInfo().simd === 'portable')('large outputs: non-temporal stores give the same bits as ordinary ones', () => {
    type Out = Record<string, { sha: string; n: number; samples: number[] }>;
    for (const simd of T.nativeInfo().simd === 'avx512' ? [undefined, 'avx2'] : [undefined]) {
      const streamed = run(simd, STREAM_CHILD) as unknown as Out, plain = run(simd, STREAM_CHILD, { VLMOE_STREAM_STORES: '0' }) as unknown as Out;
      expect(Object.keys(streamed).length).toBe(12);
      expect(streamed, `VLMOE_SIMD=${simd ?? '(default)'}`).toEqual(plain);
      // and they are the ops' values (spot checks against plain JS arithmetic in float32)
      const { a, b } = streamed.inputs as unknown as { a: number[]; b: number[] };
      streamed.add!.samples.forEach((v, i) => expect(v).toBe(Math.fround(a[i]! + b[i]!)));
      streamed.div!.samples.forEach((v, i) => expect(v).toBe(Math.fround(a[i]! / b[i]!)));
      streamed.addScalar!.samples.forEach((v, i) => expect(v).toBe(Math.fround(a[i]! + Math.fround(0.3))));
    }
  });
});
