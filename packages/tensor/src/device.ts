/** Devices are strings: 'cpu' or 'cuda:N' ('cuda' means 'cuda:0'). */
import { native } from '@vlmoe/native-cuda';

export type Device = string;

// Read once: the devices visible to a process do not change while it runs, and info()
// queries the driver on every call (it sat on the path of every CUDA tensor creation).
const { cudaDevices, cudaCompiled } = native.info();

/** Native device code: -1 for the CPU, N for cuda:N. */
export function deviceCode(device: Device): number {
  if (device === 'cpu') return -1;
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`unknown device '${device}' (expected 'cpu' or 'cuda:N')`);
  const n = m[1] === undefined ? 0 : Number(m[1]);
  if (n >= cudaDevices) {
    const why = cudaCompiled ? `${cudaDevices} CUDA device(s) visible` : 'this build has no CUDA support';
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
  return cudaDevices > 0;
}
