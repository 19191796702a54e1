import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { referenceRoute } from '../src/index.js';

interface Case {
  S: number;
  E: number;
  k: number;
  capacityFactor: number;
  minCapacity: number;
  dropTokens: boolean;
  dropPolicy: 'position' | 'probs';
  logits: number[];
  capacity: number;
  expert: number[][];
  slot: number[][];
  weight: number[][];
  exp_counts: number[];
  l_aux: number;
}

// made by test/fixtures/make_gating_fixtures.py: DeepSpeed's top1/top2/topk gating transcribed with PyTorch ops
const fixture = JSON.parse(readFileSync(new URL('./fixtures/gating.json', import.meta.url), 'utf8')) as { torch: string; cases: Case[] };

describe(`reference router = DeepSpeed gating transcribed in PyTorch ${fixture.torch}`, () => {
  test.each(fixture.cases.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
    const r = referenceRoute(c.logits, c.S, { numExperts: c.E, k: c.k, capacityFactor: c.capacityFactor, minCapacity: c.minCapacity, dropTokens: c.dropTokens, dropPolicy: c.dropPolicy });
    expect(r.capacity).toBe(c.capacity);
    expect(Array.from(r.expertIndex)).toEqual(c.expert.flat());
    expect(Array.from(r.slot)).toEqual(c.slot.flat());
    const w = c.weight.flat();
    r.combineWeight.forEach((x, a) => expect(x).toBeCloseTo(w[a]!, 12));
    expect(Array.from(r.expCounts)).toEqual(c.exp_counts);
    expect(r.auxLoss).toBeCloseTo(c.l_aux, 12);
  });
});
