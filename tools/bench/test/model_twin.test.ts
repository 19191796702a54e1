/**
 * `npm run bench -- model` compares like for like: the PyTorch twin's pretraining losses
 * (peers/torch_vlmoe.py, training-mode DeepSpeed gating with tokens dropped past capacity,
 * einsum and index dispatch) equal our VLMoPretrainer's in float64 on the same weights (our
 * exportVlmoCheckpoint, loaded strictly), batch and negative draws — and the bench itself runs
 * from its command.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer, exportVlmoCheckpoint, type VLMoConfig } from '@vlmoe/moe';
import { randomPretrainBatch } from '../src/model.js';
import { torchPython } from '../src/torch.js';

const PEER = fileURLToPath(new URL('../peers/torch_vlmoe.py', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-model-twin-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const base = { dim: 16, depth: 3, heads: 2, mlpRatio: 2, vlBlocks: 1, imageSize: 16, patchSize: 8, vocabSize: 40, maxTextLen: 6, dropPath: 0, dtype: 'float64' } as const;
// capacity factor 1 with 4 images × 5 tokens per pass: experts overflow and tokens are dropped
const moe = { capacityFactor: 1, evalCapacityFactor: 1, minCapacity: 1, dropPolicy: 'position', blocks: [0, 1, 2] } as const;

describe.skipIf(!torchPython())('the PyTorch twin of the pretraining step (python3-torch installed)', () => {
  it.each([
    ['VL-MoE top-1, 4 experts, einsum dispatch', { ...base, moe: { ...moe, numExperts: 4, k: 1 } }, 'einsum'],
    ['VL-MoE top-1, 4 experts, index dispatch', { ...base, moe: { ...moe, numExperts: 4, k: 1 } }, 'index'],
    ['VL-MoE top-2, 3 experts, einsum dispatch', { ...base, moe: { ...moe, numExperts: 3, k: 2 } }, 'einsum'],
    ['VL-MoE top-2, 3 experts, index dispatch, no layer scale', { ...base, layerScale: null, moe: { ...moe, numExperts: 3, k: 2 } }, 'index'],
    ['dense VLMo', { ...base }, 'einsum'],
  ] as [string, VLMoConfig, string][])('%s: ITC, ITM, MLM, MoE losses equal ours in float64', (name, config, dispatch) => {
    const m = new VLMoPretrainer(config, {}, { generator: new T.Generator(5) });
    m.train();
    T.noGrad(() => {
      const g = new T.Generator(11);
      for (const [k, p] of m.namedParameters()) if (p.ndim <= 1 && !k.endsWith('logitScale')) T.copy_(p, T.uniform(p.shape, -0.5, 0.5, { dtype: 'float64', generator: g }));
    });
    const B = 4;
    const b = randomPretrainBatch(config, B, new T.Generator(3));
    // the one draw of the step's generator: the 2B uniforms of the hard-negative sampling
    const u = T.uniform([2 * B], 0, 1, { dtype: 'float64', generator: new T.Generator(77) });
    const ours = T.noGrad(() => m.forward({ ...b, generator: new T.Generator(77) }));
    if (config.moe) expect(ours.dropped, 'capacity binds').toBeGreaterThan(0);
    const out = path.join(dir, name.replace(/\W+/g, '_'));
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...config, weights: {}, dispatch }));
    T.savePth(path.join(out, 'unilm.pth'), exportVlmoCheckpoint(m.stateDict(), config));
    T.savePth(path.join(out, 'io.pth'), { ids: b.ids, mask: b.mask, mlm_ids: b.mlmIds, mlm_labels: b.mlmLabels, pixels: T.cast(b.image, 'float64'), u });
    const r = spawnSync(torchPython()!, [PEER, 'losses', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const twin = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
    const mine = { ...ours.parts, loss: ours.loss.item() };
    for (const k of ['itc', 'itm', 'mlm', 'moe', 'loss'] as const) expect(Math.abs(mine[k] - twin[k]!), `${k}: ours ${mine[k]}, twin ${twin[k]}`).toBeLessThan(1e-9);
    if (config.moe) expect(mine.moe).toBeGreaterThan(0);
  });
});

describe('npm run bench -- model', () => {
  it('runs from its command (VLMOE_BENCH_QUICK=1: tiny preset) and writes every row', () => {
    const r = spawnSync(process.execPath, [MAIN, 'model'], { encoding: 'utf8', env: { ...process.env, VLMOE_BENCH_QUICK: '1' }, maxBuffer: 1 << 24 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('VL-MoE pretraining step, preset tiny');
    const file = /wrote (\S+model\.json)/.exec(r.stdout)![1]!;
    const res = JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: { case: string; ours: number; peer: number | null }[]; models: { label: string; ours: { flops: number }[] }[] };
    expect(res.models.map((x) => x.label)).toEqual(['VL-MoE E=8 top-1', 'VL-MoE E=32 top-1', 'VL-MoE E=8 top-2', 'VL-MoE E=32 top-2', 'dense twin']);
    // 3 rows per model + the MoE overhead of the 4 MoE models
    expect(res.cases).toHaveLength(5 * 3 + 4);
    for (const c of res.cases) expect(c.ours).toBeGreaterThan(0);
    for (const mdl of res.models) for (const o of mdl.ours) expect(o.flops).toBeGreaterThan(0);
    if (torchPython()) for (const c of res.cases.filter((x) => !x.case.startsWith('MoE overhead'))) expect(c.peer, c.case).toBeGreaterThan(0);
  });
});
