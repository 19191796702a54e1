import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance, nearestKey } from '../src/index.js';

describe('editDistance (optimal string alignment)', () => {
  it('counts insertions, deletions, substitutions and adjacent swaps', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('', 'ab')).toBe(2);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('optimizer', 'optimiser')).toBe(1);
    expect(editDistance('ab', 'ba')).toBe(1); // a swap is one edit (Levenshtein says 2)
    expect(editDistance('ca', 'abc')).toBe(3); // OSA, not unrestricted Damerau (2)
  });

  it('is symmetric on random words (and the triangle bound by one edit holds)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const word = () => Array.from({ length: Math.floor(rnd() * 8) }, () => 'abc'[Math.floor(rnd() * 3)]).join('');
    for (let i = 0; i < 200; i++) {
      const a = word(), b = word();
      expect(editDistance(a, b)).toBe(editDistance(b, a));
      expect(editDistance(a, b)).toBeLessThanOrEqual(Math.max(a.length, b.length));
      expect(editDistance(a, a + 'x')).toBe(1);
    }
  });
});

describe('nearestKey / didYouMean', () => {
  const keys = ['zero_optimization', 'train_batch_size', 'gradient_clipping', 'bf16'];

  it('finds a slip (British spelling, swapped letters, case, - for _)', () => {
    expect(nearestKey('zero_optimisation', keys)).toBe('zero_optimization');
    expect(nearestKey('trian_batch_size', keys)).toBe('train_batch_size');
    expect(nearestKey('Train-Batch-Size', keys)).toBe('train_batch_size');
    expect(didYouMean('gradient_cliping', keys)).toBe(" (did you mean 'gradient_clipping'?)");
  });

  it('says nothing when nothing is close, or nothing is known', () => {
    expect(nearestKey('learning_rate', keys)).toBeNull();
    expect(didYouMean('fp32', [])).toBe('');
    expect(didYouMean('xyz', keys)).toBe('');
  });

  it('puts a prefix before the suggestion (command-line options)', () => {
    expect(didYouMean('nproc-per-node', ['nproc_per_node', 'nnodes'], '--')).toBe(" (did you mean '--nproc_per_node'?)");
  });
});
