import { describe, expect, test } from 'vitest';
import { initProcessGroup, ncclInfo, resolveInit, resolveConfig } from '../src/index.js';

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

  test('nccl: availability is reported; without the CUDA build the backend explains itself', () => {
    const n = ncclInfo();
    expect(typeof n.available).toBe('boolean');
    if (!n.available) expect(n.reason).toMatch(/NCCL|nccl/);
    expect(() => initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 })).toThrow(/'nccl' backend moves CUDA tensors/);
    expect(() => initProcessGroup({ backend: 'gloo' as never, rank: 0, worldSize: 1 })).toThrow(/unknown backend 'gloo'/);
  });

  test('DeepSpeed batch-size arithmetic and config errors', () => {
    expect(resolveConfig({ train_batch_size: 32, train_micro_batch_size_per_gpu: 4 }, 4)).toMatchObject({ gradAccum: 2, microBatch: 4, trainBatchSize: 32 });
    expect(resolveConfig({ train_micro_batch_size_per_gpu: 2, gradient_accumulation_steps: 3 }, 2)).toMatchObject({ trainBatchSize: 12 });
    expect(resolveConfig({ train_batch_size: 16, gradient_accumulation_steps: 2 }, 4)).toMatchObject({ microBatch: 2 });
    expect(() => resolveConfig({ train_batch_size: 10, train_micro_batch_size_per_gpu: 4 }, 2)).toThrow(/not divisible/);
    expect(() => resolveConfig({ train_batch_size: 8, train_micro_batch_size_per_gpu: 2, gradient_accumulation_steps: 2 }, 4)).toThrow(/!= train_micro_batch_size_per_gpu 2 × gradient_accumulation_steps 2 × world size 4/);
    expect(() => resolveConfig({ train_batch_size: 8, zero_optimization: { stage: 3 as never } }, 1)).toThrow(/stage 3 is not supported/);
    expect(() => resolveConfig({ train_batch_size: 8, expert_parallel_size: 3 }, 4)).toThrow(/expert_parallel_size 3 does not divide the world size 4/);
    expect(() => resolveConfig({ train_batch_size: 8, bf16: { enabled: true } }, 1)).toThrow(/bf16/);
    expect(() => resolveConfig({}, 1)).toThrow(/give train_batch_size or train_micro_batch_size_per_gpu/);
  });
});
