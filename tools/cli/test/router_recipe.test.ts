/**
 * The routing options of today's systems reached the way a user reaches them: a recipe's
 * `model.moe` block and `vlmoe pretrain`, on 1 and 2 ranks. Aux-loss-free balancing (expert
 * bias) with sigmoid top-2 scores: the bias is logged per MoE layer after every step, moves by
 * the configured rate, is the same whatever the layout (the loads are summed over the
 * data-parallel ranks), is saved in the checkpoints, and a run killed and resumed continues it
 * exactly. Fine-grained and shared experts (DeepSeekMoE) train the same on 1 rank, with expert
 * parallelism and with tensor parallelism.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { loadCheckpointWeights } from '@vlmoe/parallel';
import { STUDY_SCHEMA } from '../src/index.js';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const launcher = fileURLToPath(new URL('../../../packages/parallel/dist/launcher.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-router-recipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const runs = join(dir, 'runs');
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const RATE = 0.01;

const BIAS = { scoreFunction: 'sigmoid', enableExpertBias: true, biasUpdateRate: RATE };

/** A recipe; `moe` null: the dense model. `top`: more recipe keys (init, steps, …). */
function config(name: string, engine: object, moe: object | null, top: object = {}): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({
    name, data: `shapes:${join(dir, 'shapes')}`, runs, preset: 'tiny', experts: moe ? 4 : 0, k: moe ? 2 : 1, steps: 8, batch: 8, textLen: 16, warmup: 2, checkpointEvery: 4, evalSplit: 'none',
    // dropless and no balance loss: the objective does not depend on how the batch is split over ranks
    model: moe ? { moe: { dropTokens: false, auxLossWeight: 0, ...moe } } : {}, engine, ...top,
  }));
  return p;
}

function pretrain(name: string, nproc: number, engine: object = {}, extra: string[] = [], moe: object | null = BIAS, top: object = {}): ReturnType<typeof spawnSync> {
  const args = [cli, 'pretrain', '--config', config(name, engine, moe, top), ...extra];
  return nproc === 1 ? spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: 240_000 })
    : spawnSync(process.execPath, [launcher, '--nproc', String(nproc), ...args], { encoding: 'utf8', env, timeout: 240_000 });
}

type Row = { step: number; loss: number; load: Record<string, { counts: number[]; bias?: number[] }> };
const rows = (name: string) => readFileSync(join(runs, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
const biases = (name: string) => rows(name).map((r) => Object.fromEntries(Object.entries(r.load).map(([k, l]) => [k, l.bias!])));

beforeAll(() => {
  const r = pretrain('one', 1);
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
}, 300_000);

describe('vlmoe pretrain with sigmoid top-2 routing and the aux-loss-free expert bias', () => {
  test('every MoE layer logs its bias after each step; it starts at ±rate or 0 and stays on the rate grid; the final bias is in the checkpoint', () => {
    const rs = rows('one');
    expect(rs.length).toBe(8);
    const keys = Object.keys(rs[0]!.load);
    expect(keys.length).toBeGreaterThan(0);
    for (const r of rs) for (const k of keys) expect(r.load[k]!.bias, `step ${r.step} ${k}`).toHaveLength(4);
    for (const k of keys) {
      // after one update: rate · sign(mean − load) of that step's loads
      const c = rs[0]!.load[k]!.counts, mean = c.reduce((a, b) => a + b, 0) / c.length;
      rs[0]!.load[k]!.bias!.forEach((b, e) => expect(b).toBeCloseTo(RATE * Math.sign(mean - c[e]!), 7));
      for (const r of rs) for (const b of r.load[k]!.bias!) expect(Math.abs(b / RATE - Math.round(b / RATE))).toBeLessThan(1e-4);
    }
    // some expert's bias moved away from 0 over the run
    expect(keys.some((k) => rs[7]!.load[k]!.bias!.some((b) => Math.abs(b) >= RATE))).toBe(true);
    const w = loadCheckpointWeights(join(runs, 'one', 'checkpoints')).weights;
    // one per MoE layer (the log shows the layers of the fused image-text pass)
    const saved = Object.keys(w).filter((n) => n.endsWith('gate.expertBias'));
    expect(saved.length).toBeGreaterThanOrEqual(keys.length);
    for (const k of keys) {
      const [, i, side] = k.split('.');
      const n = saved.find((x) => x.startsWith(`backbone.blocks.${i}.ffn.${side}.`))!;
      expect(Array.from(w[n]!.dataSync() as Float32Array), n).toEqual(rs[7]!.load[k]!.bias);
    }
  });

  test('2 ranks (data parallel) and 2 ranks with expert parallelism 2 keep the bias of one process: the loads are summed over the ranks', () => {
    for (const [name, engine] of [['dp2', {}], ['ep2', { expert_parallel_size: 2 }]] as const) {
      const r = pretrain(name, 2, engine);
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      expect(biases(name), name).toEqual(biases('one'));
      rows(name).forEach((row, i) => expect(Math.abs(row.loss - rows('one')[i]!.loss) / rows('one')[i]!.loss, `${name} step ${row.step}`).toBeLessThan(1e-5));
    }
  }, 600_000);

  test('killed after step 6 and resumed from the step-4 checkpoint: the same biases and losses as the run straight through', () => {
    const killed = pretrain('crash', 1, {}, ['--stop-after', '6']);
    expect(killed.signal, `${killed.stdout}\n${killed.stderr}`).toBe('SIGKILL');
    const resumed = pretrain('crash', 1, {}, ['--resume']);
    expect(resumed.status, `${resumed.stdout}\n${resumed.stderr}`).toBe(0);
    expect(resumed.stdout).toMatch(/resuming at step 4/);
    expect(biases('crash')).toEqual(biases('one'));
    expect(rows('crash').map((r) => r.loss)).toEqual(rows('one').map((r) => r.loss));
  }, 300_000);
});

describe('vlmoe pretrain with fine-grained (expertSizeRatio 2) and shared experts (sharedExperts 1)', () => {
  const FINE = { expertSizeRatio: 2, sharedExperts: 1 };
  test('1 rank = 2 ranks with expert parallelism 2 (8 half-size experts, 4 a rank) = 2 ranks with tensor parallelism 2 (the shared FFN split): the same losses', () => {
    const one = pretrain('fine-one', 1, {}, [], FINE);
    expect(one.status, `${one.stdout}\n${one.stderr}`).toBe(0);
    const ref = rows('fine-one');
    // 8 experts a layer, 4 chosen per token (k·m)
    for (const l of Object.values(ref[0]!.load)) {
      expect(l.counts).toHaveLength(8);
      expect(l.counts.reduce((a, b) => a + b, 0) % 4).toBe(0);
    }
    for (const [name, engine] of [['fine-ep2', { expert_parallel_size: 2 }], ['fine-tp2', { tensor_parallel_size: 2 }]] as const) {
      const r = pretrain(name, 2, engine, [], FINE);
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      rows(name).forEach((row, i) => expect(Math.abs(row.loss - ref[i]!.loss) / ref[i]!.loss, `${name} step ${row.step}`).toBeLessThan(1e-5));
    }
    const w = loadCheckpointWeights(join(runs, 'fine-one', 'checkpoints')).weights;
    expect(w['backbone.blocks.1.ffn.vision.inner.moe.experts.w1']!.shape).toEqual([8, 64, 128]);
    expect(w['backbone.blocks.1.ffn.vision.inner.moe.shared.fc1.weight']!.shape).toEqual([128, 64]);
    // the checkpoint round trip: killed after step 6, resumed from step 4, the same losses
    const killed = pretrain('fine-crash', 1, {}, ['--stop-after', '6'], FINE);
    expect(killed.signal, `${killed.stdout}\n${killed.stderr}`).toBe('SIGKILL');
    const resumed = pretrain('fine-crash', 1, {}, ['--resume'], FINE);
    expect(resumed.status, `${resumed.stdout}\n${resumed.stderr}`).toBe(0);
    expect(rows('fine-crash').map((r) => r.loss)).toEqual(ref.map((r) => r.loss));
  }, 600_000);
});

describe('vlmoe pretrain with group-limited routing (numGroups = expert_parallel_size, groupTopK 1)', () => {
  test("each token's 2 experts on one rank of 2: 1 rank = EP 2, the same losses", () => {
    const GROUPS = { numGroups: 2, groupTopK: 1 };
    const one = pretrain('group-one', 1, {}, [], GROUPS);
    expect(one.status, `${one.stdout}\n${one.stderr}`).toBe(0);
    const ep = pretrain('group-ep2', 2, { expert_parallel_size: 2 }, [], GROUPS);
    expect(ep.status, `${ep.stdout}\n${ep.stderr}`).toBe(0);
    rows('group-ep2').forEach((row, i) => expect(Math.abs(row.loss - rows('group-one')[i]!.loss) / rows('group-one')[i]!.loss, `step ${row.step}`).toBeLessThan(1e-5));
  }, 300_000);
});

describe("vlmoe pretrain with DeepSeek-V3's sequence-wise balance loss (loadBalancingType seq_aux_loss)", () => {
  test('per sequence, the balance loss does not depend on how the batch is split: 1 rank = 2 data-parallel ranks with the balance loss on', () => {
    const SEQ = { loadBalancingType: 'seq_aux_loss', auxLossWeight: 0.1 };
    const one = pretrain('seq-one', 1, {}, [], SEQ, { steps: 4 });
    expect(one.status, `${one.stdout}\n${one.stderr}`).toBe(0);
    const two = pretrain('seq-dp2', 2, {}, [], SEQ, { steps: 4 });
    expect(two.status, `${two.stdout}\n${two.stderr}`).toBe(0);
    const a = rows('seq-one'), b = rows('seq-dp2');
    a.forEach((r, i) => expect(Math.abs(b[i]!.loss - r.loss) / r.loss, `step ${r.step}`).toBeLessThan(1e-5));
    expect((JSON.parse(readFileSync(join(runs, 'seq-one', 'metrics.jsonl'), 'utf8').split('\n')[0]!) as { moe: number }).moe).toBeGreaterThan(0);
    // the control: DeepSpeed's batch-wide balance loss, per rank, does depend on the split
    const AUX = { auxLossWeight: 0.1 };
    for (const [name, n] of [['aux-one', 1], ['aux-dp2', 2]] as const) {
      const r = pretrain(name, n, {}, [], AUX, { steps: 4 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
    }
    const c = rows('aux-one'), d = rows('aux-dp2');
    expect(Math.max(...c.map((r, i) => Math.abs(d[i]!.loss - r.loss) / r.loss))).toBeGreaterThan(1e-5);
  }, 300_000);
});

describe("vlmoe pretrain with LIMoE's entropy regularisers", () => {
  test('localEntropyWeight and globalEntropyWeight from model.moe reach the MoE loss (0 without them, as the balance and z weights are 0)', () => {
    const r = pretrain('limoe', 1, {}, [], { zLossWeight: 0, localEntropyWeight: 0.1, globalEntropyWeight: 0.05 }, { steps: 2 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const moe = (name: string) => (JSON.parse(readFileSync(join(runs, name, 'metrics.jsonl'), 'utf8').split('\n')[0]!) as { moe: number }).moe;
    expect(Math.abs(moe('limoe'))).toBeGreaterThan(1e-3);
    const off = pretrain('limoe-off', 1, {}, [], { zLossWeight: 0 }, { steps: 1 });
    expect(off.status, `${off.stdout}\n${off.stderr}`).toBe(0);
    expect(moe('limoe-off')).toBe(0);
  }, 300_000);
});

describe('sparse upcycling through vlmoe pretrain (init: a dense run)', () => {
  test("the upcycled VL-MoE starts where the dense run stopped: its first loss equals the dense model's on 1 rank and with EP 2; the start-up says what was copied and what is fresh", () => {
    // no stochastic depth (its draws would follow the models' different parameter counts), no router losses
    const model = { dropPath: 0 };
    const d = pretrain('dense', 1, {}, [], null, { model, steps: 4 });
    expect(d.status, `${d.stdout}\n${d.stderr}`).toBe(0);
    const again = pretrain('dense-again', 1, {}, [], null, { model, steps: 2, init: join(runs, 'dense') });
    expect(again.status, `${again.stdout}\n${again.stderr}`).toBe(0);
    const ref = rows('dense-again')[0]!.loss;
    // post-softmax top-1: each token's one expert weighs 1, so a copy of the FFN is the FFN
    const moe = { k: 1, preSoftmax: false, zLossWeight: 0 };
    for (const [name, nproc, engine] of [['up', 1, {}], ['up-ep2', 2, { expert_parallel_size: 2 }]] as const) {
      const r = pretrain(name, nproc, engine, [], moe, { model: { dropPath: 0, moe: { dropTokens: false, auxLossWeight: 0, ...moe } }, steps: 2, init: join(runs, 'dense'), upcycleNoise: 0 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/upcycled from .*checkpoints \(step4\): 4 MoE layers from dense FFNs, fresh: backbone\.blocks\.1\.ffn\.vision\.inner\.moe\.gate\.wg/);
      const first = rows(name)[0]!.loss;
      expect(Math.abs(first - ref) / ref, `${name}: first loss ${first} vs the dense model's ${ref}`).toBeLessThan(1e-5);
    }
    // a dense start without init is far from it (the copy is what carries the dense run over)
    const scratch = pretrain('scratch', 1, {}, [], moe, { model: { dropPath: 0, moe: { dropTokens: false, auxLossWeight: 0, ...moe } }, steps: 1 });
    expect(scratch.status, `${scratch.stdout}\n${scratch.stderr}`).toBe(0);
    expect(Math.abs(rows('scratch')[0]!.loss - ref) / ref).toBeGreaterThan(1e-3);
    // upcycleNoise without init is an error naming the key
    const bad = pretrain('bad', 1, {}, [], moe, { upcycleNoise: 0.1 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/upcycleNoise is for a run upcycled from a dense run \(init\)/);
  }, 600_000);
});

describe('the committed studies of docs/results/moe-part2', () => {
  test('their recipes (tools/cli/recipes/study-auxfree.json, study-upcycle.json) are valid study configs: every key checked, initFrom names a model listed before', () => {
    for (const f of ['study-auxfree.json', 'study-upcycle.json']) {
      const p = fileURLToPath(new URL(`../recipes/${f}`, import.meta.url));
      const cfg = T.parseConfig(STUDY_SCHEMA, JSON.parse(readFileSync(p, 'utf8')), `config ${p}`);
      const ids = cfg.models.map((m) => m.id);
      cfg.models.forEach((m, i) => { if (m.initFrom !== undefined) expect(ids.slice(0, i)).toContain(m.initFrom); });
      for (const c of cfg.compare ?? []) expect(ids).toEqual(expect.arrayContaining([c.a, c.b]));
    }
  });
});
