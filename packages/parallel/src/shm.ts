/**
 * The `shm` backend: ranks are processes on one machine exchanging through a POSIX
 * shared-memory segment managed by the native addon (packages/native-cuda/src/comm/shm.h);
 * needs no system package; reductions add in rank order, so every rank gets the same bits.
 * The collectives themselves are NativeProcessGroup's (native_process_group.ts).
 */
import { native, type ShmTransferStats } from '@vlmoe/native-cuda';
import { NativeProcessGroup } from './native_process_group.js';

export interface ShmOptions {
  /** Segment name ('/…'), the same on every rank of the group. */
  name: string;
  rank: number;
  size: number;
  /** Bytes per rank per exchange step (default 4 MiB; two slots per rank live in /dev/shm). */
  slotBytes?: number;
  timeoutMs?: number;
  /** World ranks of the members (default 0..size−1). */
  ranks?: readonly number[];
}

export class ShmProcessGroup extends NativeProcessGroup {
  readonly backend = 'shm';
  private groups = 0;
  private readonly name: string;
  private readonly slotBytes: number;

  constructor(o: ShmOptions) {
    const slotBytes = o.slotBytes ?? 4 << 20, timeoutMs = o.timeoutMs ?? 120_000;
    super(native.commInitShm(o.name, o.rank, o.size, slotBytes, timeoutMs), o.ranks, timeoutMs);
    this.name = o.name;
    this.slotBytes = slotBytes;
  }

  /**
   * Which path this rank's all-to-alls took so far (bytes received by each) and the peers'
   * blocks it maps now: tensors allocated after the group was created live in shareable
   * memory, which peers map once and then read with a memcpy; older ones are read with
   * cross-memory attach.
   */
  transferStats(): ShmTransferStats {
    return native.commShmStats(this.live);
  }

  newGroup(ranks: readonly number[]): ShmProcessGroup | null {
    const sorted = this.checkRanks(ranks);
    // every rank of this group calls newGroup in the same order (as in torch), so the
    // counter names the same segment everywhere
    const id = ++this.groups;
    this.barrier();
    const me = sorted.indexOf(this.rank);
    if (me < 0) return null;
    return new ShmProcessGroup({
      name: `${this.name}.${id}.${sorted.join('-')}`.slice(0, 200), rank: me, size: sorted.length,
      slotBytes: this.slotBytes, timeoutMs: this.timeoutMs, ranks: sorted.map((r) => this.ranks[r]!),
    });
  }
}
