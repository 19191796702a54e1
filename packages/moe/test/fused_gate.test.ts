/**
 * The fused token-choice gating (route_fused.ts: moeGate → moeAssign → moeCombine, one
 * backward kernel) against the composed `route` — every GateOutput field, the gradients of a
 * loss over combine weights, gates, aux and z losses, and finite differences — on the CPU
 * (routeFused) and on cuda:0 (route's default there; skipped, visibly, without a GPU).
 */
import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { route, routeFused, resolveRouterOptions, fusedGateEnabled, type GateOutput, type RouteOptions } from '../src/index.js';
import { rand } from './prng.js';
import { floats, ints, lossOf, randomLogits } from './router_util.js';

const DEVICES = ['cpu', 'cuda:0'] as const;
type Dev = (typeof DEVICES)[number];
const hasDevice = (d: Dev) => d === 'cpu' || T.cudaAvailable();
if (!T.cudaAvailable()) console.log(`[devices] fused gate: no CUDA device visible — its cuda:0 tests are skipped (${T.nativeInfo().cudaCompiled ? 'CUDA build, no GPU' : 'build without CUDA'})`);
function describeDevices(name: string, body: (device: Dev) => void): void {
  for (const d of DEVICES) describe.skipIf(!hasDevice(d))(`${name} [${d}]`, () => body(d));
}

type FDType = 'float32' | 'float64';

/** The fused path on this device: routeFused on the CPU, route's default on CUDA. */
function fused(logits: T.Tensor, o: RouteOptions): GateOutput {
  return logits.device === 'cpu' ? routeFused(logits, o) : route(logits, o);
}

/** The composed path on any device (VLMOE_FUSED_GATE=0 turns the CUDA fused path off). */
function composed(logits: T.Tensor, o: RouteOptions): GateOutput {
  const prev = process.env.VLMOE_FUSED_GATE;
  process.env.VLMOE_FUSED_GATE = '0';
  try {
    return route(logits, o);
  } finally {
    if (prev === undefined) delete process.env.VLMOE_FUSED_GATE;
    else process.env.VLMOE_FUSED_GATE = prev;
  }
}

function close(got: number[], want: number[], tol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol * (1 + Math.abs(want[i]!)))) expect.fail(`${what}[${i}]: ${got[i]} vs ${want[i]} (error ${err}, tol ${tol})`);
  }
}

function expectSameGate(got: GateOutput, want: GateOutput, tol: number, what: string): void {
  for (const f of ['numTokens', 'numExperts', 'k', 'capacity', 'dropped'] as const) expect(got[f], `${what}: ${f}`).toBe(want[f]);
  for (const f of ['expertIndex', 'slot', 'row', 'countsBefore', 'countsAfter', 'expCounts'] as const) {
    expect(got[f].shape, `${what}: ${f} shape`).toEqual(want[f].shape);
    expect(ints(got[f]), `${what}: ${f}`).toEqual(ints(want[f]));
  }
  for (const f of ['combineWeight', 'gates', 'auxLoss', 'zLoss'] as const) {
    expect(got[f].shape, `${what}: ${f} shape`).toEqual(want[f].shape);
    expect(got[f].dtype, `${what}: ${f} dtype`).toBe(want[f].dtype);
    close(floats(got[f]), floats(want[f]), tol, `${what}: ${f}`);
  }
}

const tolOf = (dtype: FDType, device: Dev) => (dtype === 'float64' ? 1e-12 : device === 'cpu' ? 2e-6 : 1e-5);

function gradOf(pathFn: (x: T.Tensor, o: RouteOptions) => GateOutput, data: number[], S: number, E: number, dtype: FDType, device: Dev, o: RouteOptions, seed: number): number[] {
  const x = T.tensor(data, { dtype, shape: [S, E], device });
  x.requiresGrad_(true);
  const g = pathFn(x, o);
  const r = rand(seed);
  const A = T.tensor(Array.from({ length: S * o.k! }, () => r() * 2 - 1), { dtype, shape: [S, o.k!], device });
  const B = T.tensor(Array.from({ length: S * E }, () => r() * 0.2 - 0.1), { dtype, shape: [S, E], device });
  lossOf(g, A, B).backward();
  return floats(x.grad!);
}

const optionSets: { name: string; o: Omit<RouteOptions, 'numExperts' | 'k'> }[] = [
  { name: 'position', o: { capacityFactor: 0.7, minCapacity: 0 } },
  { name: 'probs', o: { dropPolicy: 'probs', capacityFactor: 0.7, minCapacity: 0 } },
  { name: 'position dropless', o: { dropTokens: false } },
  { name: 'probs dropless', o: { dropPolicy: 'probs', dropTokens: false } },
  { name: 'position eval', o: { capacityFactor: 2, evalCapacityFactor: 0.5, minCapacity: 0, training: false } },
  { name: 'probs eval', o: { dropPolicy: 'probs', capacityFactor: 2, evalCapacityFactor: 0.6, minCapacity: 1, training: false } },
  { name: 'no drops (big capacity)', o: { capacityFactor: 4, minCapacity: 4 } },
];

describeDevices('fused gate vs composed route', (device) => {
  for (const dtype of ['float64', 'float32'] as const) {
    for (const E of [4, 7, 32]) {
      for (const k of [1, 2, 3]) {
        test(`${dtype} E=${E} k=${k}: every GateOutput field, all drop policies and modes, with and without ties`, () => {
          const S = 37;
          for (const { name, o } of optionSets) {
            for (const levels of [0, 3]) {
              const data = randomLogits(S, E, 1000 * E + 10 * k + levels + name.length, levels);
              const opts: RouteOptions = { numExperts: E, k, ...o };
              const x = T.tensor(data, { dtype, shape: [S, E], device });
              expectSameGate(fused(x, opts), composed(x, opts), tolOf(dtype, device), `${name}${levels ? ' ties' : ''}`);
            }
          }
        });
        test(`${dtype} E=${E} k=${k}: gradients of cw, gates, aux and z losses match the composed path`, () => {
          const S = 23;
          for (const { name, o } of optionSets.slice(0, 5)) {
            const data = randomLogits(S, E, 77 * E + k + name.length);
            const opts: RouteOptions = { numExperts: E, k, ...o };
            const want = gradOf(composed, data, S, E, dtype, device, opts, 5);
            const got = gradOf(fused, data, S, E, dtype, device, opts, 5);
            close(got, want, dtype === 'float64' ? 1e-11 : 1e-5, `${name}: dlogits`);
          }
        });
      }
    }
  }

  test('a row whose choices are all dropped: combine weights 0, no gradient through them', () => {
    const S = 12, E = 4, k = 2;
    const data = randomLogits(S, E, 5);
    for (let s = 0; s < S; s++) data[s * E] = 3;  // everyone's first choice is expert 0
    const opts: RouteOptions = { numExperts: E, k, capacityFactor: 0.25, minCapacity: 1 };
    expectSameGate(fused(T.tensor(data, { dtype: 'float64', shape: [S, E], device }), opts), composed(T.tensor(data, { dtype: 'float64', shape: [S, E], device }), opts), 1e-12, 'all dropped');
    close(gradOf(fused, data, S, E, 'float64', device, opts, 3), gradOf(composed, data, S, E, 'float64', device, opts, 3), 1e-11, 'dlogits');
  });
});

describe('fused gate: finite differences and dispatch', () => {
  test('float64 gradcheck of a loss over combine weights, gates, aux and z losses (k = 1, 2, 3)', () => {
    for (const k of [1, 2, 3]) {
      const S = 6, E = 5;
      const x = T.tensor(randomLogits(S, E, 31 + k), { dtype: 'float64', shape: [S, E] });
      x.requiresGrad_(true);
      const r = rand(9 + k);
      const A = T.tensor(Array.from({ length: S * k }, () => r() * 2 - 1), { dtype: 'float64', shape: [S, k] });
      const B = T.tensor(Array.from({ length: S * E }, () => r() - 0.5), { dtype: 'float64', shape: [S, E] });
      // capacity 1 per expert: drops happen, and the discrete routing is fixed near x
      const opts: RouteOptions = { numExperts: E, k, capacityFactor: 0.5, minCapacity: 1 };
      const res = T.gradcheck((y) => lossOf(routeFused(y, opts), A, B), [x], { eps: 1e-6, atol: 1e-7, rtol: 1e-5 });
      expect(res.ok, JSON.stringify(res.failure)).toBe(true);
    }
  });

  test('route keeps the composed path on the CPU; the fused path only on CUDA and when the options allow it', () => {
    const E = 4;
    const x = T.tensor(randomLogits(8, E, 3), { dtype: 'float32', shape: [8, E] });
    const o = resolveRouterOptions({ numExperts: E, k: 2 });
    expect(fusedGateEnabled(x, o, { numExperts: E, k: 2 })).toBe(false);
    // the composed path's combine weights come from a `div` node, the fused path's from views of one packed node
    x.requiresGrad_(true);
    const viaRoute = route(x, { numExperts: E, k: 2 });
    expect(viaRoute.combineWeight.gradFn?.name).toBe('div');
    expect(routeFused(x, { numExperts: E, k: 2 }).combineWeight.gradFn?.name).not.toBe('div');
    expect(() => routeFused(x, { numExperts: E, k: 1, useRts: true, rtsPriorities: T.zeros([8, 1], { dtype: 'float64' }) })).toThrow(/useRts/);
    expect(() => routeFused(x, { numExperts: E, k: 1, selectLogits: x.detach() })).toThrow(/selectLogits/);
    if (T.cudaAvailable()) {
      const xc = T.tensor(randomLogits(8, E, 3), { dtype: 'float32', shape: [8, E], device: 'cuda:0' });
      expect(fusedGateEnabled(xc, o, { numExperts: E, k: 2 })).toBe(true);
      expect(fusedGateEnabled(xc, o, { numExperts: E, k: 2, selectLogits: xc })).toBe(false);
      process.env.VLMOE_FUSED_GATE = '0';
      try {
        expect(fusedGateEnabled(xc, o, { numExperts: E, k: 2 })).toBe(false);
      } finally {
        delete process.env.VLMOE_FUSED_GATE;
      }
    }
  });
});
