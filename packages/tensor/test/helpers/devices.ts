/**
 * Devices the kernel suites run on: the CPU always, and cuda:0 — run when a GPU is visible,
 * otherwise listed as skipped (with one notice per file), so a CPU-only run shows what it
 * did not check. Tolerances are per device and dtype (fp32 sums run in another order on the
 * GPU; TF32, when a user allows it, would need `tf32`).
 */
import { describe } from 'vitest';
import * as T from '../../src/index.js';

export const DEVICES = ['cpu', 'cuda:0'] as const;
export type TestDevice = (typeof DEVICES)[number];

export const hasDevice = (d: TestDevice): boolean => d === 'cpu' || T.cudaAvailable();

let noticed = false;
/** describe() once per device; the cuda block is skipped, visibly, without a GPU. */
export function describeDevices(name: string, body: (device: TestDevice) => void): void {
  if (!T.cudaAvailable() && !noticed) {
    noticed = true;
    console.log(`[devices] ${name}: no CUDA device visible — its cuda:0 tests are skipped (${T.nativeInfo().cudaCompiled ? 'CUDA build, no GPU' : 'build without CUDA'})`);
  }
  for (const device of DEVICES) describe.skipIf(!hasDevice(device))(`${name} [${device}]`, () => body(device));
}

/** Relative tolerance of a float result on a device. */
export function tol(device: TestDevice, dtype: 'float32' | 'float64', kind: 'fp32' | 'tf32' | 'bf16' = 'fp32'): number {
  if (dtype === 'float64') return 1e-12;
  if (kind === 'bf16') return 1e-2;
  if (kind === 'tf32') return 3e-4;
  return device === 'cpu' ? 2e-6 : 1e-5;
}
