/**
 * The routing options of today's systems (Megatron-Core / DeepSeek-V3 names): sigmoid scores,
 * softmax before or after top-k, and the aux-loss-free expert bias — against the float64
 * reference, by finite differences, and the bias update's arithmetic.
 */
import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { referenceRoute, route, TopKGate, type RouteOptions, type RouterOptions } from '../src/index.js';
import { rand } from './prng.js';
import { expectSameAsReference, floats, ints, lossOf, randomLogits } from './router_util.js';

const f64 = (data: ArrayLike<number>, shape: number[]) => T.tensor(Array.from(data), { dtype: 'float64', shape });

describe('sigmoid scores, preSoftmax and the expert bias agree with the float64 reference', () => {
  const cases: { name: string; o: Omit<RouterOptions, 'numExperts'>; bias?: boolean }[] = [
    { name: 'sigmoid top-1', o: { k: 1, scoreFunction: 'sigmoid', capacityFactor: 0.8, minCapacity: 0 } },
    { name: 'sigmoid top-2', o: { k: 2, scoreFunction: 'sigmoid', capacityFactor: 0.8, minCapacity: 0 } },
    { name: 'sigmoid top-3 probs', o: { k: 3, scoreFunction: 'sigmoid', dropPolicy: 'probs', capacityFactor: 0.6, minCapacity: 0 } },
    { name: 'sigmoid top-2 dropless', o: { k: 2, scoreFunction: 'sigmoid', dropTokens: false } },
    { name: 'preSoftmax top-1', o: { k: 1, preSoftmax: true, capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'preSoftmax top-2', o: { k: 2, preSoftmax: true, capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'post-softmax top-1', o: { k: 1, preSoftmax: false, capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'post-softmax top-2', o: { k: 2, preSoftmax: false, capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'softmax + bias top-1', o: { k: 1, enableExpertBias: true, capacityFactor: 0.9, minCapacity: 0 }, bias: true },
    { name: 'softmax + bias top-2 probs', o: { k: 2, enableExpertBias: true, dropPolicy: 'probs', capacityFactor: 0.7, minCapacity: 0 }, bias: true },
    { name: 'sigmoid + bias top-2 (DeepSeek-V3)', o: { k: 2, scoreFunction: 'sigmoid', enableExpertBias: true, capacityFactor: 1, minCapacity: 0 }, bias: true },
    { name: 'sigmoid + bias top-4 dropless', o: { k: 4, scoreFunction: 'sigmoid', enableExpertBias: true, dropTokens: false }, bias: true },
  ];
  for (const E of [4, 7]) {
    for (const { name, o, bias } of cases) {
      if ((o.k ?? 1) > E) continue;
      for (const levels of [0, 3]) {
        test(`${name}, E=${E}${levels ? ', many ties' : ''}`, () => {
          const S = 41;
          const logits = randomLogits(S, E, 31 * E + 7 * (o.k ?? 1) + name.length + levels, levels);
          const r = rand(5 + E);
          // biases as large as the scores' spread: they change the choices
          const b = bias ? Array.from({ length: E }, () => (r() - 0.5) * (o.scoreFunction === 'sigmoid' ? 0.6 : 0.3)) : undefined;
          const ref = referenceRoute(logits, S, { numExperts: E, ...o, expertBias: b });
          const got = route(f64(logits, [S, E]), { numExperts: E, ...o, expertBias: b ? f64(b, [E]) : null });
          expectSameAsReference(got, ref, name);
          if (o.dropTokens === false) expect(got.dropped).toBe(0);
        });
      }
    }
  }

  const groupCases: { name: string; o: Omit<RouterOptions, 'numExperts'>; bias?: boolean }[] = [
    { name: 'groups 2, top-1 group, softmax top-2', o: { k: 2, numGroups: 2, groupTopK: 1, capacityFactor: 0.8, minCapacity: 0 } },
    { name: 'groups 4, top-2 groups, sigmoid + bias top-4 (DeepSeek-V3)', o: { k: 4, numGroups: 4, groupTopK: 2, scoreFunction: 'sigmoid', enableExpertBias: true, dropTokens: false }, bias: true },
    { name: 'groups 4, top-1 group, top-1 probs', o: { k: 1, numGroups: 4, groupTopK: 1, dropPolicy: 'probs', capacityFactor: 0.7, minCapacity: 0 } },
    { name: 'groups 2, both groups, top-3', o: { k: 3, numGroups: 2, groupTopK: 2, capacityFactor: 0.9, minCapacity: 0 } },
  ];
  for (const { name, o, bias } of groupCases) {
    for (const levels of [0, 3]) {
      test(`${name}, E=8${levels ? ', many ties' : ''}: the reference's choices, and every token's experts in at most groupTopK groups`, () => {
        const S = 37, E = 8;
        const logits = randomLogits(S, E, 101 + name.length + levels, levels);
        const r = rand(17);
        const b = bias ? Array.from({ length: E }, () => (r() - 0.5) * 0.4) : undefined;
        const ref = referenceRoute(logits, S, { numExperts: E, ...o, expertBias: b });
        const got = route(f64(logits, [S, E]), { numExperts: E, ...o, expertBias: b ? f64(b, [E]) : null });
        expectSameAsReference(got, ref, name);
        const idx = ints(got.expertIndex), k = o.k!, per = E / o.numGroups!;
        for (let t = 0; t < S; t++) expect(new Set(idx.slice(t * k, (t + 1) * k).map((e) => Math.floor(e / per))).size).toBeLessThanOrEqual(o.groupTopK!);
      });
    }
  }

  for (const o of [{ k: 1 }, { k: 2, capacityFactor: 0.7, minCapacity: 0 }, { k: 3, scoreFunction: 'sigmoid' as const, dropTokens: false }, { k: 2, enableExpertBias: true, numGroups: 2, groupTopK: 1 }]) {
    test(`seq_aux_loss (DeepSeek-V3, per sequence): the reference's value, finite differences (${JSON.stringify(o)})`, () => {
      const S = 30, E = 6;
      const logits = randomLogits(S, E, 7 + o.k);
      const seq = Array.from({ length: S }, (_, i) => [3, 9, 4][i % 3]!); // interleaved sequences with arbitrary labels
      const b = o.enableExpertBias ? [0.02, -0.01, 0, 0.03, 0, -0.02] : undefined;
      const opts = { numExperts: E, ...o, loadBalancingType: 'seq_aux_loss' as const };
      const ref = referenceRoute(logits, S, { ...opts, sequenceIds: seq, expertBias: b });
      const got = route(f64(logits, [S, E]), { ...opts, sequenceIds: seq, expertBias: b ? f64(b, [E]) : null });
      expectSameAsReference(got, ref, 'seq_aux_loss');
      const x = f64(logits, [S, E]).requiresGrad_(true);
      const res = T.gradcheck((y) => route(y, { ...opts, sequenceIds: seq, expertBias: b ? f64(b, [E]) : null }).auxLoss, [x], { eps: 1e-6, atol: 1e-8, rtol: 1e-5 });
      expect(res.ok, JSON.stringify(res.failure)).toBe(true);
    });
  }

  test("seq_aux_loss over one sequence at k = 1 is DeepSpeed's aux loss; it needs the sequence ids", () => {
    const S = 25, E = 5;
    const x = f64(randomLogits(S, E, 4), [S, E]);
    const one = route(x, { numExperts: E, loadBalancingType: 'seq_aux_loss', sequenceIds: new Array(S).fill(0) }).auxLoss.item();
    expect(Math.abs(one - route(x, { numExperts: E }).auxLoss.item())).toBeLessThan(1e-12);
    expect(() => route(x, { numExperts: E, loadBalancingType: 'seq_aux_loss' })).toThrow(/needs each token's sequenceIds/);
    expect(() => route(x, { numExperts: E, policy: 'expert-choice', loadBalancingType: 'seq_aux_loss' })).toThrow(/loadBalancingType 'seq_aux_loss' apply to token-choice routing/);
  });

  test('the bias decides the choices and never the weights: a large bias sends every token to its expert, weighted by its own score', () => {
    const S = 20, E = 5;
    const logits = randomLogits(S, E, 3);
    for (const scoreFunction of ['softmax', 'sigmoid'] as const) {
      const b = [0, 0, 10, 0, 0];
      const g = route(f64(logits, [S, E]), { numExperts: E, k: 1, scoreFunction, enableExpertBias: true, dropTokens: false, expertBias: f64(b, [E]) });
      expect(ints(g.expertIndex)).toEqual(new Array(S).fill(2));
      const w = floats(g.combineWeight);
      for (let s = 0; s < S; s++) {
        const row = logits.slice(s * E, (s + 1) * E);
        const want = scoreFunction === 'sigmoid' ? 1 / (1 + Math.exp(-row[2]!)) : Math.exp(row[2]!) / row.reduce((a, x) => a + Math.exp(x), 0);
        expect(Math.abs(w[s]! - want)).toBeLessThan(1e-12);
      }
    }
  });

  test('sigmoid top-k weights sum to 1 over the chosen; post-softmax top-1 weighs 1; preSoftmax keeps the softmax value', () => {
    const S = 16, E = 6;
    const x = f64(randomLogits(S, E, 8), [S, E]);
    const sig = route(x, { numExperts: E, k: 3, scoreFunction: 'sigmoid', dropTokens: false });
    const w = floats(sig.combineWeight);
    for (let s = 0; s < S; s++) expect(Math.abs(w[3 * s]! + w[3 * s + 1]! + w[3 * s + 2]! - 1)).toBeLessThan(1e-12);
    expect(floats(route(x, { numExperts: E, k: 1, preSoftmax: false, dropTokens: false }).combineWeight).every((v) => Math.abs(v - 1) < 1e-15)).toBe(true);
    const pre = route(x, { numExperts: E, k: 2, preSoftmax: true, dropTokens: false });
    const gates = floats(pre.gates), idx = ints(pre.expertIndex), pw = floats(pre.combineWeight);
    for (let a = 0; a < 2 * S; a++) expect(pw[a]).toBe(gates[Math.floor(a / 2) * E + idx[a]!]);
  });

  test('float64 finite differences through sigmoid (k = 1, 2, 3), post-softmax (k = 2) and the biased choice', () => {
    const S = 6, E = 5;
    const variants: RouteOptions[] = [
      { numExperts: E, k: 1, scoreFunction: 'sigmoid' },
      { numExperts: E, k: 2, scoreFunction: 'sigmoid' },
      { numExperts: E, k: 3, scoreFunction: 'sigmoid', enableExpertBias: true, expertBias: f64([0.1, -0.2, 0.05, 0, 0.3], [E]) },
      { numExperts: E, k: 2, preSoftmax: false },
      { numExperts: E, k: 2, preSoftmax: true, enableExpertBias: true, expertBias: f64([0.02, -0.05, 0, 0.04, 0], [E]) },
    ];
    variants.forEach((opts, v) => {
      const k = opts.k!;
      const x = f64(randomLogits(S, E, 40 + v), [S, E]);
      x.requiresGrad_(true);
      const r = rand(70 + v);
      const A = f64(Array.from({ length: S * k }, () => r() * 2 - 1), [S, k]);
      const B = f64(Array.from({ length: S * E }, () => r() - 0.5), [S, E]);
      // capacity 1 per expert: drops happen, and the discrete routing is fixed near x
      const res = T.gradcheck((y) => lossOf(route(y, { ...opts, capacityFactor: 0.5, minCapacity: 1 }), A, B), [x], { eps: 1e-6, atol: 1e-7, rtol: 1e-5 });
      expect(res.ok, `variant ${v}: ${JSON.stringify(res.failure)}`).toBe(true);
    });
  });

  test('bad combinations are named', () => {
    const x = f64(randomLogits(4, 3, 1), [4, 3]);
    expect(() => route(x, { numExperts: 3, scoreFunction: 'sigmoid', preSoftmax: true })).toThrow(/preSoftmax .* does not apply to scoreFunction 'sigmoid'/);
    expect(() => route(x, { numExperts: 3, enableExpertBias: true })).toThrow(/enableExpertBias needs expertBias/);
    expect(() => route(x, { numExperts: 3, expertBias: f64([0, 0, 0], [3]) })).toThrow(/expertBias is given but enableExpertBias is not set/);
    expect(() => route(x, { numExperts: 3, enableExpertBias: true, expertBias: f64([0, 0], [2]) })).toThrow(/expertBias must be \[3\]/);
    expect(() => route(x, { numExperts: 3, policy: 'expert-choice', scoreFunction: 'sigmoid' })).toThrow(/scoreFunction 'sigmoid' apply to token-choice routing/);
    expect(() => route(x, { numExperts: 3, enableExpertBias: true, biasUpdateRate: -1, expertBias: f64([0, 0, 0], [3]) })).toThrow(/biasUpdateRate must be a finite number ≥ 0/);
    expect(() => new TopKGate({ numExperts: 3, hiddenSize: 4, policy: 'expert-choice', enableExpertBias: true })).toThrow(/not expert choice/);
    const y = f64(randomLogits(4, 8, 1), [4, 8]);
    expect(() => route(y, { numExperts: 8, k: 2, numGroups: 3, groupTopK: 1 })).toThrow(/numGroups must be an integer ≥ 1 dividing numExperts = 8/);
    expect(() => route(y, { numExperts: 8, k: 2, numGroups: 4, groupTopK: 3 })).toThrow(/groupTopK must be an integer in \[1, min\(numGroups = 4, k = 2\)\]/);
    expect(() => route(y, { numExperts: 8, k: 4, numGroups: 4, groupTopK: 1 })).toThrow(/groupTopK = 1 groups of 2 experts cannot hold k = 4 choices/);
    expect(() => route(y, { numExperts: 8, k: 2, numGroups: 4 })).toThrow(/needs both numGroups and groupTopK/);
  });
});

describe('TopKGate: the aux-loss-free expert bias', () => {
  test('a buffer of zeros in the state dict; training forwards count the loads, eval ones do not; the update moves by rate · sign(mean − load)', () => {
    const E = 4, d = 8;
    const gate = new TopKGate({ numExperts: E, hiddenSize: d, k: 2, enableExpertBias: true, biasUpdateRate: 0.01, generator: new T.Generator(3) });
    expect(Object.keys(gate.stateDict())).toEqual(['wg.weight', 'expertBias']);
    expect(floats(gate.expertBias!)).toEqual([0, 0, 0, 0]);
    const x = T.randn([30, d], { generator: new T.Generator(4) });
    const c1 = ints(gate.forward(x).countsBefore), c2 = ints(gate.forward(x).countsBefore);
    gate.eval();
    gate.forward(x);
    gate.train();
    const load = c1.map((c, e) => c + c2[e]!);
    expect(Array.from(gate.pendingLoad!)).toEqual(load);
    const mean = load.reduce((a, b) => a + b, 0) / E;
    expect(Array.from(gate.updateExpertBias()!)).toEqual(load);
    const want = load.map((l) => Math.fround(0.01 * Math.sign(mean - l)));
    expect(floats(gate.expertBias!)).toEqual(want);
    expect(Array.from(gate.pendingLoad!)).toEqual([0, 0, 0, 0]);
    // no forward since: the update leaves the bias where it is
    gate.updateExpertBias();
    expect(floats(gate.expertBias!)).toEqual(want);
  });

  test('the bias balances a router that favours one expert: max/mean load falls from > 2 to < 1.4 without touching the router weights', () => {
    const E = 8, d = 16, S = 512;
    const gate = new TopKGate({ numExperts: E, hiddenSize: d, k: 2, scoreFunction: 'sigmoid', enableExpertBias: true, dropTokens: false, biasUpdateRate: 2e-3, generator: new T.Generator(11) });
    // a skewed router: expert 0 and 1 score high for most tokens
    T.noGrad(() => {
      const w = gate.wg.weight;
      T.copy_(w, T.mul(w, 0.3));
      T.copy_(w.narrow(0, 0, 2), T.add(w.narrow(0, 0, 2), 0.4));
    });
    const x = T.add(T.randn([S, d], { generator: new T.Generator(12) }), 0.5);
    const ratio = () => {
      const c = ints(gate.forward(x).countsBefore);
      return Math.max(...c) / (c.reduce((a, b) => a + b, 0) / E);
    };
    const w0 = floats(gate.wg.weight);
    const first = ratio();
    gate.updateExpertBias();
    for (let i = 0; i < 400; i++) {
      ratio();
      gate.updateExpertBias();
    }
    const last = ratio();
    expect(first, `max/mean load at first`).toBeGreaterThan(2);
    // sign steps of a fixed size: the loads settle within a few tokens of the mean and wobble there
    expect(last, `max/mean load after 400 updates (first ${first})`).toBeLessThan(1.4);
    expect(floats(gate.wg.weight)).toEqual(w0);
  });
});
