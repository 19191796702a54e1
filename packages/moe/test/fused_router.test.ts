import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { referenceExpertChoice, referenceRoute, route, compactRows, TopKGate, type RouterOptions, type RouteResult, type GateOutput } from '../src/index.js';
import { rand } from './prng.js';
import { expectSameAsReference as expectSame, floats, ints, randomLogits } from './router_util.js';

describe('fused router agrees with the float64 reference', () => {
  const cases: { name: string; o: Omit<RouterOptions, 'numExperts'> & { training?: boolean } }[] = [
    { name: 'top-1 position', o: { k: 1 } },
    { name: 'top-1 position cf 0.5', o: { k: 1, capacityFactor: 0.5, minCapacity: 1 } },
    { name: 'top-1 probs', o: { k: 1, dropPolicy: 'probs', capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'top-1 rts', o: { k: 1, useRts: true, capacityFactor: 0.6, minCapacity: 0 } },
    { name: 'top-1 dropless', o: { k: 1, dropTokens: false } },
    { name: 'top-1 eval cf', o: { k: 1, capacityFactor: 2, evalCapacityFactor: 0.5, minCapacity: 0, training: false } },
    { name: 'top-2 position', o: { k: 2, capacityFactor: 0.8, minCapacity: 0 } },
    { name: 'top-2 probs', o: { k: 2, dropPolicy: 'probs', capacityFactor: 0.6, minCapacity: 0 } },
    { name: 'top-2 rts', o: { k: 2, useRts: true, capacityFactor: 0.6, minCapacity: 2 } },
    { name: 'top-2 dropless', o: { k: 2, dropTokens: false } },
    { name: 'top-3 position', o: { k: 3, capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'top-3 probs', o: { k: 3, dropPolicy: 'probs', capacityFactor: 0.5, minCapacity: 0 } },
    { name: 'top-4 big capacity', o: { k: 4, capacityFactor: 4, minCapacity: 4 } },
  ];
  for (const E of [4, 7]) {
    for (const { name, o } of cases) {
      if ((o.k ?? 1) > E) continue;
      for (const levels of [0, 3]) {
        test(`${name}, E=${E}${levels ? ', many ties' : ''}`, () => {
          const S = 53;
          const logits = randomLogits(S, E, 17 * E + (levels + 1) * (o.k ?? 1) + name.length, levels);
          const k = o.k ?? 1;
          const r = rand(99);
          const rts = Float64Array.from({ length: S * k }, r);
          const ref = referenceRoute(logits, S, { numExperts: E, ...o, rtsPriorities: o.useRts ? rts : undefined });
          const got = route(T.tensor(logits, { dtype: 'float64', shape: [S, E] }), {
            numExperts: E, ...o, rtsPriorities: o.useRts ? T.tensor(rts, { dtype: 'float64', shape: [S, k] }) : null,
          });
          expectSame(got, ref, name);
          if (o.dropTokens === false) expect(got.dropped).toBe(0);
          expect(ints(got.countsBefore).reduce((a, b) => a + b, 0)).toBe(S * k);
        });
      }
    }
  }

  test('noisy selection scores (RSample) and second-expert sampling pick experts; gates stay clean', () => {
    const S = 41, E = 6;
    const logits = randomLogits(S, E, 5);
    const sel = logits.map((v, i) => v + Math.sin(i) * 2);
    const sel2 = logits.map((v, i) => v + Math.cos(3 * i) * 2);
    for (const k of [1, 2, 3]) {
      const ref = referenceRoute(logits, S, { numExperts: E, k, capacityFactor: 0.9, minCapacity: 0, selectLogits: sel, secondSelectLogits: sel2 });
      const t = (a: Float64Array) => T.tensor(a, { dtype: 'float64', shape: [S, E] });
      const got = route(t(logits), { numExperts: E, k, capacityFactor: 0.9, minCapacity: 0, selectLogits: t(sel), secondSelectLogits: t(sel2) });
      expectSame(got, ref, `k=${k}`);
    }
  });

  for (const [E, cf, levels] of [[4, 1, 0], [5, 0.5, 0], [3, 2, 3], [8, 1, 3]] as const) {
    test(`expert choice E=${E} cf=${cf}${levels ? ' with ties' : ''}`, () => {
      const S = 37;
      const logits = randomLogits(S, E, 31 + E, levels);
      const ref = referenceExpertChoice(logits, S, { numExperts: E, capacityFactor: cf, minCapacity: 2 });
      const got = route(T.tensor(logits, { dtype: 'float64', shape: [S, E] }), { numExperts: E, capacityFactor: cf, minCapacity: 2, policy: 'expert-choice' });
      expectSame(got, ref, 'expert choice');
      expect(got.k).toBe(E);
    });
  }

  test('float32 logits route like float64 when values are well separated', () => {
    const S = 64, E = 8;
    const logits = randomLogits(S, E, 77);
    const ref = referenceRoute(logits, S, { numExperts: E, k: 2, capacityFactor: 0.75 });
    const got = route(T.tensor(logits, { dtype: 'float32', shape: [S, E] }), { numExperts: E, k: 2, capacityFactor: 0.75 });
    expect(ints(got.slot)).toEqual(Array.from(ref.slot));
    floats(got.combineWeight).forEach((v, i) => expect(v).toBeCloseTo(ref.combineWeight[i]!, 5));
    expect(got.auxLoss.item()).toBeCloseTo(ref.auxLoss, 5);
  });

  test('compact rows: expert-contiguous, slot order inside each expert, dropped → −1', () => {
    const S = 30, E = 4;
    const got = route(T.tensor(randomLogits(S, E, 3), { dtype: 'float64', shape: [S, E] }), { numExperts: E, k: 2, capacityFactor: 0.5, minCapacity: 0 });
    const { row, groupSizes, numRows } = compactRows(got);
    expect(groupSizes).toEqual(ints(got.countsAfter));
    expect(numRows).toBe(groupSizes.reduce((a, b) => a + b, 0));
    const rows = ints(row), ex = ints(got.expertIndex), sl = ints(got.slot);
    const offs = groupSizes.map((_, e) => groupSizes.slice(0, e).reduce((a, b) => a + b, 0));
    rows.forEach((r, a) => expect(r).toBe(sl[a]! < 0 ? -1 : offs[ex[a]!]! + sl[a]!));
    expect(new Set(rows.filter((r) => r >= 0)).size).toBe(numRows);
  });

  test('bad logits and options are named', () => {
    expect(() => route(T.zeros([3, 4], { dtype: 'float64' }), { numExperts: 5 })).toThrow(/logits must be \[S, numExperts = 5\]/);
    expect(() => route(T.zeros([3, 4], { dtype: 'float64' }), { numExperts: 4, useRts: true })).toThrow(/useRts needs rtsPriorities/);
    expect(() => route(T.zeros([3, 4], { dtype: 'float64' }), { numExperts: 4, selectLogits: T.zeros([3, 3]) })).toThrow(/selectLogits must be \[3, 4\]/);
    expect(() => route(T.zeros([3, 4], { dtype: 'float64' }), { numExperts: 4, policy: 'foo' as never })).toThrow(/policy must be/);
    expect(() => route(T.zeros([3, 4], { dtype: 'int64' }), { numExperts: 4 })).toThrow(/float32 or float64/);
  });
});

describe('TopKGate', () => {
  test('same seed → same routing, with every kind of noise; different seed → different', () => {
    const x = T.randn([96, 16], { generator: new T.Generator(1) });
    const make = (seed: number) => new TopKGate({ hiddenSize: 16, numExperts: 8, k: 2, noisyGatePolicy: 'RSample', top2SecondExpertSampling: true, useRts: true, capacityFactor: 0.5, generator: new T.Generator(seed) });
    const a = make(5).forward(x), b = make(5).forward(x), c = make(6).forward(x);
    expect(ints(a.slot)).toEqual(ints(b.slot));
    expect(ints(a.expertIndex)).toEqual(ints(b.expertIndex));
    expect(ints(a.expertIndex)).not.toEqual(ints(c.expertIndex));
  });

  test('eval mode: no noise, eval capacity factor', () => {
    const x = T.randn([64, 8], { generator: new T.Generator(2) });
    const g = new TopKGate({ hiddenSize: 8, numExperts: 4, noisyGatePolicy: 'RSample', capacityFactor: 2, evalCapacityFactor: 0.5, minCapacity: 0, generator: new T.Generator(3) });
    g.eval();
    const r1 = g.forward(x), r2 = g.forward(x);
    expect(r1.capacity).toBe(8);
    expect(ints(r1.expertIndex)).toEqual(ints(r2.expertIndex));
    // clean argmax of the logits
    const logits = T.noGrad(() => g.logits(x));
    expect(ints(r1.expertIndex)).toEqual(ints(T.argmax(logits, 1)));
    g.train();
    expect(g.forward(x).capacity).toBe(32);
  });

  test('Jitter changes the router input only in training', () => {
    const x = T.randn([32, 8], { generator: new T.Generator(4) });
    const g = new TopKGate({ hiddenSize: 8, numExperts: 4, noisyGatePolicy: 'Jitter', generator: new T.Generator(3) });
    const clean = floats(T.noGrad(() => g.wg.forward(x)));
    const noisy = floats(T.noGrad(() => g.logits(x)));
    expect(noisy).not.toEqual(clean);
    noisy.forEach((v, i) => expect(Math.abs(v - clean[i]!)).toBeLessThan(0.05 * (Math.abs(clean[i]!) + 1)));
    g.eval();
    expect(floats(T.noGrad(() => g.logits(x)))).toEqual(clean);
  });

  test('router weights get gradients through the combine weights and both losses', () => {
    const g = new TopKGate({ hiddenSize: 6, numExperts: 3, k: 2, dtype: 'float64' });
    const x = T.randn([20, 6], { dtype: 'float64', generator: new T.Generator(9) });
    const r = g.forward(x);
    T.add(T.add(T.sum(T.mul(r.combineWeight, T.randn([20, 2], { dtype: 'float64' }))), r.auxLoss), r.zLoss).backward();
    expect(g.wg.weight.grad).toBeTruthy();
    expect(floats(g.wg.weight.grad!).some((v) => v !== 0)).toBe(true);
  });
});
