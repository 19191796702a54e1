import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

const nn = T.nn;

/** A small model using every layer's initialiser: Linear, LayerNorm, Embedding, PatchEmbedding, attention (q/v biases), LayerScale, a truncated normal. */
function build(seed: number) {
  const g = new T.Generator(seed);
  const m = {
    lin: new nn.Linear(24, 40, { generator: g }),
    norm: new nn.LayerNorm(40),
    emb: new nn.Embedding(50, 16, { generator: g }),
    patch: new nn.PatchEmbedding(3, 16, 4, { generator: g }),
    attn: new nn.MultiheadSelfAttention(16, 2, { generator: g }),
    scale: new nn.LayerScale(16, 0.1),
    pos: nn.parameterFrom(nn.init.truncNormal_(T.empty([30, 16]), { std: 0.5, a: -0.5, b: 0.5, generator: g })),
    experts: nn.parameterFrom(T.uniform([4, 16, 8], -0.3, 0.3, { generator: g })),
    noise: nn.parameterFrom(T.randn([7, 9], { std: 2, generator: g })),
    ids: nn.parameterFrom(T.randint(0, 1000, [33], { generator: g }), { requiresGrad: false }),
  };
  const params: T.Tensor[] = [];
  for (const v of Object.values(m)) {
    if (v instanceof T.Tensor) params.push(v);
    else params.push(...(v as T.nn.Module).parameters());
  }
  return { params, offset: g.offset };
}

const dtypeBytes = (t: T.Tensor) => (t.dtype === 'int64' || t.dtype === 'float64' ? 8 : 4);
const bits = (t: T.Tensor) => Array.from(t.contiguous().dataSync() as ArrayLike<number | bigint>, (v) => String(v));

describe('nn.deferredInit(): parameters recorded, made only when needed', () => {
  it('a build inside holds no memory, advances the generator as an ordinary build, and its values equal the ordinary build bit for bit', () => {
    const plain = build(11);
    const before = T.memory().cpu.live;
    T.resetPeakMemory();
    const lazy = nn.deferredInit(() => build(11));
    expect(T.memory().cpu.peak - before, 'nothing was allocated while building').toBe(0);
    expect(lazy.offset).toBe(plain.offset);
    expect(lazy.params.length).toBe(plain.params.length);
    lazy.params.forEach((p) => expect(nn.isDeferred(p)).toBe(true));
    lazy.params.forEach((p, i) => expect(bits(p), `parameter ${i}`).toEqual(bits(plain.params[i]!)));
    lazy.params.forEach((p) => expect(nn.isDeferred(p)).toBe(false));
    for (const p of [...plain.params, ...lazy.params]) p.dispose();
  });

  it('materializeRange makes any block of a parameter alone, equal to that block of the whole (truncated normal with many redraws included)', () => {
    const plain = build(3);
    const lazy = nn.deferredInit(() => build(3));
    let rng = 12345;
    const next = (n: number) => ((rng = (rng * 1103515245 + 12345) % 2 ** 31), rng % n);
    lazy.params.forEach((p, i) => {
      for (let k = 0; k < 4; k++) {
        // blocks of up to 1/8 of the parameter (a rank's ZeRO-3 block on 8 ranks), one reaching its end
        const len = 1 + next(Math.max(1, Math.floor(p.numel / 8))), begin = k === 0 ? p.numel - len : next(p.numel - len + 1);
        const dst = T.empty([len], { dtype: p.dtype });
        const live = T.memory().cpu.live;
        T.resetPeakMemory();
        nn.materializeRange(dst, p, begin);
        // the block's own temporaries at most (a truncated normal's redraws), never the parameter
        if (p.numel > 64) expect(T.memory().cpu.peak - live).toBeLessThan(p.numel * dtypeBytes(p));
        expect(bits(dst), `parameter ${i} [${begin}, ${begin + len})`).toEqual(bits(plain.params[i]!.reshape(-1).narrow(0, begin, len)));
        dst.dispose();
      }
      expect(nn.isDeferred(p), 'making blocks leaves the parameter unmade').toBe(true);
    });
    expect(() => nn.materializeRange(T.empty([5]), lazy.params[0]!, lazy.params[0]!.numel - 4)).toThrow(/elements \[\d+, \d+\) are not in a tensor of/);
    for (const p of [...plain.params, ...lazy.params]) p.dispose();
  });

  it('truncNormal_: every value in [a, b], each element its own draws (the generator advances by numel), statistics of the truncated normal', () => {
    const n = 200_000, a = -1, b = 1.5;
    const g = new T.Generator(9);
    const t = nn.init.truncNormal_(T.empty([n], { dtype: 'float64' }), { mean: 0, std: 1, a, b, generator: g });
    expect(g.offset).toBe(n);
    const x = t.dataSync() as Float64Array;
    let lo = Infinity, hi = -Infinity, s = 0;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      s += v;
    }
    expect(lo).toBeGreaterThanOrEqual(a);
    expect(hi).toBeLessThanOrEqual(b);
    // mean of N(0, 1) truncated to [a, b]: (φ(a) − φ(b)) / (Φ(b) − Φ(a)) with Φ(-1) = 0.158655254, Φ(1.5) = 0.933192799
    const phi = (z: number) => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
    const mean = (phi(a) - phi(b)) / (0.933192799 - 0.158655254);
    expect(Math.abs(s / n - mean)).toBeLessThan(5 * 0.7 / Math.sqrt(n));
    // the first draw of an element equals randn at the same counter when it is inside [a, b]
    const first = T.randn([n], { dtype: 'float64', generator: new T.Generator(9) }).dataSync() as Float64Array;
    let same = 0, inside = 0;
    for (let i = 0; i < n; i++) if (first[i]! >= a && first[i]! <= b) (inside++, (same += first[i] === x[i] ? 1 : 0));
    expect(same).toBe(inside);
    expect(inside).toBeLessThan(n); // redraws happened
  });

  it('clone of a contiguous block stays deferred (expert parallelism keeping its experts); a partial write or any kernel makes the whole tensor', () => {
    const eager = T.uniform([6, 5], -1, 1, { generator: new T.Generator(4) });
    const lazy = nn.deferredInit(() => T.uniform([6, 5], -1, 1, { generator: new T.Generator(4) }));
    const before = T.memory().cpu.live;
    const rows = T.noGrad(() => T.clone(lazy.narrow(0, 2, 3)));
    expect(nn.isDeferred(rows)).toBe(true);
    expect(T.memory().cpu.live).toBe(before);
    expect(bits(rows)).toEqual(bits(eager.narrow(0, 2, 3)));
    // a column block is not contiguous: cloning it makes the whole tensor
    const cols = T.clone(lazy.narrow(1, 1, 2));
    expect(nn.isDeferred(lazy)).toBe(false);
    expect(bits(cols)).toEqual(bits(eager.narrow(1, 1, 2)));
    // a partial in-place write (an embedding's padding row) makes the whole, then writes
    const emb = nn.deferredInit(() => new nn.Embedding(10, 4, { paddingIdx: 3, generator: new T.Generator(8) }));
    const ref = new nn.Embedding(10, 4, { paddingIdx: 3, generator: new T.Generator(8) });
    expect(bits(emb.weight)).toEqual(bits(ref.weight));
    for (const t of [eager, lazy, rows, cols, emb.weight, ref.weight]) t.dispose();
  });

  it('fileDir: parameters made whole go to scratch files there (unlinked), ordinary tensors made into parameters inside too; other tensors use RAM', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-deferred-test-'));
    try {
      const plain = new nn.Linear(16, 8, { generator: new T.Generator(5) });
      const before = T.memory().cpu;
      const { lin, eager, buffer } = nn.deferredInit(() => ({
        lin: new nn.Linear(16, 8, { generator: new T.Generator(5) }),
        eager: nn.parameterFrom(T.tensor([1, 2, 3])),
        buffer: T.zeros([64]),
      }), { fileDir: dir });
      // the ordinary tensor went to a file at once; the rest holds nothing yet
      expect(T.memory().cpu.file - before.file).toBe(12);
      expect(bits(lin.weight)).toEqual(bits(plain.weight));
      expect(bits(lin.bias!)).toEqual(bits(plain.bias!));
      expect(T.memory().cpu.file - before.file).toBe(12 + (16 * 8 + 8) * 4);
      T.add_(buffer, 1);
      expect(T.memory().cpu.file - before.file, 'a non-parameter is made in RAM').toBe(12 + (16 * 8 + 8) * 4);
      expect(fs.readdirSync(dir)).toEqual([]);
      for (const p of [...plain.parameters(), ...lin.parameters(), eager, buffer]) p.dispose();
      expect(T.memory().cpu.file).toBe(before.file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a deferred storage released before it is made frees nothing and says why when used', () => {
    const p = nn.deferredInit(() => nn.parameterFrom(T.randn([100])));
    const live = T.memory().cpu.live;
    p.storage.releaseData('partitioned elsewhere');
    expect(T.memory().cpu.live).toBe(live);
    expect(() => p.dataSync()).toThrow(/partitioned elsewhere/);
    p.storage.restoreData();
    expect(p.dataSync().length).toBe(100);
    p.dispose();
  });

  it('deferredFingerprint: equal for the same block of the same recipe, different otherwise; null for an ordinary tensor', () => {
    const [a, b, c] = nn.deferredInit(() => [T.randn([8], { generator: new T.Generator(1) }), T.randn([8], { generator: new T.Generator(1) }), T.randn([8], { generator: new T.Generator(2) })]);
    expect(nn.deferredFingerprint(a!)).toEqual(nn.deferredFingerprint(b!));
    expect(nn.deferredFingerprint(a!)).not.toEqual(nn.deferredFingerprint(c!));
    expect(nn.deferredFingerprint(a!.narrow(0, 2, 3))).not.toEqual(nn.deferredFingerprint(a!));
    expect(nn.deferredFingerprint(T.randn([8]))).toBeNull();
  });
});
