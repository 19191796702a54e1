import { describe, expect, test } from 'vitest';
import { Rng, mixSeed } from '../src/rng.js';
import { DistributedSampler } from '../src/loader/sampler.js';

describe('Rng', () => {
  test('same seed → same sequence; keys give independent streams', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => new Rng(43).nextU32())).not.toEqual(xs.slice(0, 5));
    expect(mixSeed(1, 2, 3)).toBe(mixSeed(1, 2, 3));
    expect(mixSeed(1, 2, 3)).not.toBe(mixSeed(1, 3, 2));
    expect(Rng.forKey(7, 0, 1).random()).not.toBe(Rng.forKey(7, 1, 0).random());
  });

  test('uniform statistics (mean, variance, int range, normal moments)', () => {
    const r = new Rng(1);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    const counts = new Array(10).fill(0);
    let ns = 0;
    let ns2 = 0;
    for (let i = 0; i < n; i++) {
      const x = r.random();
      expect(x >= 0 && x < 1).toBe(true);
      s += x;
      s2 += x * x;
      counts[r.int(0, 10)]++;
      const z = r.normal();
      ns += z;
      ns2 += z * z;
    }
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
    // each bucket ~ n/10 ± 5 sigma
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    for (const c of counts) expect(Math.abs(c - n / 10)).toBeLessThan(5 * sigma);
    expect(Math.abs(ns / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(ns2 / n - 1)).toBeLessThan(0.02);
  });

  test('permutation is a permutation; bad ranges throw', () => {
    const p = new Rng(3).permutation(1000);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(() => new Rng(0).int(5, 5)).toThrow(/empty or invalid range \[5, 5\)/);
    expect(() => new Rng(0.5)).toThrow(/seed must be a safe integer/);
  });
});

describe('DistributedSampler', () => {
  test('ranks partition a padded epoch; same on every rank; new order each epoch', () => {
    const N = 103;
    const world = 4;
    const samplers = Array.from({ length: world }, (_, rank) => new DistributedSampler({ numSamples: N, seed: 5, rank, worldSize: world }));
    expect(samplers[0]!.length).toBe(26);
    const all = samplers.flatMap((s) => [...s.indices(0)]);
    expect(all.length).toBe(104); // padded by wrapping
    expect(new Set(all).size).toBe(N);
    const e1 = samplers.flatMap((s) => [...s.indices(1)]);
    expect(e1).not.toEqual(all);
    expect(new Set(e1).size).toBe(N);
    // dropLast: no padding, disjoint
    const d = Array.from({ length: world }, (_, rank) => new DistributedSampler({ numSamples: N, seed: 5, rank, worldSize: world, dropLast: true }));
    const dAll = d.flatMap((s) => [...s.indices(0)]);
    expect(dAll.length).toBe(100);
    expect(new Set(dAll).size).toBe(100);
  });

  test('no shuffle keeps file order, strided by rank', () => {
    const s = new DistributedSampler({ numSamples: 10, shuffle: false, rank: 1, worldSize: 3 });
    expect([...s.indices(0)]).toEqual([1, 4, 7, 0]);
  });
});
