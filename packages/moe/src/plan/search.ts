/**
 * The planner's hardware presets and its layout search: every layout of a world (TP dividing
 * the devices of a node and the heads, EP dividing the experts and the data-parallel size,
 * ZeRO 0-3, offload for stages 1-3, micro batches dividing the global batch), estimated, the
 * ones that fit ranked by step time.
 */
import { estimate, type PlanEstimate, type PlanHardware, type PlanLayout } from './estimate.js';
import type { PlanShape } from './shape.js';

/** Per device: memory, peak FLOP/s (fp32 / bf16), bandwidths in bytes/s (NVLink / InfiniBand per GPU; shm on our CPU machines). */
export const HARDWARE: Readonly<Record<string, PlanHardware>> = {
  h100: { name: 'NVIDIA H100 SXM 80 GB, 8 a node (NVLink 4, 400 Gb/s InfiniBand a GPU)', devicesPerNode: 8, memory: 80e9, peakFp32: 67e12, peakHalf: 989e12, intraBandwidth: 450e9, interBandwidth: 50e9, memoryBandwidth: 3.35e12, diskBandwidth: 5e9 },
  'a100-80': { name: 'NVIDIA A100 SXM 80 GB, 8 a node (NVLink 3, 200 Gb/s InfiniBand a GPU)', devicesPerNode: 8, memory: 80e9, peakFp32: 19.5e12, peakHalf: 312e12, intraBandwidth: 300e9, interBandwidth: 25e9, memoryBandwidth: 2.0e12, diskBandwidth: 3e9 },
  cpu: { name: 'our CPU machine: 24 GiB and ~413 GFLOP/s (2 cores) shared by 4 ranks, shm', devicesPerNode: 4, memory: (24 * 2 ** 30) / 4, peakFp32: 413e9 / 4, peakHalf: 413e9 / 4, intraBandwidth: 5e9, interBandwidth: 1e9, memoryBandwidth: 10e9, diskBandwidth: 1e9 },
};

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/** Every valid layout for `world` ranks and a global batch, estimated; the ones that fit first, fastest first (then the larger micro batch). */
export function searchLayouts(s: PlanShape, hw: PlanHardware, world: number, globalBatch: number, base: Pick<PlanLayout, 'precision' | 'optimizer' | 'persistenceThreshold' | 'prefetch' | 'maxLive' | 'activationCheckpointing'>): PlanEstimate[] {
  const E = s.config.moe?.numExperts ?? 1;
  const out: PlanEstimate[] = [];
  for (const tp of divisors(Math.min(world, hw.devicesPerNode))) {
    if (world % tp !== 0 || s.config.heads % tp !== 0) continue;
    const dp = world / tp;
    if (globalBatch % dp !== 0) continue;
    for (const ep of divisors(dp)) {
      if (ep > 1 && (!s.config.moe || E % ep !== 0)) continue;
      for (const stage of [0, 1, 2, 3] as const) {
        for (const offload of stage >= 1 ? (['none', 'nvme'] as const) : (['none'] as const)) {
          for (const microBatch of divisors(globalBatch / dp)) {
            const gradAccum = globalBatch / dp / microBatch;
            out.push(estimate(s, { ...base, world, tp, ep, stage, offload, microBatch, gradAccum }, hw));
          }
        }
      }
    }
  }
  // ties (the roofline does not see a micro batch's size): the larger micro batch, which uses a device better
  return out.sort((a, b) => Number(b.fits) - Number(a.fits) || a.time.step - b.time.step || b.layout.microBatch - a.layout.microBatch);
}
