/**
 * End-to-end training checks of nn + optim + serialization: an MLP and a 2-block pre-LN
 * transformer overfit a tiny fixed batch with AdamW (loss below 1% of its start), and a
 * state dict saved as safetensors reloads into a fresh model with bit-identical outputs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
const { nn } = T;

class PreLNBlock extends nn.Module {
  ln1: T.nn.LayerNorm;
  attn: T.nn.MultiheadSelfAttention;
  ln2: T.nn.LayerNorm;
  mlp: T.nn.FeedForward;
  constructor(d: number, heads: number, gen: T.Generator) {
    super();
    this.ln1 = new nn.LayerNorm(d);
    this.attn = new nn.MultiheadSelfAttention(d, heads, { generator: gen });
    this.ln2 = new nn.LayerNorm(d);
    this.mlp = new nn.FeedForward(d, 4 * d, { generator: gen });
  }
  forward(x: T.Tensor): T.Tensor {
    const h = x.add(this.attn.forward(this.ln1.forward(x)));
    return h.add(this.mlp.forward(this.ln2.forward(h)));
  }
}

class TinyTransformer extends nn.Module {
  embed: T.nn.Embedding;
  pos: T.nn.Parameter;
  blocks: T.nn.ModuleList<PreLNBlock>;
  norm: T.nn.LayerNorm;
  head: T.nn.Linear;
  constructor(vocab: number, d: number, gen: T.Generator) {
    super();
    this.embed = new nn.Embedding(vocab, d, { generator: gen });
    // learned absolute positions (attention alone cannot tell repeated tokens apart)
    this.pos = new nn.Parameter(T.randn([16, d], { generator: gen, std: 0.5 }));
    this.blocks = new nn.ModuleList([new PreLNBlock(d, 2, gen), new PreLNBlock(d, 2, gen)]);
    this.norm = new nn.LayerNorm(d);
    this.head = new nn.Linear(d, vocab, { generator: gen });
  }
  forward(tokens: T.Tensor): T.Tensor {
    let h = this.embed.forward(tokens).add(this.pos.narrow(0, 0, tokens.shape[1]!));
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.norm.forward(h));
  }
}

function train(model: T.nn.Module & { forward(x: T.Tensor): T.Tensor }, x: T.Tensor, y: T.Tensor, steps: number, lr: number): { first: number; last: number } {
  const opt = new T.optim.AdamW(model.parameters(), { lr, weightDecay: 0 });
  let first = NaN, last = NaN;
  for (let s = 0; s < steps; ++s) {
    last = T.scope(() => {
      opt.zeroGrad();
      const loss = T.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.item();
    });
    if (s === 0) first = last;
  }
  return { first, last };
}

const dir = mkdtempSync(join(tmpdir(), 'vlmoe-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('training end to end', () => {
  it('a 2-layer MLP overfits a fixed batch with AdamW', () => {
    const gen = new T.Generator(1);
    const model = new nn.Sequential(new nn.Linear(8, 64, { generator: gen }), new nn.GELU(), new nn.Linear(64, 5, { generator: gen }));
    const x = T.randn([32, 8], { generator: gen }).keep();
    const y = T.randint(0, 5, [32], { generator: gen }).keep();
    const { first, last } = train(model, x, y, 300, 1e-2);
    expect(last).toBeLessThan(first * 0.01);
  });

  it('a 2-block pre-LN transformer overfits a fixed batch with AdamW', () => {
    const gen = new T.Generator(2);
    const model = new TinyTransformer(11, 16, gen);
    const tokens = T.randint(0, 11, [4, 6], { generator: gen }).keep();
    const targets = T.randint(0, 11, [4, 6], { generator: gen }).keep();
    const { first, last } = train(model, tokens, targets, 200, 1e-2);
    expect(last).toBeLessThan(first * 0.01);
  });

  it('a state dict saved as safetensors reloads into a fresh model with bit-identical outputs', () => {
    const a = new TinyTransformer(11, 16, new T.Generator(3));
    const b = new TinyTransformer(11, 16, new T.Generator(4));
    const tokens = T.randint(0, 11, [2, 5], { generator: new T.Generator(5) });
    a.eval();
    b.eval();
    const file = join(dir, 'model.safetensors');
    T.saveFile(file, a.stateDict(), { metadata: { format: 'pt' } });
    const loaded = T.loadFile(file);
    expect(loaded.metadata.format).toBe('pt');
    expect(Object.keys(loaded.tensors).sort()).toEqual(Object.keys(a.stateDict()).sort());
    b.loadStateDict(loaded.tensors);
    const ya = a.forward(tokens).dataSync() as Float32Array;
    const yb = b.forward(tokens).dataSync() as Float32Array;
    expect(Buffer.from(yb.buffer).equals(Buffer.from(ya.buffer))).toBe(true);
  });
});
