import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { NLVRModel, RetrievalModel, VLMoPretrainer, VQAModel, createTaskModel, evalAdapter, preset, taskBatchFrom, type TaskArrays, type TaskBatch } from '../src/index.js';

const gen = (s: number) => new T.Generator(s);
const cfg = (o: object = {}) => preset('tiny', { experts: 4, dropPath: 0, ...o });

/** A loader-shaped batch of `n` random samples (arrays sized for `cap` ≥ n, like a final partial batch). */
function arrays(n: number, L: number, o: { answers?: number; pair?: boolean; cap?: number; seed?: number } = {}): TaskArrays {
  const cap = o.cap ?? n, g = gen(o.seed ?? 1);
  const f = (k: number) => T.randn([k], { generator: g }).dataSync() as Float32Array;
  const ids = Int32Array.from(T.randint(1, 1000, [cap * L], { generator: g }).dataSync() as BigInt64Array, Number);
  const mask = new Uint8Array(cap * L).fill(1);
  for (let i = 0; i < cap; i++) mask.fill(0, i * L + 3 + (i % 3), (i + 1) * L); // ragged padding
  const a: TaskArrays = { size: n, images: f(cap * 3 * 32 * 32), imageShape: [cap, 3, 32, 32], textIds: ids, textMask: mask, textShape: [cap, L] };
  if (o.answers) {
    const t = new Float32Array(cap * o.answers);
    for (let i = 0; i < cap; i++) t[i * o.answers + (i % o.answers)] = 1;
    a.vqaTargets = t;
  }
  if (o.pair) {
    a.images2 = f(cap * 3 * 32 * 32);
    a.labels = Int32Array.from({ length: cap }, (_, i) => (i * 5 + 1) % 3 === 0 ? 1 : 0);
  }
  return a;
}

function overfit(model: T.nn.Module & { forward(x: TaskBatch): { loss: T.Tensor } }, x: TaskBatch, steps = 80): { first: number; last: number } {
  const opt = new T.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const step = () => T.scope(() => {
    opt.zeroGrad();
    const l = model.forward(x).loss;
    l.backward();
    opt.step();
    return l.item();
  });
  const first = step();
  let last = first;
  for (let i = 0; i < steps; i++) last = step();
  return { first, last };
}

describe('task models (VQA, NLVR, retrieval)', () => {
  test('taskBatchFrom: tensors of the batch\'s real samples only (partial final batch)', () => {
    const b = taskBatchFrom('vqa', arrays(5, 8, { answers: 6, cap: 8 }));
    expect(b.image!.shape).toEqual([5, 3, 32, 32]);
    expect(b.ids!.shape).toEqual([5, 8]);
    expect(b.mask!.shape).toEqual([5, 8]);
    expect(b.targets!.shape).toEqual([5, 6]);
    const n = taskBatchFrom('nlvr', arrays(3, 8, { pair: true, cap: 4 }));
    expect(n.image2!.shape).toEqual([3, 3, 32, 32]);
    expect(Array.from(n.labels!.dataSync() as BigInt64Array, Number)).toEqual([0, 1, 0]);
    expect(() => new NLVRModel(cfg()).forward(taskBatchFrom('nlvr', arrays(2, 8)))).toThrow(/NLVRModel: the batch has no 'labels'/);
    expect(() => new NLVRModel(cfg()).logits(taskBatchFrom('nlvr', arrays(2, 8)))).toThrow(/NLVRModel: the batch has no 'image2'/);
    expect(() => createTaskModel('vqa', cfg())).toThrow(/numAnswers/);
  });

  test('shapes of every head: VQA [B, answers], NLVR [B, 2], retrieval unit embeddings [B, d]', () => {
    const vqa = new VQAModel(cfg(), 7, { generator: gen(2) });
    expect(vqa.logits(taskBatchFrom('vqa', arrays(4, 8, { answers: 7 }))).shape).toEqual([4, 7]);
    const nlvr = new NLVRModel(cfg(), { generator: gen(3) });
    expect(nlvr.logits(taskBatchFrom('nlvr', arrays(4, 8, { pair: true }))).shape).toEqual([4, 2]);
    const ret = new RetrievalModel(cfg(), { generator: gen(4) });
    const x = taskBatchFrom('retrieval', arrays(4, 8));
    for (const e of [ret.encodeImages(x), ret.encodeTexts(x)]) {
      expect(e.shape).toEqual([4, 64]);
      for (const n of Array.from(T.sum(T.square(e), 1).dataSync() as Float32Array)) expect(n).toBeCloseTo(1, 4);
    }
    const o = ret.forward(x);
    expect(o.parts.moe).toBeGreaterThan(0); // the MoE losses of both passes are in the loss
    expect(o.loss.item()).toBeCloseTo(o.parts.task + o.parts.moe, 5);
  });

  test('per-layer drops: droppedBy has the expert-count keys and sums to dropped', () => {
    const vqa = new VQAModel(cfg({ moe: { numExperts: 4, capacityFactor: 0.25, minCapacity: 1 } }), 6, { generator: gen(20) });
    const o = vqa.forward(taskBatchFrom('vqa', arrays(6, 8, { answers: 6 })));
    expect(Object.keys(o.droppedBy).sort()).toEqual(Object.keys(o.expertCounts).sort());
    expect(Object.keys(o.droppedBy).sort()).toEqual(['blocks.1.text', 'blocks.1.vision']); // block 3 is a VL-FFN block in fused passes
    const sum = Object.values(o.droppedBy).reduce((a, b) => a + b, 0);
    expect(sum).toBe(o.dropped);
    expect(sum).toBeGreaterThan(0);
  });

  test('NLVR: the two images are distinguished (swapping them changes the logits)', () => {
    const nlvr = new NLVRModel(cfg({ experts: 0 }), { generator: gen(5) });
    nlvr.eval();
    const a = arrays(3, 8, { pair: true });
    const swapped = { ...a, images: a.images2!, images2: a.images };
    const l1 = nlvr.logits(taskBatchFrom('nlvr', a)).dataSync() as Float32Array;
    const l2 = nlvr.logits(taskBatchFrom('nlvr', swapped)).dataSync() as Float32Array;
    expect(Math.max(...l1.map((v, i) => Math.abs(v - l2[i]!)))).toBeGreaterThan(1e-4);
  });

  test('a pretraining checkpoint\'s weights load into every task model by name (only the head is new)', () => {
    const pre = new VLMoPretrainer(cfg(), {}, { generator: gen(6) });
    const sd = pre.stateDict();
    for (const [task, head] of [['vqa', ['head']], ['nlvr', ['head']], ['retrieval', []]] as const) {
      const m = createTaskModel(task, cfg(), { numAnswers: 5, generator: gen(7) });
      const { missingKeys } = m.loadStateDict(sd, { strict: false });
      expect([...new Set(missingKeys.map((k) => k.split('.')[0]))]).toEqual([...head]);
      const w = m.backbone.blocks.stateDict();
      for (const [k, v] of Object.entries(pre.backbone.blocks.stateDict())) expect(Array.from(w[k]!.dataSync() as Float32Array)).toEqual(Array.from(v.dataSync() as Float32Array));
    }
  });

  test('a tiny VL-MoE overfits 8 examples on NLVR', () => {
    const r = overfit(new NLVRModel(cfg({ experts: 2 }), { generator: gen(8) }), taskBatchFrom('nlvr', arrays(8, 8, { pair: true, seed: 9 })));
    expect(r.last).toBeLessThan(0.1 * r.first);
  });

  test('a tiny VL-MoE overfits 8 examples on retrieval (contrastive loss)', () => {
    const r = overfit(new RetrievalModel(cfg({ experts: 2 }), { generator: gen(10) }), taskBatchFrom('retrieval', arrays(8, 8, { seed: 11 })));
    expect(r.last).toBeLessThan(0.1 * r.first);
  });

  test('a tiny VL-MoE overfits 8 examples on VQA (through the task model)', () => {
    const r = overfit(new VQAModel(cfg({ experts: 2 }), 6, { generator: gen(12) }), taskBatchFrom('vqa', arrays(8, 8, { answers: 6, seed: 13 })));
    expect(r.last).toBeLessThan(0.1 * r.first);
  });

  test('evalAdapter: eval mode, no autograd, Float32Array scores of the right shape, deterministic', () => {
    const vqa = new VQAModel(cfg(), 6, { generator: gen(14) });
    const ret = new RetrievalModel(cfg(), { generator: gen(15) });
    const a = evalAdapter('m', { vqa, retrieval: ret });
    expect(a.params!.total).toBeGreaterThan(a.params!.activePerToken);
    expect(a.nlvrLogits).toBeUndefined();
    const b = arrays(3, 8, { answers: 6, cap: 4 });
    const s1 = a.vqaLogits!(b), s2 = a.vqaLogits!(b);
    expect(s1).toBeInstanceOf(Float32Array);
    expect(s1.length).toBe(3 * 6);
    expect(Array.from(s1)).toEqual(Array.from(s2));
    expect(vqa.training).toBe(false);
    expect(a.encodeImages!(b).length).toBe(3 * 64);
    expect(a.encodeTexts!(b).length).toBe(3 * 64);
  });

  test('evalAdapter over a VLMoPretrainer (zero-shot retrieval): the embeddings of a RetrievalModel loaded from its weights', () => {
    const pre = new VLMoPretrainer(cfg(), {}, { generator: gen(21) });
    const ret = new RetrievalModel(cfg(), { generator: gen(22) });
    // what `vlmoe eval` does with a pretraining checkpoint: the ITM / MLM heads and the pooler are left out
    const { missingKeys } = ret.loadStateDict(pre.stateDict(), { strict: false });
    expect(missingKeys).toEqual([]);
    const zs = evalAdapter('pre', { retrieval: pre }), ft = evalAdapter('ret', { retrieval: ret });
    const b = arrays(3, 8, { cap: 4, seed: 5 });
    const close = (x: Float32Array, y: Float32Array) => x.forEach((v, i) => expect(v).toBeCloseTo(y[i]!, 6));
    close(zs.encodeImages!(b), ft.encodeImages!(b));
    close(zs.encodeTexts!(b), ft.encodeTexts!(b));
    expect(pre.training).toBe(false);
    // and the embeddings are not the untrained retrieval model's
    expect(Array.from(evalAdapter('other', { retrieval: new RetrievalModel(cfg(), { generator: gen(22) }) }).encodeImages!(b))).not.toEqual(Array.from(zs.encodeImages!(b)));
  });
});
