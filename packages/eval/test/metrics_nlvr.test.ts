import { describe, expect, it } from 'vitest';
import { nlvr1SentenceKey, nlvr2SentenceKey, nlvrAccuracy, nlvrConsistency, nlvrEvaluate, type NlvrExample } from '../src/metrics/index.js';
import { prng, randInt } from './fixtures/metrics/prng.js';

describe('nlvrAccuracy', () => {
  it('counts matches; accepts booleans, 0/1 and "True"/"false" strings', () => {
    expect(nlvrAccuracy([true, false, true, true], [true, true, true, false])).toBe(0.5);
    expect(nlvrAccuracy(['True', 'false', 1, 0], [true, 'FALSE', 'true', false])).toBe(1);
    expect(nlvrAccuracy(new Uint8Array([1, 0, 1]), [1, 1, 1])).toBeCloseTo(2 / 3, 15);
  });
  it('rejects bad input', () => {
    expect(() => nlvrAccuracy([true], [true, false])).toThrow(/predictions has 1 entries but labels has 2/);
    expect(() => nlvrAccuracy([], [])).toThrow(/predictions is empty/);
    expect(() => nlvrAccuracy(['yes'], [true])).toThrow(/predictions\[0\]/);
    expect(() => nlvrAccuracy([true], [2])).toThrow(/labels\[0\]/);
  });
});

describe('sentence keys', () => {
  it('NLVR2: blank the pair field (official metrics.py)', () => {
    expect(nlvr2SentenceKey('dev-850-3-1')).toBe('dev-850--1');
    expect(nlvr2SentenceKey('test1-7-0-0')).toBe('test1-7--0');
    expect(() => nlvr2SentenceKey('dev-850')).toThrow(/split-setId-pairId-sentenceId/);
  });
  it('NLVR1: the sentence number (official metrics_images.py), keeping a split prefix', () => {
    expect(nlvr1SentenceKey('3776-0')).toBe('3776');
    expect(nlvr1SentenceKey('dev-3776-2')).toBe('dev-3776');
    expect(nlvr1SentenceKey('dev-3776-2-5')).toBe('dev-3776');
    expect(() => nlvr1SentenceKey('dev-x-1')).toThrow(/sentenceId/);
  });
});

describe('nlvrConsistency, crafted', () => {
  const ex = (identifier: string, prediction: boolean, label: boolean, sentence?: string): NlvrExample => ({ identifier, prediction, label, ...(sentence === undefined ? {} : { sentence }) });

  it('NLVR2 identifiers: a sentence counts only when right on every image pair', () => {
    const examples = [
      // set 10, sentence 0 over pairs 0..3: all right → consistent
      ex('dev-10-0-0', true, true),
      ex('dev-10-1-0', false, false),
      ex('dev-10-2-0', true, true),
      ex('dev-10-3-0', false, false),
      // set 10, sentence 1: one wrong → inconsistent
      ex('dev-10-0-1', true, true),
      ex('dev-10-1-1', true, false),
      // set 11, sentence 0: single example, right
      ex('dev-11-5-0', true, true),
      // set 12, sentence 3: all wrong
      ex('dev-12-0-3', true, false),
      ex('dev-12-1-3', false, true),
    ];
    const r = nlvrEvaluate(examples);
    expect(r.groups).toBe(4);
    expect(r.consistentGroups).toBe(2);
    expect(r.consistency).toBe(0.5);
    expect(r.accuracy).toBeCloseTo(6 / 9, 15);
    expect(nlvrConsistency(examples, { groupBy: 'nlvr2' })).toBe(0.5);
    // the same sentence id in another split or set is another sentence
    expect(nlvrConsistency([ex('dev-1-0-0', true, true), ex('test1-1-0-0', true, false), ex('dev-2-0-0', true, true)])).toBeCloseTo(2 / 3, 15);
  });

  it('NLVR1 identifiers: grouped by sentence number', () => {
    const examples = [ex('100-0', true, true), ex('100-1', true, true), ex('100-2', false, false), ex('100-3', true, true), ex('101-0', true, true), ex('101-1', false, true), ex('102-0', false, false)];
    expect(nlvrConsistency(examples)).toBeCloseTo(2 / 3, 15);
    expect(nlvrConsistency(examples, { groupBy: 'nlvr1' })).toBeCloseTo(2 / 3, 15);
    // per-image identifiers of NLVR1 (split-sentence-world-permutation) need the explicit rule
    const perImage = [ex('dev-100-0-0', true, true), ex('dev-100-0-1', true, true), ex('dev-100-1-0', true, true), ex('dev-101-0-0', false, true), ex('dev-101-0-1', true, true)];
    expect(nlvrConsistency(perImage, { groupBy: 'nlvr1' })).toBe(0.5);
  });

  it('groups by sentence text when every example has one', () => {
    const examples = [
      ex('dev-1-0-0', true, true, 'There are two dogs.'),
      ex('dev-1-1-0', true, true, 'There are two dogs.'),
      ex('dev-2-0-0', false, true, 'There are two dogs.'), // same text in another set: same group by text…
      ex('dev-3-0-0', true, true, 'A cat sleeps.'),
    ];
    expect(nlvrConsistency(examples)).toBe(0.5);
    expect(nlvrConsistency(examples, { groupBy: 'sentence' })).toBe(0.5);
    // …but a different sentence under the official identifier rule
    expect(nlvrConsistency(examples, { groupBy: 'nlvr2' })).toBeCloseTo(2 / 3, 15);
    // a mix with and without sentences falls back to identifiers
    expect(nlvrConsistency([...examples, ex('dev-4-0-0', true, true)])).toBe(0.75);
  });

  it('accepts a custom grouping', () => {
    const examples = [ex('a', true, true), ex('b', true, false), ex('c', true, true)];
    expect(nlvrConsistency(examples, { groupBy: (e) => (e.identifier === 'c' ? 'g2' : 'g1') })).toBe(0.5);
    expect(nlvrConsistency(examples, { groupBy: (e) => e.identifier })).toBeCloseTo(2 / 3, 15);
  });

  it('is 1 for perfect predictions and 0 when every group has a mistake', () => {
    const r = prng(3);
    const examples: NlvrExample[] = [];
    for (let s = 0; s < 50; s++) for (let p = 0; p < 1 + randInt(r, 4); p++) {
      const label = r() < 0.5;
      examples.push({ identifier: `dev-${s}-${p}-0`, prediction: label, label });
    }
    expect(nlvrConsistency(examples)).toBe(1);
    const flipped = examples.map((e) => (e.identifier.endsWith('-0-0') ? { ...e, prediction: !e.prediction } : e));
    expect(nlvrConsistency(flipped)).toBe(0);
  });

  it('matches a brute-force count on random data', () => {
    const r = prng(11);
    const examples: NlvrExample[] = [];
    for (let set = 0; set < 40; set++) for (let s = 0; s < 1 + randInt(r, 3); s++) for (let p = 0; p < 1 + randInt(r, 4); p++) {
      const label = r() < 0.5;
      examples.push({ identifier: `dev-${set}-${p}-${s}`, prediction: r() < 0.8 ? label : !label, label });
    }
    const groups = new Map<string, NlvrExample[]>();
    for (const e of examples) {
      const [a, b, , d] = e.identifier.split('-');
      const k = `${a}/${b}/${d}`;
      groups.set(k, [...(groups.get(k) ?? []), e]);
    }
    const expected = [...groups.values()].filter((g) => g.every((e) => e.prediction === e.label)).length / groups.size;
    expect(nlvrConsistency(examples)).toBe(expected);
  });

  it('rejects bad input', () => {
    expect(() => nlvrConsistency([])).toThrow(/examples is empty/);
    expect(() => nlvrConsistency([{ identifier: 'dev-1-0-0', prediction: 'maybe', label: true }])).toThrow(/examples\[0\]\.prediction/);
    expect(() => nlvrConsistency([{ identifier: 'x', prediction: true, label: true }], { groupBy: 'sentence' })).toThrow(/examples\[0\] has no sentence/);
    expect(() => nlvrConsistency([{ identifier: 'x', prediction: true, label: true }], { groupBy: 'bogus' as 'sentence' })).toThrow(/groupBy/);
    expect(() => nlvrConsistency([null as unknown as NlvrExample])).toThrow(/examples\[0\]/);
  });
});
