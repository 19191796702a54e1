import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { flat } from './helpers/ref_nn.js';

const live = () => T.memory().cpu.live;

describe('poisoned fresh memory (VLMOE_POISON=1, set for the kernel suites)', () => {
  it('empty() gives NaN floats and -1 integers, so a kernel that skips an output element fails its test', () => {
    expect(process.env.VLMOE_POISON).toBe('1');
    for (const n of [3, 100_000]) {
      expect(Array.from(T.empty([n]).dataSync() as Float32Array).every((v) => Number.isNaN(v))).toBe(true);
      expect(Array.from(T.empty([n], { dtype: 'int32' }).dataSync() as Int32Array).every((v) => v === -1)).toBe(true);
    }
  });
});

describe('memory()', () => {
  it('counts live bytes per allocation and frees on dispose()', () => {
    const before = live();
    const a = T.zeros([10, 10]); // 400 bytes
    const b = T.zeros([5], { dtype: 'float64' }); // 40 bytes
    const c = T.zeros([3], { dtype: 'int64' }); // 24 bytes
    expect(live() - before).toBe(400 + 40 + 24);
    a.dispose();
    expect(live() - before).toBe(40 + 24);
    b.dispose();
    c.dispose();
    expect(live()).toBe(before);
    const m = T.memory();
    expect(m.cpu.peak).toBeGreaterThanOrEqual(m.cpu.live);
    expect(m.cpu.allocs).toBeGreaterThan(0);
  });
  it('views share storage: it is freed when the last view is disposed', () => {
    const before = live();
    const a = T.zeros([4, 4]);
    const v1 = a.t();
    const v2 = T.scope(() => a.reshape(16).narrow(0, 2, 3)); // the intermediate view is freed
    expect(live() - before).toBe(64);
    a.dispose();
    v1.dispose();
    expect(live() - before).toBe(64);
    expect(flat(v2)).toEqual([0, 0, 0]); // still readable
    v2.dispose();
    expect(live()).toBe(before);
  });
  it('dispose() also frees the tensor\'s .grad', () => {
    const before = live();
    const w = T.ones([8], { requiresGrad: true });
    T.scope(() => w.mul(w).sum().backward());
    expect(live() - before).toBe(64);
    w.dispose();
    expect(live()).toBe(before);
  });
  it('a disposed tensor gives a clear error; its data() view is detached', () => {
    const a = T.ones([3]);
    const view = a.data();
    expect(view.length).toBe(3);
    a.dispose();
    expect(view.length).toBe(0);
    expect(() => a.data()).toThrow(/data: tensor of shape \[3\] was disposed/);
    expect(() => a.mul(2)).toThrow(/was disposed/);
    expect(() => a.backward()).toThrow(/backward: .*disposed/);
  });
});

describe('zerosFileBacked(): tensors in scratch files', () => {
  it('are zeros, read and write like any tensor, count in memory().cpu.file (not live), leave no file and free on dispose; a bad directory is named', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-file-test-'));
    try {
      const before = T.memory().cpu;
      const t = T.zerosFileBacked([3, 1000], dir, { dtype: 'float64' }).keep();
      expect([t.shape, t.dtype, t.device]).toEqual([[3, 1000], 'float64', 'cpu']);
      expect(T.memory().cpu.file - before.file).toBe(3 * 1000 * 8);
      expect(T.memory().cpu.live).toBe(before.live);
      expect(fs.readdirSync(dir), 'unlinked as soon as mapped').toEqual([]);
      expect(Array.from(t.dataSync()).every((v) => v === 0)).toBe(true);
      const src = T.randn([3, 1000], { dtype: 'float64' }).keep();
      T.scope(() => {
        T.mul_(T.copy_(t, src), 2);
        expect(T.sub(t, T.mul(src, 2)).abs().max().item()).toBe(0);
      });
      src.dispose();
      t.dispose();
      expect(T.memory().cpu.file).toBe(before.file);
      expect(() => T.zerosFileBacked([4], path.join(dir, 'missing'))).toThrow(/cannot create a scratch file in '.*missing': No such file or directory/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});


describe('optimizer.initState(): state made up front, by a given allocator', () => {
  const run = (make: (ps: T.Tensor[]) => T.optim.Optimizer, init: boolean) => {
    const g = new T.Generator(3);
    const w = new T.nn.Parameter(T.randn([5, 4], { generator: g, dtype: 'float64' }));
    const opt = make([w]);
    let made = 0;
    if (init) opt.initState(w, (like) => (made++, T.zerosLike(like)));
    for (let s = 0; s < 3; s++) {
      T.scope(() => T.sum(T.mul(w, T.randn([5, 4], { generator: g, dtype: 'float64' }))).backward());
      opt.step();
      opt.zeroGrad();
    }
    const out = Array.from(w.dataSync());
    w.dispose();
    return { out, made };
  };
  it('Adam(W) and SGD with momentum step exactly as with lazily made state; SGD with dampening refuses', () => {
    for (const make of [(ps: T.Tensor[]) => new T.optim.AdamW(ps, { lr: 0.1, weightDecay: 0.1 }), (ps: T.Tensor[]) => new T.optim.SGD(ps, { lr: 0.1, momentum: 0.9 }), (ps: T.Tensor[]) => new T.optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true })]) {
      const lazy = run(make, false), early = run(make, true);
      expect(early.out).toEqual(lazy.out);
      expect(early.made).toBeGreaterThan(0);
    }
    expect(run((ps) => new T.optim.AdamW(ps, { lr: 0.1 }), true).made).toBe(2);
    expect(() => run((ps) => new T.optim.SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1 }), true)).toThrow(/needs dampening 0/);
    const stray = T.zeros([2]);
    expect(() => new T.optim.AdamW([new T.nn.Parameter(T.zeros([2]))], { lr: 0.1 }).initState(stray, T.zerosLike)).toThrow(/AdamW\.initState: the tensor is not one of the optimizer's parameters/);
  });
});

describe('emptyCache()', () => {
  it('a freed large block is cached for reuse, and emptyCache gives it back', () => {
    T.emptyCache();
    expect(T.memory().cpu.cached).toBe(0);
    const live0 = T.memory().cpu.live;
    const t = T.zeros([1 << 20]); // 4 MiB: above the cache's minimum block
    t.dispose();
    expect(T.memory().cpu.live).toBe(live0);
    expect(T.memory().cpu.cached).toBeGreaterThanOrEqual(4 << 20);
    T.emptyCache();
    expect(T.memory().cpu.cached).toBe(0);
    // what was live stays valid
    const u = T.ones([1 << 20]);
    T.emptyCache();
    expect(u.sum().item()).toBe(1 << 20);
    u.dispose();
  });
});

describe('scope() / tidy()', () => {
  it('frees intermediates but not the returned tensor', () => {
    const before = live();
    const r = T.scope(() => {
      const a = T.ones([100]);
      const b = a.add(1).mul(3).exp();
      return b.sum();
    });
    expect(live() - before).toBe(4); // one float32 scalar
    expect(r.item()).toBeCloseTo(100 * Math.exp(6), 0);
    r.dispose();
    expect(live()).toBe(before);
    expect(T.scopeDepth()).toBe(0);
  });
  it('tidy is scope; results in arrays, objects and Maps survive; keep() survives', () => {
    expect(T.tidy).toBe(T.scope);
    const before = live();
    let kept: T.Tensor | undefined;
    const out = T.tidy(() => {
      const a = T.ones([10]);
      kept = T.keep(a.mul(2));
      const m = new Map([['m', a.add(3)]]);
      T.ones([1000]); // garbage
      return { list: [a.add(1), a.add(2)], nested: { m }, n: 5 };
    });
    expect(live() - before).toBe(4 * 40);
    expect(flat(out.list[0]!)).toEqual(new Array(10).fill(2));
    expect(flat(out.nested.m.get('m')!)).toEqual(new Array(10).fill(4));
    expect(flat(kept!)).toEqual(new Array(10).fill(2));
    for (const t of [...out.list, out.nested.m.get('m')!, kept!]) t.dispose();
    expect(live()).toBe(before);
  });
  it('nested scopes: survivors move to the enclosing scope, which frees them unless returned', () => {
    const before = live();
    const r = T.scope(() => {
      const inner = T.scope(() => T.ones([10]).mul(2));
      expect(inner.disposed).toBe(false);
      const other = T.scope(() => T.ones([10]).mul(3));
      expect(T.scopeDepth()).toBe(1);
      void other; // not returned by the outer scope: freed when it closes
      return inner.add(1);
    });
    expect(live() - before).toBe(40);
    expect(flat(r)).toEqual(new Array(10).fill(3));
    r.dispose();
    expect(live()).toBe(before);
  });
  it('returned tensors keep what their autograd graphs need; closing an outer scope frees it', () => {
    const before = live();
    const x = T.tensor([0.5, 1, 2], { dtype: 'float64', requiresGrad: true });
    T.scope(() => {
      const y = T.scope(() => {
        const h = x.exp(); // saved by mul's backward
        T.zeros([100]); // garbage
        return h.mul(h).sum();
      });
      y.backward(); // the saved intermediates are still alive
    });
    const want = [0.5, 1, 2].map((v) => 2 * Math.exp(2 * v));
    flat(x.grad!).forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 10));
    // only x and its kept grad remain
    expect(live() - before).toBe(24 + 24);
    x.dispose();
    expect(live()).toBe(before);
  });
  it('frees intermediates when fn throws, and async scopes close when the promise settles', async () => {
    const before = live();
    expect(() => T.scope(() => {
      T.ones([50]);
      throw new Error('inside');
    })).toThrow('inside');
    expect(live()).toBe(before);
    expect(T.scopeDepth()).toBe(0);
    const r = await T.scope(async () => {
      const a = T.ones([10]);
      await new Promise((res) => setTimeout(res, 1));
      T.ones([100]);
      return a.mul(2);
    });
    expect(live() - before).toBe(40);
    r.dispose();
    await expect(T.scope(async () => {
      T.ones([10]);
      throw new Error('async');
    })).rejects.toThrow('async');
    expect(live()).toBe(before);
  });
  it('does not dispose tensors created outside it, nor their grads', () => {
    const w = T.ones([4], { requiresGrad: true });
    T.scope(() => {
      w.mul(2).sum().backward();
      return null;
    });
    expect(w.disposed).toBe(false);
    expect(flat(w.grad!)).toEqual([2, 2, 2, 2]);
    T.scope(() => w.mul(2).sum().backward());
    expect(flat(w.grad!)).toEqual([4, 4, 4, 4]);
    w.dispose();
  });
  it('ops used in a scope do not leak: softmax/layerNorm/attention/losses forward+backward', () => {
    const before = live();
    const p = [T.randn([4, 8], { requiresGrad: true }), T.ones([8], { requiresGrad: true }), T.zeros([8], { requiresGrad: true })];
    const step = () => T.scope(() => {
      const [x, w, b] = p as [T.Tensor, T.Tensor, T.Tensor];
      const h = T.layerNorm(x, 8, w, b);
      const a = T.scaledDotProductAttention(h.reshape(1, 4, 8), h.reshape(1, 4, 8), h.reshape(1, 4, 8), { isCausal: true, dropoutP: 0.1, generator: new T.Generator(1) });
      const l = T.crossEntropy(a.reshape(4, 8), T.tensor([1, 2, 3, -100], { dtype: 'int64' }), { labelSmoothing: 0.1 })
        .add(T.binaryCrossEntropyWithLogits(h, T.rand([4, 8]), { posWeight: T.ones([8]) }))
        .add(T.cosineSimilarity(h, T.normalize(a.reshape(4, 8))).sum())
        .add(T.logSoftmax(T.cat([h, a.reshape(4, 8)], 1), 0, { mask: T.ones([8 * 2], { dtype: 'bool' }) }).mean())
        .add(T.embedding(T.tensor([0, 3], { dtype: 'int64' }), x).sum())
        .add(T.gather(x, 1, T.tensor([[0], [1], [2], [3]], { dtype: 'int64' })).sum());
      l.backward();
    });
    step();
    const after1 = live();
    for (let i = 0; i < 50; ++i) step();
    expect(live()).toBe(after1);
    for (const t of p) t.dispose();
    expect(live()).toBe(before);
  });
});

describe('backward frees as it goes', () => {
  it('what a backward rule makes besides its gradients is freed when the rule returns, not when the step scope closes', () => {
    // 16 scaled softmaxes, each with a transposed input: every backward rule makes a
    // contiguous copy of its incoming gradient, its dx and (scale != 1) a scaled copy; only
    // the returned gradient may outlive the rule, and only until its consumer has run.
    const n = 256 * 256 * 4;
    const x = T.randn([256, 256], { requiresGrad: true });
    T.scope(() => {
      let y: T.Tensor = x;
      for (let i = 0; i < 16; ++i) y = T.softmax(y.t(), -1, { scale: 1.5 });
      const loss = y.mul(y).sum();
      const atForward = live();
      const peak0 = T.memory().cpu.peak;
      loss.backward();
      // x.grad is all that backward leaves behind; at any time it held a few gradients at most
      expect(live() - atForward).toBe(n);
      expect(T.memory().cpu.peak - Math.max(peak0, atForward)).toBeLessThanOrEqual(6 * n);
    });
    x.dispose();
  });
});

describe('helpers free what they allocate', () => {
  it('gradcheck leaves live bytes unchanged and does not touch the inputs\' grads', () => {
    const x = T.randn([3, 4], { dtype: 'float64', requiresGrad: true });
    const w = T.randn([5, 4], { dtype: 'float64', requiresGrad: true });
    const before = live();
    expect(T.gradcheck((a, b) => T.linear(a!, b!).softmax(-1), [x, w]).ok).toBe(true);
    expect(live()).toBe(before);
    expect(x.grad).toBeNull();
    expect(w.grad).toBeNull();
    x.dispose();
    w.dispose();
  });
});

describe('training loop memory', () => {
  it('10,000 steps of forward + backward + SGD update in scope end with the live bytes of step 1', () => {
    const g = new T.Generator(2024);
    const before = live();
    const inF = 6, hid = 12, classes = 3, batch = 8;
    const w1 = T.randn([hid, inF], { generator: g, std: 0.5 }).requiresGrad_();
    const b1 = T.zeros([hid]).requiresGrad_();
    const w2 = T.randn([classes, hid], { generator: g, std: 0.5 }).requiresGrad_();
    const b2 = T.zeros([classes]).requiresGrad_();
    const params = [w1, b1, w2, b2];
    const x = T.randn([batch, inF], { generator: g });
    const y = T.tensor([0, 1, 2, 0, 1, 2, 0, 1], { dtype: 'int64' });
    const lr = 0.05;
    const step = (): number => T.scope(() => {
      for (const p of params) p.zeroGrad();
      const h = T.gelu(T.linear(x, w1, b1));
      const loss = T.crossEntropy(T.linear(h, w2, b2), y);
      loss.backward();
      T.noGrad(() => {
        for (const p of params) p.sub_(p.grad!.mul(lr));
      });
      return loss.item();
    });
    const first = step();
    const afterStep1 = live();
    let last = first;
    for (let i = 1; i < 10_000; ++i) {
      last = step();
      if (i % 2500 === 0) expect(live()).toBe(afterStep1);
    }
    expect(live()).toBe(afterStep1);
    expect(T.scopeDepth()).toBe(0);
    expect(last).toBeLessThan(first * 0.5); // it trained
    for (const t of [...params, x, y]) t.dispose();
    expect(live()).toBe(before);
  });
});

describe('garbage collection of forgotten tensors (external memory reported to V8)', () => {
  it('a scoped working set triggers no collections; forgotten tensors still get collected', () => {
    const child = fileURLToPath(new URL('./fixtures/gc_child.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [child], { encoding: 'utf8', env: { ...process.env, VLMOE_POISON: '0' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { warmPeakMiB: number; leakPeakLiveMiB: number; majorsSteady: number; majorsLeak: number };
    expect(out.warmPeakMiB).toBe(512);
    // 8 steps of 512 MiB allocated and freed in a scope: nothing for the collector to find
    // (reporting every allocation ran a mark-compact per ~64 MiB of churn)
    expect(out.majorsSteady).toBeLessThanOrEqual(2);
    // 16 GiB of forgotten 4 MiB tensors: collections keep the live bytes to a fraction of it
    expect(out.majorsLeak).toBeGreaterThan(0);
    expect(out.leakPeakLiveMiB).toBeLessThan(2048);
  });
});

describe('Storage.releaseData / restoreData (what ZeRO-3 does to a partitioned parameter) and resetPeakMemory', () => {
  it('frees the bytes while the tensor lives; any use throws the given reason; restore allocates again; dispose after release frees nothing twice', () => {
    const w = T.keep(T.randn([256, 256]));
    const bytes = 256 * 256 * 4;
    const before = live();
    w.storage.releaseData("'w' is partitioned");
    expect(w.storage.dataReleased).toBe(true);
    expect(live()).toBe(before - bytes);
    expect(() => T.scope(() => T.add(w, 1))).toThrow("'w' is partitioned"); // (the scope frees the output add made before it read w)
    expect(() => w.dataSync()).toThrow("'w' is partitioned");
    w.storage.releaseData('again'); // idempotent
    w.storage.restoreData();
    expect(live()).toBe(before);
    T.noGrad(() => T.fill_(w, 2));
    expect(T.scope(() => T.sum(w).item())).toBe(2 * 256 * 256);
    w.storage.releaseData('released before dispose');
    w.dispose();
    expect(live()).toBe(before - bytes);
  });

  it('resetPeakMemory starts the peak at the live bytes; the peak then follows the next allocations', () => {
    T.scope(() => T.zeros([1 << 20]));
    T.resetPeakMemory();
    const m = T.memory().cpu;
    expect(m.peak).toBe(m.live);
    const t = T.zeros([1 << 18]);
    expect(T.memory().cpu.peak).toBe(m.live + (1 << 20));
    t.dispose();
  });
});

describe('autograd node pre-hooks', () => {
  it('run just before their node backward, also when no gradient reaches it', () => {
    const order: string[] = [];
    const x = T.randn([3], { requiresGrad: true });
    const a = T.customOp('a', [x], () => T.mul(x, 2), (g) => (order.push('a backward'), [T.mul(g, 2)]));
    const b = T.customOp('b', [a], () => T.mul(a, 3), (g) => (order.push('b backward'), [T.mul(g, 3)]));
    a.gradFn!.addPreHook(() => order.push('a pre-hook'));
    b.gradFn!.addPreHook(() => order.push('b pre-hook'));
    T.sum(b).backward();
    expect(order).toEqual(['b pre-hook', 'b backward', 'a pre-hook', 'a backward']);
    expect(Array.from(x.grad!.dataSync())).toEqual([6, 6, 6]);
    // a node whose backward returns no gradient for its input: the input's node still runs its pre-hook
    const seen: string[] = [];
    const y = T.randn([2], { requiresGrad: true });
    const c = T.customOp('c', [y], () => T.mul(y, 1), () => [null]);
    c.gradFn!.addPreHook(() => seen.push('c'));
    const d = T.customOp('d', [c], () => T.mul(c, 1), () => [null]);
    T.sum(d).backward();
    expect(seen).toEqual(['c']);
  });

  it('setNodeCreationHook sees every node recorded while it is set, and hands back the one it replaced', () => {
    const names: string[] = [];
    const x = T.randn([2], { requiresGrad: true });
    const prev = T.setNodeCreationHook((n) => names.push(n.name));
    try {
      T.scope(() => T.sum(T.exp(T.mul(x, 2))));
      T.noGrad(() => T.scope(() => T.exp(x))); // nothing recorded under noGrad
    } finally {
      expect(T.setNodeCreationHook(prev)).not.toBeNull();
    }
    expect(names.length).toBe(3);
    T.scope(() => T.exp(x));
    expect(names.length).toBe(3);
  });
});
