import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { ITCHead, ITMHead, MLMHead, NLVRHead, Pooler, VLMo, VQAHead, preset, sampleHardNegatives } from '../src/index.js';

const gen = (s: number) => new T.Generator(s);

describe('VLMo heads and losses', () => {
  const m = new VLMo(preset('tiny', { experts: 4 }), { generator: gen(1) });
  const B = 4, d = 64;
  const ids = T.randint(0, 1000, [B, 8], { generator: gen(2) });
  const img = T.randn([B, 3, 32, 32], { generator: gen(3) });

  test('ITC: symmetric contrastive loss from the unimodal passes; temperature learns', () => {
    const itc = new ITCHead(d, { generator: gen(4) });
    const { img: ie, txt: te } = itc.forward(m.forward({ image: img }).hidden, m.forward({ textIds: ids }).hidden);
    expect(ie.shape).toEqual([B, d]);
    const norms = Array.from(T.sum(T.square(ie), 1).dataSync() as Float32Array);
    norms.forEach((n) => expect(n).toBeCloseTo(1, 4));
    const loss = itc.loss(ie, te);
    expect(loss.item()).toBeGreaterThan(0);
    loss.backward();
    expect(itc.logitScale.grad).toBeTruthy();
    // a perfectly aligned batch has a lower loss than a shuffled one
    const e = T.normalize(T.randn([B, d], { generator: gen(5) }), 2, -1);
    expect(itc.loss(e, e).item()).toBeLessThan(itc.loss(e, T.cat([e.narrow(0, 1, B - 1), e.narrow(0, 0, 1)], 0)).item());
  });

  test('hard negatives: never the positive, seeded, and drawn by similarity', () => {
    const sim = T.tensor([[0, 9, -9, -9], [-9, 0, -9, 9], [9, -9, 0, -9], [-9, -9, 9, 0]], { shape: [4, 4] });
    const a = sampleHardNegatives(sim, gen(7)), b = sampleHardNegatives(sim, gen(7));
    expect(a).toEqual(b);
    a.imageForText.forEach((i, t) => expect(i).not.toBe(t));
    a.textForImage.forEach((t, i) => expect(t).not.toBe(i));
    // text 1's most similar other image is image 0 (sim[0][1] = 9); image 0's most similar other text is text 1
    expect(a.imageForText[1]).toBe(0);
    expect(a.textForImage[0]).toBe(1);
    expect(() => sampleHardNegatives(T.zeros([1, 1]))).toThrow(/at least 2 pairs/);
  });

  test('ITM, MLM, VQA and NLVR heads: shapes and finite losses with gradients', () => {
    const pool = new Pooler(d, { generator: gen(8) });
    const fused = m.forward({ textIds: ids, image: img });
    const pooled = pool.forward(fused.hidden);
    expect(pooled.shape).toEqual([B, d]);
    const itm = new ITMHead(d);
    expect(itm.forward(pooled).shape).toEqual([B, 2]);
    const mlm = new MLMHead(d, 1000);
    const labels = T.tensor(Array.from({ length: B * 8 }, (_, i) => (i % 5 === 0 ? i % 1000 : -100)), { dtype: 'int64', shape: [B, 8] });
    const vqa = new VQAHead(d, 10);
    const scores = T.tensor(Array.from({ length: B * 10 }, (_, i) => (i % 7 === 0 ? 1 : i % 11 === 0 ? 0.3 : 0)), { shape: [B, 10] });
    const nlvr = new NLVRHead(d);
    const pooled1 = pool.forward(m.forward({ textIds: ids, image: T.randn([B, 3, 32, 32], { generator: gen(9) }), imageTokenType: 2 }).hidden);
    expect(nlvr.forward(pooled, pooled1).shape).toEqual([B, 2]);
    const total = T.add(T.add(itm.loss(pooled, T.tensor([1, 0, 1, 0], { dtype: 'int64' })), mlm.loss(fused.hidden.narrow(1, 0, 8), labels)),
      T.add(vqa.loss(pooled, scores), nlvr.loss(pooled, pooled1, T.tensor([0, 1, 1, 0], { dtype: 'int64' }))));
    expect(Number.isFinite(total.item())).toBe(true);
    total.backward();
    for (const head of [pool, itm, mlm, vqa, nlvr]) for (const [n, p] of head.namedParameters()) expect(p.grad, n).toBeTruthy();
  });

  test('a tiny VL-MoE with a VQA head overfits 8 examples', () => {
    const model = new VLMo(preset('tiny', { experts: 2, dropPath: 0 }), { generator: gen(11) });
    const pool = new Pooler(d, { generator: gen(12) });
    const head = new VQAHead(d, 6, { generator: gen(13) });
    const x = T.randn([8, 3, 32, 32], { generator: gen(14) }), q = T.randint(0, 1000, [8, 6], { generator: gen(15) });
    const scores = T.cast(T.oneHot(T.tensor([0, 1, 2, 3, 4, 5, 0, 1], { dtype: 'int64' }), 6), 'float32');
    const params = [...model.parameters(), ...pool.parameters(), ...head.parameters()];
    const opt = new T.optim.AdamW(params, { lr: 3e-3, weightDecay: 0 });
    const lossAt = () => T.scope(() => {
      opt.zeroGrad();
      const o = model.forward({ textIds: q, image: x });
      const l = T.add(head.loss(pool.forward(o.hidden), scores), o.moeLoss);
      l.backward();
      opt.step();
      return l.item();
    });
    const first = lossAt();
    let last = first;
    for (let i = 0; i < 80; i++) last = lossAt();
    expect(last).toBeLessThan(0.1 * first);
  });
});
