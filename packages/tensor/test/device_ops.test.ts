/**
 * Reductions, cumsum, softmax and layer norm on every device (helpers/devices.ts), forward
 * and backward, against the same computation on the CPU in float64; fresh outputs are
 * poisoned (VLMOE_POISON), so an element a kernel skips fails the comparison.
 */
import { expect, it } from 'vitest';
import * as T from '../src/index.js';
import { describeDevices, tol, type TestDevice } from './helpers/devices.js';
import { Rng, expectClose, flat } from './helpers/ref_nn.js';

const rng = new Rng(7);
type DT = 'float32' | 'float64';
interface In { vals: number[]; shape: number[]; dtype?: 'bool' | 'int64' }

const input = (shape: number[], lo = -2, hi = 2): In => ({ vals: rng.uniforms(shape.reduce((a, b) => a * b, 1), lo, hi), shape });

/**
 * Runs f on the device in `dtype` and on the CPU in float64; compares every output and, with
 * `grad`, the gradients of Σ out·r (r random) with respect to the float inputs.
 */
function check(device: TestDevice, dtype: DT, what: string, inputs: In[], f: (xs: T.Tensor[]) => T.Tensor | T.Tensor[], grad = false): void {
  const run = (dev: string, dt: DT) => {
    const xs = inputs.map((x) => {
      const t = T.toDevice(T.tensor(x.vals.map((v) => (x.dtype === 'bool' ? v > 0 : v)) as number[], { dtype: x.dtype ?? dt, shape: x.shape }), dev);
      if (grad && !x.dtype) t.requiresGrad = true;
      return t;
    });
    const outs = [f(xs)].flat();
    let grads: number[][] = [];
    if (grad) {
      const w = T.toDevice(T.tensor(weights.slice(0, outs[0]!.numel), { dtype: dt, shape: outs[0]!.shape }), dev);
      T.sum(T.mul(outs[0]!, w)).backward();
      grads = xs.filter((x) => x.requiresGrad).map((x) => flat(x.grad!));
    }
    return { outs: outs.map((o) => flat(T.toDevice(o, 'cpu'))), grads };
  };
  const weights = rng.uniforms(1 << 16);
  const got = run(device, dtype), want = run('cpu', 'float64');
  const rel = tol(device, dtype) * 10;
  got.outs.forEach((o, i) => expectClose(o, want.outs[i]!, rel, rel, `${what} output ${i}`));
  got.grads.forEach((g, i) => expectClose(g, want.grads[i]!, rel * 10, rel * 10, `${what} grad ${i}`));
}

describeDevices('reductions, softmax, layer norm, indexing, dropout, top-k', (device) => {
  for (const dtype of ['float32', 'float64'] as DT[]) {
    it(`${dtype}: sum / mean over dims, keepdim, empty reductions, long rows (block path) and short (thread path)`, () => {
      const x = input([3, 70, 5]);
      for (const dims of [[], [0], [1], [2], [0, 2], [1, 2]]) {
        check(device, dtype, `sum ${JSON.stringify(dims)}`, [x], ([t]) => (dims.length ? T.sum(t!, dims) : T.sum(t!)), true);
        check(device, dtype, `mean ${JSON.stringify(dims)} keepdim`, [x], ([t]) => T.mean(t!, dims.length ? dims : [0, 1, 2], true), true);
      }
      check(device, dtype, 'sum over an empty dim', [{ vals: [], shape: [4, 0] }], ([t]) => T.sum(t!, 1));
      check(device, dtype, 'sum of a transposed view', [input([40, 90])], ([t]) => T.sum(t!.t(), 1), true);
      check(device, dtype, 'prod', [input([6, 9], 0.5, 1.5)], ([t]) => T.prod(t!, 1));
    });

    it(`${dtype}: max / min with indices (ties keep the first, NaN wins), argmax, cumsum`, () => {
      const vals = rng.uniforms(4 * 300).map((v) => Math.round(v * 4) / 4); // many ties
      vals[5] = NaN;
      const x: In = { vals, shape: [4, 300] };
      for (const dim of [0, 1]) {
        const run = (dev: string, dt: DT) => {
          const t = T.toDevice(T.tensor(vals, { dtype: dt, shape: [4, 300] }), dev);
          const mx = T.max(t, dim), mn = T.min(t, dim);
          return [flat(mx.values), flat(mx.indices), flat(mn.values), flat(mn.indices), flat(T.argmax(t, dim))];
        };
        const got = run(device, dtype), want = run('cpu', 'float64');
        got.forEach((g, i) => expect(g.map(String), `max/min dim ${dim} part ${i}`).toEqual(want[i]!.map(String)));
      }
      check(device, dtype, 'max over all', [x], ([t]) => T.max(t!));
      for (const dim of [0, 1]) check(device, dtype, `cumsum dim ${dim}`, [input([5, 130])], ([t]) => T.cumsum(t!, dim), true);
    });

    it(`${dtype}: softmax and log-softmax with scale, bool and additive masks, a fully masked row; backward`, () => {
      const [B, H, S] = [2, 3, 37];
      const scores = input([B, H, S, S], -4, 4);
      const keep: In = { vals: Array.from({ length: B * S }, (_, i) => (i % S < S - 5 || i < S ? 1 : -1)), shape: [B, 1, 1, S], dtype: 'bool' };
      keep.vals.fill(-1, S, 2 * S); // batch 1: every key masked
      const bias = input([1, 1, S, S], -1, 1);
      for (const log of [false, true]) {
        const sm = log ? T.logSoftmax : T.softmax;
        check(device, dtype, `${log ? 'log' : ''}softmax`, [scores], ([x]) => sm(x!, -1), true);
        check(device, dtype, `${log ? 'log' : ''}softmax scale 0.125 + bool mask`, [scores, keep], ([x, m]) => sm(x!, -1, { scale: 0.125, mask: m }), !log);
        check(device, dtype, `${log ? 'log' : ''}softmax + additive mask`, [scores, bias], ([x, m]) => sm(x!, -1, { mask: m }), true);
      }
      check(device, dtype, 'softmax over 1000 columns', [input([3, 1000], -10, 10)], ([x]) => T.softmax(x!, -1), true);
    });

    it(`${dtype}: embedding / index_select with repeated indices and its index_add backward; gather and scatter_add`, () => {
      const idx: number[] = [3, 0, 3, 7, 1, 1, 9, 3];
      const toIdx = (dev: string, vals: number[], shape: number[]) => T.toDevice(T.tensor(vals, { dtype: 'int64', shape }), dev);
      const run = (dev: string, dt: DT) => {
        const w = T.toDevice(T.tensor(wv, { dtype: dt, shape: [10, 6] }), dev);
        w.requiresGrad = true;
        const e = T.embedding(toIdx(dev, idx, [2, 4]), w);
        T.sum(T.mul(e, T.toDevice(T.tensor(gv, { dtype: dt, shape: [2, 4, 6] }), dev))).backward();
        const x = T.toDevice(T.tensor(xv, { dtype: dt, shape: [4, 5] }), dev);
        const gi = toIdx(dev, [0, 4, 4, 1, 2, 3, 0, 0], [4, 2]);
        const g = T.gather(x, 1, gi);
        const sa = T.scatterAdd(T.zeros([4, 5], { dtype: dt, device: dev }), 1, gi, T.toDevice(T.tensor(sv, { dtype: dt, shape: [4, 2] }), dev));
        return [flat(e), flat(w.grad!), flat(g), flat(sa), flat(T.indexSelect(x, 0, toIdx(dev, [2, 2, 0], [3])))];
      };
      const wv = rng.uniforms(60), gv = rng.uniforms(48), xv = rng.uniforms(20), sv = rng.uniforms(8);
      const got = run(device, dtype), want = run('cpu', 'float64');
      got.forEach((g, i) => expectClose(g, want[i]!, tol(device, dtype) * 10, tol(device, dtype) * 10, `indexing part ${i}`));
      // an index out of range is an error naming it (on cuda: at the next read back)
      expect(() => flat(T.embedding(toIdx(device, [1, 10], [2]), T.toDevice(T.zeros([10, 2], { dtype }), device)))).toThrow(/index_select.*index 10 .*out of range for a dimension of size 10/);
      expect(flat(T.embedding(toIdx(device, [9], [1]), T.toDevice(T.ones([10, 2], { dtype }), device)))).toEqual([1, 1]); // and the device works on
    });

    it(`${dtype}: dropout draws the CPU's mask for the same seed; top-k order (ties, NaN); randint`, () => {
      const xv = rng.uniforms(5000);
      const drop = (dev: string) => flat(T.dropout(T.toDevice(T.tensor(xv, { dtype }), dev), 0.3, true, new T.Generator(11)));
      expect(drop(device)).toEqual(drop('cpu'));
      const vals = rng.uniforms(6 * 40).map((v) => Math.round(v * 3));
      vals[17] = NaN;
      for (const largest of [true, false]) {
        const tk = (dev: string) => {
          const r = T.topk(T.toDevice(T.tensor(vals, { dtype, shape: [6, 40] }), dev), 5, -1, largest);
          return [flat(r.values).map(String), flat(r.indices)];
        };
        expect(tk(device)).toEqual(tk('cpu'));
      }
      const ri = (dev: string) => flat(T.randint(-5, 17, [1000], { device: dev, generator: new T.Generator(3), dtype: 'int64' }));
      expect(ri(device)).toEqual(ri('cpu'));
    });

    it(`${dtype}: layer norm with and without affine parameters; gradients of x, weight and bias`, () => {
      for (const [rows, cols] of [[7, 96], [130, 33], [3, 1000]] as const) {
        const x = input([rows, cols], -3, 3), w = input([cols], 0.5, 1.5), b = input([cols]);
        check(device, dtype, `layerNorm ${rows}x${cols}`, [x, w, b], ([t, wt, bt]) => T.layerNorm(t!, cols, wt, bt), true);
        check(device, dtype, `layerNorm ${rows}x${cols} no affine`, [x], ([t]) => T.layerNorm(t!, cols), true);
      }
    });

    it(`${dtype}: MoE kernels — slot assignment (capacity and priority policies), permute / unpermute with combine weights, grouped linear, fused expert FFN; gradients`, () => {
      const [S, k, E, C] = [50, 2, 6, 12];
      const ex = Array.from({ length: S * k }, () => rng.int(0, E));
      const pr = rng.uniforms(S * k);
      const assign = (dev: string, priority: boolean) => {
        const a = T.moeAssign(T.toDevice(T.tensor(ex, { dtype: 'int64', shape: [S, k] }), dev), {
          numExperts: E, capacity: C, withRows: true, priority: priority ? T.toDevice(T.tensor(pr, { dtype: 'float64', shape: [S, k] }), dev) : undefined,
        });
        return [a.slot, a.countsBefore, a.countsAfter, a.countsFirst!, a.row!].map((t) => flat(t));
      };
      for (const priority of [false, true]) expect(assign(device, priority), `moeAssign priority=${priority}`).toEqual(assign('cpu', priority));
      // permute / unpermute over the rows the assignment gave, weighted
      const row = assign('cpu', false)[4]!;
      const R = row.filter((r) => r >= 0).length;
      const rowIn: In = { vals: row, shape: [S, k], dtype: 'int64' };
      const d = 9;
      check(device, dtype, 'moePermute', [input([S, d]), rowIn, input([S, k])], ([x, r, w]) => T.moePermute(x!, r!, R, w), true);
      check(device, dtype, 'moeUnpermute', [input([R, d]), rowIn, input([S, k])], ([y, r, w]) => T.moeUnpermute(y!, r!, w), true);
      // grouped linear and the fused expert FFN over uneven groups (an empty one included)
      const sizes = [7, 0, 19, 1, 13];
      const Rg = sizes.reduce((a, b) => a + b, 0), G = sizes.length, [D, H] = [24, 40];
      check(device, dtype, 'groupedLinear', [input([Rg, D]), input([G, D, H]), input([G, H])], ([x, w, b]) => T.groupedLinear(x!, w!, b!, sizes), true);
      for (const activation of ['gelu', 'gelu_tanh', 'relu'] as const)
        check(device, dtype, `expertFFN ${activation}`, [input([Rg, D]), input([G, D, H]), input([G, H]), input([G, H, D]), input([G, D])],
          ([x, w1, b1, w2, b2]) => T.expertFFN(x!, w1!, b1!, w2!, b2!, sizes, { activation }), true);
    });
  }
});

describeDevices('biasGelu (fused bias + GELU)', (device) => {
  for (const dtype of ['float32', 'float64'] as DT[]) {
    for (const approximate of ['none', 'tanh'] as const) {
      it(`${dtype}, ${approximate}: equals gelu(x + bias) forward and backward, bias broadcast over rows`, () => {
        const x = input([33, 70], -4, 4), b = input([70]);
        check(device, dtype, `biasGelu ${approximate}`, [x, b], ([t, bt]) => T.biasGelu(t!, bt!, approximate), true);
        // against the unfused composition on the same device and dtype
        const on = (v: In) => T.toDevice(T.tensor(v.vals, { dtype, shape: v.shape }), device);
        expectClose(flat(T.biasGelu(on(x), on(b), approximate)), flat(T.gelu(T.add(on(x), on(b)), approximate)), 1e-6, 1e-6, 'fused = composed');
      });
    }
  }
  it('gradients agree with finite differences (float64, CPU)', () => {
    const r = T.gradcheck((x, b) => T.biasGelu(x!, b!), [T.tensor(rng.uniforms(12, -3, 3), { dtype: 'float64', shape: [3, 4], requiresGrad: true }), T.tensor(rng.uniforms(4), { dtype: 'float64', requiresGrad: true })]);
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });
});
