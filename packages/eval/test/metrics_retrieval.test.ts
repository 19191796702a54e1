import { describe, expect, it } from 'vitest';
import { retrievalMetrics, retrievalPercent, type ScoreBlockProvider } from '../src/metrics/index.js';
import { prng, randInt } from './fixtures/metrics/prng.js';

/** Sort-based reference: full rankings by (score desc, index asc). */
function bruteForce(scores: ArrayLike<number>, nI: number, nT: number, textToImage: ArrayLike<number>, ks: number[]) {
  const order = (vals: number[]) => vals.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((x) => x[1]);
  const trRank: number[] = [];
  for (let i = 0; i < nI; i++) {
    const ranked = order(Array.from({ length: nT }, (_, t) => scores[i * nT + t]!));
    const pos = ranked.findIndex((t) => textToImage[t] === i);
    trRank.push(pos);
  }
  const irRank: number[] = [];
  for (let t = 0; t < nT; t++) {
    const ranked = order(Array.from({ length: nI }, (_, i) => scores[i * nT + t]!));
    irRank.push(ranked.indexOf(textToImage[t]!));
  }
  const tr: Record<number, number> = {};
  const ir: Record<number, number> = {};
  for (const k of ks) {
    tr[k] = trRank.filter((r) => r >= 0 && r < k).length / nI;
    ir[k] = irRank.filter((r) => r < k).length / nT;
  }
  return { tr, ir, trRank, irRank };
}

function randomProblem(seed: number, nI: number, captions: (r: () => number) => number, levels: number, f64 = false) {
  const r = prng(seed);
  const t2i: number[] = [];
  for (let i = 0; i < nI; i++) for (let c = captions(r); c > 0; c--) t2i.push(i);
  // shuffle the text order so captions of an image are not contiguous
  for (let k = t2i.length - 1; k > 0; k--) {
    const j = randInt(r, k + 1);
    [t2i[k], t2i[j]] = [t2i[j]!, t2i[k]!];
  }
  const nT = t2i.length;
  const scores = f64 ? new Float64Array(nI * nT) : new Float32Array(nI * nT);
  for (let i = 0; i < nI; i++) for (let t = 0; t < nT; t++) scores[i * nT + t] = randInt(r, levels) / 4 + (t2i[t] === i && r() < 0.5 ? 0.5 : 0);
  return { scores, nI, nT, textToImage: Int32Array.from(t2i) };
}

const provider = (scores: Float32Array | Float64Array, nI: number, nT: number, blockRows: number): ScoreBlockProvider => ({
  numImages: nI,
  numTexts: nT,
  blockRows,
  scoreBlock: (r0, r1) => scores.slice(r0 * nT, r1 * nT),
});

describe('retrievalMetrics, hand-worked', () => {
  it('breaks ties by the lower index', () => {
    // 2 images × 2 texts, all scores equal: order is index order both ways
    const r = retrievalMetrics(new Float32Array([1, 1, 1, 1]), Int32Array.from([0, 1]), { ks: [1, 2], ranks: true });
    expect(Array.from(r.ranks!.tr)).toEqual([0, 1]);
    expect(Array.from(r.ranks!.ir)).toEqual([0, 1]);
    expect(r.tr).toEqual({ 1: 0.5, 2: 1 });
    expect(r.ir).toEqual({ 1: 0.5, 2: 1 });
  });

  it('TR takes the best caption; IR ranks the image among all images', () => {
    // images 0,1,2; texts 0,1 → image 0, text 2 → image 1, text 3 → image 2
    const s = new Float64Array([
      // t0   t1   t2   t3
      0.1, 0.9, 0.8, 0.0, // image 0: best caption t1 at rank 0
      0.5, 0.2, 0.3, 0.4, // image 1: its caption t2 is behind t0, t3 → rank 2
      0.9, 0.9, 0.9, 0.9, // image 2: t3 tied with t0..t2, all lower index → rank 3
    ]);
    const r = retrievalMetrics(s, [0, 0, 1, 2], { ks: [1, 3, 4], ranks: true });
    expect(Array.from(r.ranks!.tr)).toEqual([0, 2, 3]);
    // IR: t0 (img 0 score .1) behind .5, .9 → 2; t1 (.9) tied with image 2 (.9), lower index → 0;
    // t2 (img 1 .3) behind .8, .9 → 2; t3 (img 2 .9) → 0
    expect(Array.from(r.ranks!.ir)).toEqual([2, 0, 2, 0]);
    expect(r.tr[1]).toBeCloseTo(1 / 3, 15);
    expect(r.tr[3]).toBeCloseTo(2 / 3, 15);
    expect(r.tr[4]).toBe(1);
    expect(r.ir[1]).toBe(0.5);
    expect(r.ir[3]).toBe(1);
    expect(r.ks).toEqual([1, 3, 4]);
    expect(retrievalPercent(r).ir[1]).toBe(50);
  });

  it('K larger than the number of candidates: every query is a hit', () => {
    const r = retrievalMetrics(new Float32Array([0, 1, 2, 3, 4, 5]), [0, 1, 1], [1, 5, 10]);
    expect(r.tr[10]).toBe(1);
    expect(r.ir[10]).toBe(1);
    expect(r.ir[5]).toBe(1); // only 2 images
  });
});

describe('retrievalMetrics against a brute-force sort on random matrices with ties', () => {
  const cases = [
    { name: '5 captions per image, f32', seed: 1, nI: 37, captions: () => 5, levels: 3, f64: false },
    { name: 'uneven caption counts (1-7), f64', seed: 2, nI: 41, captions: (r: () => number) => 1 + randInt(r, 7), levels: 4, f64: true },
    { name: 'one caption per image, two score levels', seed: 3, nI: 60, captions: () => 1, levels: 2, f64: false },
    { name: 'all scores tied but the bonus', seed: 4, nI: 25, captions: (r: () => number) => 1 + randInt(r, 3), levels: 1, f64: true },
  ];
  const ks = [1, 2, 5, 10, 200];
  for (const c of cases) {
    it(c.name, () => {
      const p = randomProblem(c.seed, c.nI, c.captions, c.levels, c.f64);
      const ref = bruteForce(p.scores, p.nI, p.nT, p.textToImage, ks);
      const dense = retrievalMetrics(p.scores, p.textToImage, { ks, ranks: true });
      expect(dense.tr).toEqual(ref.tr);
      expect(dense.ir).toEqual(ref.ir);
      expect(Array.from(dense.ranks!.tr)).toEqual(ref.trRank);
      expect(Array.from(dense.ranks!.ir)).toEqual(ref.irRank);
      for (const blockRows of [1, 3, 7, 16, p.nI]) {
        // one pass with per-text top-K lists (K ≤ 128)…
        const small = retrievalMetrics(provider(p.scores, p.nI, p.nT, blockRows), p.textToImage, { ks: [1, 2, 5, 10], ranks: true });
        for (const k of [1, 2, 5, 10]) {
          expect(small.tr[k], `tr@${k} blocks of ${blockRows}`).toBe(ref.tr[k]);
          expect(small.ir[k], `ir@${k} blocks of ${blockRows}`).toBe(ref.ir[k]);
        }
        expect(Array.from(small.ranks!.ir)).toEqual(ref.irRank.map((x) => Math.min(x, 10)));
        // …and K = 200 above the image count (every image tracked, exact ranks)
        const big = retrievalMetrics(provider(p.scores, p.nI, p.nT, blockRows), p.textToImage, { ks, ranks: true });
        expect(big.tr).toEqual(ref.tr);
        expect(big.ir).toEqual(ref.ir);
        expect(Array.from(big.ranks!.ir)).toEqual(ref.irRank);
      }
    });
  }

  it('K above 128 with more than 128 images: exact two-pass IR over the blocks', () => {
    const p = randomProblem(77, 150, (rr) => 1 + randInt(rr, 2), 3);
    const ks = [1, 10, 129, 140];
    const ref = bruteForce(p.scores, p.nI, p.nT, p.textToImage, ks);
    const calls: string[] = [];
    const prov: ScoreBlockProvider = {
      numImages: p.nI,
      numTexts: p.nT,
      scoreBlock: (r0, r1) => {
        calls.push(`${r0}-${r1}`);
        return p.scores.subarray(r0 * p.nT, r1 * p.nT);
      },
    };
    const got = retrievalMetrics(prov, p.textToImage, { ks, blockRows: 64, ranks: true });
    expect(calls).toEqual(['0-64', '64-128', '128-150', '0-64', '64-128', '128-150']);
    expect(got.tr).toEqual(ref.tr);
    expect(got.ir).toEqual(ref.ir);
    expect(Array.from(got.ranks!.ir)).toEqual(ref.irRank);
    expect(Array.from(got.ranks!.tr)).toEqual(ref.trRank);
    // one pass when max K ≤ 128
    calls.length = 0;
    const one = retrievalMetrics(prov, p.textToImage, { ks: [1, 10, 128], blockRows: 64 });
    expect(calls).toHaveLength(3);
    expect(one.ir[10]).toBe(ref.ir[10]);
  });

  it('many random problems, small', () => {
    const r = prng(99);
    for (let k = 0; k < 60; k++) {
      const p = randomProblem(1000 + k, 1 + randInt(r, 12), (rr) => 1 + randInt(rr, 5), 1 + randInt(r, 3), k % 2 === 0);
      const ref = bruteForce(p.scores, p.nI, p.nT, p.textToImage, [1, 5, 10]);
      const got = retrievalMetrics(provider(p.scores, p.nI, p.nT, 1 + randInt(r, 4)), p.textToImage);
      expect(got.tr).toEqual(ref.tr);
      expect(got.ir).toEqual(ref.ir);
      expect(retrievalMetrics(p.scores, p.textToImage)).toEqual({ tr: ref.tr, ir: ref.ir, ks: [1, 5, 10] });
    }
  });
});

describe('retrievalMetrics in blocks at full scale', () => {
  it('5,000 images × 25,000 texts through the block callback, block size independent', () => {
    const nI = 5000;
    const nT = 25000;
    const t2i = new Int32Array(nT);
    for (let t = 0; t < nT; t++) t2i[t] = (t * 7919) % nI; // 5 captions per image, scattered
    const score = (i: number, t: number): number => {
      let h = Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(t + 1, 0x85ebca77);
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      h ^= h >>> 12;
      return ((h >>> 0) % 16) + (t2i[t] === i ? 5 : 0); // many ties; the match gets a bonus
    };
    let maxRows = 0;
    let rowsSeen = 0;
    const make = (blockRows: number): ScoreBlockProvider => ({
      numImages: nI,
      numTexts: nT,
      blockRows,
      scoreBlock: (r0, r1) => {
        expect(r0).toBe(rowsSeen);
        rowsSeen = r1;
        maxRows = Math.max(maxRows, r1 - r0);
        const out = new Float32Array((r1 - r0) * nT);
        for (let i = r0; i < r1; i++) for (let t = 0; t < nT; t++) out[(i - r0) * nT + t] = score(i, t);
        return out;
      },
    });
    const a = retrievalMetrics(make(384), t2i, { ranks: true });
    expect(maxRows).toBe(384);
    rowsSeen = 0;
    maxRows = 0;
    const b = retrievalMetrics(make(97), t2i, { ranks: true });
    expect(maxRows).toBe(97);
    expect(b.tr).toEqual(a.tr);
    expect(b.ir).toEqual(a.ir);
    expect(b.ranks!.tr).toEqual(a.ranks!.tr);
    expect(b.ranks!.ir).toEqual(a.ranks!.ir);
    expect(a.tr[1]!).toBeGreaterThan(0);
    expect(a.ir[10]!).toBeGreaterThan(a.ir[1]!);
    // spot-check ranks against direct counting
    const r = prng(5);
    for (let q = 0; q < 20; q++) {
      const i = randInt(r, nI);
      let best = -1;
      for (let t = 0; t < nT; t++) if (t2i[t] === i) {
        let rank = 0;
        const s = score(i, t);
        for (let u = 0; u < nT; u++) if (score(i, u) > s || (score(i, u) === s && u < t)) rank++;
        best = best < 0 ? rank : Math.min(best, rank);
      }
      expect(a.ranks!.tr[i]).toBe(best);
      const t = randInt(r, nT);
      const g = t2i[t]!;
      const s = score(g, t);
      let rank = 0;
      for (let j = 0; j < nI; j++) if (score(j, t) > s || (score(j, t) === s && j < g)) rank++;
      expect(a.ranks!.ir[t]).toBe(Math.min(rank, 10));
    }
  });
});

describe('retrievalMetrics input checks', () => {
  const s = new Float32Array([1, 2, 3, 4, 5, 6]); // 2 images × 3 texts
  it('names the bad argument', () => {
    expect(() => retrievalMetrics(s, [0, 1, 0, 1])).toThrow(/scores has 6 values, not a positive multiple of textToImage.length = 4/);
    expect(() => retrievalMetrics(s, [0, 1, 2])).toThrow(/textToImage\[2\] = 2 is not an image index in \[0, 2\)/);
    expect(() => retrievalMetrics(s, [0, 1, 0.5])).toThrow(/textToImage\[2\]/);
    expect(() => retrievalMetrics(s, [])).toThrow(/textToImage is empty/);
    expect(() => retrievalMetrics(s, [0, 1, 1], [0])).toThrow(/each of ks must be a positive integer, got 0/);
    expect(() => retrievalMetrics(s, [0, 1, 1], { ks: [] })).toThrow(/ks is empty/);
    expect(() => retrievalMetrics(new Float32Array([1, NaN, 3, 4, 5, 6]), [0, 1, 1])).toThrow(/scores\[image 0, text 1\] is NaN/);
    expect(() => retrievalMetrics(provider(new Float32Array([1, 2, 3, 4, 5, NaN]), 2, 3, 1), [0, 1, 1])).toThrow(/image 1, text 2\] is NaN/);
    expect(() => retrievalMetrics({ numImages: 2, numTexts: 3, scoreBlock: () => new Float32Array(2) }, [0, 1, 1])).toThrow(/scoreBlock\(0, 2\) returned 2 values, expected 6/);
    expect(() => retrievalMetrics({ numImages: 2, numTexts: 4, scoreBlock: () => s }, [0, 1, 1])).toThrow(/textToImage has 3 entries but scores.numTexts is 4/);
    expect(() => retrievalMetrics({ numImages: 0, numTexts: 3, scoreBlock: () => s }, [0, 1, 1])).toThrow(/scores.numImages/);
    expect(() => retrievalMetrics([1, 2] as unknown as Float32Array, [0])).toThrow(/scores must be/);
  });

  it('images without captions: error by default, or excluded, or misses', () => {
    expect(() => retrievalMetrics(s, [0, 0, 0])).toThrow(/image 1 has no caption/);
    const ex = retrievalMetrics(s, [0, 0, 0], { ks: [1], imagesWithoutCaptions: 'exclude' });
    expect(ex.tr[1]).toBe(1);
    const miss = retrievalMetrics(s, [0, 0, 0], { ks: [1], imagesWithoutCaptions: 'miss', ranks: true });
    expect(miss.tr[1]).toBe(0.5);
    expect(miss.ranks!.tr[1]).toBe(-1);
    expect(miss.ir[1]).toBe(0); // image 1 outscores image 0 on every text
  });

  it('±Infinity are ordinary scores', () => {
    const r = retrievalMetrics(new Float64Array([-Infinity, Infinity, -Infinity, -Infinity]), [0, 1], { ks: [1], ranks: true });
    expect(Array.from(r.ranks!.tr)).toEqual([1, 1]);
    expect(Array.from(r.ranks!.ir)).toEqual([0, 1]);
  });
});
