import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = (name: string) => fileURLToPath(new URL(`./workers/${name}`, import.meta.url));

function train(nproc: number, config: object, steps = 5, extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), worker('train.mjs')], {
    encoding: 'utf8', env: { ...process.env, CONFIG: JSON.stringify(config), STEPS: String(steps), ...extraEnv }, timeout: 170_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  const rows = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { rank: number; maxDiff: number; stateBytes: number; numel: number; steps: number; freed: boolean; buckets: number[] | null; gradsHeld: number; skipped: number; released: number; stillReleased: number; params: number; probes: [string, number][]; prefetched: number; fileBytes: number; partitionBytes: number; buildLive: number; buildFile: number; fileAfterInit: number });
  expect(rows.length, out).toBe(nproc);
  for (const r of rows) expect(r.freed, 'engine.destroy() frees the optimiser state and the parameters').toBe(true);
  return rows;
}

const base = { train_batch_size: 8, optimizer: { type: 'AdamW', params: { lr: 1e-2, weight_decay: 0.01 } } };

describe('engine: data parallel and ZeRO give the single-process result', () => {
  for (const n of [1, 2, 4]) {
    for (const stage of [0, 1, 2] as const) {
      if (n === 1 && stage > 0) continue;
      test(`world ${n}, ZeRO-${stage}, 5 steps: parameters match 1 process on the global batch`, () => {
        const rows = train(n, { ...base, zero_optimization: { stage } });
        for (const r of rows) {
          expect(r.steps).toBe(5);
          expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
        }
        // optimiser state: 2 Adam moments of every parameter, or of this rank's 1/N partition
        const full = 2 * rows[0]!.numel * 4;
        for (const r of rows) {
          if (stage === 0) expect(r.stateBytes).toBe(full);
          else expect(r.stateBytes).toBe(2 * Math.ceil(r.numel / n) * 4);
        }
      });
    }
  }

  // ZeRO-3: the parameters are partitioned as well; the full tensors exist only around their module
  for (const n of [2, 4]) {
    test(`world ${n}, ZeRO-3, 5 steps: parameters match 1 process; full weights held only by the module running; Adam state is 1/N of each parameter`, () => {
      const rows = train(n, { ...base, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0 } });
      for (const r of rows) {
        expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
        // every parameter freed between steps, back to freed after gatheredParameters
        expect([r.released, r.stillReleased]).toEqual([r.params, r.params]);
        // at the probe (between the two linears) neither linear's weight is held, forward or backward
        expect(r.probes.length).toBe(10);
        for (const [phase, held] of r.probes) expect(held, `${phase}`).toBe(0);
        // per-parameter partitions: Adam's 2 moments of ⌈numel_p / N⌉ elements of each parameter
        expect(r.stateBytes).toBe(2 * [8 * 15, 15, 15 * 4, 4].reduce((a, k) => a + Math.ceil(k / n), 0) * 4);
        // overlap_comm (default): each gradient reduce-scattered and freed as soon as it is final
        expect(r.gradsHeld).toBe(0);
      }
    });
  }
  // ZeRO-Infinity's NVMe offload on a CPU run: partitions and optimiser state in scratch files
  for (const [n, stage, opt] of [[2, 1, 'AdamW'], [2, 2, 'AdamW'], [2, 3, 'AdamW'], [4, 3, 'SGD']] as const) {
    test(`offload_optimizer nvme, world ${n}, ZeRO-${stage}, ${opt}: parameters match 1 process; master weights and state are file-backed; no file left behind`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-offload-test-'));
      try {
        const optimizer = opt === 'SGD' ? { type: 'SGD', params: { lr: 1e-2, momentum: 0.9 } } : base.optimizer;
        const rows = train(n, { ...base, optimizer, gradient_clipping: 0.5, zero_optimization: { stage, stage3_param_persistence_threshold: 0, offload_optimizer: { device: 'nvme', nvme_path: dir } } });
        for (const r of rows) {
          expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
          expect(r.stateBytes).toBeGreaterThan(0);
          // every byte of the partitions and the state is in the files, none in ordinary memory
          expect(r.fileBytes).toBe(r.stateBytes + r.partitionBytes);
        }
        expect(fs.readdirSync(dir), 'the scratch files are unlinked as soon as they are mapped').toEqual([]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('zeroInit: the model is built without making a parameter, no rank ever makes one whole, each makes only its ZeRO-3 blocks (world 2 and 4, with and without offload), and it trains like an ordinary build', () => {
    for (const [n, offload] of [[2, true], [4, true], [4, false]] as const) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-zero-init-test-'));
      try {
        const zero = { stage: 3, stage3_param_persistence_threshold: 0, ...(offload ? { offload_optimizer: { device: 'nvme', nvme_path: dir } } : {}) };
        const rows = train(n, { ...base, zero_optimization: zero }, 5, { ZERO_INIT: offload ? dir : 'ram' });
        for (const r of rows) {
          expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
          // nothing made while building: the four parameters (8×15, 15, 15×4, 4 floats) are records
          expect(r.buildFile).toBe(0);
          expect(r.buildLive).toBe(0);
          // each rank wrote its blocks straight into its partition: no parameter was ever made whole
          expect(r.madeWhole).toBe(0);
          if (offload) expect(r.fileAfterInit).toBe(r.partitionBytes + r.stateBytes);
        }
        expect(fs.readdirSync(dir)).toEqual([]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  test('ZeRO-3 prefetch (stage3_prefetch_bucket_size): gathers ahead from the second step on, the same parameters as without; 0 turns it off', () => {
    for (const [n, prefetch] of [[2, undefined], [4, 1e6], [2, 0]] as const) {
      const rows = train(n, { ...base, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0, ...(prefetch === undefined ? {} : { stage3_prefetch_bucket_size: prefetch }) } });
      for (const r of rows) {
        expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
        // 4 more steps after the first; forward prefetches the second linear (60 + 4), backward the first (120 + 15)
        if (prefetch === 0) expect(r.prefetched).toBe(0);
        else expect(r.prefetched).toBe(4 * (64 + 135));
        // a prefetched weight is written into place only when its layer runs
        for (const [phase, held] of r.probes) expect(held, `${phase}`).toBe(0);
      }
    }
  });
  test('world 2, ZeRO-3 without overlap_comm: gradients reduce-scattered after backward, the same parameters', () => {
    for (const r of train(2, { ...base, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0, overlap_comm: false } })) {
      expect(r.maxDiff).toBeLessThan(2e-5);
      expect(r.gradsHeld).toBe(r.numel);
    }
  });
  test('world 4, ZeRO-3 with SGD momentum, accumulation 2 and clipping: parameters match', () => {
    const rows = train(4, { train_batch_size: 8, gradient_accumulation_steps: 2, gradient_clipping: 0.5, optimizer: { type: 'SGD', params: { lr: 0.1, momentum: 0.9 } }, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 0 } });
    for (const r of rows) expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
  });
  test('ZeRO-3 keeps parameters under stage3_param_persistence_threshold whole (the default 1e5 keeps this small model whole)', () => {
    for (const r of train(2, { ...base, zero_optimization: { stage: 3 } })) {
      expect(r.maxDiff).toBeLessThan(2e-5);
      expect(r.released).toBe(0);
    }
    for (const r of train(2, { ...base, zero_optimization: { stage: 3, stage3_param_persistence_threshold: 17 } })) {
      expect(r.maxDiff).toBeLessThan(2e-5);
      expect(r.released).toBe(2); // the two weights (120 and 60 elements); the biases (15, 4) stay
    }
  });

  // SGD moves by the gradient itself (Adam is blind to its scale): catches a wrong averaging
  for (const stage of [0, 1, 2] as const) {
    test(`world 4, ZeRO-${stage}, SGD with momentum: parameters match`, () => {
      const rows = train(4, { train_batch_size: 8, optimizer: { type: 'SGD', params: { lr: 0.1, momentum: 0.9 } }, zero_optimization: { stage } });
      for (const r of rows) expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
    });
  }

  // reduction overlapped with backward: many small buckets launched from gradient hooks
  // (all-reduced in stages 0 and 1, reduce-scattered with uneven blocks in stage 2)
  for (const [n, stage] of [[2, 0], [4, 0], [4, 1], [2, 2], [4, 2]] as const) {
    test(`overlap_comm, world ${n}, ZeRO-${stage}, a bucket per parameter: parameters match (same bits as the post-backward path)`, () => {
      const rows = train(n, { train_batch_size: 8, optimizer: { type: 'SGD', params: { lr: 0.1, momentum: 0.9 } }, zero_optimization: { stage, reduce_bucket_size: 1 } });
      for (const r of rows) {
        expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
        expect(r.buckets![0]!, 'a bucket per parameter').toBeGreaterThan(1);
      }
    });
  }

  test('overlap_comm off: the post-backward reduction, same parameters', () => {
    const rows = train(2, { ...base, zero_optimization: { stage: 0, overlap_comm: false } });
    for (const r of rows) {
      expect(r.buckets).toBeNull();
      expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
    }
  });

  test('overlap_comm with gradient accumulation: world 2, 2 micro steps, ZeRO-1, small buckets', () => {
    const rows = train(2, { ...base, gradient_accumulation_steps: 2, gradient_clipping: 0.5, zero_optimization: { stage: 1, reduce_bucket_size: 1 } });
    for (const r of rows) {
      expect(r.buckets![0]!).toBeGreaterThan(1);
      expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
    }
  });

  test('gradient accumulation and clipping: world 2, 2 micro steps per step, ZeRO-2', () => {
    const rows = train(2, { ...base, gradient_accumulation_steps: 2, gradient_clipping: 0.5, zero_optimization: { stage: 2 } });
    for (const r of rows) expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
  });

  // mixed precision: every rank's products in bfloat16 / float16 (float32 master weights), the
  // same as one process multiplying in that dtype; fp16 with a static loss scale of 2^8 (exact)
  for (const [n, stage, mp] of [[2, 0, 'bf16'], [4, 2, 'bf16'], [2, 1, 'fp16'], [4, 3, 'bf16'], [2, 3, 'fp16']] as const) {
    test(`${mp}, world ${n}, ZeRO-${stage}: parameters match one process multiplying in ${mp === 'bf16' ? 'bfloat16' : 'float16'}`, () => {
      // (the products' rounding moves the result by ~6e-4 (bf16) / ~6e-5 (fp16) from float32 here:
      // the tolerances tell the precisions apart; SGD, whose step follows the gradient)
      const cfgMp = mp === 'bf16' ? { bf16: { enabled: true } } : { fp16: { enabled: true, loss_scale: 256 } };
      const rows = train(n, { train_batch_size: 8, optimizer: { type: 'SGD', params: { lr: 0.1, momentum: 0.9 } }, ...cfgMp, zero_optimization: { stage, stage3_param_persistence_threshold: 0 } });
      for (const r of rows) {
        expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(mp === 'bf16' ? 2e-5 : 5e-6);
        expect(r.skipped).toBe(0);
      }
    });
  }

  // two buckets of two parameters each ([b2, W2] = 68 and [b1, W1] = 144 elements), partitions of
  // 53: blocks of every size, empty ones included, straddling the partition borders
  test('ZeRO-2 overlap, multi-parameter buckets across partition borders: world 4, 2 micro steps; the module holds no gradient after backward', () => {
    const rows = train(4, { ...base, gradient_accumulation_steps: 2, gradient_clipping: 0.5, zero_optimization: { stage: 2, reduce_bucket_size: 20 } });
    for (const r of rows) {
      expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
      expect(r.buckets).toEqual([2]);
      expect(r.gradsHeld, 'every bucket reduce-scattered and its .grads freed during backward').toBe(0);
    }
  });

  test('ZeRO-2 without overlap: post-backward reduce-scatter, same parameters; ZeRO-0 keeps every gradient', () => {
    for (const r of train(2, { ...base, zero_optimization: { stage: 2, overlap_comm: false } })) {
      expect(r.buckets).toBeNull();
      expect(r.maxDiff, JSON.stringify(r)).toBeLessThan(2e-5);
      expect(r.gradsHeld).toBe(r.numel);
    }
  });
});

describe('engine: wiring the expert-parallel layout into the model', () => {
  test('refuses what it cannot honour (no MoE layer, stray expert parameters, experts not divisible) before any step; hands the groups to a model that takes them', () => {
    const r = spawnSync(process.execPath, [launcher, '--nproc', '2', worker('wiring.mjs')], { encoding: 'utf8', timeout: 120_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out.match(/wiring ok/g)?.length, out).toBe(2);
    expect(r.status, out).toBe(0);
  });
});
