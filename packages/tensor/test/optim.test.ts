/**
 * Optimisers, gradient clipping and LR schedules against PyTorch 1.13 (committed fixtures
 * test/fixtures/torch_optim.json, made by make_optim_fixtures.py; no PyTorch at test time),
 * the fused native kernels against the per-tensor reference path, and exact resume from a
 * state dict.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices } from './helpers/devices.js';
import { optim } from '../src/index.js';

interface Fixture {
  torch: string;
  shapes: number[][];
  init: number[][];
  grads: (number[] | null)[][];
  cases: { name: string; trajectory: number[][][]; lrs?: number[][] }[];
  schedules: { name: string; params: optim.WarmupDecayOptions; lrs: number[][] }[];
  clip: { gradStep: number; noGrad: number[]; cases: { maxNorm: number; normType: number | 'inf'; totalNorm: number; grads: (number[] | null)[] }[] };
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/torch_optim.json', import.meta.url), 'utf8')) as Fixture;

type Dtype = 'float32' | 'float64';

function makeParams(dtype: Dtype = 'float32', device = 'cpu'): T.Tensor[] {
  return fx.init.map((v, i) => T.tensor(v, { shape: fx.shapes[i]!, dtype, device, requiresGrad: true }));
}

function setGrads(ps: T.Tensor[], step: number): void {
  ps.forEach((p, i) => {
    p.zeroGrad();
    const g = fx.grads[step]![i];
    if (g) p.grad = T.tensor(g, { shape: p.shape, dtype: p.dtype, device: p.device });
  });
}

interface Built {
  opt: optim.Optimizer<optim.BaseHyper>;
  sched?: optim.LRScheduler;
}

/** The optimiser of each fixture case (same options as make_optim_fixtures.py). */
function build(name: string, ps: T.Tensor[], fused: boolean): Built {
  switch (name) {
    case 'adamw_wd':
      return { opt: new optim.AdamW(ps, { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1, fused }) };
    case 'adamw_nowd':
      return { opt: new optim.AdamW(ps, { lr: 1e-2, weightDecay: 0, fused }) };
    case 'adamw_groups':
      return {
        opt: new optim.AdamW(
          [
            { params: ps.slice(0, 2), lr: 1e-2, weightDecay: 0.05 },
            { params: ps.slice(2), lr: 3e-3, weightDecay: 0, betas: [0.8, 0.99], eps: 1e-6 },
          ],
          { fused },
        ),
      };
    case 'adamw_amsgrad':
      return { opt: new optim.AdamW(ps, { lr: 1e-2, weightDecay: 0.02, amsgrad: true, fused }) };
    case 'adam_l2':
      return { opt: new optim.Adam(ps, { lr: 1e-2, weightDecay: 0.01, fused }) };
    case 'adam_amsgrad_maximize':
      return { opt: new optim.Adam(ps, { lr: 5e-3, amsgrad: true, maximize: true, fused }) };
    case 'sgd_plain':
      return { opt: new optim.SGD(ps, { lr: 0.1, fused }) };
    case 'sgd_momentum':
      return { opt: new optim.SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, fused }) };
    case 'sgd_nesterov':
      return { opt: new optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.001, maximize: true, fused }) };
    case 'adamw_warmup_cosine': {
      const opt = new optim.AdamW(ps, { lr: 2e-2, weightDecay: 0.01, fused });
      return { opt, sched: new optim.WarmupDecayLR(opt, { kind: 'cosine', warmupSteps: 5, totalSteps: 20 }) };
    }
    default:
      throw new Error(`no optimiser for case ${name}`);
  }
}

function runSteps(b: Built, ps: T.Tensor[], from: number, to: number, onStep?: (step: number) => void): void {
  for (let s = from; s < to; ++s) {
    setGrads(ps, s);
    b.opt.step();
    b.sched?.step();
    onStep?.(s);
  }
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (!(worst <= 1)) expect.fail(`${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (rtol ${rtol}, atol ${atol})`);
}

const dataOf = (t: T.Tensor) => Array.from(t.dataSync() as Float32Array);
const dispose = (ps: T.Tensor[]) => ps.forEach((p) => p.dispose());

// every fixture on every device (helpers/devices.ts): the fused kernels (CPU or CUDA) and the
// per-tensor reference path
describeDevices(`optimisers vs PyTorch ${fx.torch} (float32)`, (device) => {
  for (const c of fx.cases) {
    for (const fused of [true, false]) {
      it(`${c.name} (${fused ? 'fused native' : 'per-tensor reference'})`, () => {
        const ps = makeParams('float32', device);
        const b = build(c.name, ps, fused);
        runSteps(b, ps, 0, c.trajectory.length, (s) => {
          ps.forEach((p, i) => expectClose(dataOf(p), c.trajectory[s]![i]!, 1e-5, 1e-6, `${c.name} step ${s + 1} param ${i}`));
          if (c.lrs) expectClose(b.opt.paramGroups.map((g) => g.lr), c.lrs[s]!, 1e-12, 1e-15, `${c.name} lr after step ${s + 1}`);
        });
        b.opt.dispose();
        dispose(ps);
      });
    }
  }

  it('keeps per-parameter step counts (a parameter without a gradient is skipped)', () => {
    const ps = makeParams();
    const b = build('adamw_wd', ps, true);
    runSteps(b, ps, 0, 5);
    expect(b.opt.state.get(ps[0]!)!.step).toBe(5);
    expect(b.opt.state.get(ps[2]!)!.step).toBe(4);
    b.opt.dispose();
    dispose(ps);
  });
});

describe('fused kernels vs the per-tensor reference', () => {
  it('agree in float64 for every case', () => {
    for (const c of fx.cases) {
      const a = makeParams('float64');
      const r = makeParams('float64');
      const ba = build(c.name, a, true);
      const br = build(c.name, r, false);
      runSteps(ba, a, 0, 20);
      runSteps(br, r, 0, 20);
      a.forEach((p, i) => expectClose(Array.from(p.dataSync() as Float64Array), Array.from(r[i]!.dataSync() as Float64Array), 1e-12, 1e-14, `${c.name} param ${i}`));
      // float64 runs follow the float32 PyTorch trajectory to float32 rounding
      a.forEach((p, i) => expectClose(Array.from(p.dataSync() as Float64Array), c.trajectory[19]![i]!, 1e-4, 1e-5, `${c.name} f64 vs torch param ${i}`));
      ba.opt.dispose();
      br.opt.dispose();
      dispose(a);
      dispose(r);
    }
  });

  it('agree over many tensors (split over several native calls) and a large one (threaded)', () => {
    const gen = new T.Generator(7);
    const shapes: number[][] = [];
    for (let i = 0; i < 420; ++i) shapes.push([1 + (i % 5), 1 + (i % 3)]);
    shapes.push([300, 257]);
    const mk = () => shapes.map((s, i) => T.randn(s, { generator: new T.Generator(1000 + i), requiresGrad: true }));
    const a = mk();
    const r = mk();
    const oa = new optim.AdamW(a, { lr: 1e-2, weightDecay: 0.1, amsgrad: true });
    const or = new optim.AdamW(r, { lr: 1e-2, weightDecay: 0.1, amsgrad: true, fused: false });
    for (let s = 0; s < 3; ++s) {
      for (let i = 0; i < a.length; ++i) {
        const g = T.randn(shapes[i]!, { generator: gen });
        a[i]!.zeroGrad();
        r[i]!.zeroGrad();
        a[i]!.grad = g;
        r[i]!.grad = T.clone(g);
      }
      oa.step();
      or.step();
    }
    for (let i = 0; i < a.length; ++i) expectClose(dataOf(a[i]!), dataOf(r[i]!), 1e-5, 1e-6, `param ${i}`);
    // the total norm of the same gradients, fused vs plain JS in float64
    const grads = a.map((p) => p.grad!);
    let ss = 0;
    let mx = 0;
    for (const g of grads) for (const v of g.dataSync() as Float32Array) {
      ss += v * v;
      mx = Math.max(mx, Math.abs(v));
    }
    expect(optim.totalNorm(grads)).toBeCloseTo(Math.sqrt(ss), 8);
    expect(optim.totalNorm(grads, Infinity)).toBe(mx);
    oa.dispose();
    or.dispose();
    dispose(a);
    dispose(r);
  });

  it('copies non-contiguous gradients for the fused kernel; non-contiguous parameters take the reference path', () => {
    const p1 = T.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    const p2 = T.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
    const p3 = T.tensor([[1, 4], [2, 5], [3, 6]]).transpose(0, 1).requiresGrad_(); // a non-contiguous leaf
    const o1 = new optim.SGD([p1], { lr: 0.1, momentum: 0.9 });
    const o2 = new optim.SGD([p2], { lr: 0.1, momentum: 0.9, fused: false });
    const o3 = new optim.SGD([p3], { lr: 0.1, momentum: 0.9 });
    for (let s = 0; s < 3; ++s) {
      const g = T.tensor([[0.5, -1], [2, 0.25], [-3, 1]]).transpose(0, 1); // non-contiguous
      for (const p of [p1, p2, p3]) p.zeroGrad();
      p1.grad = g;
      p2.grad = T.clone(g);
      p3.grad = T.clone(g);
      o1.step();
      o2.step();
      o3.step();
    }
    // the elementwise ops may fuse multiply-adds (FMA): equal to rounding, not bit for bit
    expectClose(dataOf(p1), dataOf(p2), 1e-6, 1e-7, 'sgd fused vs reference');
    expect(dataOf(p3)).toEqual(dataOf(p2));
    expect(p3.isContiguous()).toBe(false);
  });
});

describe('stateDict / loadStateDict', () => {
  for (const name of ['adamw_groups', 'adamw_amsgrad', 'adam_l2', 'sgd_momentum', 'sgd_nesterov', 'adamw_warmup_cosine']) {
    it(`${name}: 10 steps + save + load into a new optimiser + 10 steps == 20 steps, bit for bit`, () => {
      const straight = makeParams();
      const bs = build(name, straight, true);
      runSteps(bs, straight, 0, 20);

      const first = makeParams();
      const b1 = build(name, first, true);
      runSteps(b1, first, 0, 10);
      const sd = b1.opt.stateDict({ clone: true });
      const schedSd = b1.sched?.stateDict();
      // through JSON for the numbers, as a checkpoint would store them
      const groups = JSON.parse(JSON.stringify(sd.paramGroups)) as optim.OptimizerStateDict['paramGroups'];
      const saved = first.map((p) => T.clone(p.detach()));
      b1.opt.dispose();
      dispose(first);

      const second = saved.map((t) => T.clone(t).requiresGrad_(true));
      const b2 = build(name, second, true);
      b2.opt.loadStateDict({ state: sd.state, paramGroups: groups });
      if (schedSd) b2.sched!.loadStateDict(schedSd);
      // the loaded state is a copy: freeing the dict does not affect the optimiser
      for (const s of Object.values(sd.state)) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
      runSteps(b2, second, 10, 20);

      second.forEach((p, i) => expect(dataOf(p), `param ${i}`).toEqual(dataOf(straight[i]!)));
      expect(b2.opt.paramGroups.map((g) => g.lr)).toEqual(bs.opt.paramGroups.map((g) => g.lr));
      bs.opt.dispose();
      b2.opt.dispose();
      dispose(straight);
      dispose(second);
      dispose(saved);
    });
  }

  it('names parameters by index and holds step counts and state tensors', () => {
    const ps = makeParams();
    const b = build('adamw_groups', ps, true);
    runSteps(b, ps, 0, 4);
    const sd = b.opt.stateDict();
    expect(sd.paramGroups.map((g) => g.params)).toEqual([[0, 1], [2]]);
    expect(sd.paramGroups[1]).toMatchObject({ lr: 3e-3, weightDecay: 0, betas: [0.8, 0.99], eps: 1e-6, amsgrad: false });
    expect(sd.state[0]!.step).toBe(4);
    expect(sd.state[2]!.step).toBe(3);
    expect((sd.state[1]!.expAvg as T.Tensor).shape).toEqual([5]);
    b.opt.dispose();
    dispose(ps);
  });

  it('rejects a state dict of another layout with a clear message', () => {
    const ps = makeParams();
    const b = build('adamw_wd', ps, true);
    runSteps(b, ps, 0, 2);
    const sd = b.opt.stateDict();
    const other = [T.zeros([3], { requiresGrad: true }), T.zeros([5], { requiresGrad: true }), T.zeros([2, 2, 3], { requiresGrad: true })];
    const o2 = new optim.AdamW(other);
    expect(() => o2.loadStateDict(sd)).toThrow(/shape \[4, 3\].*shape \[3\]/);
    expect(o2.state.size).toBe(0);
    const o3 = new optim.AdamW([{ params: other.slice(0, 1) }, { params: other.slice(1) }]);
    expect(() => o3.loadStateDict(sd)).toThrow(/1 parameter groups, the optimizer has 2/);
    b.opt.dispose();
    dispose(ps);
    dispose(other);
  });
});

describeDevices('clipGradNorm vs PyTorch', (device) => {
  for (const c of fx.clip.cases) {
    it(`maxNorm ${c.maxNorm}, normType ${c.normType}`, () => {
      const ps = makeParams('float32', device);
      setGrads(ps, fx.clip.gradStep);
      for (const i of fx.clip.noGrad) ps[i]!.zeroGrad();
      const total = optim.clipGradNorm(ps, c.maxNorm, c.normType === 'inf' ? Infinity : c.normType);
      expect(Math.abs(total - c.totalNorm)).toBeLessThanOrEqual(1e-5 * c.totalNorm);
      ps.forEach((p, i) => {
        const g = c.grads[i];
        if (g === null || g === undefined) expect(p.grad).toBeNull();
        else expectClose(dataOf(p.grad!), g, 1e-5, 1e-7, `grad ${i}`);
      });
      dispose(ps);
    });
  }

  it('handles no gradients, and inf / NaN norms without touching the gradients', () => {
    const p = T.tensor([1, 2, 3], { requiresGrad: true });
    expect(optim.clipGradNorm([p], 1)).toBe(0);
    p.grad = T.tensor([3, Infinity, 4]);
    expect(optim.clipGradNorm(p, 1)).toBe(Infinity);
    expect(dataOf(p.grad)).toEqual([3, Infinity, 4]);
    expect(() => optim.clipGradNorm(p, 1, 2, { errorIfNonfinite: true })).toThrow(/non-finite|Infinity/);
    p.zeroGrad();
    p.grad = T.tensor([NaN, 1, 1]);
    expect(optim.clipGradNorm(p, 1, Infinity)).toBeNaN();
    expect(optim.clipGradNorm(p, 1, 2)).toBeNaN();
    p.zeroGrad();
    p.grad = T.tensor([3, 0, 4], { dtype: 'float32' });
    expect(optim.clipGradNorm(p, 10)).toBeCloseTo(5, 6);
    expect(dataOf(p.grad)).toEqual([3, 0, 4]);
    p.dispose();
  });
});

describe('LR schedulers vs LambdaLR in PyTorch', () => {
  for (const s of fx.schedules) {
    it(s.name, () => {
      const p0 = T.zeros([1], { requiresGrad: true });
      const p1 = T.zeros([1], { requiresGrad: true });
      const opt = new optim.SGD([{ params: [p0], lr: 0.1 }, { params: [p1], lr: 0.03 }], { lr: 0.1 });
      const sched = new optim.WarmupDecayLR(opt, s.params);
      const got = [opt.paramGroups.map((g) => g.lr)];
      for (let i = 1; i < s.lrs.length; ++i) {
        sched.step();
        got.push(sched.getLastLr());
      }
      got.forEach((lrs, i) => expectClose(lrs, s.lrs[i]!, 1e-12, 1e-15, `${s.name} step ${i}`));
      p0.dispose();
      p1.dispose();
    });
  }

  it('LambdaLR per group, and scheduler state round trip', () => {
    const p0 = T.zeros([1], { requiresGrad: true });
    const p1 = T.zeros([1], { requiresGrad: true });
    const mk = () => new optim.SGD([{ params: [p0], lr: 1 }, { params: [p1], lr: 2 }], { lr: 1 });
    const opt = mk();
    const s = new optim.LambdaLR(opt, [(e) => 0.5 ** e, (e) => 1 / (e + 1)]);
    s.step();
    s.step();
    expect(s.getLastLr()).toEqual([0.25, 2 / 3]);
    const opt2 = mk();
    const s2 = new optim.LambdaLR(opt2, [(e) => 0.5 ** e, (e) => 1 / (e + 1)]);
    opt2.loadStateDict(opt.stateDict());
    s2.loadStateDict(s.stateDict());
    s.step();
    s2.step();
    expect(s2.getLastLr()).toEqual(s.getLastLr());
    expect(opt2.paramGroups.map((g) => g.lr)).toEqual(opt.paramGroups.map((g) => g.lr));
    p0.dispose();
    p1.dispose();
  });

  it('warm-up as a fraction, constant decay, and bad options', () => {
    const f = optim.warmupDecay({ kind: 'linear', warmupFraction: 0.25, totalSteps: 10 }); // ceil(2.5) = 3
    expect([0, 1, 2, 3, 10].map(f)).toEqual([0, 1 / 3, 2 / 3, 1, 0]);
    const c = optim.warmupDecay({ kind: 'constant', warmupSteps: 2 });
    expect([0, 1, 2, 100].map(c)).toEqual([0, 0.5, 1, 1]);
    expect(() => optim.warmupDecay({ kind: 'cosine', warmupSteps: 30, totalSteps: 20 })).toThrow(/longer than totalSteps/);
    expect(() => optim.warmupDecay({ kind: 'linear', warmupSteps: 2, warmupFraction: 0.1, totalSteps: 20 })).toThrow(/not both/);
  });
});

describe('optimiser behaviour', () => {
  it('validates options and parameters', () => {
    const p = T.zeros([2], { requiresGrad: true });
    expect(() => new optim.AdamW([p], { lr: -1 })).toThrow(/invalid lr/);
    expect(() => new optim.Adam([p], { betas: [0.9, 1] })).toThrow(/beta parameter at index 1/);
    expect(() => new optim.SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new optim.SGD([], { lr: 0.1 })).toThrow(/empty parameter list/);
    expect(() => new optim.SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 })).toThrow(/more than one parameter group/);
    const o = new optim.SGD([p], { lr: 0.1 });
    p.grad = T.zeros([3]);
    expect(() => o.step()).toThrow(/gradient of shape \[3\] does not match its parameter of shape \[2\]/);
    p.dispose();
  });

  it('state survives scopes; zeroGrad; memory stays flat over steps; closure', () => {
    const ps = makeParams();
    const opt = new optim.AdamW(ps, { lr: 1e-3 });
    const stepOnce = () =>
      T.scope(() => {
        ps.forEach((p) => p.zeroGrad());
        const loss = ps.map((p) => T.sum(T.mul(p, p))).reduce((a, b) => T.add(a, b));
        loss.backward();
        opt.step();
      });
    stepOnce();
    const live = T.memory().cpu.live;
    for (let i = 0; i < 5; ++i) stepOnce();
    expect(T.memory().cpu.live).toBe(live);
    const st = opt.state.get(ps[0]!)!;
    expect((st.expAvg as T.Tensor).disposed).toBe(false);
    expect(st.step).toBe(6);
    opt.zeroGrad(false);
    expect(dataOf(ps[0]!.grad!).every((v) => v === 0)).toBe(true);
    opt.zeroGrad();
    expect(ps[0]!.grad).toBeNull();
    const loss = opt.step(() => {
      const l = T.sum(T.mul(ps[1]!, ps[1]!));
      l.backward();
      return l.item();
    });
    expect(loss).toBeGreaterThan(0);
    expect(ps[1]!.grad).not.toBeNull();
    opt.dispose();
    dispose(ps);
  });

});
