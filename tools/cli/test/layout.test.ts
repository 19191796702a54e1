/**
 * Layout independence through the user's path (`vlmoe pretrain` from a recipe config): VL-MoE
 * pretraining on 2 ranks with expert parallelism 2, and on 4 ranks with EP 2 and EP 4, at ZeRO
 * stages 0, 1 and 2, on the shm and the mpi backends, computes what one process computes on
 * the same global batch — the loss at every step within 1e-5 relative, the final parameters
 * within float32 noise; likewise with tensor parallelism 2 alone, with data parallelism, with
 * EP 2 and with EP 2 and ZeRO-2 (checkpoints in the global layout compared as they are). Dropless routing and balance-loss weight 0 make the objectives the
 * same (the balance loss is per rank by design, as DeepSpeed's l_aux; with capacity a rank's
 * drops depend on its share of the batch). A checkpoint written at EP 2 then loads at EP 1
 * and EP 4 with the same eval outputs, and each rank holds 1/P of the experts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer } from '@vlmoe/moe';
import { loadCheckpointWeights, mpiAvailable } from '@vlmoe/parallel';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const launcher = fileURLToPath(new URL('../../../packages/parallel/dist/launcher.js', import.meta.url));
const reload = fileURLToPath(new URL('./workers/ep_reload.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-layout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const runs = join(dir, 'runs');
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const mpiEnv = { ...env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', VLMOE_BACKEND: 'mpi' };
const mpiReady = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0 && mpiAvailable();

function config(name: string, engine: object, moe: object = {}): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({
    name, data: `shapes:${join(dir, 'shapes')}`, runs, preset: 'tiny', experts: 4, k: 1, steps: 20, batch: 8, textLen: 16, warmup: 2, checkpointEvery: 20, evalSplit: 'none',
    model: { moe: { dropTokens: false, auxLossWeight: 0, ...moe } }, engine,
  }));
  return p;
}

function pretrain(name: string, nproc: number, backend: 'shm' | 'mpi', engine: object, moe: object = {}): void {
  const args = [cli, 'pretrain', '--config', config(name, engine, moe)];
  const r = nproc === 1 ? spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: 240_000 })
    : backend === 'shm' ? spawnSync(process.execPath, [launcher, '--nproc', String(nproc), ...args], { encoding: 'utf8', env, timeout: 240_000 })
      : spawnSync('mpirun', ['-np', String(nproc), '-x', 'VLMOE_BACKEND', '-x', 'VLMOE_PROGRESS', process.execPath, ...args], { encoding: 'utf8', env: mpiEnv, timeout: 240_000, killSignal: 'SIGKILL' });
  expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
}

const losses = (name: string) => readFileSync(join(runs, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
const weights = (name: string) => loadCheckpointWeights(join(runs, name, 'checkpoints')).weights;

let ref: { losses: number[]; weights: Record<string, T.Tensor>; moved: number };
beforeAll(() => {
  pretrain('one', 1, 'shm', {});
  const w = weights('one');
  // how far training moved the parameters: the tolerance below must be far under it
  const init = new VLMoPretrainer((JSON.parse(readFileSync(join(runs, 'one', 'config.json'), 'utf8')) as { modelConfig: never }).modelConfig, {}, { generator: new T.Generator(0) }).stateDict();
  let moved = 0;
  for (const [k, t] of Object.entries(w)) moved = Math.max(moved, T.sub(t, init[k]!).abs().max().item());
  ref = { losses: losses('one'), weights: w, moved };
}, 300_000);

function expectSameRun(name: string): void {
  const l = losses(name);
  expect(l.length).toBe(20);
  l.forEach((v, i) => expect(Math.abs(v - ref.losses[i]!) / Math.abs(ref.losses[i]!), `${name}: step ${i + 1} loss ${v} vs ${ref.losses[i]}`).toBeLessThan(1e-5));
  const w = weights(name);
  expect(Object.keys(w).sort()).toEqual(Object.keys(ref.weights).sort());
  for (const [k, t] of Object.entries(ref.weights)) {
    expect(w[k]!.shape, k).toEqual(t.shape);
    const diff = T.sub(w[k]!, t).abs().max().item();
    expect(diff, `${name}: ${k} differs by ${diff}`).toBeLessThan(1e-4);
  }
}

const layouts = [
  { nproc: 2, ep: 2 },
  { nproc: 4, ep: 2 },
  { nproc: 4, ep: 4 },
];

describe('vlmoe pretrain: N ranks with expert parallelism and ZeRO = one process on the same global batch', () => {
  test('training moves the parameters far more than the tolerance', () => {
    expect(ref.moved).toBeGreaterThan(1e-2);
  });
  for (const backend of ['shm', 'mpi'] as const) {
    for (const { nproc, ep } of layouts) {
      // ZeRO-3 on shm (every parameter partitioned: no persistence threshold)
      const stages = backend === 'shm' ? [0, 1, 2, 3] : [0, 1, 2];
      test.skipIf(backend === 'mpi' && !mpiReady)(`${backend}: ${nproc} ranks, EP ${ep}, ZeRO ${stages.join(' / ')}`, () => {
        for (const stage of stages) {
          const name = `${backend}-${nproc}r-ep${ep}-z${stage}`;
          pretrain(name, nproc, backend, { expert_parallel_size: ep, zero_optimization: { stage, ...(stage === 3 ? { stage3_param_persistence_threshold: 0 } : {}) } });
          expectSameRun(name);
        }
      }, 600_000);
    }
  }

  test('ZeRO-3 with a live-parameter limit (stage3_max_live_parameters 20000: backward frees and re-gathers modules): 2 ranks, EP 2 = one process', () => {
    const name = 'shm-2r-ep2-z3-live';
    pretrain(name, 2, 'shm', { expert_parallel_size: 2, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0, stage3_max_live_parameters: 20000 } });
    expectSameRun(name);
  }, 600_000);

  test('optimizer offload to scratch files (offload_optimizer nvme): 2 ranks, EP 2, ZeRO-2 and ZeRO-3 (built under zero.Init); start-up says where the state went; no file left behind', () => {
    const scratch = join(dir, 'nvme');
    mkdirSync(scratch, { recursive: true });
    for (const stage of [2, 3]) {
      const name = `shm-2r-ep2-z${stage}-nvme`;
      const r = spawnSync(process.execPath, [launcher, '--nproc', '2', cli, 'pretrain', '--config', config(name, { expert_parallel_size: 2, zero_optimization: { stage, stage3_param_persistence_threshold: 0, offload_optimizer: { device: 'nvme', nvme_path: scratch } } })], { encoding: 'utf8', env, timeout: 240_000 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/optimizer offload \(nvme\): this rank's master weights and optimizer state, [0-9.]+ [MG]iB, live in scratch files under /);
      // at ZeRO-3 the model is built without making its parameters (zero.Init), those kept whole going to those files; the same values
      if (stage === 3) expect(r.stdout).toMatch(/zero\.Init: the model was built without making its parameters \([0-9.]+ s\); each rank makes its ZeRO-3 partitions next, the parameters kept whole in scratch files under /);
      expectSameRun(name);
    }
    expect(readdirSync(scratch)).toEqual([]);
  }, 600_000);

  // tensor parallelism (Megatron's split of attention heads, dense FFNs and the vocabulary) alone and with EP and ZeRO
  const etp = { enableExpertTensorParallelism: true };
  const tpLayouts: [string, number, object, object][] = [
    ['tp2', 2, { tensor_parallel_size: 2 }, {}],
    ['tp2-dp2', 4, { tensor_parallel_size: 2 }, {}],
    ['tp2-ep2', 4, { tensor_parallel_size: 2, expert_parallel_size: 2 }, {}],
    ['tp2-ep2-etp', 4, { tensor_parallel_size: 2, expert_parallel_size: 2 }, etp],
    ['tp2-ep2-z2', 4, { tensor_parallel_size: 2, expert_parallel_size: 2, zero_optimization: { stage: 2 } }, etp],
    // whole experts, each rank running them on its block of the tokens: partitions over expert-data × tensor ranks
    ['tp2-z2', 2, { tensor_parallel_size: 2, zero_optimization: { stage: 2 } }, {}],
    ['tp2-ep2-z3', 4, { tensor_parallel_size: 2, expert_parallel_size: 2, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0 } }, etp],
  ];
  for (const backend of ['shm', 'mpi'] as const) {
    test.skipIf(backend === 'mpi' && !mpiReady)(`${backend}: tensor parallel 2 — ${backend === 'mpi' ? '4 ranks with EP 2, expert tensor parallelism and ZeRO-2' : '2 ranks; 4 ranks with DP 2, with EP 2, with EP 2 and expert tensor parallelism, with both and ZeRO-2 / ZeRO-3; 2 ranks with ZeRO-2'}`, () => {
      for (const [layout, nproc, engine, moe] of backend === 'mpi' ? tpLayouts.slice(4, 5) : tpLayouts) {
        const name = `${backend}-${nproc}r-${layout}`;
        pretrain(name, nproc, backend, engine, moe);
        expectSameRun(name);
        const rec = JSON.parse(readFileSync(join(runs, name, 'config.json'), 'utf8')) as { resolvedEngine: { tensorParallel: number; dataParallel: number } };
        expect([rec.resolvedEngine.tensorParallel, rec.resolvedEngine.dataParallel]).toEqual([2, nproc / 2]);
      }
    }, 600_000);
  }

  test('validation during training (evalEvery) of a tensor-parallel model runs on every rank together, of a ZeRO-3 model on rank 0 with the parameters gathered everywhere; both equal one process', () => {
    const val = (name: string, nproc: number, engine: object) => {
      const p = join(dir, `${name}.json`);
      writeFileSync(p, JSON.stringify({
        name, data: `shapes:${join(dir, 'shapes')}`, runs, preset: 'tiny', experts: 4, k: 1, steps: 10, batch: 8, textLen: 16, warmup: 2, checkpointEvery: 10, evalSplit: 'none', evalEvery: 5, valBatches: 2,
        model: { moe: { dropTokens: false, auxLossWeight: 0 } }, engine,
      }));
      const args = [cli, 'pretrain', '--config', p];
      const r = spawnSync(process.execPath, nproc === 1 ? args : [launcher, '--nproc', String(nproc), ...args], { encoding: 'utf8', env, timeout: 240_000 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      return readFileSync(join(runs, name, 'val.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { metrics: Record<string, number> }).metrics);
    };
    const one = val('val-one', 1, {});
    for (const [name, engine] of [['val-tp2', { tensor_parallel_size: 2 }], ['val-z3', { zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0 } }]] as const) {
      const got = val(name, 2, engine);
      expect(got.length).toBe(2);
      got.forEach((m, i) => {
        expect(Object.keys(m).sort()).toEqual(Object.keys(one[i]!).sort());
        for (const [k, v] of Object.entries(one[i]!)) expect(Math.abs(m[k]! - v), `${name} validation ${i + 1}: ${k} ${m[k]} vs ${v}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
      });
    }
  }, 300_000);

  test('vlmoe finetune (vqa, nlvr, retrieval) from an EP-2 pretraining run: 2 ranks with EP 2, with TP 2, and with ZeRO-3, = one process', () => {
    const init = join(runs, 'shm-2r-ep2-z1');
    if (!existsSync(join(init, 'checkpoints', 'latest'))) pretrain('shm-2r-ep2-z1', 2, 'shm', { expert_parallel_size: 2, zero_optimization: { stage: 1 } });
    const finetune = (name: string, task: string, nproc: number, engine: object) => {
      const p = join(dir, `${name}.json`);
      writeFileSync(p, JSON.stringify({ name, task, init, data: `shapes:${join(dir, 'shapes')}`, runs, steps: 4, batch: 8, textLen: 16, warmup: 1, checkpointEvery: 4, evalSplit: 'none', engine }));
      const args = [cli, 'finetune', '--config', p];
      const r = spawnSync(process.execPath, nproc === 1 ? args : [launcher, '--nproc', String(nproc), ...args], { encoding: 'utf8', env, timeout: 240_000 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/4 experts top-1/);
      return losses(name);
    };
    for (const task of ['vqa', 'nlvr', 'retrieval']) {
      const one = finetune(`ft-${task}-1`, task, 1, {});
      for (const [name, engine] of [['ep2', { expert_parallel_size: 2 }], ['tp2', { tensor_parallel_size: 2 }], ['z3', { zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0 } }]] as const) {
        const two = finetune(`ft-${task}-${name}`, task, 2, engine);
        expect(two.length).toBe(4);
        two.forEach((v, i) => expect(Math.abs(v - one[i]!) / Math.abs(one[i]!), `${task} ${name} step ${i + 1}: ${v} vs ${one[i]}`).toBeLessThan(1e-5));
      }
    }
  }, 600_000);

  test("the CLI README's expert-parallel smoke run, exactly as typed there, from the repository root", () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const readme = readFileSync(join(root, 'tools/cli/README.md'), 'utf8');
    const line = readme.split('\n').find((l) => l.includes('recipes/ep-smoke.json') && l.startsWith('npx '));
    expect(line, 'the README shows the smoke command').toBeDefined();
    rmSync(join(root, 'runs', 'ep-smoke'), { recursive: true, force: true });
    const r = spawnSync('bash', ['-c', line!], { cwd: root, encoding: 'utf8', env, timeout: 300_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const rec = JSON.parse(readFileSync(join(root, 'runs', 'ep-smoke', 'config.json'), 'utf8')) as { world: number; experts: number; resolvedEngine: { expertParallel: number; stage: number } };
    expect([rec.world, rec.experts, rec.resolvedEngine.expertParallel, rec.resolvedEngine.stage]).toEqual([2, 8, 2, 1]);
    expect(readFileSync(join(root, 'runs', 'ep-smoke', 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(6);
    rmSync(join(root, 'runs', 'ep-smoke'), { recursive: true, force: true });
  });

  test('an expert_parallel_size that does not divide the experts is refused before step 1, naming the layer', () => {
    const p = join(dir, 'odd.json');
    writeFileSync(p, JSON.stringify({ name: 'odd', data: `shapes:${join(dir, 'shapes')}`, runs, experts: 3, steps: 2, batch: 4, evalSplit: 'none', engine: { expert_parallel_size: 2 } }));
    const r = spawnSync(process.execPath, [launcher, '--nproc', '2', cli, 'pretrain', '--config', p], { encoding: 'utf8', env, timeout: 120_000 });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/expert_parallel_size 2 does not divide the 3 experts of MoE layer 'backbone\.blocks\.1\.ffn\.vision\.inner\.moe'/);
    expect(r.stdout + r.stderr).not.toMatch(/loss/);
  });

  test('a checkpoint written at EP 2 loads at EP 1 and EP 4 with the same eval outputs; each rank holds 1/P of the experts', () => {
    const run = join(runs, 'shm-2r-ep2-z1');
    const outs = [1, 4].map((n) => {
      const file = join(dir, `reload-${n}.json`);
      const r = spawnSync(process.execPath, [launcher, '--nproc', String(n), reload, run, file], { encoding: 'utf8', env, timeout: 120_000 });
      expect(r.stdout.match(/ep reload ok/g)?.length, r.stdout + r.stderr).toBe(n);
      return JSON.parse(readFileSync(file, 'utf8')) as { P: number; expertParams: number; outputs: number[][] };
    });
    expect(outs[0]!.expertParams).toBe(4 * outs[1]!.expertParams);
    // the same checkpoint through loadCheckpointWeights into a model built from another seed, no engine
    const rec = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { modelConfig: never };
    const m = new VLMoPretrainer(rec.modelConfig, {}, { generator: new T.Generator(999) });
    m.loadStateDict(loadCheckpointWeights(join(run, 'checkpoints')).weights, { strict: true });
    m.eval();
    const c = m.backbone.config;
    const image = T.uniform([3, 3, c.imageSize, c.imageSize], -1, 1, { generator: new T.Generator(5) });
    const ids = T.randint(5, c.vocabSize, [3, 12], { dtype: 'int64', generator: new T.Generator(6) });
    const mask = T.ones([3, 12], { dtype: 'int64' });
    const direct = T.noGrad(() => [m.backbone.forward({ textIds: ids, textMask: mask, image }), m.backbone.forward({ image }), m.backbone.forward({ textIds: ids, textMask: mask })].map((o) => Array.from(o.hidden.dataSync() as Float32Array)));
    for (const o of outs) o.outputs.forEach((v, i) => expect(v, `P = ${o.P}, pass ${i}`).toEqual(direct[i]));
  }, 300_000);
});
