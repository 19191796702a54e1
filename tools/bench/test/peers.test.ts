/**
 * The fairness machinery of the benchmarks (issue 21): each PyTorch peer is run at every thread
 * setting and each case keeps its best, and the OpenBLAS peer runs under each
 * OPENBLAS_CORETYPE in its own process with its results checked against float64. No timing
 * is asserted (speed is what the benchmarks report), only which run is picked and that the
 * settings really reach the peer.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as T from '@vlmoe/tensor';
import { PEER_SETTINGS, bestOverRuns, findPython, peerName, runPeer, runTorchBest, settingLabel, torchPython, type PeerBest } from '../src/torch.js';
import { ourThreadSettings, runChild } from '../src/report.js';

const run = (label: string, out: Record<string, unknown>): PeerBest['runs'][number] => ({ setting: { threads: null, openblasThreads: null }, label, out });

describe('best over settings', () => {
  it('PEER_SETTINGS: PyTorch default / 1 / 2 threads, each with OpenBLAS default and 1', () => {
    expect(PEER_SETTINGS).toHaveLength(6);
    expect(new Set(PEER_SETTINGS.map((s) => settingLabel(s))).size).toBe(6);
    expect(settingLabel({ threads: null, openblasThreads: 1 }, 4)).toBe('torch threads default (4), OPENBLAS_NUM_THREADS 1');
  });

  it('each timed key keeps its own lowest run; untimed, missing and non-numeric keys are left out', () => {
    const runs = [
      run('a', { add: 3, sum: 1, torch_version: '1.13', peak_rss_mb: 10, partial: 1 }),
      run('b', { add: 2, sum: 5, torch_version: '1.13', peak_rss_mb: 1 }),
      run('c', { add: 2, sum: 4, torch_version: '1.13', peak_rss_mb: 5, partial: 0 }),
    ];
    const best = bestOverRuns(runs, (k) => k !== 'peak_rss_mb');
    expect(best.values).toEqual({ add: 2, sum: 1 });
    expect(best.setting).toEqual({ add: 'b', sum: 'a' }); // a tie keeps the earlier run
    expect(best.from).toEqual({ add: 1, sum: 0 });
    expect(bestOverRuns([], () => true).values).toEqual({});
  });

  it('our thread settings: the pool default first, then 1', () => {
    const s = ourThreadSettings();
    expect(s[0]).toBe(T.nativeInfo().threads);
    expect(s).toContain(1);
    expect(new Set(s).size).toBe(s.length);
  });
});

describe.skipIf(!torchPython())('PyTorch peers (python3-torch installed)', () => {
  it('the settings reach the peer: PyTorch threads and OPENBLAS_NUM_THREADS', () => {
    const seen = runPeer('torch_ops.py', ['gemm', JSON.stringify({ threads: 1, shapes: [[8, 8, 8]] })], { OPENBLAS_NUM_THREADS: '1' });
    expect(seen).toMatchObject({ torch_threads: 1, openblas_num_threads: '1' });
    // undefined removes the variable: the library's default
    const dflt = runPeer('torch_ops.py', ['gemm', JSON.stringify({ threads: null, shapes: [[8, 8, 8]] })], { OPENBLAS_NUM_THREADS: undefined });
    expect(dflt.openblas_num_threads).toBe('default');
    expect(dflt.torch_threads).toBeGreaterThanOrEqual(1);
  });

  it('runTorchBest runs every setting and reports, per case, the minimum and where it came from', () => {
    const settings = [{ threads: 1, openblasThreads: 1 }, { threads: 2, openblasThreads: null }];
    const peer = runTorchBest('torch_ops.py', { shapes: [[16, 16, 16], [32, 32, 32]] }, { argv: ['gemm'], settings })!;
    expect(peer.runs.map((r) => [r.out.torch_threads, r.out.openblas_num_threads])).toEqual([[1, '1'], [2, 'default']]);
    for (const key of ['16x16x16', '32x32x32']) {
      const times = peer.runs.map((r) => r.out[key] as number);
      expect(peer.values[key]).toBe(Math.min(...times));
      expect(peer.runs[peer.from[key]!]!.label).toBe(peer.setting[key]);
      expect(peerName(peer, key)).toContain(peer.setting[key]!);
    }
    expect(peer.values.torch_threads).toBeUndefined();
    expect(peer.version).toMatch(/^\d+\.\d+/);
  });
});

describe.skipIf(!torchPython() || findPython(['torch', 'torchvision']) !== torchPython())('the PyTorch DataLoader peer (python3-torchvision installed)', () => {
  it('runs the torchvision transform through DataLoader workers over the shared COCO-mini JPEGs', () => {
    const dir = fileURLToPath(new URL('../../../../shared/data/coco-mini/train2017/', import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort().slice(0, 6).map((f) => dir + f);
    const out = runPeer('torch_data.py', [JSON.stringify({ files, count: 20, rounds: 2, workers: 2, batch: 8 })]);
    expect(out).toMatchObject({ images: 20, workers: 2 });
    expect(out.rounds).toHaveLength(2);
    expect(out.images_per_s).toBe(Math.max(...(out.rounds as number[])));
    // the checksum adds one pixel per batch (3 epochs incl. warm-up × 3 batches); Normalize(0.5, 0.5)
    // maps ToTensor's [0, 1] to [−1, 1]
    expect(Math.abs(out.checksum as number)).toBeLessThanOrEqual(9);
  });
});

describe.skipIf(!T.nativeInfo().blasAvailable)('the OpenBLAS peer in its own process', () => {
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  for (const coretype of ['Haswell', 'SkylakeX']) {
    it(`OPENBLAS_CORETYPE=${coretype}: the kernels it names, results within the float32 bound of a float64 reference`, () => {
      const args = { shapes: [[64, 48, 96]], reps: 1, minTime: 0.001 };
      const out = runChild<Record<string, number | string>>('gemm-blas-child', args, { script: main, env: { OPENBLAS_CORETYPE: coretype } });
      expect(String(out.core).toLowerCase()).toContain(coretype.toLowerCase());
      expect(out['64x48x96']).toBeGreaterThan(0);
      expect(out['64x48x96_err']).toBeGreaterThanOrEqual(0);
      expect(out['64x48x96_err']).toBeLessThanOrEqual(1);
    });
  }
});
