import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { Experts, MoE, ModalityFFN, VISION, TEXT, routerEntropy, routerEntropies, type ExpertGroup } from '../src/index.js';

const ints = (t: T.Tensor) => Array.from(t.dataSync() as ArrayLike<number | bigint>, Number);
const floats = (t: T.Tensor) => Array.from(t.dataSync() as ArrayLike<number>);
const gen = (s: number) => new T.Generator(s);

/** The MoE layer written the slow, obvious way: per token, per kept choice, that expert's FFN. */
function loopMoE(moe: MoE, x: T.Tensor): number[] {
  return T.noGrad(() => {
    const g = moe.route(x);
    const S = x.shape[0]!, d = moe.hiddenSize, k = g.k;
    const ex = ints(g.expertIndex), sl = ints(g.slot), w = floats(g.combineWeight);
    const out = new Array<number>(S * d).fill(0);
    const e = moe.experts;
    for (let s = 0; s < S; s++) {
      for (let j = 0; j < k; j++) {
        const a = s * k + j;
        if (sl[a]! < 0) continue;
        const xi = x.narrow(0, s, 1);
        const h = T.gelu(T.add(T.matmul(xi, e.w1.select(0, ex[a]!)), e.b1.select(0, ex[a]!)));
        const y = floats(T.add(T.matmul(h, e.w2.select(0, ex[a]!)), e.b2.select(0, ex[a]!)));
        for (let i = 0; i < d; i++) out[s * d + i] += w[a]! * y[i]!;
      }
    }
    return out;
  });
}

describe('MoE layer', () => {
  for (const [k, policy, cf] of [[1, 'token-choice', 0.6], [2, 'token-choice', 0.7], [3, 'token-choice', 2], [1, 'expert-choice', 1]] as const) {
    test(`forward equals per-token expert loops (k=${k}, ${policy}, cf=${cf})`, () => {
      const moe = new MoE({ hiddenSize: 6, ffnHiddenSize: 10, numExperts: 4, k, capacityFactor: cf, minCapacity: 0, policy, dtype: 'float64', generator: gen(k) });
      moe.eval(); // deterministic routing for the comparison (no noise is configured anyway)
      const x = T.randn([25, 6], { dtype: 'float64', generator: gen(40 + k) });
      const r = moe.forward(x);
      const ref = loopMoE(moe, x);
      floats(r.output).forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThan(1e-12));
    });
  }

  test('fine-grained experts: numExperts·m experts of hidden h/m, k·m per token; shared experts: a dense FFN added for every token', () => {
    const moe = new MoE({ hiddenSize: 6, ffnHiddenSize: 12, numExperts: 4, k: 2, expertSizeRatio: 3, sharedExperts: 2, dropTokens: false, dtype: 'float64', generator: gen(3) });
    expect([moe.numExperts, moe.gate.options.numExperts, moe.gate.options.k]).toEqual([12, 12, 6]);
    expect(moe.experts.w1.shape).toEqual([12, 6, 4]);
    expect(moe.shared!.fc1.weight.shape).toEqual([8, 6]); // 2 shared experts of hidden 12 / 3
    const x = T.randn([20, 6], { dtype: 'float64', generator: gen(4) });
    const r = moe.forward(x);
    expect(ints(r.expertCounts).reduce((a, b) => a + b, 0)).toBe(20 * 6);
    // the routed part is the per-token expert loops; the shared FFN adds on top
    const routed = loopMoE(moe, x), shared = floats(moe.shared!.forward(x));
    floats(r.output).forEach((v, i) => expect(Math.abs(v - routed[i]! - shared[i]!)).toBeLessThan(1e-12));
    expect(() => new MoE({ hiddenSize: 6, ffnHiddenSize: 10, numExperts: 4, expertSizeRatio: 3 })).toThrow(/expertSizeRatio 3 must divide the expert hidden size 10/);
    expect(() => new MoE({ hiddenSize: 6, ffnHiddenSize: 12, numExperts: 4, sharedExperts: -1 })).toThrow(/sharedExperts must be an integer ≥ 0/);
  });

  for (const [k, useResidual, fine] of [[1, false, false], [2, false, false], [2, true, false], [1, false, true]] as const) {
    test(`gradcheck through the whole layer (k=${k}${useResidual ? ', residual' : ''}${fine ? ', fine-grained ×2 + 1 shared expert' : ''}): input, router, experts`, () => {
      const moe = new MoE({ hiddenSize: 4, ffnHiddenSize: fine ? 6 : 5, numExperts: 3, k, capacityFactor: 0.8, minCapacity: 0, useResidual, dtype: 'float64', generator: gen(7), ...(fine ? { expertSizeRatio: 2, sharedExperts: 1 } : {}) });
      const x = T.randn([9, 4], { dtype: 'float64', generator: gen(8) }).requiresGrad_(true);
      const wts = T.randn([9, 4], { dtype: 'float64', generator: gen(9) });
      // routing is piecewise constant: finite differences are valid away from decision
      // boundaries, where random data lies with overwhelming odds
      const loss = () => {
        const r = moe.forward(x);
        return T.add(T.add(T.sum(T.mul(r.output, wts)), T.mul(r.auxLoss, 0.3)), T.mul(r.zLoss, 0.1));
      };
      loss().backward();
      const eps = 1e-6;
      const checked: T.Tensor[] = [x, moe.gate.wg.weight, moe.experts.w1, moe.experts.b1, moe.experts.w2, moe.experts.b2];
      if (useResidual) checked.push(moe.coefficient!.weight, moe.mlp!.fc1.weight);
      if (fine) checked.push(moe.shared!.fc1.weight, moe.shared!.fc2.bias!);
      for (const t of checked) {
        const ga = floats(t.grad!);
        const data = t.data() as Float64Array; // contiguous float64 leaf: a live view
        for (let i = 0; i < t.numel; i += Math.max(1, Math.floor(t.numel / 10))) {
          const old = data[i]!;
          data[i] = old + eps;
          const up = T.noGrad(() => loss().item());
          data[i] = old - eps;
          const down = T.noGrad(() => loss().item());
          data[i] = old;
          const n = (up - down) / (2 * eps);
          expect(Math.abs(ga[i]! - n), `[${t.shape}][${i}]: analytic ${ga[i]} numeric ${n}`).toBeLessThan(1e-6 + 1e-4 * Math.abs(n));
        }
      }
      expect(floats(moe.gate.wg.weight.grad!).some((v) => v !== 0)).toBe(true);
      if (useResidual) expect(floats(moe.coefficient!.weight.grad!).some((v) => v !== 0)).toBe(true);
    });
  }

  test('dropped tokens get zero MoE output; with useResidual the dense branch carries them', () => {
    const base = { hiddenSize: 4, ffnHiddenSize: 6, numExperts: 2, k: 1, capacityFactor: 0.25, minCapacity: 0, dtype: 'float64' as const };
    const x = T.randn([16, 4], { dtype: 'float64', generator: gen(12) });
    const moe = new MoE({ ...base, generator: gen(1) });
    const g = moe.route(x);
    const r = moe.forward(x);
    expect(r.dropped).toBeGreaterThan(0);
    const sl = ints(g.slot), out = floats(r.output);
    let zeroRows = 0;
    sl.forEach((s, t) => {
      if (s < 0) {
        zeroRows++;
        expect(out.slice(t * 4, t * 4 + 4)).toEqual([0, 0, 0, 0]);
      } else expect(out.slice(t * 4, t * 4 + 4).some((v) => v !== 0)).toBe(true);
    });
    expect(zeroRows).toBe(r.dropped);
    const res = new MoE({ ...base, useResidual: true, generator: gen(1) });
    const rr = res.forward(x);
    const o2 = floats(rr.output);
    sl.forEach((s, t) => {
      if (s < 0) expect(o2.slice(t * 4, t * 4 + 4).some((v) => v !== 0)).toBe(true);
    });
  });

  test('invariants: dropless drops nothing, counts sum to S·k, eval uses evalCapacityFactor, same seed same routing', () => {
    const x = T.randn([4, 50, 8], { generator: gen(3) });
    const dropless = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 8, k: 2, dropTokens: false, generator: gen(2) });
    const r = dropless.forward(x);
    expect(r.dropped).toBe(0);
    expect(ints(r.expertCounts).reduce((a, b) => a + b, 0)).toBe(200 * 2);
    expect(r.output.shape).toEqual([4, 50, 8]);
    const m = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 8, k: 1, capacityFactor: 1.5, evalCapacityFactor: 0.5, minCapacity: 0, noisyGatePolicy: 'RSample', useRts: true, generator: gen(5) });
    expect(m.forward(x).capacity).toBe(38);
    m.eval();
    expect(m.forward(x).capacity).toBe(13);
    m.train();
    const twin = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 8, k: 1, capacityFactor: 1.5, evalCapacityFactor: 0.5, minCapacity: 0, noisyGatePolicy: 'RSample', useRts: true, generator: gen(5) });
    const again = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 8, k: 1, capacityFactor: 1.5, evalCapacityFactor: 0.5, minCapacity: 0, noisyGatePolicy: 'RSample', useRts: true, generator: gen(5) });
    expect(ints(twin.route(x).slot)).toEqual(ints(again.route(x).slot));
    expect(floats(twin.forward(x).output)).toEqual(floats(again.forward(x).output));
  });

  test('experts copied from a dense FFN start identical to it (DeepSpeed deep-copies `expert`)', () => {
    const ffn = new T.nn.FeedForward(6, 12, { dtype: 'float64', generator: gen(4) });
    const moe = new MoE({ hiddenSize: 6, expert: ffn, numExperts: 4, k: 1, dropTokens: false, dtype: 'float64', generator: gen(5) });
    const x = T.randn([10, 6], { dtype: 'float64', generator: gen(6) });
    const g = moe.route(x);
    const dense = floats(T.noGrad(() => ffn.forward(x)));
    const out = floats(moe.forward(x).output);
    const w = floats(g.combineWeight);
    out.forEach((v, i) => expect(Math.abs(v - w[Math.floor(i / 6)]! * dense[i]!)).toBeLessThan(1e-12));
    expect(moe.experts.w1.tags.expert).toBe(true);
  });

  test('the expertGroup hook carries the expert-contiguous buffer out and back', () => {
    const calls: number[][] = [];
    const group: ExpertGroup = {
      size: 1, rank: 0,
      maxCount: (m) => m + 3,
      dispatch(x, counts) {
        calls.push(counts.slice());
        return { x: T.mul(x, 1), groupSizes: counts, combine: (y) => T.mul(y, 2) };
      },
    };
    const mk = (expertGroup?: ExpertGroup) => new MoE({ hiddenSize: 4, ffnHiddenSize: 6, numExperts: 4, k: 2, dropTokens: false, expertGroup, dtype: 'float64', generator: gen(9) });
    const x = T.randn([12, 4], { dtype: 'float64', generator: gen(10) });
    const local = floats(mk().forward(x).output);
    const viaGroup = mk(group).forward(x);
    expect(calls.length).toBe(1);
    expect(calls[0]!.reduce((a, b) => a + b, 0)).toBe(24);
    floats(viaGroup.output).forEach((v, i) => expect(v).toBeCloseTo(2 * local[i]!, 12));
    expect(viaGroup.capacity).toBe(Math.max(...calls[0]!) + 3);
    expect(() => new MoE({ hiddenSize: 4, ffnHiddenSize: 6, numExperts: 3, expertGroup: { ...group, size: 2 } })).toThrow(/must divide evenly over the expert-parallel group of size 2/);
  });

  test('bad configuration is named', () => {
    expect(() => new MoE({ hiddenSize: 4, numExperts: 2 })).toThrow(/either expert .* or ffnHiddenSize/);
    expect(() => new MoE({ hiddenSize: 4, ffnHiddenSize: 8, numExperts: 2, k: 3 })).toThrow(/k must be an integer in \[1, numExperts = 2\]/);
    const m = new MoE({ hiddenSize: 4, ffnHiddenSize: 8, numExperts: 2 });
    expect(() => m.forward(T.zeros([3, 5]))).toThrow(/last dim must be hiddenSize = 4/);
    expect(() => new Experts({ numExperts: 0, hiddenSize: 2, ffnHiddenSize: 2 })).toThrow(/numExperts must be an integer ≥ 1/);
  });
});

describe('ModalityFFN (VL-MoE block FFNs)', () => {
  test('split: vision and text tokens go to their own FFNs and come back in token order', () => {
    const f = new ModalityFFN({
      hiddenSize: 4, mode: 'split', dtype: 'float64', generator: gen(1),
      vision: { kind: 'moe', numExperts: 4, k: 1, ffnHiddenSize: 8, dropTokens: false },
      text: { kind: 'dense', ffnHiddenSize: 8 },
    });
    const x = T.randn([2, 7, 4], { dtype: 'float64', generator: gen(2) });
    const modality = [0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1];
    const r = f.forward(x, modality);
    expect(r.output.shape).toEqual([2, 7, 4]);
    const flatX = x.reshape(14, 4);
    const vis = modality.flatMap((m, i) => (m === VISION ? [i] : [])), txt = modality.flatMap((m, i) => (m === TEXT ? [i] : []));
    const yv = floats(T.noGrad(() => (f.vision as unknown as { moe: MoE }).moe.forward(T.indexSelect(flatX, 0, T.tensor(vis, { dtype: 'int64' }))).output));
    const yt = floats(T.noGrad(() => f.text!.forward(T.indexSelect(flatX, 0, T.tensor(txt, { dtype: 'int64' }))).output));
    const out = floats(r.output);
    vis.forEach((tok, j) => expect(out.slice(tok * 4, tok * 4 + 4)).toEqual(yv.slice(j * 4, j * 4 + 4)));
    txt.forEach((tok, j) => expect(out.slice(tok * 4, tok * 4 + 4)).toEqual(yt.slice(j * 4, j * 4 + 4)));
    expect(Object.keys(r.expertCounts)).toEqual(['vision']);
    // the router's entropy, per MoE inside: the mean over this side's tokens of −Σ p log p of its softmax gates (float64 by hand)
    const moe = (f.vision as unknown as { moe: MoE }).moe;
    const logits = floats(T.noGrad(() => moe.gate.logits(T.indexSelect(flatX, 0, T.tensor(vis, { dtype: 'int64' })))));
    let h = 0;
    for (let s = 0; s < vis.length; s++) {
      const row = logits.slice(s * 4, s * 4 + 4), m = Math.max(...row), z = row.reduce((a, v) => a + Math.exp(v - m), 0);
      for (const v of row) h -= (Math.exp(v - m) / z) * ((v - m) - Math.log(z));
    }
    expect(Object.keys(r.entropyBy)).toEqual(['vision']);
    expect(r.entropyBy.vision).toBeCloseTo(h / vis.length, 12);
    expect(r.entropyBy.vision).toBeGreaterThan(0);
    expect(r.entropyBy.vision).toBeLessThanOrEqual(Math.log(4));
    expect(r.auxLoss.item()).toBeGreaterThan(0);
    // gradients reach both sides
    r.output.sum().backward();
    for (const p of f.parameters()) expect(p.grad, 'every parameter gets a gradient').toBeTruthy();
  });

  test('routerEntropy: ln E for uniform gates, 0 for certain ones, 0 without tokens', () => {
    expect(routerEntropy(T.full([3, 8], 1 / 8, { dtype: 'float64' }))).toBeCloseTo(Math.log(8), 12);
    expect(routerEntropy(T.tensor([[1, 0, 0], [0, 0, 1]], { dtype: 'float64' }))).toBe(0);
    expect(routerEntropy(T.zeros([0, 4]))).toBe(0);
    // random float32 gates against −Σ p log p summed in float64 by hand
    const g = T.softmax(T.mul(T.randn([257, 8], { generator: gen(11) }), 3), -1);
    const p = floats(g);
    let h = 0;
    for (const v of p) if (v > 0) h -= v * Math.log(v);
    expect(Math.abs(routerEntropy(g) - h / 257) / (h / 257)).toBeLessThan(1e-5);
  });

  test("routerEntropies (LIMoE): local = the mean of each token's entropy, global = the entropy of the mean gates, in float64 by hand; finite differences; global ≥ local", () => {
    const S = 40, E = 6;
    const logits = T.mul(T.randn([S, E], { dtype: 'float64', generator: gen(12) }), 2);
    const g = floats(T.softmax(logits, -1));
    let local = 0;
    const mean = new Array<number>(E).fill(0);
    for (let s = 0; s < S; s++) for (let e = 0; e < E; e++) {
      const v = g[s * E + e]!;
      local -= (v * Math.log(v)) / S;
      mean[e] += v / S;
    }
    const global = -mean.reduce((a, v) => a + v * Math.log(v), 0);
    const r = routerEntropies(T.softmax(logits, -1));
    expect(Math.abs(r.local.item() - local)).toBeLessThan(1e-12);
    expect(Math.abs(r.global.item() - global)).toBeLessThan(1e-12);
    expect(global).toBeGreaterThan(local);
    const x = logits.detach().requiresGrad_(true);
    const res = T.gradcheck((y) => { const e = routerEntropies(T.softmax(y, -1)); return T.sub(T.mul(e.local, 0.7), T.mul(e.global, 0.3)); }, [x], { eps: 1e-6, atol: 1e-8, rtol: 1e-5 });
    expect(res.ok, JSON.stringify(res.failure)).toBe(true);
  });

  test('the MoE layer weighs the entropies by localEntropyWeight and globalEntropyWeight (0 by default) and their gradient reaches the router', () => {
    const x = T.randn([30, 6], { dtype: 'float64', generator: gen(13) });
    const off = new MoE({ hiddenSize: 6, ffnHiddenSize: 8, numExperts: 4, dtype: 'float64', generator: gen(14) });
    expect(off.forward(x).entropyLoss.item()).toBe(0);
    const on = new MoE({ hiddenSize: 6, ffnHiddenSize: 8, numExperts: 4, localEntropyWeight: 0.5, globalEntropyWeight: 0.25, dtype: 'float64', generator: gen(14) });
    const r = on.forward(x);
    const e = T.noGrad(() => routerEntropies(on.route(x).gates));
    expect(Math.abs(r.entropyLoss.item() - (0.5 * e.local.item() - 0.25 * e.global.item()))).toBeLessThan(1e-12);
    r.entropyLoss.backward();
    expect(floats(on.gate.wg.weight.grad!).some((v) => v !== 0)).toBe(true);
    expect(() => new MoE({ hiddenSize: 6, ffnHiddenSize: 8, numExperts: 4, globalEntropyWeight: -1 })).toThrow(/globalEntropyWeight must be a finite number ≥ 0/);
  });

  test('vl: one shared FFN; a batch of one modality only; bad modality ids are named', () => {
    const vl = new ModalityFFN({ hiddenSize: 4, mode: 'vl', shared: { kind: 'moe', numExperts: 2, ffnHiddenSize: 4, k: 2 }, generator: gen(3) });
    expect(vl.forward(T.randn([5, 4])).output.shape).toEqual([5, 4]);
    const split = new ModalityFFN({ hiddenSize: 4, mode: 'split', vision: { kind: 'dense', ffnHiddenSize: 4 }, text: { kind: 'moe', numExperts: 2, ffnHiddenSize: 4 } });
    expect(split.forward(T.randn([3, 4]), [1, 1, 1]).output.shape).toEqual([3, 4]);
    expect(() => split.forward(T.randn([3, 4]), [0, 2, 1])).toThrow(/modality of token 1 is 2/);
    expect(() => split.forward(T.randn([3, 4]))).toThrow(/needs the per-token modality/);
    expect(() => new ModalityFFN({ hiddenSize: 4, mode: 'split', vision: { kind: 'dense', ffnHiddenSize: 4 } })).toThrow(/needs a 'text' FFN spec/);
  });
});
