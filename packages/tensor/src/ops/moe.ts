/**
 * Fused MoE routing kernels. `moeAssign` decides, for every (token, choice) assignment, its
 * slot in the chosen expert's capacity buffer (or that it is dropped), in one native pass.
 * No gradient flows through slots (they are integers); gates stay ordinary tensor ops.
 */
import { empty, fmtShape, type Tensor } from '../tensor.js';
import * as kernels from '../backend/kernels.js';
import { contiguous, cast } from './elementwise.js';

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
