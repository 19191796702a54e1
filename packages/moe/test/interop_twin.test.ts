/**
 * Forward equality with a PyTorch twin of VLMo / VL-MoE written with microsoft/unilm's and
 * DeepSpeed-MoE's module names (test/fixtures/vlmo_twin.py; see its docstring for the two
 * deliberate differences, which are our model's).
 *
 * - Import (no Python needed): the twin's committed state dict (unilm.pth) and the same
 *   weights as DeepSpeed saves them (deepspeed/: main file + one file per expert) are imported
 *   into our VLMoPretrainer; in float64 it reproduces the twin's text-only, image-only and
 *   fused hidden states, pooled output, ITC embeddings and ITM / MLM logits (io.pth).
 * - Export (when /usr/bin/python3 has torch): our model's exportVlmoCheckpoint and
 *   exportDeepSpeedMoECheckpoint, written with savePth, load into the twin with
 *   strict=True (every name and shape) and give our outputs (vlmo_twin.py check), for top-1
 *   VL-MoE and for top-2 residual MoE.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '@vlmoe/tensor';
import {
  VLMoPretrainer, exportDeepSpeedMoECheckpoint, exportVlmoCheckpoint, importDeepSpeedMoECheckpoint, importVlmoCheckpoint, loadDeepSpeedCheckpoint,
  saveDeepSpeedCheckpoint, type VLMoConfig,
} from '../src/index.js';

const FIX = decodeURIComponent(new URL('./fixtures/vlmo_twin/', import.meta.url).pathname);
const SCRIPT = decodeURIComponent(new URL('./fixtures/vlmo_twin.py', import.meta.url).pathname);
const OUTPUTS = ['text', 'image', 'fused', 'pooled', 'itc_img', 'itc_txt', 'itm', 'mlm'] as const;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-twin-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Our outputs for the twin's inputs, named as vlmo_twin.py names them. */
function outputs(m: VLMoPretrainer, io: Record<string, T.Tensor>): Record<string, T.Tensor> {
  return T.noGrad(() => {
    const bb = m.backbone;
    const image = io.pixels!, textIds = io.ids!, textMask = io.mask!;
    const text = bb.forward({ textIds, textMask }).hidden;
    const img = bb.forward({ image }).hidden;
    const fused = bb.forward({ textIds, textMask, image });
    const pooled = m.pooler.forward(fused.hidden);
    return {
      text, image: img, fused: fused.hidden, pooled, itc_img: m.itc.embedImage(img), itc_txt: m.itc.embedText(text),
      itm: m.itm.forward(pooled), mlm: m.mlm.forward(fused.hidden.narrow(1, 0, fused.textLen)),
    };
  });
}

function maxAbsDiff(a: T.Tensor, b: T.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync() as Float64Array, y = T.cast(b, 'float64').dataSync() as Float64Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

describe('import: the twin’s checkpoints give the twin’s outputs', () => {
  const config = JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8')) as VLMoConfig;
  const io = T.loadPth(path.join(FIX, 'io.pth'));

  it.each(['unilm.pth', 'deepspeed/'])('%s → importVlmoCheckpoint → our forward (float64) equals PyTorch', (src) => {
    const sd = src === 'unilm.pth'
      ? importVlmoCheckpoint(T.loadPth(path.join(FIX, 'unilm.pth')), config)
      : importDeepSpeedMoECheckpoint(loadDeepSpeedCheckpoint(path.join(FIX, 'deepspeed')), config);
    const m = new VLMoPretrainer(config);
    m.eval();
    m.loadStateDict(sd);
    const ours = outputs(m, io);
    for (const k of OUTPUTS) expect(maxAbsDiff(ours[k]!, io[k]!), k).toBeLessThan(1e-10);
  });
});

const TORCH_PY = '/usr/bin/python3';
const hasTorch = fs.existsSync(TORCH_PY) &&
  spawnSync(TORCH_PY, ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasTorch)('export: PyTorch loads our checkpoints strictly and computes our outputs (vlmo_twin.py check)', () => {
  const base = { dim: 16, depth: 3, heads: 2, mlpRatio: 2, vlBlocks: 1, imageSize: 16, patchSize: 8, vocabSize: 30, maxTextLen: 6, dropPath: 0, dtype: 'float64' } as const;
  it.each([
    ['VL-MoE top-1, 4 experts in blocks 1 and 2', { ...base, moe: { numExperts: 4, k: 1, blocks: [1, 2], dropTokens: false } }],
    ['top-2 residual MoE in block 0, no layer scale', { ...base, layerScale: null, moe: { numExperts: 3, k: 2, blocks: [0], useResidual: true, dropTokens: false } }],
  ] as [string, VLMoConfig][])('%s', (name, config) => {
    const m = new VLMoPretrainer(config, {}, { generator: new T.Generator(5) });
    m.eval();
    // random layer norms, biases and layer scales too (the fresh init has ones and zeros there)
    T.noGrad(() => {
      const g = new T.Generator(11);
      for (const [k, p] of m.namedParameters()) if (p.ndim <= 1 && !k.endsWith('logitScale')) T.copy_(p, T.uniform(p.shape, -0.5, 0.5, { dtype: 'float64', generator: g }));
    });
    const out = path.join(dir, name.replace(/\W+/g, '_'));
    fs.mkdirSync(out, { recursive: true });
    const g = new T.Generator(3);
    const io: Record<string, T.Tensor> = {
      ids: T.tensor([[1, 4, 9, 2, 7, 3], [5, 8, 2, 0, 0, 0]], { dtype: 'int64' }),
      mask: T.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], { dtype: 'int64' }),
      pixels: T.uniform([2, 3, 16, 16], -1, 1, { dtype: 'float64', generator: g }),
    };
    Object.assign(io, outputs(m, io));
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config));
    T.savePth(path.join(out, 'unilm.pth'), exportVlmoCheckpoint(m.stateDict(), config));
    saveDeepSpeedCheckpoint(path.join(out, 'ds'), exportDeepSpeedMoECheckpoint(m.stateDict(), config));
    T.savePth(path.join(out, 'io.pth'), io);
    const r = spawnSync(TORCH_PY, [SCRIPT, 'check', out], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('OK\n');
    expect(r.status).toBe(0);
  });
});
