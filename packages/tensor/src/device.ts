/** Devices are strings: 'cpu' or 'cuda:N' ('cuda' means 'cuda:0'). */
import { native } from '@vlmoe/native-cuda';

export type Device = string;

/** Native device code: -1 for the CPU, N for cuda:N. */
export function deviceCode(device: Device): number {
  if (device === 'cpu') return -1;
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`unknown device '${device}' (expected 'cpu' or 'cuda:N')`);
  const n = m[1] === undefined ? 0 : Number(m[1]);
  const count = native.info().cudaDevices;
  if (n >= count) {
    const why = native.info().cudaCompiled ? `${count} CUDA device(s) visible` : 'this build has no CUDA support';
    throw new Error(`device '${device}' is not available (${why})`);
  }
  return n;
}

export function normalizeDevice(device: Device): Device {
  if (device === 'cuda') return 'cuda:0';
  deviceCode(device);
  return device;
}

/** Whether CUDA tensors can be created in this process. */
export function cudaAvailable(): boolean {
  return native.info().cudaDevices > 0;
}
