/** Helpers shared by the router tests: seeded logits, comparison with the float64 reference, a loss over every output. */
import { expect } from 'vitest';
import * as T from '@vlmoe/tensor';
import type { GateOutput, RouteResult } from '../src/index.js';
import { rand } from './prng.js';

export const ints = (t: T.Tensor) => Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);
export const floats = (t: T.Tensor) => Array.from(t.dataSync() as ArrayLike<number>);

/** Random logits in [−3, 3); with `levels`, drawn from a few levels so ties are common. */
export function randomLogits(S: number, E: number, seed: number, levels = 0): number[] {
  const r = rand(seed);
  return Array.from({ length: S * E }, () => (levels ? Math.floor(r() * levels) / 2 : r() * 6 - 3));
}

/** A routing equals the float64 reference's: choices, slots, counts exactly; weights and losses within 1e-12. */
export function expectSameAsReference(got: GateOutput, ref: RouteResult, what: string): void {
  expect(got.capacity, `${what}: capacity`).toBe(ref.capacity);
  expect(ints(got.expertIndex), `${what}: experts`).toEqual(Array.from(ref.expertIndex));
  expect(ints(got.slot), `${what}: slots`).toEqual(Array.from(ref.slot));
  expect(ints(got.countsBefore), `${what}: counts before`).toEqual(Array.from(ref.countsBefore));
  expect(ints(got.countsAfter), `${what}: counts after`).toEqual(Array.from(ref.countsAfter));
  expect(ints(got.expCounts), `${what}: exp_counts`).toEqual(Array.from(ref.expCounts));
  expect(got.dropped, `${what}: dropped`).toBe(ref.dropped);
  const w = floats(got.combineWeight);
  ref.combineWeight.forEach((v, i) => expect(Math.abs(w[i]! - v), `${what}: combine weight ${i}`).toBeLessThan(1e-12));
  const g = floats(got.gates);
  ref.gates.forEach((v, i) => expect(Math.abs(g[i]! - v), `${what}: gate ${i}`).toBeLessThan(1e-12));
  expect(Math.abs(got.auxLoss.item() - ref.auxLoss), `${what}: aux loss`).toBeLessThan(1e-12);
  expect(Math.abs(got.zLoss.item() - ref.zLoss), `${what}: z loss`).toBeLessThan(1e-10);
}

/** A loss over every differentiable output: Σ cw·A + Σ gates·B + 0.3·aux + 0.7·z. */
export function lossOf(g: GateOutput, A: T.Tensor, B: T.Tensor): T.Tensor {
  return T.add(T.add(T.sum(T.mul(g.combineWeight, A)), T.sum(T.mul(g.gates, B))), T.add(T.mul(g.auxLoss, 0.3), T.mul(g.zLoss, 0.7)));
}
