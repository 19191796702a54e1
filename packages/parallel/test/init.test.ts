import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as T from '@vlmoe/tensor';
import { describe, expect, test } from 'vitest';
import { initProcessGroup, initialize, ncclInfo, resolveInit, resolveConfig } from '../src/index.js';

/** A module with one parameter whose forward returns it. */
class OneParam extends T.nn.Module {
  readonly w: T.nn.Parameter;
  constructor(values: number[]) {
    super();
    this.w = new T.nn.Parameter(T.tensor(values));
  }
  forward(): T.Tensor {
    return this.w;
  }
}

const here = dirname(fileURLToPath(import.meta.url));

describe('initProcessGroup and config', () => {
  test('reads torchrun and mpirun variables, options win', () => {
    const saved = { ...process.env };
    try {
      process.env.RANK = '3';
      process.env.WORLD_SIZE = '4';
      process.env.MASTER_PORT = '1234';
      delete process.env.VLMOE_SHM_NAME;
      const r = resolveInit();
      expect(r).toMatchObject({ rank: 3, worldSize: 4, backend: 'shm', name: '/vlmoe-127_0_0_1-1234' });
      expect(resolveInit({ rank: 1, worldSize: 2 })).toMatchObject({ rank: 1, worldSize: 2 });
      delete process.env.RANK;
      delete process.env.WORLD_SIZE;
      process.env.OMPI_COMM_WORLD_RANK = '1';
      process.env.OMPI_COMM_WORLD_SIZE = '2';
      expect(resolveInit()).toMatchObject({ rank: 1, worldSize: 2 });
      process.env.OMPI_COMM_WORLD_RANK = '5';
      expect(() => resolveInit()).toThrow(/rank 5 is outside \[0, 2\)/);
      process.env.OMPI_COMM_WORLD_RANK = 'x';
      expect(() => resolveInit()).toThrow(/OMPI_COMM_WORLD_RANK='x' is not a valid rank/);
    } finally {
      process.env = saved;
    }
  });

  test('nccl: availability is reported; what is missing is named before any peer is waited for', () => {
    const n = ncclInfo();
    expect(typeof n.available).toBe('boolean');
    if (!n.available) {
      expect(n.reason).toMatch(/\(libnccl\.so\.2\) was not found; searched:[\s\S]*nvidia\/nccl\/lib[\s\S]*VLMOE_NCCL_LIB/);
      expect(() => initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 })).toThrow(/the 'nccl' backend needs NCCL: NCCL \(libnccl\.so\.2\) was not found/);
    } else if (!T.cudaAvailable()) {
      expect(() => initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 })).toThrow(/no CUDA device is visible/);
    }
    expect(() => initProcessGroup({ backend: 'gloo' as never, rank: 0, worldSize: 1 })).toThrow(/unknown backend 'gloo'/);
  });

  // the run-time loader against stand-in libraries (a C compiler is all it needs)
  const cc = spawnSync('cc', ['--version']).status === 0;
  test.skipIf(!cc)('nccl loader: VLMOE_NCCL_LIB is found and its version read; a library without ncclSend is refused by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vlmoe-fake-nccl-'));
    const src = fileURLToPath(new URL('./fixtures/fake_nccl.c', import.meta.url));
    const build = (out: string, ...flags: string[]) => {
      const r = spawnSync('cc', ['-shared', '-fPIC', '-o', join(dir, out), src, ...flags], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return join(dir, out);
    };
    const probe = (lib: string) => {
      const code = `import('${pathToFileURL(join(here, '../dist/index.js')).href}').then((p) => {
        const info = p.ncclInfo();
        let init = '';
        try { p.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 }); } catch (e) { init = e.message; }
        console.log(JSON.stringify({ info, init }));
      })`;
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, VLMOE_NCCL_LIB: lib } });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { info: { available: boolean; version: number; path: string; reason: string }; init: string };
    };
    try {
      const good = probe(build('libnccl.so.2'));
      expect(good.info).toMatchObject({ available: true, version: 22105, path: join(dir, 'libnccl.so.2'), reason: '' });
      if (!T.cudaAvailable()) expect(good.init).toMatch(/'nccl' backend moves CUDA tensors, and no CUDA device is visible/);
      const old = probe(build('libnccl-old.so', '-DDROP_SEND'));
      expect(old.info.available).toBe(false);
      expect(old.info.reason).toMatch(/libnccl-old\.so has no ncclSend/);
      expect(old.init).toMatch(/needs NCCL: .*has no ncclSend/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('DeepSpeed batch-size arithmetic and config errors', () => {
    expect(resolveConfig({ train_batch_size: 32, train_micro_batch_size_per_gpu: 4 }, 4)).toMatchObject({ gradAccum: 2, microBatch: 4, trainBatchSize: 32 });
    expect(resolveConfig({ train_micro_batch_size_per_gpu: 2, gradient_accumulation_steps: 3 }, 2)).toMatchObject({ trainBatchSize: 12 });
    expect(resolveConfig({ train_batch_size: 16, gradient_accumulation_steps: 2 }, 4)).toMatchObject({ microBatch: 2 });
    expect(() => resolveConfig({ train_batch_size: 10, train_micro_batch_size_per_gpu: 4 }, 2)).toThrow(/not divisible/);
    expect(() => resolveConfig({ train_batch_size: 8, train_micro_batch_size_per_gpu: 2, gradient_accumulation_steps: 2 }, 4)).toThrow(/!= train_micro_batch_size_per_gpu 2 × gradient_accumulation_steps 2 × world size 4/);
    expect(() => resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 4 as never } }, 1)).toThrow(/zero_optimization.stage must be 0, 1, 2 or 3, got 4/);
    expect(resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 3 } }, 2)).toMatchObject({ stage: 3, persistenceThreshold: 1e5 });
    expect(() => resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 3, stage3_param_persistence_threshold: -1 } }, 2)).toThrow(/stage3_param_persistence_threshold must be ≥ 0, got -1/);
    expect(() => resolveConfig({ train_batch_size: 8, expert_parallel_size: 3 }, 4)).toThrow(/expert_parallel_size 3 does not divide the world size 4/);
    expect(resolveConfig({ train_batch_size: 8, bf16: { enabled: true } }, 1)).toMatchObject({ mixedPrecision: 'bfloat16', lossScale: null });
    expect(resolveConfig({ train_batch_size: 8, fp16: { enabled: true, initial_scale_power: 8 } }, 1)).toMatchObject({ mixedPrecision: 'float16', lossScale: { initialScalePower: 8, window: 1000, hysteresis: 2, minScale: 1 } });
    expect(() => resolveConfig({ train_batch_size: 8, bf16: { enabled: true }, fp16: { enabled: true } }, 1)).toThrow(/both set/);
    expect(() => resolveConfig({ train_batch_size: 8, fp16: { enabled: true, hysteresis: -1 } }, 1)).toThrow(/fp16.hysteresis must be a number ≥ 0/);
    expect(() => resolveConfig({}, 1)).toThrow(/give train_batch_size or train_micro_batch_size_per_gpu/);
  });

  test("optimizer types in any case, as DeepSpeed matches them; DeepSpeed's Adam decouples weight decay unless adam_w_mode is false; scheduler types exact", () => {
    const opt = (o: object) => resolveConfig({ train_batch_size: 8, optimizer: o } as never, 1, 'ds.json').optimizer;
    expect(opt({ type: 'adamw' }).type).toBe('AdamW');
    expect(opt({ type: 'ADAM', params: { adam_w_mode: false } })).toEqual({ type: 'Adam', params: { adam_w_mode: false } });
    expect(opt({ type: 'sgd', params: { lr: 0.1 } })).toEqual({ type: 'SGD', params: { lr: 0.1 } });
    expect(() => opt({ type: 'Adamw2' })).toThrow(/ds\.json: optimizer\.type 'Adamw2' is not one of Adam, AdamW, SGD \(any case\) \(did you mean 'AdamW'\?\)/);
    expect(() => opt({ type: 'AdamW', params: { adam_w_mode: false } })).toThrow(/adam_w_mode applies to type Adam only/);
    expect(() => resolveConfig({ train_batch_size: 8, scheduler: { type: 'warmupdecaylr', params: { total_num_steps: 9 } } } as never, 1, 'ds.json')).toThrow(
      /'scheduler\.type' must be one of "WarmupLR", "WarmupDecayLR", "WarmupCosineLR", got "warmupdecaylr" \(did you mean 'WarmupDecayLR'\?\)/,
    );
    // the update rule: 'Adam' (adam_w_mode default true) steps like AdamW, and like torch's Adam with adam_w_mode false
    const step = (type: string, extra: object) => {
      const model = new OneParam([1, -2, 3]);
      const pg = initProcessGroup({ backend: 'shm', rank: 0, worldSize: 1, name: `/vlmoe-test-${process.pid}-${type}-${Object.keys(extra).length}` });
      const engine = initialize({ model, processGroup: pg, config: { train_batch_size: 1, optimizer: { type, params: { lr: 0.1, weight_decay: 0.5, ...extra } } } as never }).engine;
      engine.backward(T.sum(T.mul(engine.forward(), T.tensor([1, 1, 1]))));
      engine.step();
      const out = Array.from(model.w.dataSync() as Float32Array);
      engine.destroy();
      pg.destroy();
      return out;
    };
    const decoupled = step('AdamW', {}), coupled = step('Adam', { adam_w_mode: false });
    expect(step('Adam', {})).toEqual(decoupled);
    expect(coupled).not.toEqual(decoupled);
  });

  test('every DeepSpeed config key is checked: misspelt keys name the nearest one, DeepSpeed keys we do not implement are refused, types are checked', () => {
    const bad = (c: object) => () => resolveConfig({ train_batch_size: 8, ...c } as never, 1, 'run.json: engine');
    // a misspelt key used to train silently at stage 0
    expect(bad({ zero_optimisation: { stage: 2 } })).toThrow(/^run\.json: engine: unknown key 'zero_optimisation' \(did you mean 'zero_optimization'\?\)/);
    expect(bad({ zero_optimization: { stgae: 2 } })).toThrow(/unknown key 'zero_optimization\.stgae' \(did you mean 'stage'\?\)/);
    expect(bad({ optimizer: { type: 'AdamW', params: { weight_decy: 0.1 } } })).toThrow(/unknown key 'optimizer\.params\.weight_decy' \(did you mean 'weight_decay'\?\)/);
    expect(bad({ Train_Batch_Size: 8 })).toThrow(/did you mean 'train_batch_size'/);
    expect(bad({ frobnicate: 1 })).toThrow(/unknown key 'frobnicate'; known: train_batch_size/);
    // DeepSpeed accepts these; this engine does not implement them: refused by name, never ignored
    expect(bad({ steps_per_print: 10 })).toThrow(/'steps_per_print' is a DeepSpeed key this engine does not implement; remove it/);
    expect(bad({ zero_optimization: { stage: 2, offload_param: { device: 'cpu' } } })).toThrow(/'zero_optimization\.offload_param' is a DeepSpeed key this engine does not implement/);
    expect(bad({ zero_optimization: { stage: 2, offload_optimizer: { device: 'nvme', nvme_path: '/tmp', pin_memory: true } } })).toThrow(/'zero_optimization\.offload_optimizer\.pin_memory' is a DeepSpeed key this engine does not implement/);
    // optimizer offload: stage 1-3, nvme needs its directory, nvme_path only with nvme
    expect(bad({ zero_optimization: { offload_optimizer: { device: 'nvme', nvme_path: '/tmp' } } })).toThrow(/offload_optimizer needs zero_optimization\.stage 1, 2 or 3 .*got stage 0/);
    expect(bad({ zero_optimization: { stage: 3, offload_optimizer: { device: 'nvme' } } })).toThrow(/device 'nvme' needs nvme_path/);
    expect(bad({ zero_optimization: { stage: 3, offload_optimizer: { device: 'nvme', nvme_path: '/etc/hostname' } } })).toThrow(/^run\.json: engine: zero_optimization\.offload_optimizer\.nvme_path '\/etc\/hostname' is not a directory: give/);
    expect(bad({ zero_optimization: { stage: 3, offload_optimizer: { device: 'cpu', nvme_path: '/tmp' } } })).toThrow(/nvme_path applies to device 'nvme' only \(got device 'cpu'\)/);
    expect(bad({ zero_optimization: { stage: 3, offload_optimizer: { device: 'disk' } } })).toThrow(/'zero_optimization\.offload_optimizer\.device' must be one of "none", "cpu", "nvme"/);
    expect(resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 2, offload_optimizer: { device: 'nvme', nvme_path: '/tmp' } } }, 1).offloadOptimizer).toEqual({ device: 'nvme', path: '/tmp' });
    expect(resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 0, offload_optimizer: { device: 'none' } } }, 1).offloadOptimizer).toBe(null);
    expect(bad({ fp16: { enabled: true, auto_cast: true } })).toThrow(/'fp16\.auto_cast' is a DeepSpeed key/);
    expect(bad({ scheduler: { type: 'WarmupLR', params: { warmup_type: 'log' } } })).toThrow(/'scheduler\.params\.warmup_type' is a DeepSpeed key/);
    // types and shapes
    expect(bad({ gradient_clipping: '1.0' })).toThrow(/'gradient_clipping' must be a number, got "1\.0"/);
    expect(bad({ zero_optimization: 2 })).toThrow(/'zero_optimization' must be a JSON object, got 2/);
    expect(bad({ zero_optimization: { overlap_comm: 'yes' } })).toThrow(/'zero_optimization\.overlap_comm' must be a boolean/);
    expect(bad({ scheduler: { type: 'WarmupDecayLR', params: { warmup_num_steps: 3 } } })).toThrow(/scheduler WarmupDecayLR needs params\.total_num_steps/);
    // a complete, valid config passes
    expect(resolveConfig({
      train_batch_size: 8, gradient_accumulation_steps: 2, gradient_clipping: 1, expert_parallel_size: 1,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-8, weight_decay: 0.01 } },
      scheduler: { type: 'WarmupCosineLR', params: { warmup_num_steps: 2, total_num_steps: 10, cos_min_ratio: 0.1 } },
      zero_optimization: { stage: 2, reduce_bucket_size: 1000, overlap_comm: false }, bf16: { enabled: false }, fp16: { enabled: false },
    }, 1)).toMatchObject({ stage: 2, gradAccum: 2, overlapComm: false });
  });
});
