/**
 * Image–text retrieval recall: TR@K (image → text) and IR@K (text → image) from an
 * images × texts score matrix, dense or produced in row blocks, without sorting.
 */
import { checkPositiveInt } from './util.js';

/** A dense score matrix, row-major `[numImages, numTexts]`. */
export type ScoreMatrix = Float32Array | Float64Array;

/**
 * Scores produced on demand: `scoreBlock(r0, r1)` returns the rows `r0 ≤ i < r1` of the matrix,
 * row-major (`(r1 - r0) × numTexts` values). Rows are requested in increasing order, each once
 * (twice when min(max K, numImages) > 128 forces two passes), so the full matrix never exists.
 */
export interface ScoreBlockProvider {
  numImages: number;
  numTexts: number;
  scoreBlock(rowStart: number, rowEnd: number): ArrayLike<number>;
  /** Rows per block (default: options.blockRows, else 256). */
  blockRows?: number;
}

export interface RetrievalOptions {
  /** Cut-offs (default [1, 5, 10]); positive integers, a K at or above the number of candidates makes every query a hit. */
  ks?: readonly number[];
  /** Rows per block for a block provider (overrides the provider's). */
  blockRows?: number;
  /** Images that no text points to: throw (default), leave out of TR, or count as TR misses. */
  imagesWithoutCaptions?: 'error' | 'exclude' | 'miss';
  /** Also return the per-query ranks (see `RetrievalRanks`). */
  ranks?: boolean;
}

/**
 * 0-based ranks of the ground truth under the order (score descending, index ascending).
 * `tr[i]`: best rank of any caption of image i (-1 for an image without captions); exact.
 * `ir[t]`: rank of text t's image; exact for a dense matrix, and for a block provider exact
 * below max(ks) and reported as max(ks) otherwise (it then only tracks each text's top max(ks)).
 */
export interface RetrievalRanks {
  tr: Int32Array;
  ir: Int32Array;
}

export interface RetrievalResult {
  /** TR@K: fraction of images with at least one of their captions among their top K texts. */
  tr: Record<number, number>;
  /** IR@K: fraction of texts whose image is among their top K images. */
  ir: Record<number, number>;
  ks: number[];
  ranks?: RetrievalRanks;
}

/** Largest K for which a block provider's IR is done in one pass with per-text top-K lists. */
const TOPK_ONE_PASS_LIMIT = 128;

/**
 * Recall@K both ways. `scores` is a dense row-major matrix (numImages = scores.length /
 * textToImage.length) or a block provider; `textToImage[t]` is the image (row) of text t.
 * Ties: among equal scores the lower index ranks first, so the rank of the ground truth is
 * #{candidates with a greater score} + #{candidates with the same score and a lower index}.
 * NaN scores throw.
 */
export function retrievalMetrics(
  scores: ScoreMatrix | ScoreBlockProvider,
  textToImage: Int32Array | ArrayLike<number>,
  ksOrOptions: readonly number[] | RetrievalOptions = {},
): RetrievalResult {
  const fn = 'retrievalMetrics';
  const o: RetrievalOptions = Array.isArray(ksOrOptions) ? { ks: ksOrOptions as readonly number[] } : (ksOrOptions as RetrievalOptions);
  const ks = [...new Set(o.ks ?? [1, 5, 10])].sort((a, b) => a - b);
  if (ks.length === 0) throw new RangeError(`${fn}: ks is empty`);
  for (const k of ks) checkPositiveInt(fn, 'each of ks', k);
  const kMax = ks[ks.length - 1]!;

  // shape
  const dense = scores instanceof Float32Array || scores instanceof Float64Array ? scores : null;
  let nI: number, nT: number;
  let scoreBlock: (r0: number, r1: number) => ArrayLike<number>;
  let blockRows: number;
  if (dense) {
    nT = textToImage.length;
    if (nT === 0) throw new RangeError(`${fn}: textToImage is empty`);
    nI = dense.length / nT;
    if (!Number.isInteger(nI) || nI === 0) throw new RangeError(`${fn}: scores has ${dense.length} values, not a positive multiple of textToImage.length = ${nT}`);
    scoreBlock = (r0, r1) => dense.subarray(r0 * nT, r1 * nT);
    blockRows = nI;
  } else {
    if (scores === null || typeof scores !== 'object' || typeof (scores as ScoreBlockProvider).scoreBlock !== 'function') {
      throw new TypeError(`${fn}: scores must be a Float32Array / Float64Array (images × texts, row-major) or {numImages, numTexts, scoreBlock}`);
    }
    const p = scores as ScoreBlockProvider;
    checkPositiveInt(fn, 'scores.numImages', p.numImages);
    checkPositiveInt(fn, 'scores.numTexts', p.numTexts);
    nI = p.numImages;
    nT = p.numTexts;
    if (textToImage.length !== nT) throw new RangeError(`${fn}: textToImage has ${textToImage.length} entries but scores.numTexts is ${nT}`);
    scoreBlock = (r0, r1) => p.scoreBlock(r0, r1);
    blockRows = o.blockRows ?? p.blockRows ?? 256;
    checkPositiveInt(fn, 'blockRows', blockRows);
  }
  const policy = o.imagesWithoutCaptions ?? 'error';
  if (policy !== 'error' && policy !== 'exclude' && policy !== 'miss') throw new RangeError(`${fn}: options.imagesWithoutCaptions must be 'error', 'exclude' or 'miss', got ${String(policy)}`);

  // captions of each image (CSR, ascending text index)
  const gtImage = new Int32Array(nT);
  const capCount = new Int32Array(nI + 1);
  for (let t = 0; t < nT; t++) {
    const g = textToImage[t]!;
    if (!Number.isInteger(g) || g < 0 || g >= nI) throw new RangeError(`${fn}: textToImage[${t}] = ${g} is not an image index in [0, ${nI})`);
    gtImage[t] = g;
    capCount[g + 1]!++;
  }
  const capStart = new Int32Array(nI + 1);
  for (let i = 0; i < nI; i++) capStart[i + 1] = capStart[i]! + capCount[i + 1]!;
  const capList = new Int32Array(nT);
  const fill = capStart.slice(0, nI);
  for (let t = 0; t < nT; t++) capList[fill[gtImage[t]!]!++] = t;
  let noCaption = 0;
  for (let i = 0; i < nI; i++) {
    if (capStart[i + 1] === capStart[i]) {
      if (policy === 'error') throw new RangeError(`${fn}: image ${i} has no caption (no textToImage entry points to it); set options.imagesWithoutCaptions to 'exclude' or 'miss'`);
      noCaption++;
    }
  }

  const trRank = new Int32Array(nI).fill(-1);
  const irRank = new Int32Array(nT);
  const kIr = Math.min(kMax, nI);

  // one pass over the rows: TR ranks, NaN check, and IR by `visit`
  const pass = (visit: ((i: number, row: ArrayLike<number>, off: number) => void) | null, doTr: boolean) => {
    for (let r0 = 0; r0 < nI; r0 += blockRows) {
      const r1 = Math.min(nI, r0 + blockRows);
      const block = scoreBlock(r0, r1);
      if (!block || block.length !== (r1 - r0) * nT) {
        throw new RangeError(`${fn}: scoreBlock(${r0}, ${r1}) returned ${block ? block.length : String(block)} values, expected ${(r1 - r0) * nT} = ${r1 - r0} rows × ${nT} texts`);
      }
      for (let i = r0; i < r1; i++) {
        const off = (i - r0) * nT;
        if (doTr) trRank[i] = rowRank(block, off, nT, capList, capStart[i]!, capStart[i + 1]!, i);
        if (visit) visit(i, block, off);
      }
    }
  };

  if (dense || kIr > TOPK_ONE_PASS_LIMIT) {
    // ground-truth score of every text, then count the images that precede it
    const gt = new Float64Array(nT);
    if (dense) for (let t = 0; t < nT; t++) gt[t] = dense[gtImage[t]! * nT + t]!;
    else
      pass((i, row, off) => {
        for (let c = capStart[i]!; c < capStart[i + 1]!; c++) gt[capList[c]!] = row[off + capList[c]!]!;
      }, true);
    const before = new Int32Array(nT);
    pass((i, row, off) => {
      for (let t = 0; t < nT; t++) {
        const v = row[off + t]!;
        const s = gt[t]!;
        if (v > s || (v === s && i < gtImage[t]!)) before[t]!++;
      }
    }, !!dense);
    irRank.set(before);
  } else {
    // each text's top-kIr images (score desc, index asc), rows arriving in increasing order
    const topS = new Float64Array(nT * kIr);
    const topI = new Int32Array(nT * kIr);
    const filled = new Int32Array(nT);
    pass((i, row, off) => {
      for (let t = 0; t < nT; t++) {
        const v = row[off + t]!;
        const base = t * kIr;
        const f = filled[t]!;
        if (f === kIr) {
          if (!(v > topS[base + kIr - 1]!)) continue; // equal scores: the earlier (lower) index stays ahead
          let p = kIr - 1;
          while (p > 0 && topS[base + p - 1]! < v) {
            topS[base + p] = topS[base + p - 1]!;
            topI[base + p] = topI[base + p - 1]!;
            p--;
          }
          topS[base + p] = v;
          topI[base + p] = i;
        } else {
          let p = f;
          while (p > 0 && topS[base + p - 1]! < v) {
            topS[base + p] = topS[base + p - 1]!;
            topI[base + p] = topI[base + p - 1]!;
            p--;
          }
          topS[base + p] = v;
          topI[base + p] = i;
          filled[t] = f + 1;
        }
      }
    }, true);
    for (let t = 0; t < nT; t++) {
      let r = kIr;
      const base = t * kIr;
      for (let p = 0; p < filled[t]!; p++) {
        if (topI[base + p] === gtImage[t]) {
          r = p;
          break;
        }
      }
      irRank[t] = r;
    }
  }

  const tr: Record<number, number> = {};
  const ir: Record<number, number> = {};
  const trDen = policy === 'exclude' ? nI - noCaption : nI;
  for (const k of ks) {
    let h = 0;
    for (let i = 0; i < nI; i++) if (trRank[i]! >= 0 && trRank[i]! < k) h++;
    tr[k] = trDen > 0 ? h / trDen : 0;
    h = 0;
    for (let t = 0; t < nT; t++) if (irRank[t]! < k) h++;
    ir[k] = h / nT;
  }
  const result: RetrievalResult = { tr, ir, ks };
  if (o.ranks) result.ranks = { tr: trRank, ir: irRank };
  return result;
}

/**
 * Best rank among the captions of one image in its row, checking the row for NaN: the best
 * caption is the first in (score desc, index asc) order; its rank counts the texts before it.
 */
function rowRank(row: ArrayLike<number>, off: number, nT: number, capList: Int32Array, c0: number, c1: number, i: number): number {
  let best = -1;
  let sBest = -Infinity;
  for (let c = c0; c < c1; c++) {
    const t = capList[c]!;
    const v = row[off + t]!;
    if (best < 0 || v > sBest) {
      best = t;
      sBest = v;
    }
  }
  let r = 0;
  if (best < 0) {
    for (let t = 0; t < nT; t++) if (Number.isNaN(row[off + t])) throw nanError(i, t);
    return -1;
  }
  for (let t = 0; t < nT; t++) {
    const v = row[off + t]!;
    if (v > sBest) r++;
    else if (v === sBest) {
      if (t < best) r++;
    } else if (v !== v) throw nanError(i, t);
  }
  if (sBest !== sBest) throw nanError(i, best);
  return r;
}

function nanError(i: number, t: number): RangeError {
  return new RangeError(`retrievalMetrics: scores[image ${i}, text ${t}] is NaN`);
}

/** The same result with every recall multiplied by 100 (percentages, unrounded). */
export function retrievalPercent(r: RetrievalResult): RetrievalResult {
  const scale = (m: Record<number, number>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, 100 * v])) as Record<number, number>;
  return { ...r, tr: scale(r.tr), ir: scale(r.ir) };
}
