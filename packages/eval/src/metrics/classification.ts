/** Classification accuracy, image–text matching (ITM) accuracy and expected calibration error. */
import { checkFinite, checkNonEmpty, checkPositiveInt, checkSameLength, type NumArray } from './util.js';

type Label = number | string | boolean;

/** Fraction of positions where `predictions[i] === labels[i]` (class ids, strings or booleans). */
export function accuracy(predictions: ArrayLike<Label>, labels: ArrayLike<Label>): number {
  const fn = 'accuracy';
  checkSameLength(fn, 'predictions', predictions, 'labels', labels);
  checkNonEmpty(fn, 'predictions', predictions);
  let right = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) right++;
  return right / predictions.length;
}

/** Row-wise argmax of a row-major `[rows, numCols]` matrix; the first maximum wins ties. NaN throws. */
export function argmaxRows(scores: NumArray, numCols: number): Int32Array {
  const fn = 'argmaxRows';
  checkPositiveInt(fn, 'numCols', numCols);
  if (scores.length % numCols !== 0) throw new RangeError(`${fn}: scores has ${scores.length} values, not a multiple of numCols = ${numCols}`);
  const rows = scores.length / numCols;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let sb = scores[r * numCols]!;
    if (Number.isNaN(sb)) throw new RangeError(`${fn}: scores[${r * numCols}] is NaN`);
    for (let c = 1; c < numCols; c++) {
      const v = scores[r * numCols + c]!;
      if (Number.isNaN(v)) throw new RangeError(`${fn}: scores[${r * numCols + c}] is NaN`);
      if (v > sb) {
        sb = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Accuracy of `[N, numClasses]` logits (or probabilities) by argmax against class ids. */
export function classificationAccuracy(logits: NumArray, labels: ArrayLike<number>, numClasses: number): number {
  const pred = argmaxRows(logits, numClasses);
  if (pred.length !== labels.length) throw new RangeError(`classificationAccuracy: logits has ${pred.length} rows of ${numClasses} but labels has ${labels.length} entries`);
  return accuracy(pred, labels);
}

export interface ItmOptions {
  /** One score per pair: positive when `score > threshold` (default 0.5, for probabilities; use 0 for logits). */
  threshold?: number;
}

/**
 * ITM accuracy. `scores` holds either one score per pair (N values: positive when
 * `score > threshold`) or two logits per pair (2N values, row-major `[not matched, matched]`:
 * positive when `logit1 > logit0`, so a tie is negative, as argmax). Labels: 1/true = matched.
 */
export function itmAccuracy(scores: NumArray, labels: ArrayLike<number | boolean>, options: ItmOptions = {}): number {
  const fn = 'itmAccuracy';
  const n = labels.length;
  checkNonEmpty(fn, 'labels', labels);
  checkFinite(fn, 'scores', scores);
  const threshold = options.threshold ?? 0.5;
  if (!Number.isFinite(threshold)) throw new RangeError(`${fn}: options.threshold must be finite, got ${threshold}`);
  let twoLogits: boolean;
  if (scores.length === n) twoLogits = false;
  else if (scores.length === 2 * n) twoLogits = true;
  else throw new RangeError(`${fn}: scores has ${scores.length} values; expected labels.length = ${n} (one score per pair) or ${2 * n} (two logits per pair)`);
  let right = 0;
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!(l === 0 || l === 1 || l === true || l === false)) throw new TypeError(`${fn}: labels[${i}] must be 0/1 or a boolean, got ${JSON.stringify(l)}`);
    const pos = twoLogits ? scores[2 * i + 1]! > scores[2 * i]! : scores[i]! > threshold;
    if (pos === (l === 1 || l === true)) right++;
  }
  return right / n;
}

export interface CalibrationBin {
  /** Bin edges: the bin holds confidences in (lo, hi]; the first one also holds 0. */
  lo: number;
  hi: number;
  count: number;
  /** Mean correctness and mean confidence of the bin (NaN when empty). */
  accuracy: number;
  confidence: number;
}

/**
 * Confidence and correctness per example. `probabilities` is `[N, C]` row-major (C ≥ 2:
 * confidence = the row maximum, prediction = its first argmax) or N values for binary tasks
 * (p = P(label 1): prediction = p > 0.5, confidence = max(p, 1 − p)). Labels are class ids
 * (binary: 0/1 or booleans).
 */
function confidences(fn: string, probabilities: NumArray, labels: ArrayLike<number | boolean>): { conf: Float64Array; correct: Uint8Array } {
  const n = labels.length;
  checkNonEmpty(fn, 'labels', labels);
  if (probabilities.length % n !== 0) throw new RangeError(`${fn}: probabilities has ${probabilities.length} values, not a multiple of labels.length = ${n}`);
  const c = probabilities.length / n;
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${fn}: probabilities[${i}] = ${p} is not in [0, 1]`);
  }
  const conf = new Float64Array(n);
  const correct = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const raw = labels[i]!;
    const l = raw === true ? 1 : raw === false ? 0 : raw;
    if (!Number.isInteger(l) || l < 0 || l >= Math.max(c, 2)) throw new RangeError(`${fn}: labels[${i}] = ${JSON.stringify(raw)} is not a class id in [0, ${Math.max(c, 2)})`);
    if (c === 1) {
      const p = probabilities[i]!;
      const pred = p > 0.5 ? 1 : 0;
      conf[i] = pred === 1 ? p : 1 - p;
      correct[i] = pred === l ? 1 : 0;
    } else {
      let best = 0;
      let pb = probabilities[i * c]!;
      for (let k = 1; k < c; k++) {
        const v = probabilities[i * c + k]!;
        if (v > pb) {
          pb = v;
          best = k;
        }
      }
      conf[i] = pb;
      correct[i] = best === l ? 1 : 0;
    }
  }
  return { conf, correct };
}

/** Bin index with edges b / nBins: bin b holds (b/nBins, (b+1)/nBins], bin 0 also holds 0. */
function binOf(conf: number, nBins: number): number {
  let b = Math.min(nBins - 1, Math.max(0, Math.ceil(conf * nBins) - 1));
  while (b > 0 && conf <= b / nBins) b--;
  while (b < nBins - 1 && conf > (b + 1) / nBins) b++;
  return b;
}

/** Per-bin counts, accuracy and confidence (reliability diagram data), equal-width bins. */
export function calibrationBins(probabilities: NumArray, labels: ArrayLike<number | boolean>, nBins = 15): CalibrationBin[] {
  return binsOf('calibrationBins', probabilities, labels, nBins).bins;
}

function binsOf(fn: string, probabilities: NumArray, labels: ArrayLike<number | boolean>, nBins: number): { bins: CalibrationBin[]; n: number; sumConf: Float64Array; sumCorrect: Float64Array } {
  checkPositiveInt(fn, 'nBins', nBins);
  const { conf, correct } = confidences(fn, probabilities, labels);
  const count = new Float64Array(nBins);
  const sumConf = new Float64Array(nBins);
  const sumCorrect = new Float64Array(nBins);
  for (let i = 0; i < conf.length; i++) {
    const b = binOf(conf[i]!, nBins);
    count[b]!++;
    sumConf[b]! += conf[i]!;
    sumCorrect[b]! += correct[i]!;
  }
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < nBins; b++) {
    bins.push({ lo: b / nBins, hi: (b + 1) / nBins, count: count[b]!, accuracy: sumCorrect[b]! / count[b]!, confidence: sumConf[b]! / count[b]! });
  }
  return { bins, n: conf.length, sumConf, sumCorrect };
}

/**
 * Expected calibration error: Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)| over `nBins`
 * equal-width confidence bins (b/nBins, (b+1)/nBins], the first also holding 0; see
 * `confidences` for how confidence and correctness are read from the inputs.
 */
export function expectedCalibrationError(probabilities: NumArray, labels: ArrayLike<number | boolean>, nBins = 15): number {
  const { bins, n, sumConf, sumCorrect } = binsOf('expectedCalibrationError', probabilities, labels, nBins);
  let ece = 0;
  for (let b = 0; b < bins.length; b++) if (bins[b]!.count > 0) ece += Math.abs(sumCorrect[b]! - sumConf[b]!) / n;
  return ece;
}
