/**
 * The fused token-choice router: `route`'s token-choice semantics in three native launches
 * forward — `moeGate` (softmax, top-k, chosen gate values, partial column sums, lse),
 * `moeAssign` (slots by prefix sum, drop policy, counts) and `moeCombine` (combine weights,
 * balance loss, z-loss) — and one backward (`moeGateBackward`: dlogits through the
 * renormalisation, the gather, the balance loss's `me`, the z-loss and the softmax), wrapped
 * as one autograd node whose output packs [combineWeight | auxLoss | zLoss] (the three are
 * views of it; the gates get their own node).
 *
 * `route` takes this path on CUDA when `fusedGateSupported` says the options need nothing the
 * kernels lack (and VLMOE_FUSED_GATE is not '0'); on the CPU the composed ops stay the
 * default (the CPU's numbers are pinned to them), and `routeFused` runs the fused kernels on
 * any device.
 */
import * as T from '@vlmoe/tensor';
import { gateEps, resolveRouterOptions, type ResolvedRouterOptions } from './options.js';
import type { GateOutput, RouteOptions } from './route_types.js';
import { assignTokenSlots } from './assign.js';

/** Why the fused gating cannot serve these logits and options, or null when it can. */
export function fusedGateUnsupported(logits: T.Tensor, o: ResolvedRouterOptions, options: RouteOptions): string | null {
  if ((options.policy ?? 'token-choice') !== 'token-choice') return 'expert-choice routing';
  if (options.selectLogits) return 'selectLogits (RSample noise)';
  if (options.secondSelectLogits) return 'secondSelectLogits (top2 second-expert sampling)';
  if (o.useRts) return 'random token selection (useRts)';
  if (o.scoreFunction !== 'softmax') return `scoreFunction '${o.scoreFunction}'`;
  if (o.preSoftmax !== null) return 'preSoftmax';
  if (o.enableExpertBias) return 'the expert bias (enableExpertBias)';
  if (o.numGroups !== null) return 'group-limited routing (numGroups)';
  if (o.loadBalancingType !== 'aux_loss') return `loadBalancingType '${o.loadBalancingType}'`;
  if (o.k > T.MOE_GATE_MAX_K) return `k = ${o.k} > ${T.MOE_GATE_MAX_K}`;
  if (logits.device !== 'cpu' && o.numExperts > 1024) return `numExperts = ${o.numExperts} > 1024 on CUDA`;
  if (logits.dtype !== 'float32' && logits.dtype !== 'float64') return `${logits.dtype} logits`;
  return null;
}

/** Whether `route` takes the fused path: CUDA logits, supported options, VLMOE_FUSED_GATE ≠ '0'. */
export function fusedGateEnabled(logits: T.Tensor, o: ResolvedRouterOptions, options: RouteOptions): boolean {
  if (logits.device === 'cpu') return false;
  if (typeof process !== 'undefined' && process.env?.VLMOE_FUSED_GATE === '0') return false;
  return fusedGateUnsupported(logits, o, options) === null;
}

/**
 * Token-choice routing with the fused kernels on any device (`route`'s GateOutput, the same
 * values up to rounding). Throws for options it does not cover (see fusedGateUnsupported).
 */
export function routeFused(logits: T.Tensor, options: RouteOptions): GateOutput {
  const o = resolveRouterOptions(options);
  if (logits.ndim !== 2 || logits.shape[1] !== o.numExperts) throw new Error(`routeFused: logits must be [S, numExperts = ${o.numExperts}], got [${logits.shape.join(', ')}]`);
  const why = fusedGateUnsupported(logits, o, options);
  if (why) throw new Error(`routeFused: the fused gating does not cover ${why}; use route()`);
  return tokenChoiceFused(logits, logits.shape[0]!, o, options);
}

/** The fused token-choice path (options already checked). */
export function tokenChoiceFused(logits: T.Tensor, S: number, o: ResolvedRouterOptions, options: RouteOptions): GateOutput {
  const E = o.numExperts, k = o.k;
  const g = T.moeGate(logits, k, { withTopValue: o.dropPolicy === 'probs', withLse: true });
  const { assigned: a, capacity: C, dropped } = assignTokenSlots(g.expertIndex, g.topValue ?? null, S, o, options);
  g.topValue?.dispose();
  const { slot, countsBefore, countsAfter } = a;

  // balance loss from the counts before dropping: first choices for k ≤ 2, all for k > 2;
  // route.ts's k = 1 (E·Σ me·ce) and k ≥ 2 (mean(me·ce)·E²/(k > 2 ? k : 1)) as one scale
  const expCounts = k > 2 ? countsBefore : a.countsFirst!;
  if (k > 2) a.countsFirst?.dispose();
  const auxScale = E / (k > 2 ? k : 1);
  const eps = gateEps(g.gates.dtype);
  const c = T.moeCombine(g, slot, expCounts, { auxScale, eps, withZLoss: true });
  g.colPartial.dispose();
  const saved = [g.gates, g.expertIndex, g.lse!, slot, expCounts];
  const backward = (grads: T.MoeGateGrads) => T.moeGateBackward(g, slot, expCounts, grads, { auxScale, eps, dtype: logits.dtype });
  const nk = S * k;
  const packed = T.customOp('moeGateFused', [logits], () => c.packed, (gp) => {
    const gc = T.contiguous(gp);
    const parts = T.noGrad(() => ({ combineWeight: T.narrow(gc, 0, 0, nk), auxLoss: T.narrow(gc, 0, nk, 1), zLoss: T.narrow(gc, 0, nk + 1, 1) }));
    return [backward(parts)];
  }, saved);
  const gates = T.customOp('moeGateSoftmax', [logits], () => g.gates, (gg) => [backward({ gates: gg })], saved);
  let combineWeight = c.combineWeight, auxLoss = c.auxLoss, zLoss = c.zLoss!;
  if (packed.requiresGrad) {
    combineWeight = T.reshape(T.narrow(packed, 0, 0, nk), [S, k]);
    auxLoss = T.select(packed, 0, nk);
    zLoss = T.select(packed, 0, nk + 1);
  }
  return { numTokens: S, numExperts: E, k, capacity: C, expertIndex: g.expertIndex, slot, row: a.row!, combineWeight, gates, countsBefore, countsAfter, expCounts, dropped, auxLoss, zLoss };
}
