/**
 * Fused token-choice MoE gating (native-cuda cpu/moe_gate.h), the kernels under the moe
 * package's fused router: with `moeAssign` between them, three native launches forward and
 * one backward instead of ~15 and ~10 small ops.
 *
 * - `moeGate`: softmax gates [S, E], top-k expert indices [S, k] (by logit, ties → lower
 *   index, as `topk`), optionally the chosen gate values in float64 (batch-priority drop
 *   priorities) and the row logsumexp [S] (z-loss), and partial column sums of the gates
 *   (float64 [P, E]; one row on the CPU, one per CUDA block — no atomics).
 * - `moeCombine`: from those and moeAssign's slots, the combine weights [S, k] (kept gate
 *   values, renormalised over the kept ones for k ≥ 2 with the denominator clamped to eps),
 *   the balance loss auxScale·Σ_e me_e·ce_e and the z-loss mean(lse²), written into one
 *   `packed` tensor [S·k + 1 (+1)] so that one autograd node can own all three.
 * - `moeGateBackward`: dlogits [S, E] from the gradients of any of gates, combine weights,
 *   aux and z, in one pass over each row.
 * None of them records autograd: the router wraps them (packages/moe route_fused.ts).
 * float32 / float64; on CUDA the gate forward also takes bfloat16 / float16 logits (float32
 * math and outputs), E ≤ 1024 there; k ≤ 8.
 */
import * as kernels from '../backend/kernels.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { contiguous, cast } from './elementwise.js';
import { narrow, reshape, select } from './views.js';

export const MOE_GATE_MAX_K = 8;

export interface MoeGateResult {
  /** [S, E] softmax of the logits (float64 for float64 logits, else float32). */
  gates: Tensor;
  /** int64 [S, k]: the k experts with the largest logits, best first (ties → lower index). */
  expertIndex: Tensor;
  /** float64 [S, k]: the gate values of the choices (with `withTopValue`). */
  topValue: Tensor | null;
  /** float64 [P, E]: partial column sums of the gates (Σ over P = the column sums). */
  colPartial: Tensor;
  /** [S]: log Σ exp of each row (with `withLse`; the gates' dtype). */
  lse: Tensor | null;
}

export interface MoeGateOptions {
  withTopValue?: boolean;
  withLse?: boolean;
}

const rowDType = (dtype: string) => (dtype === 'float64' ? 'float64' : 'float32');

/** Gate forward of the fused router on logits [S, E] (one native launch). */
export function moeGate(logits: Tensor, k: number, options: MoeGateOptions = {}): MoeGateResult {
  logits.check('moeGate');
  if (logits.ndim !== 2) throw new Error(`moeGate: logits must be [S, E], got ${fmtShape(logits.shape)}`);
  const [S, E] = logits.shape as [number, number];
  if (!['float32', 'float64', 'bfloat16', 'float16'].includes(logits.dtype)) throw new TypeError(`moeGate: expected floating logits, got ${logits.dtype}`);
  if (!(Number.isInteger(k) && k >= 1 && k <= Math.min(E, MOE_GATE_MAX_K))) throw new RangeError(`moeGate: k must be an integer in [1, min(E = ${E}, ${MOE_GATE_MAX_K})], got ${k}`);
  const dev = logits.device;
  // partial column sums: one row on the CPU, one per CUDA block of 8 row-warps (≤ 1024 blocks)
  const P = dev === 'cpu' ? 1 : Math.max(1, Math.min(Math.ceil(S / 8), 1024));
  const rd = rowDType(logits.dtype);
  const x = noGrad(() => contiguous(logits));
  const gates = empty([S, E], rd, dev);
  const expertIndex = empty([S, k], 'int64', dev);
  const topValue = options.withTopValue ? empty([S, k], 'float64', dev) : null;
  const colPartial = empty([P, E], 'float64', dev);
  const lse = options.withLse ? empty([S], rd, dev) : null;
  kernels.moeGate(x, gates, expertIndex, topValue, colPartial, lse, S, E, k, P);
  if (x !== logits) x.dispose();
  return { gates, expertIndex, topValue, colPartial, lse };
}

export interface MoeCombineOptions {
  /** aux = auxScale · Σ_e me_e·ce_e (route.ts: E / (k > 2 ? k : 1)). */
  auxScale: number;
  /** Lower bound of the k ≥ 2 renormalisation's denominator. */
  eps: number;
  /** Also the z-loss mean(lse²) (needs the gate's lse). Default true when it has one. */
  withZLoss?: boolean;
}

export interface MoeCombineResult {
  /** [S·k + 1 (+ 1)]: combine weights, aux loss, z-loss, in one storage. */
  packed: Tensor;
  /** Views of `packed`: [S, k], scalar, scalar (null without the z-loss). */
  combineWeight: Tensor;
  auxLoss: Tensor;
  zLoss: Tensor | null;
}

type GateParts = Pick<MoeGateResult, 'gates' | 'expertIndex' | 'colPartial' | 'lse'>;

function int64OnDevice(op: string, name: string, t: Tensor, shape: readonly number[], dev: string): Tensor {
  t.check(op);
  if (t.device !== dev) throw new Error(`${op}: ${name} is on ${t.device}, the gates on ${dev}`);
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) throw new Error(`${op}: ${name} must be ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
  if (t.dtype !== 'int64' && t.dtype !== 'int32') throw new TypeError(`${op}: ${name} must be int64 or int32, got ${t.dtype}`);
  return noGrad(() => contiguous(t.dtype === 'int64' ? t : cast(t, 'int64')));
}

/**
 * Combine weights, balance loss and z-loss of the fused router (one native launch) from
 * `moeGate`'s outputs, `slot` (moeAssign's, int64 [S, k], −1 = dropped) and the balance
 * loss's per-expert counts (int64 [E]).
 */
export function moeCombine(gate: GateParts, slot: Tensor, counts: Tensor, options: MoeCombineOptions): MoeCombineResult {
  const { gates, expertIndex, colPartial } = gate;
  gates.check('moeCombine');
  const [S, E] = gates.shape as [number, number];
  const k = expertIndex.shape[1]!;
  const dev = gates.device;
  if (gates.dtype !== 'float32' && gates.dtype !== 'float64') throw new TypeError(`moeCombine: gates must be float32 or float64, got ${gates.dtype}`);
  const withZ = options.withZLoss ?? gate.lse !== null;
  if (withZ && !gate.lse) throw new Error('moeCombine: the z-loss needs the gate lse (moeGate withLse)');
  const sl = int64OnDevice('moeCombine', 'slot', slot, [S, k], dev);
  const cn = int64OnDevice('moeCombine', 'counts', counts, [E], dev);
  const packed = empty([S * k + (withZ ? 2 : 1)], gates.dtype, dev);
  const { combineWeight, auxLoss, zLoss } = noGrad(() => ({
    combineWeight: reshape(narrow(packed, 0, 0, S * k), [S, k]),
    auxLoss: select(packed, 0, S * k),
    zLoss: withZ ? select(packed, 0, S * k + 1) : null,
  }));
  kernels.moeCombine(gates, expertIndex, sl, colPartial, cn, withZ ? gate.lse : null, combineWeight, auxLoss, zLoss, S, E, k, colPartial.shape[0]!, options.eps, options.auxScale);
  if (sl !== slot) sl.dispose();
  if (cn !== counts) cn.dispose();
  return { packed, combineWeight, auxLoss, zLoss };
}

export interface MoeGateGrads {
  gates?: Tensor | null;
  combineWeight?: Tensor | null;
  auxLoss?: Tensor | null;
  zLoss?: Tensor | null;
}

/**
 * dlogits [S, E] (in `dtype`, the logits') of the fused router from the upstream gradients of
 * its gates [S, E], combine weights [S, k], aux loss and z-loss (any may be absent; one
 * native launch). `gate` needs its lse when a z-loss gradient is given.
 */
export function moeGateBackward(gate: Pick<MoeGateResult, 'gates' | 'expertIndex' | 'lse'>, slot: Tensor, counts: Tensor, grads: MoeGateGrads,
  options: { auxScale: number; eps: number; dtype?: Tensor['dtype'] }): Tensor {
  const { gates, expertIndex } = gate;
  const [S, E] = gates.shape as [number, number];
  const k = expertIndex.shape[1]!;
  const dev = gates.device;
  const dtype = options.dtype ?? gates.dtype;
  if (rowDType(dtype) !== gates.dtype) throw new TypeError(`moeGateBackward: ${dtype} logits need ${rowDType(dtype)} gates, got ${gates.dtype}`);
  if (grads.zLoss && !gate.lse) throw new Error('moeGateBackward: the z-loss gradient needs the gate lse');
  const prep = (name: string, g: Tensor | null | undefined, numel: number): Tensor | null => {
    if (!g) return null;
    if (g.numel !== numel) throw new Error(`moeGateBackward: the gradient of ${name} has ${g.numel} elements, expected ${numel}`);
    if (g.device !== dev) throw new Error(`moeGateBackward: the gradient of ${name} is on ${g.device}, the gates on ${dev}`);
    return noGrad(() => contiguous(g.dtype === gates.dtype ? g : cast(g, gates.dtype)));
  };
  const gG = prep('gates', grads.gates, S * E), gC = prep('combineWeight', grads.combineWeight, S * k);
  const gA = prep('auxLoss', grads.auxLoss, 1), gZ = prep('zLoss', grads.zLoss, 1);
  const sl = int64OnDevice('moeGateBackward', 'slot', slot, [S, k], dev);
  const cn = int64OnDevice('moeGateBackward', 'counts', counts, [E], dev);
  const dx = empty([S, E], dtype, dev);
  if (S > 0) kernels.moeGateBackward(dx, gates, expertIndex, sl, cn, gZ ? gate.lse : null, gG, gC, gA, gZ, S, E, k, options.eps, options.auxScale);
  for (const [t, src] of [[gG, grads.gates], [gC, grads.combineWeight], [gA, grads.auxLoss], [gZ, grads.zLoss], [sl, slot], [cn, counts]] as const)
    if (t && t !== src) t.dispose();
  return dx;
}
