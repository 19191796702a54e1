import { describe, expect, test } from 'vitest';
import { referenceRoute, capacity } from '../src/index.js';
import { rand } from './prng.js';

/** Logits that make token s prefer the experts in `prefs[s]` (first = strongest). */
function logitsFor(prefs: number[][], E: number, strengths = [3, 2, 1]): Float64Array {
  const out = new Float64Array(prefs.length * E);
  prefs.forEach((p, s) => p.forEach((e, j) => (out[s * E + e] = strengths[j] ?? 0.5)));
  return out;
}


describe('reference router: hand-worked DeepSpeed cases', () => {
  test('capacity formula', () => {
    expect(capacity(4096, 8, 1, 1, 4)).toBe(512);
    expect(capacity(4096, 8, 1.25, 2, 4)).toBe(1280);
    expect(capacity(10, 8, 1, 1, 4)).toBe(4);
    expect(capacity(10, 3, 1, 1, 0)).toBe(4);
  });

  test('top-1, drop by position: the first C tokens of an over-full expert keep their slots', () => {
    const r = referenceRoute(logitsFor([[0], [0], [0], [0], [0], [1]], 2), 6, { numExperts: 2, minCapacity: 0 });
    expect(r.capacity).toBe(3);
    expect(Array.from(r.expertIndex)).toEqual([0, 0, 0, 0, 0, 1]);
    expect(Array.from(r.slot)).toEqual([0, 1, 2, -1, -1, 0]);
    expect(r.dropped).toBe(2);
    expect(Array.from(r.countsBefore)).toEqual([5, 1]);
    expect(Array.from(r.countsAfter)).toEqual([3, 1]);
    expect(r.combineWeight[3]).toBe(0);
    expect(r.combineWeight[0]).toBeCloseTo(Math.exp(3) / (Math.exp(3) + 1), 12);
    // l_aux = E · Σ_e me_e · ce_e
    const g0 = Math.exp(3) / (Math.exp(3) + 1);
    const me0 = (5 * g0 + (1 - g0)) / 6;
    expect(r.auxLoss).toBeCloseTo(2 * (me0 * (5 / 6) + (1 - me0) * (1 / 6)), 12);
  });

  test('top-2: second choices queue after all first choices; weights renormalised over kept choices', () => {
    // tokens 0-2: 0 then 1; token 3: 1 then 0
    const r = referenceRoute(logitsFor([[0, 1], [0, 1], [0, 1], [1, 0]], 3), 4, { numExperts: 3, k: 2, capacityFactor: 0.75, minCapacity: 0 });
    expect(r.capacity).toBe(2); // ceil(4/3 · 0.75 · 2)
    // expert 0 queue: first choices t0,t1,t2 then second choice t3 → keeps t0,t1
    // expert 1 queue: first choice t3, then second choices t0,t1,t2 → keeps t3, t0
    expect(Array.from(r.slot)).toEqual([0, 1, 1, -1, -1, -1, 0, -1]);
    expect(Array.from(r.countsBefore)).toEqual([4, 4, 0]);
    expect(Array.from(r.expCounts)).toEqual([3, 1, 0]);
    // token 0 keeps both: weights g0/(g0+g1), g1/(g0+g1); token 1 keeps only expert 0 → weight 1
    const g = [Math.exp(3), Math.exp(2), Math.exp(0)];
    expect(r.combineWeight[0]).toBeCloseTo(g[0]! / (g[0]! + g[1]!), 12);
    expect(r.combineWeight[2]).toBeCloseTo(1, 12);
    expect(r.combineWeight[3]).toBe(0);
    expect(r.combineWeight[4]! + r.combineWeight[5]!).toBe(0); // token 2: both dropped
  });

  test("'probs' (batch priority) keeps the most confident tokens; RTS keeps the highest priorities", () => {
    const E = 2;
    const logits = new Float64Array([2, 0, 5, 0, 1, 0, 4, 0]); // all to expert 0, confidence 2,5,1,4
    const p = referenceRoute(logits, 4, { numExperts: E, capacityFactor: 1, minCapacity: 0, dropPolicy: 'probs' });
    expect(p.capacity).toBe(2);
    expect(Array.from(p.slot)).toEqual([-1, 0, -1, 1]); // tokens 1 and 3 (5 and 4) kept, slots by position
    const rts = referenceRoute(logits, 4, { numExperts: E, minCapacity: 0, useRts: true, rtsPriorities: [0.9, 0.1, 0.8, 0.2] });
    expect(Array.from(rts.slot)).toEqual([0, -1, 1, -1]);
  });

  test('dropless and eval capacity', () => {
    const logits = logitsFor([[0], [0], [0], [0], [0], [1]], 2);
    const d = referenceRoute(logits, 6, { numExperts: 2, minCapacity: 0, dropTokens: false });
    expect(d.capacity).toBe(5);
    expect(d.dropped).toBe(0);
    const ev = referenceRoute(logits, 6, { numExperts: 2, minCapacity: 0, capacityFactor: 0.5, evalCapacityFactor: 2, training: false });
    expect(ev.capacity).toBe(6);
    const tr = referenceRoute(logits, 6, { numExperts: 2, minCapacity: 0, capacityFactor: 0.5, evalCapacityFactor: 2, training: true });
    expect(tr.capacity).toBe(2);
  });

  test('balanced uniform routing gives auxLoss 1 for every k; zLoss is mean logsumexp²', () => {
    for (const k of [1, 2, 3]) {
      const E = 4;
      const S = 8;
      const logits = new Float64Array(S * E); // uniform gates; ties → choices 0..k-1 for every token
      // make choices balanced by rotating tiny preferences
      for (let s = 0; s < S; s++) for (let j = 0; j < k; j++) logits[s * E + ((s + j) % E)] = 1e-12 * (k - j);
      const r = referenceRoute(logits, S, { numExperts: E, k, minCapacity: 0 });
      expect(r.auxLoss).toBeCloseTo(1, 9);
      expect(r.zLoss).toBeCloseTo(Math.log(4) ** 2, 9);
    }
  });

  test('bad options are refused with the option named', () => {
    expect(() => referenceRoute(new Float64Array(4), 2, { numExperts: 2, k: 3 })).toThrow(/k must be an integer in \[1, numExperts = 2\]/);
    expect(() => referenceRoute(new Float64Array(3), 2, { numExperts: 2 })).toThrow(/logits has 3 values, expected S·E = 2·2/);
    expect(() => referenceRoute(new Float64Array(4), 2, { numExperts: 2, useRts: true })).toThrow(/useRts needs rtsPriorities/);
    expect(() => referenceRoute(new Float64Array(4), 2, { numExperts: 2, dropPolicy: 'random' as never })).toThrow(/dropPolicy must be/);
  });
});

describe('reference router: invariants on random logits (ties included)', () => {
  test('counts, slots, weights, drops', () => {
    const r = rand(7);
    for (let trial = 0; trial < 300; trial++) {
      const E = 1 + Math.floor(r() * 8);
      const k = 1 + Math.floor(r() * Math.min(E, 4));
      const S = 1 + Math.floor(r() * 40);
      const logits = Float64Array.from({ length: S * E }, () => Math.round(r() * 6) / 2 - 1.5); // few levels → ties
      const dropTokens = r() < 0.8;
      const policy = r() < 0.33 ? 'probs' : 'position';
      const useRts = policy === 'position' && r() < 0.3;
      const opts = { numExperts: E, k, capacityFactor: 0.25 + r() * 1.5, minCapacity: Math.floor(r() * 3), dropTokens, dropPolicy: policy, useRts, rtsPriorities: useRts ? Float64Array.from({ length: S * k }, r) : undefined } as const;
      const res = referenceRoute(logits, S, opts);
      expect(res.countsBefore.reduce((a, b) => a + b, 0)).toBe(S * k);
      expect(res.countsAfter.reduce((a, b) => a + b, 0)).toBe(S * k - res.dropped);
      if (!dropTokens) expect(res.dropped).toBe(0);
      for (let e = 0; e < E; e++) {
        expect(res.countsAfter[e]).toBeLessThanOrEqual(res.capacity);
        const slots: number[] = [];
        for (let a = 0; a < S * k; a++) if (res.expertIndex[a] === e && res.slot[a]! >= 0) slots.push(res.slot[a]!);
        expect(slots.sort((x, y) => x - y)).toEqual(Array.from({ length: res.countsAfter[e]! }, (_, i) => i));
      }
      for (let s = 0; s < S; s++) {
        const chosen = new Set<number>();
        let sum = 0;
        let kept = 0;
        for (let j = 0; j < k; j++) {
          chosen.add(res.expertIndex[s * k + j]!);
          sum += res.combineWeight[s * k + j]!;
          if (res.slot[s * k + j]! >= 0) kept++;
          else expect(res.combineWeight[s * k + j]).toBe(0);
        }
        expect(chosen.size).toBe(k); // k distinct experts
        if (k >= 2 && kept > 0) expect(sum).toBeCloseTo(1, 12);
      }
    }
  });
});
