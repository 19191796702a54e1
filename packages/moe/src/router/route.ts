/**
 * The fused router: DeepSpeed's gating semantics (REFERENCE §3, `reference.ts` spells them
 * out in loops) as a handful of tensor ops and one native slot-assignment pass, never a
 * dense [S, E, C] one-hot. Gradients reach the logits through the combine weights and the
 * balance / z losses, as in DeepSpeed.
 *
 * Token choice (default): each token picks k experts; an over-full expert keeps C of its
 * assignments by position, by gate value ('probs') or at random (RTS).
 * Expert choice: each expert picks the C tokens with its highest gate values (Zhou et al.
 * 2022); a token may be picked by several experts or by none. It is expressed as E
 * assignments per token (choice j of token s = expert j), kept when expert j picked s, so the
 * same permute / combine kernels serve both.
 */
import * as T from '@vlmoe/tensor';
import { capacity, checkExpertChoiceOptions, gateEps, resolveRouterOptions, type ResolvedRouterOptions } from './options.js';
import { fusedGateEnabled, tokenChoiceFused } from './route_fused.js';
import { assignTokenSlots } from './assign.js';

export type { RoutingPolicy, RouteOptions, GateOutput } from './route_types.js';
import type { RouteOptions, GateOutput } from './route_types.js';

function checkScores(name: string, t: T.Tensor | null | undefined, shape: readonly number[]): void {
  if (!t) return;
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) throw new Error(`route: ${name} must be [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
}

/** Largest representable relative step of the gates' dtype (DeepSpeed clamps the top-k denominator to it). */
const epsOf = (dtype: T.DType) => gateEps(dtype);

/** Routes S tokens given router logits [S, E]. */
export function route(logits: T.Tensor, options: RouteOptions): GateOutput {
  const o = resolveRouterOptions(options);
  if (logits.ndim !== 2 || logits.shape[1] !== o.numExperts) throw new Error(`route: logits must be [S, numExperts = ${o.numExperts}], got [${logits.shape.join(', ')}]`);
  if (logits.dtype !== 'float32' && logits.dtype !== 'float64') throw new TypeError(`route: logits must be float32 or float64, got ${logits.dtype}`);
  const S = logits.shape[0]!;
  checkScores('selectLogits', options.selectLogits, logits.shape);
  checkScores('secondSelectLogits', options.secondSelectLogits, logits.shape);
  const policy = options.policy ?? 'token-choice';
  if (policy !== 'token-choice' && policy !== 'expert-choice') throw new RangeError(`route: policy must be 'token-choice' or 'expert-choice', got '${String(policy)}'`);
  return policy === 'expert-choice' ? expertChoice(logits, S, o, options) : tokenChoice(logits, S, o, options);
}

function zLossOf(logits: T.Tensor): T.Tensor {
  return T.mean(T.square(T.logsumexp(logits, -1)));
}

function tokenChoice(logits: T.Tensor, S: number, o: ResolvedRouterOptions, options: RouteOptions): GateOutput {
  // CUDA: the fused gating (route_fused.ts; VLMOE_FUSED_GATE=0 turns it off); the CPU keeps
  // the composed ops below, the reference its numbers are pinned to
  if (fusedGateEnabled(logits, o, options)) return tokenChoiceFused(logits, S, o, options);
  const E = o.numExperts, k = o.k;
  const sigmoid = o.scoreFunction === 'sigmoid';
  // scores: what the combine weights come from; gates: the per-token distribution (balance loss, 'probs', entropy)
  const scores = sigmoid ? T.sigmoid(logits) : T.softmax(logits, -1);
  const gates = sigmoid ? T.div(scores, T.sum(scores, 1, true)) : scores;
  // aux-loss-free balancing: the experts are chosen by score + bias (reference.ts)
  const bias = options.expertBias ?? null;
  if (o.enableExpertBias !== (bias !== null)) throw new Error(o.enableExpertBias ? 'route: enableExpertBias needs expertBias [E] (TopKGate holds it)' : 'route: expertBias is given but enableExpertBias is not set');
  checkScores('expertBias', bias, [E]);
  // with the bias or group-limited routing, the experts are chosen by score (+ bias) rather than by logit
  const byScore = bias !== null || o.numGroups !== null;
  const biased = (x: T.Tensor) => T.noGrad(() => {
    const sc = sigmoid ? T.sigmoid(x) : T.softmax(x, -1);
    return bias ? T.add(sc, bias.dtype === x.dtype ? bias : T.cast(bias, x.dtype)) : sc;
  });
  let sel = byScore ? biased(options.selectLogits ?? logits) : options.selectLogits ?? logits;
  let secondSel = options.secondSelectLogits && byScore ? biased(options.secondSelectLogits) : options.secondSelectLogits;
  if (o.numGroups !== null) {
    // group-limited: the M best groups per token by the sum of its ⌊k/M⌋ best scores there; the rest masked out
    const G = o.numGroups, M = o.groupTopK!, per = E / G;
    const keep = T.noGrad(() => {
      const groupScore = T.sum(T.topk(sel.reshape(S, G, per), Math.floor(k / M), -1).values, -1);
      const groups = T.sum(T.oneHot(T.topk(groupScore, M, -1).indices, G), 1); // [S, G]: 1 for a kept group
      return T.gt(groups.reshape(S, G, 1).expand(S, G, per).reshape(S, E), 0);
    });
    const mask = (x: T.Tensor) => T.noGrad(() => T.maskedFill(x, T.logicalNot(keep), -Infinity));
    sel = mask(sel);
    if (secondSel) secondSel = mask(secondSel);
  }

  // choices: k largest selection scores (ties → lower expert index, as torch.topk)
  const expertIndex = T.noGrad(() => {
    const second = secondSel;
    if (!second || k === 1) return T.topk(sel, k, -1).indices;
    const first = T.topk(sel, 1, -1).indices;
    const rest = T.topk(T.maskedFill(second, T.oneHot(first.reshape(S), E), -Infinity), k - 1, -1).indices;
    return T.cat([first, rest], 1);
  });

  // slots (and compact rows, first-choice counts) in one native pass; dropless: nothing is
  // dropped at capacity S·k, and C is the largest count (over the expert-parallel group)
  let priority: T.Tensor | null = null;
  if (o.useRts) {
    const pr = options.rtsPriorities;
    if (!pr) throw new Error('route: useRts needs rtsPriorities [S, k] (TopKGate draws them from its generator)');
    checkScores('rtsPriorities', pr, [S, k]);
    priority = pr;
  } else if (o.dropPolicy === 'probs') priority = T.noGrad(() => T.gather(gates, 1, expertIndex));
  const { assigned: a, capacity: C, dropped } = assignTokenSlots(expertIndex, priority, S, o, options);
  const { slot, countsBefore, countsAfter } = a;

  // balance loss from the counts before dropping: first choices for k ≤ 2, all for k > 2
  const expCounts = k > 2 ? countsBefore : a.countsFirst!;
  const me = T.mean(gates, 0);
  const ce = T.div(T.cast(expCounts, gates.dtype), S);
  const meCe = T.mul(me, ce);
  const auxLoss = o.loadBalancingType === 'seq_aux_loss' ? seqAuxLoss(gates, expertIndex, options.sequenceIds, E, k)
    : k === 1 ? T.mul(T.sum(meCe), E) : T.mul(T.mean(meCe), (E * E) / (k > 2 ? k : 1));

  // combine weights (reference.ts): DeepSpeed's — gate values of the kept choices, renormalised
  // over them for k ≥ 2 —, or the chosen scores normalised over the k chosen before dropping
  // (sigmoid for k > 1, Megatron's softmax after top-k), or as they are (preSoftmax, sigmoid k = 1)
  const kept = T.ge(slot, 0);
  let combineWeight: T.Tensor;
  if (sigmoid) {
    const chosen = T.gather(scores, 1, expertIndex);
    combineWeight = T.where(kept, k > 1 ? T.div(chosen, T.add(T.sum(chosen, 1, true), 1e-20)) : chosen, 0);
  } else if (o.preSoftmax === true) combineWeight = T.where(kept, T.gather(gates, 1, expertIndex), 0);
  else if (o.preSoftmax === false) combineWeight = T.where(kept, T.softmax(T.gather(logits, 1, expertIndex), -1), 0);
  else {
    combineWeight = T.where(kept, T.gather(gates, 1, expertIndex), 0);
    if (k >= 2) combineWeight = T.div(combineWeight, T.clamp(T.sum(combineWeight, 1, true), epsOf(gates.dtype)));
  }
  return { numTokens: S, numExperts: E, k, capacity: C, expertIndex, slot, row: a.row!, combineWeight, gates, countsBefore, countsAfter, expCounts, dropped, auxLoss, zLoss: zLossOf(logits) };
}

/**
 * DeepSeek-V3's sequence-wise balance loss (reference.ts): per sequence b, E/k · Σₑ fᵦₑ·Pᵦₑ with
 * fᵦₑ = b's assignments to e (all k choices, before dropping) / its tokens and Pᵦₑ = b's mean
 * gate of e; the mean over the sequences. Per-sequence sums as a [B, S] one-hot product.
 */
function seqAuxLoss(gates: T.Tensor, expertIndex: T.Tensor, sequenceIds: ArrayLike<number> | null | undefined, E: number, k: number): T.Tensor {
  const S = gates.shape[0]!;
  if (!sequenceIds) throw new Error("route: loadBalancingType 'seq_aux_loss' needs each token's sequenceIds (the VL-MoE model passes them)");
  if (sequenceIds.length !== S) throw new Error(`route: sequenceIds has ${sequenceIds.length} entries for ${S} tokens`);
  const index = new Map<number, number>();
  const row = Array.from(sequenceIds, (v) => {
    if (!index.has(v)) index.set(v, index.size);
    return index.get(v)!;
  });
  const B = index.size, dev = gates.device;
  const seg = new Array<number>(B * S).fill(0);
  row.forEach((b, s) => (seg[b * S + s] = 1));
  const segT = T.tensor(seg, { dtype: gates.dtype, shape: [B, S], device: dev });
  const tokens = T.sum(segT, 1, true);
  const chosen = T.noGrad(() => T.sum(T.cast(T.oneHot(expertIndex, E), gates.dtype), 1)); // [S, E]
  const f = T.div(T.matmul(segT, chosen), tokens), P = T.div(T.matmul(segT, gates), tokens);
  return T.mul(T.mean(T.sum(T.mul(f, P), 1)), E / k);
}

function expertChoice(logits: T.Tensor, S: number, o: ResolvedRouterOptions, options: RouteOptions): GateOutput {
  checkExpertChoiceOptions(o, 'route');
  const E = o.numExperts;
  const training = options.training ?? true;
  const gates = T.softmax(logits, -1);
  const sel = options.selectLogits ?? logits;
  // each expert's C best tokens by selection score (ties → lower token index)
  const C = Math.min(S, capacity(S, E, training ? o.capacityFactor : o.evalCapacityFactor, 1, o.minCapacity));
  const picked = T.noGrad(() => T.topk(sel.t(), C, -1).indices); // [E, C] token ids, best first
  const tok = picked.dataSync() as BigInt64Array;
  const slots = new Array<number>(S * E).fill(-1);
  for (let e = 0; e < E; e++) for (let c = 0; c < C; c++) slots[Number(tok[e * C + c]) * E + e] = c;
  const dev = logits.device;
  const slot = T.tensor(slots, { dtype: 'int64', shape: [S, E], device: dev });
  const row = T.tensor(slots.map((c, a) => (c < 0 ? -1 : (a % E) * C + c)), { dtype: 'int64', shape: [S, E], device: dev });
  const expertIndex = T.noGrad(() => T.arange(0, E, 1, { dtype: 'int64', device: dev }).reshape(1, E).expand(S, E).contiguous());
  const combineWeight = T.where(T.ge(slot, 0), gates, 0);
  let dropped = 0;
  for (let s = 0; s < S; s++) {
    let any = false;
    for (let e = 0; e < E && !any; e++) any = slots[s * E + e]! >= 0;
    if (!any) dropped++;
  }
  const counts = T.full([E], C, { dtype: 'int64', device: dev });
  return {
    numTokens: S, numExperts: E, k: E, capacity: C, expertIndex, slot, row, combineWeight, gates,
    countsBefore: counts, countsAfter: counts.clone(), expCounts: counts.clone(), dropped,
    auxLoss: T.mul(T.sum(gates), 0), zLoss: zLossOf(logits),
  };
}

/**
 * The compact expert-contiguous layout of a routing: rows (int64 [S, k], −1 when dropped;
 * expert e's kept assignments at offset_e + slot) and the rows per expert.
 */
export function compactRows(gate: Pick<GateOutput, 'row' | 'countsAfter'>): { row: T.Tensor; groupSizes: number[]; numRows: number } {
  const groupSizes = Array.from(gate.countsAfter.dataSync() as BigInt64Array, Number);
  return { row: gate.row, groupSizes, numRows: groupSizes.reduce((x, y) => x + y, 0) };
}
