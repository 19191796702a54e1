/**
 * `initProcessGroup`: the world group of this process, from the launcher's environment
 * (torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; or
 * mpirun's OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE), like torch.distributed's
 * init_process_group.
 */
import { native } from '@vlmoe/native-cuda';
import type { ProcessGroup } from './process_group.js';
import { MpiProcessGroup } from './mpi.js';
import { NcclProcessGroup } from './nccl.js';
import { ShmProcessGroup } from './shm.js';

export type Backend = 'shm' | 'mpi' | 'nccl';

export interface InitOptions {
  /** Default: VLMOE_BACKEND, else 'shm'. */
  backend?: Backend;
  rank?: number;
  worldSize?: number;
  /** Collective timeout (default VLMOE_COMM_TIMEOUT_MS or 120 000 ms). */
  timeoutMs?: number;
  /** shm: bytes per rank per exchange step (default VLMOE_SHM_SLOT_BYTES or 4 MiB). */
  slotBytes?: number;
  /** shm: segment name shared by the ranks (default VLMOE_SHM_NAME, else derived from MASTER_ADDR:MASTER_PORT). */
  name?: string;
  /** nccl: the CUDA ordinal of this rank (default LOCAL_RANK modulo the visible devices). */
  device?: number;
}

function envInt(names: string[], what: string): number | undefined {
  for (const n of names) {
    const v = process.env[n];
    if (v === undefined || v === '') continue;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`initProcessGroup: ${n}='${v}' is not a valid ${what}`);
    return x;
  }
  return undefined;
}

/** What this process would join, read from options and the environment (no side effects). */
export function resolveInit(o: InitOptions = {}): Required<Omit<InitOptions, 'device'>> & { device?: number } {
  const rank = o.rank ?? envInt(['RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'], 'rank') ?? 0;
  const worldSize = o.worldSize ?? envInt(['WORLD_SIZE', 'OMPI_COMM_WORLD_SIZE', 'PMI_SIZE'], 'world size') ?? 1;
  if (!(worldSize >= 1)) throw new Error(`initProcessGroup: world size must be ≥ 1, got ${worldSize}`);
  if (!(rank >= 0 && rank < worldSize)) throw new Error(`initProcessGroup: rank ${rank} is outside [0, ${worldSize})`);
  const backend = (o.backend ?? (process.env.VLMOE_BACKEND as Backend | undefined) ?? 'shm') as Backend;
  const timeoutMs = o.timeoutMs ?? envInt(['VLMOE_COMM_TIMEOUT_MS'], 'timeout') ?? 120_000;
  const slotBytes = o.slotBytes ?? envInt(['VLMOE_SHM_SLOT_BYTES'], 'slot size') ?? 4 << 20;
  const addr = process.env.MASTER_ADDR ?? '127.0.0.1', port = process.env.MASTER_PORT ?? '29500';
  const name = o.name ?? process.env.VLMOE_SHM_NAME ?? `/vlmoe-${addr.replace(/[^A-Za-z0-9]/g, '_')}-${port}`;
  return { backend, rank, worldSize, timeoutMs, slotBytes, name, device: o.device };
}

export function initProcessGroup(o: InitOptions = {}): ProcessGroup {
  const r = resolveInit(o);
  switch (r.backend) {
    case 'shm':
      return new ShmProcessGroup({ name: r.name, rank: r.rank, size: r.worldSize, slotBytes: r.slotBytes, timeoutMs: r.timeoutMs });
    case 'mpi': {
      const pg = MpiProcessGroup.world(r.timeoutMs);
      if (o.rank !== undefined && o.rank !== pg.rank) throw new Error(`initProcessGroup: rank ${o.rank} was asked for, but MPI says this process is rank ${pg.rank}`);
      return pg;
    }
    case 'nccl': {
      // what is missing is reported before any peer is waited for
      const n = native.ncclInfo();
      if (!n.available) throw new Error(`initProcessGroup: the 'nccl' backend needs NCCL: ${n.reason}`);
      const devices = native.info().cudaDevices;
      if (devices < 1) throw new Error(`initProcessGroup: the 'nccl' backend moves CUDA tensors, and no CUDA device is visible${native.info().cudaCompiled ? '' : ' (this build has no CUDA support)'}; use 'shm' or 'mpi' for CPU tensors`);
      const device = r.device ?? (envInt(['LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK'], 'local rank') ?? r.rank) % devices;
      if (!(Number.isInteger(device) && device >= 0 && device < devices)) throw new Error(`initProcessGroup: device cuda:${device} is not available (${devices} CUDA device(s) visible)`);
      // the store that shares NCCL's unique id: mpi under mpirun (any number of machines), else shm
      const store = process.env.OMPI_COMM_WORLD_SIZE ? MpiProcessGroup.world(r.timeoutMs) : new ShmProcessGroup({ name: `${r.name}.nccl`, rank: r.rank, size: r.worldSize, slotBytes: 1 << 16, timeoutMs: r.timeoutMs });
      return NcclProcessGroup.create(store, device, r.timeoutMs);
    }
    default:
      throw new Error(`initProcessGroup: unknown backend '${String(r.backend)}' (shm, mpi, nccl)`);
  }
}

/** Whether NCCL loads on this machine (libnccl.so.2, searched as the backend does), its version code and path, or why not. */
export function ncclInfo(): { available: boolean; version: number; path: string; reason: string } {
  return native.ncclInfo();
}
