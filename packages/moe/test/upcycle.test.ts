import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { preset, upcycle, VLMoPretrainer, type VLMoConfig } from '../src/index.js';

const gen = (s: number) => new T.Generator(s);
const floats = (t: T.Tensor) => Array.from(t.dataSync() as ArrayLike<number>);
const dense: VLMoConfig = { ...preset('tiny'), dtype: 'float64' };
/** The same backbone with MoE FFNs whose kept weights sum to 1 per token (post-softmax top-1, dropless). */
const moeOf = (moe: object): VLMoConfig => ({ ...preset('tiny', { experts: 4 }), dtype: 'float64', moe: { ...preset('tiny', { experts: 4 }).moe!, dropTokens: false, ...moe } });

function inputs() {
  const B = 3, Lt = 10;
  const ids = T.randint(0, 1000, [B, Lt], { generator: gen(2) });
  const mask = T.tensor(Array.from({ length: B * Lt }, (_, i) => (i % Lt < 7 ? 1 : 0)), { dtype: 'int64', shape: [B, Lt] });
  const img = T.randn([B, 3, 32, 32], { dtype: 'float64', generator: gen(3) });
  return { textIds: ids, textMask: mask, image: img };
}

describe('sparse upcycling: a VL-MoE from a dense VLMo checkpoint', () => {
  for (const [name, moe] of [['post-softmax top-1', { k: 1, preSoftmax: false }], ['sigmoid top-2', { k: 2, scoreFunction: 'sigmoid' }], ["DeepSpeed's renormalised top-2", { k: 2 }]] as const) {
    test(`every expert a copy of the dense FFN, routers fresh, the rest loaded: the upcycled model computes the dense model's function (${name})`, () => {
      const d = new VLMoPretrainer(dense, {}, { generator: gen(1) });
      const m = new VLMoPretrainer(moeOf(moe), {}, { generator: gen(9) });
      const routers = Object.fromEntries([...m.namedParameters()].filter(([k]) => k.endsWith('gate.wg.weight')).map(([k, p]) => [k, floats(p)]));
      const rep = upcycle(m, d.stateDict());
      expect(rep.upcycled.sort()).toEqual(['backbone.blocks.1.ffn.text.inner.moe', 'backbone.blocks.1.ffn.vision.inner.moe', 'backbone.blocks.3.ffn.text.inner.moe', 'backbone.blocks.3.ffn.vision.inner.moe']);
      expect(rep.fresh.sort()).toEqual(Object.keys(routers).sort());
      for (const [k, v] of Object.entries(routers)) expect(floats(m.stateDict()[k]!), k).toEqual(v);
      const sd = d.stateDict(); // expert 3 of block 1's vision side = fc1ᵀ
      const w1 = m.stateDict()['backbone.blocks.1.ffn.vision.inner.moe.experts.w1']!;
      expect(floats(w1.select(0, 3))).toEqual(floats(sd['backbone.blocks.1.ffn.vision.inner.ffn.fc1.weight']!.t().contiguous()));
      d.eval();
      m.eval();
      const x = inputs();
      const a = floats(d.backbone.forward(x).hidden), b = floats(m.backbone.forward(x).hidden);
      const err = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      // every rule here sums a token's weights to 1 (DeepSpeed's top-2: renormalised over the kept, dropless)
      expect(err).toBeLessThan(1e-9);
    });
  }

  test("DeepSpeed's top-1 scales by the gate value: not the dense function (why the recipes pick a rule that sums to 1)", () => {
    const d = new VLMoPretrainer(dense, {}, { generator: gen(1) });
    const m = new VLMoPretrainer(moeOf({ k: 1 }), {}, { generator: gen(9) });
    upcycle(m, d.stateDict());
    d.eval();
    m.eval();
    const x = inputs();
    const a = floats(d.backbone.forward(x).hidden), b = floats(m.backbone.forward(x).hidden);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-3);
  });

  test('noise: the copies differ by noise · std(W) · N(0, 1), seeded; biases stay exact', () => {
    const d = new VLMoPretrainer(dense, {}, { generator: gen(1) });
    const m = new VLMoPretrainer(moeOf({ k: 1 }), {}, { generator: gen(9) });
    upcycle(m, d.stateDict(), { noise: 0.1, generator: gen(5) });
    const fc1 = d.stateDict()['backbone.blocks.1.ffn.text.inner.ffn.fc1.weight']!.t().contiguous();
    const w1 = m.stateDict()['backbone.blocks.1.ffn.text.inner.moe.experts.w1']!;
    const ref = floats(fc1), mean = ref.reduce((a, b) => a + b, 0) / ref.length;
    const sd = Math.sqrt(ref.reduce((a, b) => a + (b - mean) ** 2, 0) / (ref.length - 1));
    const diffs = [0, 1, 2, 3].flatMap((e) => floats(w1.select(0, e)).map((v, i) => v - ref[i]!));
    const dm = diffs.reduce((a, b) => a + b, 0) / diffs.length;
    const ds = Math.sqrt(diffs.reduce((a, b) => a + (b - dm) ** 2, 0) / diffs.length);
    expect(Math.abs(ds / (0.1 * sd) - 1)).toBeLessThan(0.02);
    expect(Math.abs(dm)).toBeLessThan(0.01 * sd);
    expect(floats(m.stateDict()['backbone.blocks.1.ffn.text.inner.moe.experts.b1']!.select(0, 2))).toEqual(floats(d.stateDict()['backbone.blocks.1.ffn.text.inner.ffn.fc1.bias']!));
    const again = new VLMoPretrainer(moeOf({ k: 1 }), {}, { generator: gen(9) });
    upcycle(again, d.stateDict(), { noise: 0.1, generator: gen(5) });
    expect(floats(again.stateDict()['backbone.blocks.1.ffn.text.inner.moe.experts.w1']!)).toEqual(floats(w1));
  });

  test('an MoE checkpoint of the same model loads as is; a checkpoint of another shape is an error naming the layer or key', () => {
    const a = new VLMoPretrainer(moeOf({ k: 1 }), {}, { generator: gen(1) });
    const b = new VLMoPretrainer(moeOf({ k: 1 }), {}, { generator: gen(2) });
    const rep = upcycle(b, a.stateDict());
    expect(rep.upcycled).toEqual([]);
    expect(rep.loaded.length).toBe(4);
    expect(rep.fresh).toEqual([]);
    for (const [k, t] of Object.entries(a.stateDict())) expect(floats(b.stateDict()[k]!), k).toEqual(floats(t));
    const noFfn = Object.fromEntries(Object.entries(new VLMoPretrainer(dense).stateDict()).filter(([k]) => !k.startsWith('backbone.blocks.3.ffn.vision.inner.ffn.')));
    expect(() => upcycle(new VLMoPretrainer(moeOf({ k: 1 })), noFfn)).toThrow(/neither experts for the MoE layer 'backbone\.blocks\.3\.ffn\.vision\.inner\.moe' nor a dense FFN at 'backbone\.blocks\.3\.ffn\.vision\.inner\.ffn'/);
    const fine = new VLMoPretrainer(moeOf({ k: 1, expertSizeRatio: 2 }));
    expect(() => upcycle(fine, new VLMoPretrainer(dense).stateDict())).toThrow(/fine-grained experts \(expertSizeRatio > 1\) are not copies/);
  });
});
