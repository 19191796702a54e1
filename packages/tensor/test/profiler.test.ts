/**
 * The profiler's accounting (no timing is asserted, only how time is booked): self times add
 * up to the wall time, a range's self time is its total minus what ran inside it, backward
 * rules are booked to the range their forward ran in, and nothing is booked or remembered
 * outside `profile()`.
 */
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';

/** Busy work that takes measurable time (a few small matmuls). */
function work(n = 4): T.Tensor {
  return T.scope(() => {
    let x = T.randn([64, 64], { generator: new T.Generator(n) });
    for (let i = 0; i < n; i++) x = T.tanh(T.matmul(x, x));
    return x.keep();
  });
}

const row = (rows: T.ProfileRow[], name: string) => rows.find((r) => r.name === name);

describe('profile', () => {
  it('outside a profile, recordFunction only runs fn and nodes remember no range', () => {
    expect(T.isProfiling()).toBe(false);
    expect(T.recordFunction('x', () => 42)).toBe(42);
    expect(T.currentRange()).toBeNull();
    const a = T.randn([3]).requiresGrad_(true);
    const y = T.recordFunction('lin', () => T.mul(a, 2));
    expect(y.gradFn!.range).toBeNull();
  });

  it('nested ranges: calls counted, self = total − inner, self times add up to the wall time', () => {
    const p = T.profile(() => {
      work();
      for (let i = 0; i < 3; i++) {
        T.recordFunction('outer', () => {
          work();
          T.recordFunction('inner', () => work(8)).dispose();
          T.recordFunction('inner', () => work(2)).dispose();
          return 0;
        });
      }
      return 'done';
    });
    expect(p.result).toBe('done');
    const outer = row(p.rows, 'outer')!, inner = row(p.rows, 'inner')!, unmarked = row(p.rows, '(unmarked)')!;
    expect(outer.calls).toBe(3);
    expect(inner.calls).toBe(6);
    expect(inner.selfMs).toBeCloseTo(inner.totalMs, 9);
    expect(outer.selfMs).toBeCloseTo(outer.totalMs - inner.totalMs, 9);
    expect(unmarked.totalMs).toBe(p.totalMs);
    expect(unmarked.selfMs).toBeCloseTo(p.totalMs - outer.totalMs, 9);
    expect(p.rows.reduce((s, r) => s + r.selfMs, 0)).toBeCloseTo(p.totalMs, 6);
    for (const r of p.rows) expect(r.selfMs).toBeGreaterThanOrEqual(0);
    // sorted by self time
    for (let i = 1; i < p.rows.length; i++) expect(p.rows[i - 1]!.selfMs).toBeGreaterThanOrEqual(p.rows[i]!.selfMs);
    expect(T.isProfiling()).toBe(false);
  });

  it('a backward rule is booked to the range of its forward, the optimizer step to "optimizer"', () => {
    const w = new T.nn.Parameter(T.randn([16, 16], { generator: new T.Generator(1) }));
    const opt = new T.optim.SGD([w], { lr: 0.1 });
    const nodes: Record<string, number> = {};
    const p = T.profile(() => T.scope(() => {
      const x = T.randn([8, 16], { generator: new T.Generator(2) });
      const h = T.recordFunction('lin', () => T.tanh(T.matmul(x, w)));
      expect(h.gradFn!.range).toBe('lin');
      const loss = T.recordFunction('loss', () => T.sum(T.mul(h, h)));
      // the graph's nodes per range, counted before backward releases them
      const seen = new Set<T.Node>();
      const walk = (t: T.Tensor | null) => {
        if (!t?.gradFn || seen.has(t.gradFn)) return;
        seen.add(t.gradFn);
        t.gradFn.inputs.forEach(walk);
      };
      walk(loss);
      for (const r of ['lin', 'loss']) nodes[r] = [...seen].filter((n) => n.range === r).length;
      T.recordFunction('backward', () => loss.backward());
      opt.step();
    }));
    expect(nodes.lin).toBeGreaterThanOrEqual(2); // matmul, tanh (and any view between)
    expect(nodes.loss).toBeGreaterThanOrEqual(2);
    expect(row(p.rows, 'lin (backward)')!.calls).toBe(nodes.lin);
    expect(row(p.rows, 'loss (backward)')!.calls).toBe(nodes.loss);
    expect(row(p.rows, 'optimizer')!.calls).toBe(1);
    // the backward range's self time excludes the rules booked inside it
    const bw = row(p.rows, 'backward')!;
    expect(bw.selfMs).toBeCloseTo(bw.totalMs - row(p.rows, 'lin (backward)')!.totalMs - row(p.rows, 'loss (backward)')!.totalMs, 9);
    expect(p.rows.reduce((s, r) => s + r.selfMs, 0)).toBeCloseTo(p.totalMs, 6);
    expect(w.grad).not.toBeNull();
  });

  it('profiles do not nest; a throwing fn leaves profiling off', () => {
    expect(() => T.profile(() => T.profile(() => 1))).toThrow(/already running/);
    expect(T.isProfiling()).toBe(false);
    expect(() => T.profile(() => T.recordFunction('r', () => { throw new Error('boom'); }))).toThrow('boom');
    expect(T.isProfiling()).toBe(false);
    expect(T.currentRange()).toBeNull();
  });

  it('profileByFamily merges rows and keeps the total', () => {
    const rows: T.ProfileRow[] = [
      { name: 'moe.routing', calls: 2, selfMs: 3, totalMs: 3 },
      { name: 'moe.routing (backward)', calls: 4, selfMs: 1, totalMs: 1 },
      { name: 'attention', calls: 1, selfMs: 5, totalMs: 6 },
    ];
    const fam = T.profileByFamily(rows, (n) => (n.startsWith('moe.routing') ? 'routing' : null));
    expect(fam).toEqual([
      { name: 'attention', calls: 1, selfMs: 5, totalMs: 6 },
      { name: 'routing', calls: 6, selfMs: 4, totalMs: 4 },
    ]);
  });
});
