import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { MoE, VLMo, VLMOE_ROUTING, parameterCount, parseVLMoConfig, preset, resolveRouterOptions, resolveVLMoConfig, type VLMoConfig } from '../src/index.js';

const gen = (s: number) => new T.Generator(s);

describe('model config: one MoE option type, parsed strictly', () => {
  const moeLayers = (m: VLMo) => [...m.modules()].filter((x): x is MoE => x instanceof MoE);

  test('every MoE layer option reaches every MoE layer from the model config (router, policy, residual, sampling, activation, dropout)', () => {
    const cfg = preset('tiny', { experts: 4, k: 2, moe: { numExperts: 4, k: 2, policy: 'token-choice', useResidual: true, top2SecondExpertSampling: true, activation: 'relu', dropout: 0.1, capacityFactor: 1.5, evalCapacityFactor: 3, minCapacity: 2, noisyGatePolicy: 'Jitter', dropTokens: false, blocks: [0, 2] } });
    const m = new VLMo(cfg, { generator: gen(2) });
    const layers = moeLayers(m);
    expect(layers.length).toBe(2 * 2); // vision and text pools of blocks 0 and 2
    for (const l of layers) {
      expect(l.gate.policy).toBe('token-choice');
      expect(l.gate.options).toMatchObject({ k: 2, capacityFactor: 1.5, evalCapacityFactor: 3, minCapacity: 2, noisyGatePolicy: 'Jitter', dropTokens: false });
      expect(l.mlp).not.toBeNull();
      expect(l.coefficient).not.toBeNull();
      expect([l.experts.activation, l.experts.dropout]).toEqual(['relu', 0.1]);
    }
    // the residual MLP is counted
    expect(parameterCount(cfg).total).toBe(m.parameterCount().total);
    const ec = new VLMo(preset('tiny', { experts: 4, moe: { numExperts: 4, policy: 'expert-choice' } }), { generator: gen(2) });
    for (const l of moeLayers(ec)) expect(l.gate.policy).toBe('expert-choice');
  });

  test('defaults are defined once: a bare MoE block gets the router defaults (DeepSpeed), a preset adds VL-MoE routing on top', () => {
    const bare = resolveVLMoConfig({ ...preset('tiny'), moe: { numExperts: 4 } }).moe!;
    expect(bare).toMatchObject(resolveRouterOptions({ numExperts: 4 }));
    expect(bare).toMatchObject({ policy: 'token-choice', useResidual: false, top2SecondExpertSampling: false, activation: 'gelu', dropout: 0, blocks: [1, 3], auxLossWeight: 0.01, zLossWeight: 0.001 });
    const p = resolveVLMoConfig(preset('tiny', { experts: 4 })).moe!;
    expect(p).toMatchObject({ ...VLMOE_ROUTING, numExperts: 4, k: 1 });
    // the layer built from the preset uses exactly the resolved options
    for (const l of moeLayers(new VLMo(preset('tiny', { experts: 4 })))) expect(l.gate.options).toMatchObject({ capacityFactor: 1.25, evalCapacityFactor: 2, dropPolicy: 'probs' });
  });

  test('parseVLMoConfig: unknown keys name the key, the file and the nearest key; types and values are checked', () => {
    const ok = { ...preset('tiny'), moe: { numExperts: 4, noisyGatePolicy: null }, layerScale: null };
    expect(parseVLMoConfig(JSON.parse(JSON.stringify(ok)), 'run.json')).toEqual(ok);
    const bad = (o: object, re: RegExp) => expect(() => parseVLMoConfig({ ...preset('tiny'), ...o }, 'run.json', 'model.')).toThrow(re);
    bad({ detph: 4 }, /^run\.json: unknown key 'model\.detph' \(did you mean 'depth'\?\); known: dim, depth/);
    bad({ moe: { numExperts: 4, Capacity_Factor: 2 } }, /unknown key 'model\.moe\.Capacity_Factor' \(did you mean 'capacityFactor'\?\)/);
    bad({ moe: { numExperts: 4, routing: 'x' } }, /unknown key 'model\.moe\.routing'; known: numExperts/);
    bad({ dim: '64' }, /'model\.dim' must be an integer, got "64"/);
    bad({ moe: { numExperts: 4, k: 1.5 } }, /'model\.moe\.k' must be an integer, got 1\.5/);
    bad({ moe: { numExperts: 4, policy: 'random' } }, /^run\.json: 'model\.moe\.policy' must be one of "token-choice", "expert-choice", got "random"/);
    bad({ moe: { numExperts: 4, blocks: [9] } }, /run\.json: VLMo config: moe\.blocks has 9, outside \[0, 4\)/);
    bad({ dim: 65 }, /run\.json: VLMo config: dim 65 is not divisible by heads 4/);
    expect(() => parseVLMoConfig([1, 2], 'run.json')).toThrow(/run\.json: the model config must be a JSON object/);
  });

  test("DeepSpeed's MoE argument names are aliases of ours in the moe block", () => {
    const ds = { capacity_factor: 1.5, eval_capacity_factor: 2, min_capacity: 2, drop_tokens: false, use_rts: false, noisy_gate_policy: 'Jitter', use_residual: true, num_experts: 4, top2_2nd_expert_sampling: false };
    const c = parseVLMoConfig({ ...preset('tiny'), moe: ds }, 'run.json', 'model.');
    expect(c.moe).toEqual({ capacityFactor: 1.5, evalCapacityFactor: 2, minCapacity: 2, dropTokens: false, useRts: false, noisyGatePolicy: 'Jitter', useResidual: true, numExperts: 4, top2SecondExpertSampling: false });
    expect(resolveVLMoConfig(c).moe).toMatchObject({ capacityFactor: 1.5, useResidual: true, numExperts: 4 });
    const bad = (moe: object, re: RegExp) => expect(() => parseVLMoConfig({ ...preset('tiny'), moe }, 'run.json', 'model.')).toThrow(re);
    bad({ numExperts: 4, capacity_factor: 1, capacityFactor: 2 }, /'model\.moe\.capacity_factor' and 'model\.moe\.capacityFactor' are the same option/);
    bad({ numExperts: 4, ep_size: 2 }, /'model\.moe\.ep_size' is set by the engine's expert_parallel_size/);
    bad({ numExperts: 4, drop_tokens: 'no' }, /'model\.moe\.dropTokens' must be a boolean/);
  });
});

describe('VLMo / VL-MoE backbone', () => {
  test('parameter arithmetic equals the built module (dense, MoE top-1, MoE top-2 with chosen blocks, fine-grained + shared experts)', () => {
    const fine = preset('tiny', { experts: 4, moe: { numExperts: 4, expertSizeRatio: 2, sharedExperts: 1 } });
    for (const cfg of [preset('tiny'), preset('tiny', { experts: 4 }), preset('tiny', { experts: 3, k: 2, moe: { numExperts: 3, k: 2, blocks: [0, 3] } }), preset('tiny', { layerScale: null, vlBlocks: 2 }), fine]) {
      const m = new VLMo(cfg);
      const built = m.parameterCount();
      const counted = parameterCount(cfg);
      expect(counted.total).toBe(built.total);
      expect(counted.active).toBe(built.active);
      if (!cfg.moe) expect(built.active).toBe(built.total);
    }
    // fine-grained experts keep the routed experts' total and active parameters; the shared expert adds one half-size FFN per MoE layer, always active
    const coarse = parameterCount(preset('tiny', { experts: 4 })), split = parameterCount(preset('tiny', { experts: 4, moe: { numExperts: 4, expertSizeRatio: 2 } }));
    const r = resolveVLMoConfig(fine), d = r.dim, layers = 2 * r.moe!.blocks.length;
    // per layer: 8 experts instead of 4 add 4·d router weights and 4·d output biases; a token's 2 half experts hold one more output bias than its 1 whole one
    expect(split.total - coarse.total).toBe(layers * 8 * d);
    expect(split.active - coarse.active).toBe(layers * (4 * d + d));
    const withShared = parameterCount(fine), hs = r.ffnHidden / 2;
    expect(withShared.total - split.total).toBe(layers * (2 * d * hs + hs + d));
    expect(withShared.active - split.active).toBe(withShared.total - split.total);
  });

  test("LIMoE entropy weights reach the model's MoE loss: with only localEntropyWeight 1 it is the sum of the layers' mean gate entropies", () => {
    const base = preset('tiny', { experts: 4 });
    const cfg: VLMoConfig = { ...base, dtype: 'float64', moe: { ...base.moe!, auxLossWeight: 0, zLossWeight: 0, localEntropyWeight: 1 } };
    const m = new VLMo(cfg, { generator: gen(1) });
    const img = T.randn([2, 3, 32, 32], { dtype: 'float64', generator: gen(3) });
    const o = m.forward({ image: img });
    const sum = Object.values(o.entropyBy).reduce((a, b) => a + b, 0);
    expect(Object.keys(o.entropyBy).length).toBeGreaterThan(0);
    expect(Math.abs(o.moeLoss.item() - sum)).toBeLessThan(1e-9);
    const g = new VLMo({ ...cfg, moe: { ...cfg.moe!, localEntropyWeight: 0, globalEntropyWeight: 1 } }, { generator: gen(1) }).forward({ image: img });
    expect(g.moeLoss.item()).toBeLessThan(0);
    expect(-g.moeLoss.item()).toBeLessThanOrEqual(Object.keys(g.entropyBy).length * Math.log(4) + 1e-9);
  });

  test('preset sizes: base dense ≈ 175–180M; base with 32 experts ≈ 1.9B total, ≈ 180M active; large ≈ 560M', () => {
    const base = parameterCount(preset('base'));
    expect(base.total).toBeGreaterThan(175e6);
    expect(base.total).toBeLessThan(180e6);
    const moe = parameterCount(preset('base', { experts: 32 }));
    expect(moe.total).toBeGreaterThan(1.85e9);
    expect(moe.total).toBeLessThan(1.95e9);
    expect(moe.active).toBeGreaterThan(175e6);
    expect(moe.active).toBeLessThan(185e6);
    expect(moe.perExpert).toBeGreaterThan(4.6e6);
    expect(moe.perExpert).toBeLessThan(4.8e6);
    const large = parameterCount(preset('large'));
    expect(large.total).toBeGreaterThan(550e6);
    expect(large.total).toBeLessThan(570e6);
  });

  for (const experts of [0, 4]) {
    test(`image-only, text-only and fused passes: shapes, losses, padding (${experts ? `${experts} experts` : 'dense'})`, () => {
      const cfg = preset('tiny', experts ? { experts } : {});
      const m = new VLMo(cfg, { generator: gen(1) });
      m.eval();
      const B = 3, Lt = 10, N = 1 + (32 / 8) ** 2, d = 64;
      const ids = T.randint(0, 1000, [B, Lt], { generator: gen(2) });
      const mask = T.tensor(Array.from({ length: B * Lt }, (_, i) => (i % Lt < 7 ? 1 : 0)), { dtype: 'int64', shape: [B, Lt] });
      const img = T.randn([B, 3, 32, 32], { generator: gen(3) });
      const t = m.forward({ textIds: ids, textMask: mask });
      const i = m.forward({ image: img });
      const f = m.forward({ textIds: ids, textMask: mask, image: img });
      expect(t.hidden.shape).toEqual([B, Lt, d]);
      expect(i.hidden.shape).toEqual([B, N, d]);
      expect(f.hidden.shape).toEqual([B, Lt + N, d]);
      expect([t.pass, i.pass, f.pass]).toEqual(['text', 'image', 'fused']);
      expect([f.textLen, f.imageLen]).toEqual([Lt, N]);
      if (experts) {
        expect(Object.keys(f.expertCounts).sort()).toEqual(['blocks.1.text', 'blocks.1.vision']); // block 3 is a VL block in the fused pass
        expect(Object.keys(i.expertCounts).sort()).toEqual(['blocks.1.vision', 'blocks.3.vision']);
        expect(f.auxLoss.item()).toBeGreaterThan(0);
      } else expect(f.auxLoss.item()).toBe(0);
      // padded positions do not change the real ones
      const ids2 = T.noGrad(() => T.where(T.ne(mask, 0), ids, T.full([B, Lt], 5, { dtype: 'int64' })));
      const f2 = m.forward({ textIds: ids2, textMask: mask, image: img });
      const a = f.hidden.narrow(1, 0, 7).dataSync(), b = f2.hidden.narrow(1, 0, 7).dataSync();
      for (let k = 0; k < a.length; k++) expect(Math.abs((a[k] as number) - (b[k] as number))).toBeLessThan(1e-5);
    });
  }

  test('every parameter gets a gradient over the three passes; MoE losses reach the routers', () => {
    const m = new VLMo(preset('tiny', { experts: 4 }), { generator: gen(4) });
    const ids = T.randint(0, 1000, [2, 6], { generator: gen(5) });
    const img = T.randn([2, 3, 32, 32], { generator: gen(6) });
    let loss: T.Tensor = T.zeros([]);
    for (const input of [{ textIds: ids }, { image: img }, { textIds: ids, image: img }]) {
      const o = m.forward(input);
      loss = T.add(loss, T.add(T.mean(T.square(o.hidden)), o.moeLoss));
    }
    loss.backward();
    const missing = [...m.namedParameters()].filter(([, p]) => !p.grad).map(([n]) => n);
    expect(missing).toEqual([]);
  });

  test('bad inputs and configs are named', () => {
    const m = new VLMo(preset('tiny'));
    expect(() => m.forward({})).toThrow(/give textIds, image, or both/);
    expect(() => m.forward({ image: T.zeros([1, 3, 16, 16]) })).toThrow(/image must be \[B, 3, 32, 32\]/);
    expect(() => m.forward({ textIds: T.zeros([1, 17], { dtype: 'int64' }) })).toThrow(/longer than maxTextLen 16/);
    expect(() => new VLMo({ ...preset('tiny'), heads: 5 })).toThrow(/not divisible by heads 5/);
    expect(() => preset('huge' as never)).toThrow(/unknown preset 'huge'/);
  });
});
