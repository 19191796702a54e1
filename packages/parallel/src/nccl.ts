/**
 * The `nccl` backend: NCCL (loaded at run time by the native addon, see native-cuda's
 * comm/nccl_loader.cpp for where it looks) moving CUDA tensors, with the same collectives as
 * shm and mpi. As torch's init_process_group('nccl') uses a TCPStore, the ranks first form a
 * CPU group — the store (shm on one machine, mpi under mpirun) — over which rank 0 shares
 * NCCL's unique id; subgroups make a store subgroup and a fresh NCCL communicator over it.
 * Collectives are queued on the device's stream and polled against the timeout; on expiry
 * the communicator is aborted and the call throws, naming the rank.
 */
import { native } from '@vlmoe/native-cuda';
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from './process_group.js';
import { NativeProcessGroup } from './native_process_group.js';

export class NcclProcessGroup extends NativeProcessGroup {
  readonly backend = 'nccl';
  private readonly cudaDevice: number;

  private constructor(id: number, private readonly store: ProcessGroup, cudaDevice: number, timeoutMs: number) {
    super(id, store.ranks, timeoutMs);
    this.cudaDevice = cudaDevice;
  }

  override get device(): string {
    return `cuda:${this.cudaDevice}`;
  }

  /** Collective over `store` (a CPU group, owned from now on): an NCCL communicator of the same ranks on cuda:`device`. */
  static create(store: ProcessGroup, device: number, timeoutMs: number): NcclProcessGroup {
    const id = store.rank === 0 ? T.tensor(Array.from(native.ncclUniqueId()), { dtype: 'uint8' }) : T.zeros([128], { dtype: 'uint8' });
    store.broadcast(id, 0);
    const bytes = Uint8Array.from(id.dataSync() as Uint8Array);
    id.dispose();
    return new NcclProcessGroup(native.commInitNccl(bytes, store.rank, store.size, device, timeoutMs), store, device, timeoutMs);
  }

  newGroup(ranks: readonly number[]): NcclProcessGroup | null {
    const sorted = this.checkRanks(ranks);
    const sub = this.store.newGroup(sorted);
    if (!sub) return null;
    return NcclProcessGroup.create(sub, this.cudaDevice, this.timeoutMs);
  }

  override destroy(): void {
    super.destroy();
    this.store.destroy();
  }
}
