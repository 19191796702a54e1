import { describe, expect, it } from 'vitest';
import { accuracy, argmaxRows, calibrationBins, classificationAccuracy, expectedCalibrationError, itmAccuracy } from '../src/metrics/index.js';
import { prng, randInt } from './fixtures/metrics/prng.js';

describe('accuracy and argmax', () => {
  it('accuracy compares element-wise', () => {
    expect(accuracy([1, 2, 3, 4], [1, 2, 0, 0])).toBe(0.5);
    expect(accuracy(['a', 'b'], ['a', 'b'])).toBe(1);
    expect(accuracy(new Int32Array([0, 1, 1]), [1, 1, 0])).toBeCloseTo(1 / 3, 15);
    expect(() => accuracy([1], [1, 2])).toThrow(/predictions has 1 entries but labels has 2/);
    expect(() => accuracy([], [])).toThrow(/predictions is empty/);
  });

  it('argmaxRows takes the first maximum', () => {
    expect(Array.from(argmaxRows([1, 3, 3, 0, -1, -1, 5, 5, 5], 3))).toEqual([1, 0, 0]);
    expect(() => argmaxRows([1, 2, 3], 2)).toThrow(/not a multiple of numCols = 2/);
    expect(() => argmaxRows([1, NaN], 2)).toThrow(/scores\[1\] is NaN/);
    expect(() => argmaxRows([1, 2], 0)).toThrow(/numCols must be a positive integer/);
  });

  it('classificationAccuracy by argmax', () => {
    const logits = new Float32Array([0.1, 0.9, 0.8, 0.2, 0.5, 0.5]);
    expect(classificationAccuracy(logits, [1, 0, 1], 2)).toBeCloseTo(2 / 3, 15);
    expect(() => classificationAccuracy(logits, [1, 0], 2)).toThrow(/3 rows of 2 but labels has 2 entries/);
  });
});

describe('itmAccuracy', () => {
  it('one score per pair: positive when score > threshold', () => {
    expect(itmAccuracy([0.9, 0.2, 0.5, 0.51], [1, 0, 0, 1])).toBe(1); // 0.5 is not > 0.5
    expect(itmAccuracy([0.9, 0.2, 0.5, 0.51], [true, false, true, true])).toBe(0.75);
    expect(itmAccuracy([2.0, -1.0, 0.0], [1, 0, 0], { threshold: 0 })).toBe(1);
  });

  it('two logits per pair: [not matched, matched], a tie is not matched', () => {
    expect(itmAccuracy(new Float32Array([0.1, 0.9, 2, -1, 0.3, 0.3]), [1, 0, 0])).toBe(1);
    expect(itmAccuracy(new Float32Array([0.1, 0.9, 2, -1, 0.3, 0.3]), [0, 0, 1])).toBeCloseTo(1 / 3, 15);
  });

  it('rejects bad input', () => {
    expect(() => itmAccuracy([0.1, 0.2, 0.3], [1, 0])).toThrow(/scores has 3 values; expected labels.length = 2 .* or 4/);
    expect(() => itmAccuracy([0.1, NaN], [1, 0])).toThrow(/scores\[1\] is NaN/);
    expect(() => itmAccuracy([0.1], [2])).toThrow(/labels\[0\] must be 0\/1/);
    expect(() => itmAccuracy([], [])).toThrow(/labels is empty/);
    expect(() => itmAccuracy([0.1], [1], { threshold: NaN })).toThrow(/threshold/);
  });
});

/** Literal reading of the definition. */
function eceReference(conf: number[], correct: boolean[], nBins: number): number {
  let ece = 0;
  for (let b = 0; b < nBins; b++) {
    const lo = b / nBins;
    const hi = (b + 1) / nBins;
    const members = conf.map((c, i) => i).filter((i) => (conf[i]! > lo && conf[i]! <= hi) || (b === 0 && conf[i] === 0));
    if (members.length === 0) continue;
    const acc = members.filter((i) => correct[i]).length / members.length;
    const cf = members.reduce((s, i) => s + conf[i]!, 0) / members.length;
    ece += (members.length / conf.length) * Math.abs(acc - cf);
  }
  return ece;
}

describe('expectedCalibrationError', () => {
  it('is 0 for a perfectly calibrated model', () => {
    // in each bin, confidence c on 10 examples of which 10·c are right
    const probs: number[] = [];
    const labels: number[] = [];
    for (const c of [0.6, 0.7, 0.8, 0.9, 1.0]) {
      for (let k = 0; k < 10; k++) {
        probs.push(1 - c, c); // class 1 predicted with confidence c
        labels.push(k < Math.round(10 * c) ? 1 : 0);
      }
    }
    expect(expectedCalibrationError(probs, labels)).toBeCloseTo(0, 12);
    expect(expectedCalibrationError(probs, labels, 10)).toBeCloseTo(0, 12);
  });

  it('overconfident: confidence 0.9, accuracy 0.6 → 0.3', () => {
    const probs: number[] = [];
    const labels: number[] = [];
    for (let k = 0; k < 100; k++) {
      probs.push(0.05, 0.9, 0.05);
      labels.push(k < 60 ? 1 : 2);
    }
    expect(expectedCalibrationError(probs, labels)).toBeCloseTo(0.3, 12);
  });

  it('hand-worked, two bins with different gaps', () => {
    // binary p = P(1): confidences 0.95 ×4 (3 right) and 0.55 ×2 (both right)
    const p = [0.95, 0.95, 0.05, 0.05, 0.55, 0.45];
    const y = [1, 1, 0, 1, 1, 0];
    // bin (0.9, 1]: acc 0.75, conf 0.95 → 4/6 · 0.2 ; bin (0.5, 0.6]: acc 1, conf 0.55 → 2/6 · 0.45
    expect(expectedCalibrationError(p, y, 10)).toBeCloseTo((4 / 6) * 0.2 + (2 / 6) * 0.45, 12);
    const bins = calibrationBins(p, y, 10);
    expect(bins).toHaveLength(10);
    expect(bins[9]).toEqual({ lo: 0.9, hi: 1, count: 4, accuracy: 0.75, confidence: expect.closeTo(0.95, 12) });
    expect(bins[5]!.count).toBe(2);
    expect(bins[0]!.count).toBe(0);
    expect(bins[0]!.accuracy).toBeNaN();
  });

  it('bin edges: (lo, hi], the first bin holds 0', () => {
    const bins = calibrationBins([0, 0.2, 0.2000001, 0.4, 1, 0.6, 0.8], [1, 1, 1, 1, 1, 1, 1].map(() => 0), 5);
    // binary confidences max(p, 1-p): 1, 0.8, 0.7999999, 0.6, 1, 0.6, 0.8
    expect(bins.map((b) => b.count)).toEqual([0, 0, 2, 3, 2]);
    const multi = calibrationBins([0, 1, 0.2, 0.8, 0.4, 0.6], [1, 1, 1], 5); // confidences 1, 0.8, 0.6
    expect(multi.map((b) => b.count)).toEqual([0, 0, 1, 1, 1]);
    const zero = calibrationBins(new Float64Array(9), [0, 1, 2], 5); // 3 classes, all-zero rows: confidence 0
    expect(zero.map((b) => b.count)).toEqual([3, 0, 0, 0, 0]);
  });

  it('matches a brute-force reference on random data', () => {
    const r = prng(21);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + randInt(r, 300);
      const c = 1 + randInt(r, 5); // 1 = binary
      const nBins = 1 + randInt(r, 20);
      const probs = new Float64Array(n * c);
      const labels: number[] = [];
      const conf: number[] = [];
      const correct: boolean[] = [];
      for (let i = 0; i < n; i++) {
        if (c === 1) {
          const p = trial % 3 === 0 ? randInt(r, nBins + 1) / nBins : r(); // exact edges too
          probs[i] = p;
          const y = randInt(r, 2);
          labels.push(y);
          conf.push(Math.max(p, 1 - p));
          correct.push((p > 0.5 ? 1 : 0) === y);
        } else {
          let sum = 0;
          const raw = Array.from({ length: c }, () => (trial % 3 === 0 ? randInt(r, 4) : r()) + 1e-9);
          for (const v of raw) sum += v;
          let best = 0;
          for (let k = 0; k < c; k++) {
            probs[i * c + k] = raw[k]! / sum;
            if (probs[i * c + k]! > probs[i * c + best]!) best = k;
          }
          const y = randInt(r, c);
          labels.push(y);
          conf.push(probs[i * c + best]!);
          correct.push(best === y);
        }
      }
      expect(expectedCalibrationError(probs, labels, nBins)).toBeCloseTo(eceReference(conf, correct, nBins), 12);
    }
  });

  it('rejects bad input', () => {
    expect(() => expectedCalibrationError([0.5, 0.5, 0.5], [0, 1])).toThrow(/probabilities has 3 values, not a multiple of labels.length = 2/);
    expect(() => expectedCalibrationError([1.2], [1])).toThrow(/probabilities\[0\] = 1.2 is not in \[0, 1\]/);
    expect(() => expectedCalibrationError([NaN], [1])).toThrow(/probabilities\[0\] = NaN/);
    expect(() => expectedCalibrationError([0.5, 0.5], [2])).toThrow(/labels\[0\] = 2 is not a class id in \[0, 2\)/);
    expect(() => expectedCalibrationError([0.5], [1], 0)).toThrow(/nBins must be a positive integer/);
    expect(() => expectedCalibrationError([], [])).toThrow(/labels is empty/);
  });
});
