import { describe, expect, test } from 'vitest';
import { tensor, moeAssign } from '@vlmoe/tensor';
import { referenceRoute } from '../src/index.js';
import { rand } from './prng.js';


describe('native moeAssign (fused slot assignment) = the reference router', () => {
  test('position, probs and RTS on random routing with ties', () => {
    const r = rand(3);
    for (let trial = 0; trial < 200; trial++) {
      const E = 1 + Math.floor(r() * 8);
      const k = 1 + Math.floor(r() * Math.min(E, 3));
      const S = 1 + Math.floor(r() * 60);
      const logits = Float64Array.from({ length: S * E }, () => Math.round(r() * 6) / 2);
      const mode = ['position', 'probs', 'rts'][trial % 3]!;
      const rts = mode === 'rts' ? Float64Array.from({ length: S * k }, r) : undefined;
      const ref = referenceRoute(logits, S, {
        numExperts: E, k, capacityFactor: 0.3 + r(), minCapacity: Math.floor(r() * 3),
        dropPolicy: mode === 'probs' ? 'probs' : 'position', useRts: mode === 'rts', rtsPriorities: rts,
      });
      const expert = tensor(BigInt64Array.from(ref.expertIndex, (x) => BigInt(x)), { shape: [S, k] });
      let priority = null;
      if (mode === 'probs') priority = tensor(Float64Array.from({ length: S * k }, (_, a) => ref.gates[Math.floor(a / k) * E + ref.expertIndex[a]!]!), { shape: [S, k] });
      if (mode === 'rts') priority = tensor(rts!, { shape: [S, k] });
      const got = moeAssign(expert, { numExperts: E, capacity: ref.capacity, priority });
      expect(Array.from(got.slot.dataSync() as BigInt64Array, Number)).toEqual(Array.from(ref.slot));
      expect(Array.from(got.countsBefore.dataSync() as BigInt64Array, Number)).toEqual(Array.from(ref.countsBefore));
      expect(Array.from(got.countsAfter.dataSync() as BigInt64Array, Number)).toEqual(Array.from(ref.countsAfter));
      for (const t of [expert, priority, got.slot, got.countsBefore, got.countsAfter]) t?.dispose();
    }
  });

  test('bad input is refused clearly', () => {
    const ex = tensor(BigInt64Array.from([0n, 5n]), { shape: [2, 1] });
    expect(() => moeAssign(ex, { numExperts: 2, capacity: 1 })).toThrow(/expert index 5 at assignment 1 is outside \[0, 2\)/);
    expect(() => moeAssign(ex, { numExperts: 2, capacity: -1 })).toThrow(/capacity must be an integer ≥ 0/);
    expect(() => moeAssign(tensor(BigInt64Array.from([0n, 1n]), { shape: [2] }), { numExperts: 2, capacity: 1 })).toThrow(/expert must be \[S, k\]/);
    ex.dispose();
  });
});
