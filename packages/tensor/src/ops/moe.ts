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
 */
import { empty, fmtShape, type Tensor } from '../tensor.js';
import * as kernels from '../backend/kernels.js';
import { needsGrad, record } from '../autograd.js';
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
}

/**
 * `expert`: int64/int32 `[S, k]` chosen experts. Returns `slot` (int64 `[S, k]`, −1 =
 * dropped; kept assignments take slots 0.. in queue order), `countsBefore` and `countsAfter`
 * (int64 `[E]`).
 */
export function moeAssign(expert: Tensor, options: MoeAssignOptions): { slot: Tensor; countsBefore: Tensor; countsAfter: Tensor } {
  expert.check('moeAssign');
  if (expert.ndim !== 2) throw new Error(`moeAssign: expert must be [S, k], got ${fmtShape(expert.shape)}`);
  if (expert.dtype !== 'int64' && expert.dtype !== 'int32') throw new TypeError(`moeAssign: expert must be int64 or int32, got ${expert.dtype}`);
  if (expert.device !== 'cpu') throw new Error(`moeAssign: only the CPU kernel exists so far (tensor on ${expert.device})`);
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
    pr = contiguous(p.dtype === 'float64' ? p : cast(p, 'float64'));
  }
  const slot = empty([S, k], 'int64');
  const countsBefore = empty([E], 'int64');
  const countsAfter = empty([E], 'int64');
  kernels.moeAssign(ex, pr, S, k, E, C, slot, countsBefore, countsAfter);
  if (ex !== expert) ex.dispose();
  if (pr && pr !== options.priority) pr.dispose();
  return { slot, countsBefore, countsAfter };
}

function checkCpuFloat(op: string, ...ts: (Tensor | null | undefined)[]): void {
  let dtype: string | null = null;
  for (const t of ts) {
    if (!t) continue;
    t.check(op);
    if (t.device !== 'cpu') throw new Error(`${op}: only the CPU kernel exists so far (tensor on ${t.device})`);
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

function weightsOf(op: string, weight: Tensor | null | undefined, S: number, k: number): Tensor | null {
  if (!weight) return null;
  if (weight.ndim !== 2 || weight.shape[0] !== S || weight.shape[1] !== k) throw new Error(`${op}: weight must be [${S}, ${k}] like row, got ${fmtShape(weight.shape)}`);
  return contiguous(weight);
}

function permuteRaw(x: Tensor, r: Tensor, w: Tensor | null, S: number, k: number, d: number, R: number): Tensor {
  const out = empty([R, d], x.dtype);
  kernels.moePermute(out, x, r, w, S, k, d, R);
  return out;
}

function unpermuteRaw(y: Tensor, r: Tensor, w: Tensor | null, S: number, k: number, d: number, R: number): Tensor {
  const out = empty([S, d], y.dtype);
  kernels.moeUnpermute(out, y, r, w, S, k, d, R);
  return out;
}

function weightGradRaw(dout: Tensor, y: Tensor, r: Tensor, S: number, k: number, d: number, R: number): Tensor {
  const dw = empty([S, k], y.dtype);
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
  checkCpuFloat('moePermute', x, weight);
  if (x.ndim !== 2) throw new Error(`moePermute: x must be [S, d], got ${fmtShape(x.shape)}`);
  if (!(Number.isInteger(numRows) && numRows >= 0)) throw new RangeError(`moePermute: numRows must be an integer ≥ 0, got ${numRows}`);
  const [S, d] = x.shape as [number, number];
  const { r, k } = rowsOf('moePermute', row, S);
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
  checkCpuFloat('moeUnpermute', y, weight);
  if (y.ndim !== 2) throw new Error(`moeUnpermute: y must be [R, d], got ${fmtShape(y.shape)}`);
  if (row.ndim !== 2) throw new Error(`moeUnpermute: row must be [S, k], got ${fmtShape(row.shape)}`);
  const [R, d] = y.shape as [number, number];
  const S = row.shape[0]!;
  const { r, k } = rowsOf('moeUnpermute', row, S);
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
  checkCpuFloat('groupedLinear', x, weight, bias);
  if (x.ndim !== 2) throw new Error(`groupedLinear: x must be [R, in], got ${fmtShape(x.shape)}`);
  if (weight.ndim !== 3) throw new Error(`groupedLinear: weight must be [G, in, out], got ${fmtShape(weight.shape)}`);
  const [G, K, N] = weight.shape as [number, number, number];
  const R = x.shape[0]!;
  if (x.shape[1] !== K) throw new Error(`groupedLinear: x ${fmtShape(x.shape)} has ${x.shape[1]} features but weight ${fmtShape(weight.shape)} takes ${K}`);
  if (bias && (bias.ndim !== 2 || bias.shape[0] !== G || bias.shape[1] !== N)) throw new Error(`groupedLinear: bias must be [${G}, ${N}], got ${fmtShape(bias.shape)}`);
  let sizes: Tensor;
  if (ArrayBuffer.isView(groupSizes) || Array.isArray(groupSizes) || !(groupSizes as Tensor).shape) {
    const arr = Array.from(groupSizes as ArrayLike<number>, Number);
    sizes = tensor(arr, { dtype: 'int64' });
  } else {
    const t = groupSizes as Tensor;
    t.check('groupedLinear');
    if (t.device !== 'cpu') throw new Error(`groupedLinear: groupSizes must be on the CPU (got ${t.device})`);
    sizes = contiguous(t.dtype === 'int64' ? t : cast(t, 'int64'));
  }
  if (sizes.numel !== G) throw new Error(`groupedLinear: ${sizes.numel} group sizes for ${G} weight matrices`);
  const ref = options.reference ?? false;
  const xc = contiguous(x), wc = contiguous(weight), bc = bias ? contiguous(bias) : null;
  const y = empty([R, N], x.dtype);
  kernels.groupedLinear(y, xc, wc, bc, sizes, G, K, N, R, ref);
  if (needsGrad(x, weight, bias)) {
    record(y, 'groupedLinear', [x, weight, bias], (g) => {
      const gc = contiguous(g);
      const dx = x.requiresGrad ? empty([R, K], x.dtype) : null;
      const dw = weight.requiresGrad ? empty([G, K, N], x.dtype) : null;
      const db = bias && bias.requiresGrad ? empty([G, N], x.dtype) : null;
      kernels.groupedLinearBackward(xc, wc, gc, dx, dw, db, sizes, G, K, N, R, ref);
      return [dx, dw, db];
    }, [xc, wc, sizes]);
  }
  return y;
}
