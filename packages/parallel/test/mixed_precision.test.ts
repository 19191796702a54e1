import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@vlmoe/tensor';
import { afterAll, describe, expect, test } from 'vitest';
import { LossScaler, initProcessGroup, initialize } from '../src/index.js';

describe('fp16 loss scaling (DeepSpeed semantics)', () => {
  test('dynamic: doubles after a window without overflow, halves once the hysteresis is used up, never below the floor; static never moves', () => {
    const s = new LossScaler({ initialScalePower: 4, window: 3, hysteresis: 2, minScale: 4 });
    const seq: number[] = [];
    for (const overflow of [false, false, false, true, true, false, false, false, true, true, true, true]) {
      s.update(overflow);
      seq.push(s.scale);
    }
    // iter 2: (2 − (−1)) % 3 = 0 → 32; iters 3, 4 overflow: hysteresis 2 → 1, then 16; iter 7: 3 steps since → 32;
    // iters 8–11 overflow: 1 (left after the reset to 2) absorbed, then 16, 8, 4 (the floor)
    expect(seq).toEqual([16, 16, 32, 32, 16, 16, 16, 32, 32, 16, 8, 4]);
    const st = new LossScaler({ static: 128 });
    st.update(true);
    st.update(false);
    expect(st.scale).toBe(128);
    expect(st.dynamic).toBe(false);
    expect(() => new LossScaler({ window: 0 })).toThrow(/window must be an integer ≥ 1/);
  });

  const pg = initProcessGroup({ backend: 'shm', rank: 0, worldSize: 1, name: `/vlmoe-fp16-test-${process.pid}` });
  afterAll(() => pg.destroy());
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test('an overflowing step is skipped (parameters untouched, scale halved); training goes on once the scale fits float16; the scaler is checkpointed', () => {
    const make = () => new T.nn.Linear(8, 4, { generator: new T.Generator(5) });
    const config = { train_batch_size: 4, optimizer: { type: 'SGD' as const, params: { lr: 0.1 } }, fp16: { enabled: true, initial_scale_power: 40, hysteresis: 1 } };
    const { engine } = initialize({ model: make(), config, processGroup: pg });
    const x = T.randn([4, 8], { generator: new T.Generator(1) }), y = T.randn([4, 4], { generator: new T.Generator(2) });
    const weights = () => Array.from(engine.module.parameters()[0]!.dataSync() as Float32Array);
    const w0 = weights();
    const scales: number[] = [], norms: (number | null)[] = [];
    for (let i = 0; i < 40 && engine.skippedSteps === i; i++) {
      scales.push(engine.lossScale);
      T.scope(() => {
        engine.backward(T.nn.mseLoss(engine.forward(x), y));
        norms.push(engine.step());
      });
      if (engine.skippedSteps === i + 1) expect(weights(), `skipped step ${i} left the weights alone`).toEqual(w0);
    }
    const skipped = engine.skippedSteps;
    expect(skipped).toBeGreaterThan(10); // 2^40 · gradients ≫ 65504 until the scale came down
    expect(scales.slice(0, skipped)).toEqual(Array.from({ length: skipped }, (_, i) => 2 ** (40 - i)));
    expect(norms.slice(0, skipped).every((n) => !Number.isFinite(n!))).toBe(true);
    expect(Number.isFinite(norms[skipped]!)).toBe(true);
    expect(weights()).not.toEqual(w0);
    expect(engine.globalSteps).toBe(skipped + 1);
    // the step that went through equals one SGD step on the unscaled float16-product gradients
    const ref = make();
    const opt = new T.optim.SGD(ref.parameters(), { lr: 0.1 });
    T.autocast('float16', () => T.nn.mseLoss(ref.forward(x), y).backward());
    opt.step();
    const rw = Array.from(ref.parameters()[0]!.dataSync() as Float32Array);
    weights().forEach((v, i) => expect(Math.abs(v - rw[i]!)).toBeLessThan(1e-4));
    // checkpoint: scale, skipped steps
    const dir = mkdtempSync(join(tmpdir(), 'vlmoe-fp16-'));
    dirs.push(dir);
    engine.saveCheckpoint(dir);
    const { engine: e2 } = initialize({ model: make(), config, processGroup: pg });
    e2.loadCheckpoint(dir);
    expect(e2.lossScale).toBe(engine.lossScale);
    expect(e2.skippedSteps).toBe(skipped);
    engine.destroy();
    e2.destroy();
  });
});
