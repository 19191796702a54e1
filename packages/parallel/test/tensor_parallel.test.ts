import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import * as T from '@vlmoe/tensor';
import { mpiAvailable, shardOf, splitTag, unshard } from '../src/index.js';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = fileURLToPath(new URL('./workers/tensor_parallel.mjs', import.meta.url));
// mpirun as root needs its consent variables; 4 ranks on 2 cores need oversubscription
const mpiEnv = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1' };
const mpiReady = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0 && mpiAvailable();

describe('shardOf / unshard (Megatron partition_dim and partition_stride)', () => {
  test('rank r holds block r of every chunk; unshard puts the shards back in order', () => {
    const full = T.arange(0, 24, 1, { dtype: 'float64' }).reshape(6, 4);
    // rows in 3 chunks (q, k, v) of 2, over 2 ranks: rank 0 holds rows 0, 2, 4; rank 1 rows 1, 3, 5
    const s0 = shardOf(full, { dim: 0, stride: 3 }, 0, 2), s1 = shardOf(full, { dim: 0, stride: 3 }, 1, 2);
    expect(s0.toArray()).toEqual([[0, 1, 2, 3], [8, 9, 10, 11], [16, 17, 18, 19]]);
    expect(s1.toArray()).toEqual([[4, 5, 6, 7], [12, 13, 14, 15], [20, 21, 22, 23]]);
    expect(unshard([s0, s1], { dim: 0, stride: 3 }).toArray()).toEqual(full.toArray());
    // columns, plain split over 4 ranks
    const cols = [0, 1, 2, 3].map((r) => shardOf(full, { dim: 1, stride: 1 }, r, 4));
    expect(cols[2]!.toArray()).toEqual([[2], [6], [10], [14], [18], [22]]);
    expect(unshard(cols, { dim: 1, stride: 1 }).toArray()).toEqual(full.toArray());
  });

  test('a plain split that does not divide pads the shards with zeros and unshard trims them', () => {
    const full = T.arange(1, 11, 1, { dtype: 'float64' }).reshape(5, 2);
    const tag = splitTag(5, 0, 4);
    expect(tag).toEqual({ dim: 0, stride: 1, full: 5 });
    const shards = [0, 1, 2, 3].map((r) => shardOf(full, tag, r, 4));
    expect(shards.map((s) => s.toArray())).toEqual([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [0, 0]], [[0, 0], [0, 0]]]);
    expect(unshard(shards, tag).toArray()).toEqual(full.toArray());
    expect(splitTag(6, 0, 3)).toEqual({ dim: 0, stride: 1 });
    expect(() => shardOf(full, splitTag(5, 0, 2, 3), 0, 2)).toThrow(/does not split into 3 chunk/);
  });

  test('a dim that does not split is an error naming the shape and the ranks', () => {
    const full = T.zeros([6, 4]);
    expect(() => shardOf(full, { dim: 0, stride: 3 }, 0, 4)).toThrow(/dim 0 of \[6, 4\] \(6\) does not split into 3 chunk\(s\) over 4 tensor-parallel ranks/);
    expect(() => shardOf(full, { dim: 2, stride: 1 }, 0, 2)).toThrow(/dim 2 is out of range/);
  });
});

describe('tensor-parallel layers vs their one-process twins (float64)', () => {
  const runs: [string, string[]][] = [
    ['1 rank', ['--nproc', '1']],
    ['TP 2', ['--nproc', '2']],
    ['TP 4', ['--nproc', '4']],
    ['TP 2 × DP 2 (4 ranks)', ['--nproc', '4', worker, '--tp', '2']],
    ['mpi: TP 4', ['--backend', 'mpi', '--nproc_per_node', '4']],
  ];
  for (const [name, args] of runs) {
    const mpi = args.includes('mpi');
    test.skipIf(mpi && !mpiReady)(`${name}: column/row linears (plain, gathered, q·k·v stride 3, scattered input, padded), vocab embedding and cross-entropy (divisible and padded vocabularies), attention and FFN with dropout in and out of the split regions — outputs and gradient shards`, () => {
      const argv = args.includes(worker) ? [launcher, ...args] : [launcher, ...args, worker];
      const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 180_000, env: mpi ? { ...process.env, ...mpiEnv } : process.env });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out).toBe(0);
      const rows = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { rank: number; tpSize: number; diffs: Record<string, number> });
      const n = Number(args[args.length - 1 - (args.includes('--tp') ? 3 : 0)]);
      expect(rows.length, out).toBe(n);
      for (const row of rows) {
        expect(row.tpSize).toBe(args.includes('--tp') ? 2 : n);
        // at P = 1 nothing is padded, so the padded and divisible checks share names
        expect(Object.keys(row.diffs).length).toBe(row.tpSize > 1 ? 50 : 44);
        for (const [check, d] of Object.entries(row.diffs)) expect(d, `rank ${row.rank}: ${check}`).toBeLessThan(1e-12);
      }
    });
  }
});
