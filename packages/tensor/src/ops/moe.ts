/**
 * Fused MoE kernels.
 *
 * - `moeAssign` decides, for every (token, choice) assignment, its slot in the chosen
 *   expert's capacity buffer (or that it is dropped), in one native pass. No gradient flows
 *   through slots (they are integers); gates stay ordinary tensor ops.
 * - `moePermute` moves tokens into an expert-contiguous buffer (one row per kept
 *   assignment), `moeUnpermute` scatters expert outputs back and combines them with the gate
 *   weights; each is one native pass, and each is the other's backward.
 * - `groupedLinear` applies G weight matrices to G consecutive row groups of variable size
 *   (the experts' tokens): one native call forward, one backward.
 * - `expertFFN` fuses a pool of two-layer expert FFNs (grouped GEMM → activation → grouped
 *   GEMM) into one native call forward and one backward, each group's hidden activations
 *   still in cache between its two GEMMs.
 *
 * Under `autocast` on CUDA, groupedLinear and expertFFN multiply float32 operands as
 * linear does: x and the weights rounded to the autocast dtype, float32 accumulation,
 * float32 results (and float32 biases, activations and gradients; the backward rounds dy
 * and the hidden activations for its GEMMs). The mode is fixed at the forward call. The CPU's
 * grouped GEMM is float32 / float64 only: there they stay float32 under autocast.
 */
import { empty, fmtShape, type Tensor } from '../tensor.js';
import * as kernels from '../backend/kernels.js';
import { needsGrad, noGrad, record } from '../autograd.js';
import { autocastDType, type AutocastDType } from '../autocast.js';
import { contiguous, cast } from './elementwise.js';
import { tensor } from './creation.js';

export interface MoeAssignOptions {
  numExperts: number;
  /** Slots per expert. */
  capacity: number;
  /**
   * `[S, k]` float priorities: when given, an over-full expert keeps its `capacity`
   * highest-priority assignments (batch priority routing: gate values; RTS: uniform draws);
   * otherwise the first `capacity` of its queue (choice rank, then token position).
   */
  priority?: Tensor | null;
  /** Also return `countsFirst` and `row` (default false). */
  withRows?: boolean;
}

export interface MoeAssignResult {
  /** int64 [S, k]: slot in the expert's buffer, −1 = dropped. */
  slot: Tensor;
  /** int64 [E]: assignments per expert before / after dropping. */
  countsBefore: Tensor;
  countsAfter: Tensor;
  /** int64 [E]: first choices per expert before dropping (with `withRows`). */
  countsFirst?: Tensor;
  /**
   * int64 [S, k] (with `withRows`): row of each assignment in the compact expert-contiguous
   * buffer (expert e's kept assignments at rows offset_e + slot, offset = exclusive prefix
   * sum of countsAfter), −1 when dropped — what moePermute / moeUnpermute take.
   */
  row?: Tensor;
}

/**
 * `expert`: int64/int32 `[S, k]` chosen experts. Returns `slot` (int64 `[S, k]`, −1 =
 * dropped; kept assignments take slots 0.. in queue order), `countsBefore` and `countsAfter`
 * (int64 `[E]`), and with `withRows` the first-choice counts and compact buffer rows.
 */
export function moeAssign(expert: Tensor, options: MoeAssignOptions): MoeAssignResult {
  expert.check('moeAssign');
  if (expert.ndim !== 2) throw new Error(`moeAssign: expert must be [S, k], got ${fmtShape(expert.shape)}`);
  if (expert.dtype !== 'int64' && expert.dtype !== 'int32') throw new TypeError(`moeAssign: expert must be int64 or int32, got ${expert.dtype}`);
  const E = options.numExperts;
  const C = options.capacity;
  if (!(Number.isInteger(E) && E >= 1)) throw new RangeError(`moeAssign: numExperts must be an integer ≥ 1, got ${E}`);
  if (!(Number.isInteger(C) && C >= 0)) throw new RangeError(`moeAssign: capacity must be an integer ≥ 0, got ${C}`);
  const [S, k] = expert.shape as [number, number];
  const ex = contiguous(expert.dtype === 'int64' ? expert : cast(expert, 'int64'));
  let pr: Tensor | null = null;
  if (options.priority) {
    const p = options.priority;
    p.check('moeAssign');
    if (p.shape.length !== 2 || p.shape[0] !== S || p.shape[1] !== k) throw new Error(`moeAssign: priority must be [${S}, ${k}] like expert, got ${fmtShape(p.shape)}`);
    if (p.device !== expert.device) throw new Error(`moeAssign: priority is on ${p.device}, expert on ${expert.device}`);
    pr = contiguous(p.dtype === 'float64' ? p : cast(p, 'float64'));
  }
  const dev = expert.device;
  const slot = empty([S, k], 'int64', dev);
  const countsBefore = empty([E], 'int64', dev);
  const countsAfter = empty([E], 'int64', dev);
  const countsFirst = options.withRows ? empty([E], 'int64', dev) : null;
  const row = options.withRows ? empty([S, k], 'int64', dev) : null;
  kernels.moeAssign(ex, pr, S, k, E, C, slot, countsBefore, countsAfter, countsFirst, row);
  if (ex !== expert) ex.dispose();
  if (pr && pr !== options.priority) pr.dispose();
  return row && countsFirst ? { slot, countsBefore, countsAfter, countsFirst, row } : { slot, countsBefore, countsAfter };
}

/** Float operands of one dtype on one device (the first one's). */
function checkFloat(op: string, ...ts: (Tensor | null | undefined)[]): void {
  let dtype: string | null = null;
  let device: string | null = null;
  for (const t of ts) {
    if (!t) continue;
    t.check(op);
    if (device && t.device !== device) throw new Error(`${op}: operands are on ${device} and ${t.device}; move them to one device`);
    device = t.device;
    if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`${op}: expected float32 or float64 tensors, got ${t.dtype}`);
    if (dtype && t.dtype !== dtype) throw new TypeError(`${op}: all float operands must share one dtype, got ${dtype} and ${t.dtype}`);
    dtype = t.dtype;
  }
}

/** row as contiguous int64 [S, k]. */
function rowsOf(op: string, row: Tensor, S: number): { r: Tensor; k: number } {
  row.check(op);
  if (row.ndim !== 2 || row.shape[0] !== S) throw new Error(`${op}: row must be [${S}, k] (one row per token and choice), got ${fmtShape(row.shape)}`);
  if (row.dtype !== 'int64' && row.dtype !== 'int32') throw new TypeError(`${op}: row must be int64 or int32, got ${row.dtype}`);
  return { r: contiguous(row.dtype === 'int64' ? row : cast(row, 'int64')), k: row.shape[1]! };
}

/** row on the data's device. */
function rowsOn(op: string, row: Tensor, S: number, device: string): { r: Tensor; k: number } {
  if (row.device !== device) throw new Error(`${op}: row is on ${row.device}, the data on ${device}`);
  return rowsOf(op, row, S);
}

function weightsOf(op: string, weight: Tensor | null | undefined, S: number, k: number): Tensor | null {
  if (!weight) return null;
  if (weight.ndim !== 2 || weight.shape[0] !== S || weight.shape[1] !== k) throw new Error(`${op}: weight must be [${S}, ${k}] like row, got ${fmtShape(weight.shape)}`);
  return contiguous(weight);
}

function permuteRaw(x: Tensor, r: Tensor, w: Tensor | null, S: number, k: number, d: number, R: number): Tensor {
  const out = empty([R, d], x.dtype, x.device);
  kernels.moePermute(out, x, r, w, S, k, d, R, false);
  return out;
}

function unpermuteRaw(y: Tensor, r: Tensor, w: Tensor | null, S: number, k: number, d: number, R: number): Tensor {
  const out = empty([S, d], y.dtype, y.device);
  kernels.moePermute(out, y, r, w, S, k, d, R, true);
  return out;
}

function weightGradRaw(dout: Tensor, y: Tensor, r: Tensor, S: number, k: number, d: number, R: number): Tensor {
  const dw = empty([S, k], y.dtype, y.device);
  kernels.moeUnpermuteWeightGrad(dw, dout, y, r, S, k, d, R);
  return dw;
}

/**
 * Tokens → expert-contiguous buffer: `out[row[s, j]] = weight[s, j] · x[s]` (weight 1 when
 * omitted) for every kept assignment (`row ≥ 0`); rows no assignment targets are 0.
 * `x` [S, d] float, `row` [S, k] int (distinct rows in [−1, numRows)). Returns [numRows, d].
 * Differentiable in `x` and `weight`.
 */
export function moePermute(x: Tensor, row: Tensor, numRows: number, weight?: Tensor | null): Tensor {
  checkFloat('moePermute', x, weight);
  if (x.ndim !== 2) throw new Error(`moePermute: x must be [S, d], got ${fmtShape(x.shape)}`);
  if (!(Number.isInteger(numRows) && numRows >= 0)) throw new RangeError(`moePermute: numRows must be an integer ≥ 0, got ${numRows}`);
  const [S, d] = x.shape as [number, number];
  const { r, k } = rowsOn('moePermute', row, S, x.device);
  const w = weightsOf('moePermute', weight, S, k);
  const xc = contiguous(x);
  const out = permuteRaw(xc, r, w, S, k, d, numRows);
  if (needsGrad(x, weight)) {
    const saved = [r, ...(w ? [w] : []), ...(w && weight!.requiresGrad ? [xc] : [])];
    record(out, 'moePermute', [x, weight ?? null], (g) => {
      const gc = contiguous(g);
      const gx = x.requiresGrad ? unpermuteRaw(gc, r, w, S, k, d, numRows) : null;
      const gw = w && weight!.requiresGrad ? weightGradRaw(xc, gc, r, S, k, d, numRows) : null;
      return [gx, gw];
    }, saved);
  }
  return out;
}

/**
 * Expert-contiguous buffer → tokens, combined: `out[s] = Σ_j weight[s, j] · y[row[s, j]]`
 * over kept choices (weight 1 when omitted; 0 for a token with every choice dropped). The
 * sum accumulates in the data's precision (float32 or float64). `y` [R, d], `row` [S, k].
 * Returns [S, d]. Differentiable in `y` and `weight`.
 */
export function moeUnpermute(y: Tensor, row: Tensor, weight?: Tensor | null): Tensor {
  checkFloat('moeUnpermute', y, weight);
  if (y.ndim !== 2) throw new Error(`moeUnpermute: y must be [R, d], got ${fmtShape(y.shape)}`);
  if (row.ndim !== 2) throw new Error(`moeUnpermute: row must be [S, k], got ${fmtShape(row.shape)}`);
  const [R, d] = y.shape as [number, number];
  const S = row.shape[0]!;
  const { r, k } = rowsOn('moeUnpermute', row, S, y.device);
  const w = weightsOf('moeUnpermute', weight, S, k);
  const yc = contiguous(y);
  const out = unpermuteRaw(yc, r, w, S, k, d, R);
  if (needsGrad(y, weight)) {
    const saved = [r, ...(w ? [w] : []), ...(w && weight!.requiresGrad ? [yc] : [])];
    record(out, 'moeUnpermute', [y, weight ?? null], (g) => {
      const gc = contiguous(g);
      const gy = y.requiresGrad ? permuteRaw(gc, r, w, S, k, d, R) : null;
      const gw = w && weight!.requiresGrad ? weightGradRaw(gc, yc, r, S, k, d, R) : null;
      return [gy, gw];
    }, saved);
  }
  return out;
}

/** Group sizes as a contiguous int64 tensor of G entries (on the CPU, or a device: read back by the kernel, which launches one GEMM per group). */
function groupSizesOf(op: string, groupSizes: Tensor | ArrayLike<number>, G: number): Tensor {
  let sizes: Tensor;
  if (ArrayBuffer.isView(groupSizes) || Array.isArray(groupSizes) || !(groupSizes as Tensor).shape) {
    sizes = tensor(Array.from(groupSizes as ArrayLike<number>, Number), { dtype: 'int64' });
  } else {
    const t = groupSizes as Tensor;
    t.check(op);
    sizes = contiguous(t.dtype === 'int64' ? t : cast(t, 'int64'));
  }
  if (sizes.numel !== G) throw new Error(`${op}: ${sizes.numel} group sizes for ${G} weight matrices`);
  return sizes;
}

/**
 * The dtype the grouped GEMMs multiply in under autocast: its half dtype for float32
 * operands on CUDA (not for the reference path); null elsewhere (the CPU keeps float32).
 */
function groupedHalf(x: Tensor, reference: boolean): AutocastDType | null {
  const half = autocastDType();
  return half && !reference && x.device !== 'cpu' && x.dtype === 'float32' ? half : null;
}

/** The contiguous GEMM operand: t (copied if strided), or (autocast) a contiguous copy rounded to the half dtype. */
function gemmOperand(t: Tensor, half: AutocastDType | null): Tensor {
  return half ? noGrad(() => cast(t, half)) : contiguous(t);
}

export interface GroupedLinearOptions {
  /** Run every group through the plain triple-loop GEMM (tests' ground truth). */
  reference?: boolean;
}

/**
 * Grouped linear: rows `[off_g, off_g + n_g)` of `x` [R, in] go through `weight[g]`
 * ([in, out], stored `[G, in, out]`) and `bias[g]`: `y_g = x_g · weight[g] + bias[g]`.
 * `groupSizes` (int tensor or numbers, G entries ≥ 0) must sum to R. Forward is one native
 * call, backward one more (dx, dweight, dbias together). Returns [R, out].
 */
export function groupedLinear(x: Tensor, weight: Tensor, bias: Tensor | null, groupSizes: Tensor | ArrayLike<number>, options: GroupedLinearOptions = {}): Tensor {
  checkFloat('groupedLinear', x, weight, bias);
  if (x.ndim !== 2) throw new Error(`groupedLinear: x must be [R, in], got ${fmtShape(x.shape)}`);
  if (weight.ndim !== 3) throw new Error(`groupedLinear: weight must be [G, in, out], got ${fmtShape(weight.shape)}`);
  const [G, K, N] = weight.shape as [number, number, number];
  const R = x.shape[0]!;
  if (x.shape[1] !== K) throw new Error(`groupedLinear: x ${fmtShape(x.shape)} has ${x.shape[1]} features but weight ${fmtShape(weight.shape)} takes ${K}`);
  if (bias && (bias.ndim !== 2 || bias.shape[0] !== G || bias.shape[1] !== N)) throw new Error(`groupedLinear: bias must be [${G}, ${N}], got ${fmtShape(bias.shape)}`);
  const sizes = groupSizesOf('groupedLinear', groupSizes, G);
  const ref = options.reference ?? false;
  const half = groupedHalf(x, ref);
  const xc = gemmOperand(x, half), wc = gemmOperand(weight, half), bc = bias ? contiguous(bias) : null;
  const y = empty([R, N], x.dtype, x.device);
  kernels.groupedLinear(y, xc, wc, bc, sizes, G, K, N, R, ref);
  if (needsGrad(x, weight, bias)) {
    record(y, 'groupedLinear', [x, weight, bias], (g) => {
      const gc = contiguous(g);
      const dx = x.requiresGrad ? empty([R, K], x.dtype, x.device) : null;
      const dw = weight.requiresGrad ? empty([G, K, N], x.dtype, x.device) : null;
      const db = bias && bias.requiresGrad ? empty([G, N], x.dtype, x.device) : null;
      kernels.groupedLinearBackward(xc, wc, gc, dx, dw, db, sizes, G, K, N, R, ref);
      return [dx, dw, db];
    }, [xc, wc, sizes]);
  } else if (half) {
    xc.dispose();
    wc.dispose();
  }
  return y;
}

export type ExpertActivation = 'gelu' | 'gelu_tanh' | 'relu';

export interface ExpertFFNOptions extends GroupedLinearOptions {
  /** Default 'gelu' (erf). */
  activation?: ExpertActivation;
}

/**
 * A pool of G two-layer FFNs over consecutive row groups of `x` [R, D]:
 * `y_g = act(x_g · w1[g] + b1[g]) · w2[g] + b2[g]`, with `w1` [G, D, H], `b1` [G, H],
 * `w2` [G, H, D], `b2` [G, D] (biases may be null) and `groupSizes` summing to R. The same
 * as groupedLinear → activation → groupedLinear, fused: one native call forward (keeping
 * the pre-activations and activations [R, H] for backward), one backward. Returns [R, D].
 */
export function expertFFN(x: Tensor, w1: Tensor, b1: Tensor | null, w2: Tensor, b2: Tensor | null, groupSizes: Tensor | ArrayLike<number>, options: ExpertFFNOptions = {}): Tensor {
  checkFloat('expertFFN', x, w1, b1, w2, b2);
  if (x.ndim !== 2) throw new Error(`expertFFN: x must be [R, D], got ${fmtShape(x.shape)}`);
  if (w1.ndim !== 3) throw new Error(`expertFFN: w1 must be [G, D, H], got ${fmtShape(w1.shape)}`);
  const [G, D, H] = w1.shape as [number, number, number];
  const R = x.shape[0]!;
  if (x.shape[1] !== D) throw new Error(`expertFFN: x ${fmtShape(x.shape)} has ${x.shape[1]} features but w1 ${fmtShape(w1.shape)} takes ${D}`);
  if (w2.ndim !== 3 || w2.shape[0] !== G || w2.shape[1] !== H || w2.shape[2] !== D) throw new Error(`expertFFN: w2 must be [${G}, ${H}, ${D}], got ${fmtShape(w2.shape)}`);
  if (b1 && (b1.ndim !== 2 || b1.shape[0] !== G || b1.shape[1] !== H)) throw new Error(`expertFFN: b1 must be [${G}, ${H}], got ${fmtShape(b1.shape)}`);
  if (b2 && (b2.ndim !== 2 || b2.shape[0] !== G || b2.shape[1] !== D)) throw new Error(`expertFFN: b2 must be [${G}, ${D}], got ${fmtShape(b2.shape)}`);
  const actName = options.activation ?? 'gelu';
  const act = ({ gelu: 0, gelu_tanh: 1, relu: 2 } as const)[actName];
  if (act === undefined) throw new RangeError(`expertFFN: activation must be 'gelu', 'gelu_tanh' or 'relu', got '${String(actName)}'`);
  const sizes = groupSizesOf('expertFFN', groupSizes, G);
  const ref = options.reference ?? false;
  const half = groupedHalf(x, ref);
  const xc = gemmOperand(x, half), w1c = gemmOperand(w1, half), w2c = gemmOperand(w2, half);
  const b1c = b1 ? contiguous(b1) : null, b2c = b2 ? contiguous(b2) : null;
  const pre = empty([R, H], x.dtype, x.device), hid = empty([R, H], x.dtype, x.device), y = empty([R, D], x.dtype, x.device);
  kernels.expertFFN(xc, w1c, b1c, w2c, b2c, pre, hid, y, sizes, G, D, H, R, act, ref);
  if (needsGrad(x, w1, b1, w2, b2)) {
    record(y, 'expertFFN', [x, w1, b1, w2, b2], (g) => {
      const gc = contiguous(g);
      const want = (t: Tensor | null, shape: number[]) => (t && t.requiresGrad ? empty(shape, x.dtype, x.device) : null);
      const out = { dx: want(x, [R, D]), dw1: want(w1, [G, D, H]), db1: want(b1, [G, H]), dw2: want(w2, [G, H, D]), db2: want(b2, [G, D]) };
      const scratch = empty([R, H], x.dtype, x.device);
      kernels.expertFFNBackward(xc, w1c, w2c, pre, hid, gc, scratch, out, sizes, G, D, H, R, act, ref);
      scratch.dispose();
      return [out.dx, out.dw1, out.db1, out.dw2, out.db2];
    }, [xc, w1c, w2c, pre, hid, sizes]);
  } else {
    pre.dispose();
    hid.dispose();
    if (half) for (const t of [xc, w1c, w2c]) t.dispose();
  }
  return y;
}
