/**
 * The reference router: plain float64 loops written from DeepSpeed's gating formulas
 * (top1gating, top2gating, topkgating; REFERENCE §3), no cleverness. The fused router is
 * tested against it; it is also the readable definition of what routing means here.
 *
 * Token choice (k experts per token):
 * - gates = softmax(logits) per token (float64 here). Choice 0 of token s is the expert with
 *   the largest selection score (`selectLogits`, e.g. logits + Gumbel noise for 'RSample',
 *   else the logits); choices 1..k−1 are the next largest among the rest, scored by
 *   `secondSelectLogits` when given (top-2 second-expert sampling), else the same scores.
 *   Ties go to the lower expert index.
 * - Queue order per expert: all first choices by token position, then all second choices
 *   (DeepSpeed top-2 offsets second-choice locations by the first-choice count), and so on.
 * - Capacity C = max(ceil(S/E · cf · k), minCapacity), or with `dropTokens: false` the
 *   largest per-expert count (nothing dropped).
 * - Dropping: 'position' keeps the first C of each expert's queue; 'probs' (batch priority
 *   routing) keeps the C assignments with the highest gate value (ties: queue order); RTS
 *   keeps the C assignments with the highest caller-given uniform priorities. Kept
 *   assignments take slots 0..C−1 in queue order.
 * - Combine weights: k = 1 → the gate value of the chosen expert (0 when dropped); k ≥ 2 →
 *   gate values of the kept choices renormalised to sum to 1 per token (DeepSpeed divides by
 *   max(sum, eps)); a token with every choice dropped gets weights 0.
 * - auxLoss (balance): me = mean_s gates, ce = mean_s of the choice masks before dropping;
 *   k = 1: E · Σ me·ce; k = 2: E² · mean(me·ce) with first choices only; k > 2:
 *   E²/k · mean(me·ce) with all k choices. zLoss = mean_s logsumexp(logits_s)².
 *
 * Options of today's systems (Megatron-Core names), token choice only:
 * - `scoreFunction: 'sigmoid'` (DeepSeek-V3): scores a = σ(logits) per expert; `gates` (for
 *   the balance loss, 'probs' dropping and the entropy) are a / Σₑ a per token; the combine
 *   weight of a kept choice is its score a for k = 1, a / (Σ over the k chosen a + 1e-20) for
 *   k > 1 (normalised over the chosen, before dropping).
 * - `preSoftmax: true`: combine weight = the chosen expert's softmax gate, never
 *   renormalised; `false`: the softmax over the k chosen logits (k = 1: 1). Dropped: 0.
 * - `expertBias` [E] (with `enableExpertBias`): the experts are chosen by score + bias —
 *   score = softmax(selectLogits) or σ(selectLogits) — instead of by the selection logits;
 *   gates and combine weights never see the bias.
 * - `numGroups` G + `groupTopK` M (group-limited routing): the selection scores are the
 *   scores (+ bias) as above; the experts form G groups of consecutive experts; a token's
 *   group score is the sum of its ⌊k/M⌋ largest selection scores in the group; it keeps the M
 *   best groups (ties: lower group) and chooses its k experts among their experts only.
 * - `loadBalancingType: 'seq_aux_loss'` (DeepSeek-V3's sequence-wise balance loss, with
 *   `sequenceIds`): for each sequence b, f_e = b's assignments to e (all k choices, before
 *   dropping) / b's tokens, P_e = the mean over b's tokens of gate e; auxLoss = the mean over
 *   sequences of E/k · Σ_e f_e·P_e.
 */
import { capacity, checkExpertChoiceOptions, resolveRouterOptions, type RouterOptions } from './options.js';

export interface RouteResult {
  numTokens: number;
  numExperts: number;
  k: number;
  capacity: number;
  /** [S·k] expert of choice j of token s at s·k + j. */
  expertIndex: Int32Array;
  /** [S·k] slot within the expert's buffer, −1 when dropped. */
  slot: Int32Array;
  /** [S·k] combine weight (0 when dropped). */
  combineWeight: Float64Array;
  /** [S·E] softmax gates. */
  gates: Float64Array;
  /** [E] assignments per expert before dropping (sums to S·k). */
  countsBefore: Int32Array;
  /** [E] assignments kept (≤ capacity). */
  countsAfter: Int32Array;
  /** DeepSpeed's `exp_counts`: first choices per expert before dropping (all k choices for k > 2). */
  expCounts: Int32Array;
  /** Assignments dropped. */
  dropped: number;
  auxLoss: number;
  zLoss: number;
}

export interface ReferenceRouteOptions extends RouterOptions {
  /** Use the eval capacity factor. */
  training?: boolean;
  /** Scores that pick the first expert (default: the logits); gates always come from the clean logits. */
  selectLogits?: ArrayLike<number>;
  /** Scores that pick choices 2..k among the experts not yet taken (default: `selectLogits`). */
  secondSelectLogits?: ArrayLike<number>;
  /** RTS: a uniform priority per assignment [S·k] (higher is kept). */
  rtsPriorities?: ArrayLike<number>;
  /** Aux-loss-free balancing: the per-expert bias [E] added to the selection scores (requires enableExpertBias). */
  expertBias?: ArrayLike<number>;
  /** Each token's sequence (loadBalancingType 'seq_aux_loss'). */
  sequenceIds?: ArrayLike<number>;
}

/** Row-wise softmax (sigmoid: σ per element) of [S·E] values, in float64. */
function scoresOf(x: ArrayLike<number>, S: number, E: number, fn: 'softmax' | 'sigmoid'): Float64Array {
  const out = new Float64Array(S * E);
  for (let s = 0; s < S; s++) {
    if (fn === 'sigmoid') {
      for (let e = 0; e < E; e++) out[s * E + e] = 1 / (1 + Math.exp(-x[s * E + e]!));
      continue;
    }
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, x[s * E + e]!);
    let z = 0;
    for (let e = 0; e < E; e++) z += Math.exp(x[s * E + e]! - m);
    for (let e = 0; e < E; e++) out[s * E + e] = Math.exp(x[s * E + e]! - m) / z;
  }
  return out;
}

export function referenceRoute(logits: ArrayLike<number>, numTokens: number, options: ReferenceRouteOptions): RouteResult {
  const o = resolveRouterOptions(options);
  const S = numTokens;
  const E = o.numExperts;
  const k = o.k;
  if (logits.length !== S * E) throw new RangeError(`referenceRoute: logits has ${logits.length} values, expected S·E = ${S}·${E}`);
  let sel: ArrayLike<number> = options.selectLogits ?? logits;
  if (sel.length !== S * E) throw new RangeError(`referenceRoute: selectLogits has ${sel.length} values, expected ${S * E}`);
  let sel2: ArrayLike<number> = options.secondSelectLogits ?? sel;
  if (sel2.length !== S * E) throw new RangeError(`referenceRoute: secondSelectLogits has ${sel2.length} values, expected ${S * E}`);
  const bias = options.expertBias;
  if (o.enableExpertBias !== (bias !== undefined)) throw new RangeError('referenceRoute: expertBias is given exactly when enableExpertBias is set');
  if (bias && bias.length !== E) throw new RangeError(`referenceRoute: expertBias has ${bias.length} values, expected E = ${E}`);
  if (bias || o.numGroups !== null) {
    // the experts are chosen by score (+ bias)
    const biased = (x: ArrayLike<number>) => scoresOf(x, S, E, o.scoreFunction).map((v, i) => v + (bias ? bias[i % E]! : 0));
    const same = sel2 === sel;
    sel = biased(sel);
    sel2 = same ? sel : biased(sel2);
  }
  if (o.numGroups !== null) {
    // group-limited: each token keeps its M best groups by the sum of its ⌊k/M⌋ best scores there
    const G = o.numGroups, M = o.groupTopK!, per = E / G, kk = Math.floor(k / M);
    const masked1 = Float64Array.from(sel), masked2 = sel2 === sel ? masked1 : Float64Array.from(sel2);
    for (let s = 0; s < S; s++) {
      const score = Array.from({ length: G }, (_, g) => {
        const v = Array.from({ length: per }, (_, j) => sel[s * E + g * per + j]!).sort((a, b) => b - a);
        let sum = 0;
        for (let j = 0; j < kk; j++) sum += v[j]!;
        return sum;
      });
      const keep = new Set(Array.from({ length: G }, (_, g) => g).sort((a, b) => score[b]! - score[a]! || a - b).slice(0, M));
      for (let e = 0; e < E; e++) if (!keep.has(Math.floor(e / per))) {
        masked1[s * E + e] = -Infinity;
        masked2[s * E + e] = -Infinity;
      }
    }
    sel = masked1;
    sel2 = masked2;
  }
  if (o.useRts && (!options.rtsPriorities || options.rtsPriorities.length !== S * k)) throw new RangeError(`referenceRoute: useRts needs rtsPriorities of length S·k = ${S * k}`);

  // gates (softmax, or the sigmoid scores normalised per token) and z-loss
  const sigmoid = o.scoreFunction === 'sigmoid';
  const scores = scoresOf(logits, S, E, o.scoreFunction); // a: what the combine weights come from
  const gates = sigmoid ? new Float64Array(S * E) : scores;
  let zSum = 0;
  for (let s = 0; s < S; s++) {
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, logits[s * E + e]!);
    let z = 0;
    for (let e = 0; e < E; e++) z += Math.exp(logits[s * E + e]! - m);
    const lse = m + Math.log(z);
    zSum += lse * lse;
    if (sigmoid) {
      let sum = 0;
      for (let e = 0; e < E; e++) sum += scores[s * E + e]!;
      for (let e = 0; e < E; e++) gates[s * E + e] = scores[s * E + e]! / sum;
    }
  }

  // choices: k largest selection scores, ties to the lower expert index
  const expertIndex = new Int32Array(S * k);
  for (let s = 0; s < S; s++) {
    const taken = new Array<boolean>(E).fill(false);
    for (let j = 0; j < k; j++) {
      const sc = j === 0 ? sel : sel2;
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken[e] && (best < 0 || sc[s * E + e]! > sc[s * E + best]!)) best = e;
      taken[best] = true;
      expertIndex[s * k + j] = best;
    }
  }

  // counts before dropping and the balance loss
  const countsBefore = new Int32Array(E);
  const first = new Int32Array(E);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < k; j++) countsBefore[expertIndex[s * k + j]!]++;
    first[expertIndex[s * k]!]++;
  }
  const me = new Float64Array(E);
  for (let s = 0; s < S; s++) for (let e = 0; e < E; e++) me[e] += gates[s * E + e]! / S;
  let auxLoss: number;
  if (k === 1) {
    auxLoss = 0;
    for (let e = 0; e < E; e++) auxLoss += me[e]! * (first[e]! / S);
    auxLoss *= E;
  } else if (k === 2) {
    let m = 0;
    for (let e = 0; e < E; e++) m += me[e]! * (first[e]! / S);
    auxLoss = ((m / E) * E * E);
  } else {
    let m = 0;
    for (let e = 0; e < E; e++) m += me[e]! * (countsBefore[e]! / S);
    auxLoss = ((m / E) * E * E) / k;
  }
  if (o.loadBalancingType === 'seq_aux_loss') {
    const ids = options.sequenceIds;
    if (!ids || ids.length !== S) throw new RangeError(`referenceRoute: seq_aux_loss needs sequenceIds of length S = ${S}`);
    const seqs = [...new Set(Array.from(ids))];
    auxLoss = 0;
    for (const b of seqs) {
      const toks = Array.from({ length: S }, (_, s) => s).filter((s) => ids[s] === b);
      let sum = 0;
      for (let e = 0; e < E; e++) {
        let n = 0, p = 0;
        for (const s of toks) {
          for (let j = 0; j < k; j++) if (expertIndex[s * k + j] === e) n++;
          p += gates[s * E + e]!;
        }
        sum += (n / toks.length) * (p / toks.length);
      }
      auxLoss += (E / k) * sum / seqs.length;
    }
  }
  const expCounts = k > 2 ? Int32Array.from(countsBefore) : first;

  // capacity
  let C: number;
  if (o.dropTokens) {
    C = capacity(S, E, options.training === false ? o.evalCapacityFactor : o.capacityFactor, k, o.minCapacity);
  } else {
    C = 0;
    for (let e = 0; e < E; e++) C = Math.max(C, countsBefore[e]!);
  }

  // per-expert queues: choice rank first, then token position
  const slot = new Int32Array(S * k).fill(-1);
  const countsAfter = new Int32Array(E);
  for (let e = 0; e < E; e++) {
    const queue: number[] = []; // assignment ids a = s·k + j
    for (let j = 0; j < k; j++) for (let s = 0; s < S; s++) if (expertIndex[s * k + j] === e) queue.push(s * k + j);
    let kept: Set<number>;
    if (queue.length <= C) kept = new Set(queue);
    else if (o.useRts) {
      const pr = options.rtsPriorities!;
      const order = queue.map((a, q) => [a, q] as const).sort((x, y) => pr[y[0]]! - pr[x[0]]! || x[1] - y[1]);
      kept = new Set(order.slice(0, C).map((x) => x[0]));
    } else if (o.dropPolicy === 'probs') {
      const g = (a: number) => gates[Math.floor(a / k) * E + e]!;
      const order = queue.map((a, q) => [a, q] as const).sort((x, y) => g(y[0]) - g(x[0]) || x[1] - y[1]);
      kept = new Set(order.slice(0, C).map((x) => x[0]));
    } else {
      kept = new Set(queue.slice(0, C));
    }
    let next = 0;
    for (const a of queue) if (kept.has(a)) slot[a] = next++;
    countsAfter[e] = next;
  }

  // combine weights
  const combineWeight = new Float64Array(S * k);
  const overChosen = sigmoid ? k > 1 : o.preSoftmax === false;
  if (sigmoid || o.preSoftmax !== null) {
    for (let s = 0; s < S; s++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += scores[s * E + expertIndex[s * k + j]!]!;
      for (let j = 0; j < k; j++) {
        const a = s * k + j, v = scores[s * E + expertIndex[a]!]!;
        // sigmoid: a / (Σ chosen + 1e-20) (Megatron); preSoftmax false: softmax over the chosen logits = g / Σ chosen g
        if (slot[a]! >= 0) combineWeight[a] = !overChosen ? v : sigmoid ? v / (sum + 1e-20) : v / sum;
      }
    }
  } else for (let s = 0; s < S; s++) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const a = s * k + j;
      if (slot[a]! >= 0) {
        combineWeight[a] = gates[s * E + expertIndex[a]!]!;
        sum += combineWeight[a]!;
      }
    }
    if (k >= 2) for (let j = 0; j < k; j++) combineWeight[s * k + j] = combineWeight[s * k + j]! / Math.max(sum, Number.EPSILON);
  }
  let dropped = 0;
  for (let a = 0; a < S * k; a++) if (slot[a]! < 0) dropped++;
  return { numTokens: S, numExperts: E, k, capacity: C, expertIndex, slot, combineWeight, gates, countsBefore, countsAfter, expCounts, dropped, auxLoss, zLoss: zSum / S };
}

/**
 * Expert choice (Zhou et al. 2022), in loops: each expert e takes the C tokens with the
 * largest selection scores in its column (ties to the lower token index), C =
 * min(S, max(ceil(S/E · cf), minCapacity)). Laid out as E assignments per token: choice j of
 * token s is expert j, with slot = the token's rank among expert j's picks (−1 if not picked)
 * and combine weight = gate value (0 if not picked). No balance loss (0); z-loss as usual.
 * `dropped` counts tokens no expert picked.
 */
export function referenceExpertChoice(logits: ArrayLike<number>, numTokens: number, options: ReferenceRouteOptions): RouteResult {
  const o = resolveRouterOptions(options);
  checkExpertChoiceOptions(o, 'referenceExpertChoice');
  const S = numTokens, E = o.numExperts;
  const base = referenceRoute(logits, S, { ...options, k: 1, useRts: false, dropTokens: false, dropPolicy: 'position' });
  const sel = options.selectLogits ?? logits;
  const C = Math.min(S, capacity(S, E, options.training === false ? o.evalCapacityFactor : o.capacityFactor, 1, o.minCapacity));
  const expertIndex = new Int32Array(S * E), slot = new Int32Array(S * E).fill(-1), combineWeight = new Float64Array(S * E);
  for (let s = 0; s < S; s++) for (let e = 0; e < E; e++) expertIndex[s * E + e] = e;
  for (let e = 0; e < E; e++) {
    const order = Array.from({ length: S }, (_, s) => s).sort((a, b) => sel[b * E + e]! - sel[a * E + e]! || a - b);
    for (let c = 0; c < C; c++) {
      const s = order[c]!;
      slot[s * E + e] = c;
      combineWeight[s * E + e] = base.gates[s * E + e]!;
    }
  }
  let dropped = 0;
  for (let s = 0; s < S; s++) if (!slot.subarray(s * E, (s + 1) * E).some((v) => v >= 0)) dropped++;
  const counts = new Int32Array(E).fill(C);
  return { numTokens: S, numExperts: E, k: E, capacity: C, expertIndex, slot, combineWeight, gates: base.gates, countsBefore: counts,
    countsAfter: counts.slice(), expCounts: counts.slice(), dropped, auxLoss: 0, zLoss: base.zLoss };
}
