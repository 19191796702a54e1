/**
 * Kernel registry: (op, backend) -> implementation, chosen by the device of the operands
 * (tfjs habit). A backend is a file in this folder that registers a full kernel table;
 * adding a device adds a file, not `if`s in the ops.
 */
import type * as K from './kernels.js';

export type Kernels = typeof K;
export type BackendName = 'cpu' | 'cuda';

const tables: Partial<Record<BackendName, Kernels>> = {};

export function registerBackend(name: BackendName, table: Kernels): void {
  tables[name] = table;
}

/** The kernel table for a device string ('cpu' or 'cuda:N'). */
export function backendOf(device: string): Kernels {
  const t = device === 'cpu' ? tables.cpu : tables.cuda;
  if (!t) throw new Error(`no backend is registered for device '${device}'`);
  return t;
}
