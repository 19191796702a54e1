/**
 * `npm run bench -- zero` from its command (VLMOE_BENCH_QUICK=1: the tiny preset): the figures
 * that hold whatever the machine's speed — ZeRO-3's model states per rank are 1/N of ZeRO-0's
 * (up to the padding of each parameter's blocks), ZeRO-1's are the parameters plus 1/N of the
 * optimiser state and partitions, and every stage trains the same losses.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../results/zero.json', import.meta.url));

describe('bench zero', () => {
  it('runs from its command; ZeRO-3 holds 1/N of the model states per rank', () => {
    const r = spawnSync(process.execPath, [MAIN, 'zero'], { encoding: 'utf8', env: { ...process.env, VLMOE_BENCH_QUICK: '1' }, maxBuffer: 1 << 24, timeout: 600_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const res = JSON.parse(readFileSync(RESULTS, 'utf8')) as { preset: string; runs: { stage: number; prefetch: number; offload: boolean; world: number; modelStateBytes: number; fileBytes: number; stepPeakBytes: number; loss: number }[] };
    expect(res.preset).toBe('tiny');
    for (const N of [2, 4]) {
      const at = (stage: number) => res.runs.find((x) => x.world === N && x.stage === stage && !x.offload && (stage < 3 || x.prefetch > 0))!;
      const noPrefetch = res.runs.find((x) => x.world === N && x.stage === 3 && x.prefetch === 0)!;
      expect(Math.abs(noPrefetch.loss - at(3).loss)).toBe(0);
      const z0 = at(0), z1 = at(1), z3 = at(3);
      // ZeRO-0: parameters + 2 Adam moments = 3 × the parameter bytes; ZeRO-1: parameters + 3/N of them
      const paramBytes = z0.modelStateBytes / 3;
      expect(Math.abs(z1.modelStateBytes - (paramBytes + (3 * paramBytes) / N)) / z0.modelStateBytes).toBeLessThan(0.005);
      expect(Math.abs((z3.modelStateBytes * N) / z0.modelStateBytes - 1)).toBeLessThan(0.005);
      // without prefetch (with it, DeepSpeed's default 5e7 elements holds this whole small model ahead)
      expect(noPrefetch.stepPeakBytes).toBeLessThan(z0.stepPeakBytes);
      expect(noPrefetch.modelStateBytes).toBe(z3.modelStateBytes);
      // offload_optimizer nvme: the partitions and Adam moments (3/N of the parameter bytes) in files, the same steps
      for (const s of [2, 3]) {
        const off = res.runs.find((x) => x.world === N && x.stage === s && x.offload)!;
        expect(off.loss, `ZeRO-${s} + offload on ${N} ranks`).toBe(at(s).loss);
        expect(Math.abs(off.fileBytes - (3 * paramBytes) / N) / paramBytes).toBeLessThan(0.005);
        // left in RAM: ZeRO-2 the full parameters, ZeRO-3 nothing between steps
        expect(off.modelStateBytes).toBe(s === 2 ? paramBytes : 0);
      }
      for (const s of [1, 2, 3]) expect(Math.abs(at(s).loss - z0.loss) / Math.abs(z0.loss), `ZeRO-${s} loss on ${N} ranks`).toBeLessThan(1e-5);
    }
  });
});
