import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
const { nn } = T;

class Block extends nn.Module {
  ln1 = new nn.LayerNorm(8);
  attn = new nn.MultiheadSelfAttention(8, 2, { generator: new T.Generator(1) });
  ln2 = new nn.LayerNorm(8);
  mlp = new nn.FeedForward(8, 16, { generator: new T.Generator(2) });
  forward(x: T.Tensor, mask?: T.Tensor): T.Tensor {
    x = x.add(this.attn.forward(this.ln1.forward(x), mask));
    return x.add(this.mlp.forward(this.ln2.forward(x)));
  }
}

class Encoder extends nn.Module {
  embed = new nn.Linear(4, 8, { generator: new T.Generator(3) });
  layers = new nn.ModuleList([new Block(), new Block()]);
  head = new nn.Linear(8, 3, { bias: false, generator: new T.Generator(4) });
  forward(x: T.Tensor): T.Tensor {
    let h = this.embed.forward(x);
    for (const b of this.layers) h = b.forward(h);
    return this.head.forward(h);
  }
}

describe('nn.Module', () => {
  it('names parameters like PyTorch', () => {
    const m = new Encoder();
    const names = [...m.namedParameters()].map(([n]) => n);
    expect(names).toEqual([
      'embed.weight', 'embed.bias',
      'layers.0.ln1.weight', 'layers.0.ln1.bias', 'layers.0.attn.qBias', 'layers.0.attn.vBias', 'layers.0.attn.qkv.weight', 'layers.0.attn.proj.weight', 'layers.0.attn.proj.bias',
      'layers.0.ln2.weight', 'layers.0.ln2.bias', 'layers.0.mlp.fc1.weight', 'layers.0.mlp.fc1.bias', 'layers.0.mlp.fc2.weight', 'layers.0.mlp.fc2.bias',
      'layers.1.ln1.weight', 'layers.1.ln1.bias', 'layers.1.attn.qBias', 'layers.1.attn.vBias', 'layers.1.attn.qkv.weight', 'layers.1.attn.proj.weight', 'layers.1.attn.proj.bias',
      'layers.1.ln2.weight', 'layers.1.ln2.bias', 'layers.1.mlp.fc1.weight', 'layers.1.mlp.fc1.bias', 'layers.1.mlp.fc2.weight', 'layers.1.mlp.fc2.bias',
      'head.weight',
    ]);
    expect(m.numParameters()).toBe(4 * 8 + 8 + 2 * (8 + 8 + 8 + 8 + 24 * 8 + 64 + 8 + 8 + 8 + 16 * 8 + 16 + 8 * 16 + 8) + 24);
    m.dispose();
  });

  it('train/eval reaches submodules; stateDict round-trips; strict load errors name keys and shapes', () => {
    const a = new Encoder();
    a.eval();
    for (const mod of a.modules()) expect(mod.training).toBe(false);
    a.train();
    expect(a.layers.at(1).attn.training).toBe(true);
    const b = new Encoder();
    T.manualSeed(5);
    const x = T.randn([2, 5, 4]);
    a.eval();
    b.eval();
    b.loadStateDict(a.stateDict());
    expect(b.forward(x).toArray()).toEqual(a.forward(x).toArray());
    const sd = a.stateDict();
    delete sd['head.weight'];
    expect(() => b.loadStateDict(sd)).toThrow(/missing keys: head\.weight/);
    expect(b.loadStateDict(sd, { strict: false }).missingKeys).toEqual(['head.weight']);
    const bad = { ...a.stateDict(), 'head.weight': T.zeros([2, 2]) };
    expect(() => b.loadStateDict(bad)).toThrow(/'head\.weight' has shape \[2, 2\] in the state dict but \[3, 8\]/);
    a.dispose();
    b.dispose();
  });

  it('parameters survive scopes and get gradients; a small MLP overfits a batch with SGD', () => {
    const gen = new T.Generator(7);
    const model = new nn.Sequential(new nn.Linear(4, 32, { generator: gen }), new nn.GELU(), new nn.Linear(32, 3, { generator: gen }));
    const x = T.randn([16, 4], { generator: gen }).keep();
    const y = T.randint(0, 3, [16], { generator: gen }).keep();
    let first = 0, last = 0;
    for (let step = 0; step < 300; ++step) {
      last = T.scope(() => {
        const loss = T.crossEntropy(model.forward(x), y);
        loss.backward();
        T.noGrad(() => {
          for (const p of model.parameters()) {
            p.sub_(p.grad!.mul(0.5));
            p.zeroGrad();
          }
        });
        return loss.item();
      });
      if (step === 0) first = last;
    }
    expect(last).toBeLessThan(first * 0.05);
  });

  it('Conv2d patch embedding equals a direct convolution', () => {
    const gen = new T.Generator(11);
    const conv = new nn.Conv2d(2, 3, 2, { generator: gen });
    const x = T.randn([1, 2, 4, 6], { generator: gen });
    const y = conv.forward(x);
    expect(y.shape).toEqual([1, 3, 2, 3]);
    const xs = x.toArray() as number[][][][], w = conv.weight.toArray() as number[][][][], b = conv.bias!.toArray() as number[];
    const ys = y.toArray() as number[][][][];
    for (let o = 0; o < 3; ++o)
      for (let i = 0; i < 2; ++i)
        for (let j = 0; j < 3; ++j) {
          let s = b[o]!;
          for (let c = 0; c < 2; ++c) for (let u = 0; u < 2; ++u) for (let v = 0; v < 2; ++v) s += w[o]![c]![u]![v]! * xs[0]![c]![2 * i + u]![2 * j + v]!;
          expect(ys[0]![o]![i]![j]).toBeCloseTo(s, 5);
        }
    const pe = new nn.PatchEmbedding(2, 3, 2, { generator: gen });
    expect(pe.forward(x).shape).toEqual([1, 6, 3]);
    expect(() => new nn.Conv2d(2, 3, 3, { stride: 1 })).toThrow(/kernel = stride/);
  });

  it('DropPath and Dropout are identity in eval; DropPath drops whole samples in training', () => {
    const dp = new nn.DropPath(0.5, new T.Generator(3));
    const x = T.ones([64, 4, 2]);
    const y = dp.forward(x);
    const perSample = (y.sum([1, 2]).toArray() as number[]);
    for (const v of perSample) expect([0, 16]).toContain(v);
    dp.eval();
    expect(dp.forward(x)).toBe(x);
    const ls = new nn.LayerScale(2, 0.1);
    expect(ls.forward(T.ones([3, 2])).toArray()).toEqual([[0.1, 0.1], [0.1, 0.1], [0.1, 0.1]].map((r) => r.map((v) => Math.fround(v))));
  });

  it('DropPath with a sample index: W ranks drop the samples one process drops (rows of a global batch)', () => {
    const W = 3, B = 4, p = 0.5;
    const x = T.arange(1, W * B + 1, 1, { dtype: 'float32' }).reshape(W * B, 1, 1).expand(W * B, 2, 2).contiguous();
    const one = new nn.DropPath(p, new T.Generator(5));
    // one process: rows 0..11 of 12, twice (the generator advances by the global batch each call)
    const whole = [0, 1].map(() => one.forward(x, { rows: Array.from({ length: W * B }, (_, i) => i), total: W * B }).toArray() as number[][][]);
    // the default path draws per local row: the same draws when the batch is the global one
    expect(new nn.DropPath(p, new T.Generator(5)).forward(x).toArray()).toEqual(whole[0]);
    for (let r = 0; r < W; r++) {
      const dp = new nn.DropPath(p, new T.Generator(5));
      const rows = Array.from({ length: B }, (_, j) => j * W + r);
      const local = T.indexSelect(x, 0, T.tensor(rows, { dtype: 'int64' }));
      for (const call of [0, 1]) {
        const y = dp.forward(local, { rows, total: W * B }).toArray() as number[][][];
        rows.forEach((g, j) => expect(y[j]).toEqual(whole[call]![g]));
      }
    }
    const kept = whole[0]!.filter((s) => s[0]![0] !== 0).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(W * B);
    expect(() => one.forward(x, { rows: [0, 1], total: 12 })).toThrow(/2 entries for a batch of 12/);
    expect(() => one.forward(x.narrow(0, 0, 1), { rows: [12], total: 12 })).toThrow(/outside \[0, total = 12\)/);
  });

  it('init functions are seeded and have the right statistics', () => {
    const t = T.empty([200, 300]);
    nn.init.truncNormal_(t, { std: 0.02, a: -0.04, b: 0.04, generator: new T.Generator(1) });
    expect(t.max().item()).toBeLessThanOrEqual(0.04);
    expect(t.min().item()).toBeGreaterThanOrEqual(-0.04);
    const u = T.empty([200, 300]);
    nn.init.truncNormal_(u, { std: 0.02, a: -0.04, b: 0.04, generator: new T.Generator(1) });
    expect(u.toArray()).toEqual(t.toArray());
    nn.init.xavierUniform_(t, 1, { generator: new T.Generator(2) });
    const bound = Math.sqrt(6 / 500);
    expect(t.abs().max().item()).toBeLessThanOrEqual(bound);
    expect(t.var().item()).toBeCloseTo(bound * bound / 3, 4);
  });
});
