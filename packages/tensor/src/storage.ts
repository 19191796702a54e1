/**
 * Reference-counted native storage. Tensors that view the same memory share one Storage;
 * the memory is freed when the last of them is disposed.
 */
import { native } from '@vlmoe/native-cuda';

/**
 * The values a storage will hold once its bytes exist (deferred initialisation, deferred.ts):
 * until something needs the bytes, a deferred storage holds no memory at all.
 */
export interface PendingValues {
  /** Allocates the storage's bytes; returns the native handle. */
  allocate(nbytes: number): number;
  /** Writes the values into `s`, whose handle is valid by now. */
  fill(s: Storage): void;
}

export class Storage {
  refs = 0;
  /** Bumped by every in-place write; autograd checks saved tensors against it. */
  version = 0;
  private view: ArrayBuffer | undefined;
  /** Whether V8 was told about these bytes (gcOwned). */
  private gcReported = false;
  /** Why the bytes are gone while the storage lives on (releaseData), or null. */
  private releasedWhy: string | null = null;
  /** Deferred: the values to write when the bytes are first needed (no bytes until then). */
  private _pending: PendingValues | null = null;

  constructor(
    private _handle: number,
    readonly nbytes: number,
    readonly device: string,
    readonly deviceCode: number,
  ) {}

  /** The native allocation. Throws, saying why, while the bytes are released (releaseData). */
  get handle(): number {
    if (this.releasedWhy !== null) throw new Error(this.releasedWhy);
    if (this._pending) {
      // a deferred storage: its bytes are made, and its values written, by the first use
      const p = this._pending;
      this._handle = p.allocate(this.nbytes);
      this._pending = null;
      p.fill(this);
    }
    return this._handle;
  }

  /**
   * A CPU storage of `nbytes` that holds no memory until its handle is first used; then
   * `pending` allocates it and writes its values (deferred initialisation: deferred.ts).
   */
  static deferred(nbytes: number, pending: PendingValues): Storage {
    const s = new Storage(0, nbytes, 'cpu', -1);
    s._pending = pending;
    return s;
  }

  /** The values still to be written (a deferred storage whose bytes do not exist yet), or null. */
  get pending(): PendingValues | null {
    return this.releasedWhy === null ? this._pending : null;
  }

  /** Replaces the values of a storage still deferred (an initialiser overwriting all of it). */
  setPending(p: PendingValues): void {
    if (!this.pending) throw new Error('Storage.setPending: the storage is not deferred');
    this._pending = p;
    this.version++;
  }

  /** Whether the bytes are released (releaseData) and not yet restored. */
  get dataReleased(): boolean {
    return this.releasedWhy !== null;
  }

  /**
   * Frees the bytes but keeps the storage (and every tensor on it) alive, as ZeRO-3 frees a
   * partitioned parameter's full tensor between uses; any use until `restoreData` throws `why`.
   */
  releaseData(why: string): void {
    if (this.releasedWhy !== null || this.refs === 0) return;
    if (this._pending) {
      // deferred: no bytes to free, and the values are no longer wanted
      this._pending = null;
      this.releasedWhy = why;
      return;
    }
    if (this.gcReported) {
      native.adjustExternal(-this.nbytes);
      this.gcReported = false;
    }
    native.free(this._handle, this.view);
    this.view = undefined;
    this.releasedWhy = why;
  }

  /** Allocates the bytes again after releaseData (contents undefined: the caller fills them). */
  restoreData(): void {
    if (this.releasedWhy === null) return;
    this._handle = native.alloc(this.deviceCode, this.nbytes);
    this.releasedWhy = null;
  }

  /**
   * A zero-filled CPU storage backed by a scratch file in `dir` (created, mapped and unlinked
   * at once: nothing stays on disk). Its pages belong to the page cache, which writes them back
   * and evicts them under memory pressure: storages that together exceed RAM still work.
   */
  static mapFile(nbytes: number, dir: string): Storage {
    return new Storage(native.mapFile(dir, nbytes), nbytes, 'cpu', -1);
  }

  static allocate(nbytes: number, device: string, deviceCode: number): Storage {
    return new Storage(native.alloc(deviceCode, nbytes), nbytes, device, deviceCode);
  }

  /** The CPU bytes, viewed without copying. Detached (length 0) once the storage is freed. */
  arrayBuffer(): ArrayBuffer {
    if (this.deviceCode !== -1) throw new Error(`storage is on ${this.device}: copy it to the CPU first (tensor.to('cpu'))`);
    return (this.view ??= native.arrayBuffer(this.handle));
  }

  retain(): void {
    this.refs++;
  }

  /**
   * Marks the storage as one the garbage collector may have to free (a tensor on it is left
   * to the FinalizationRegistry): its CPU bytes are reported to V8 as external memory, so
   * that forgotten tensors drive collections. Storages freed deterministically (scopes,
   * dispose()) are never reported: their churn would only trigger collections with nothing to
   * collect.
   */
  gcOwned(): void {
    if (this.gcReported || this.deviceCode !== -1 || this.refs === 0 || this._pending) return;
    this.gcReported = true;
    native.adjustExternal(this.nbytes);
  }

  release(): void {
    if (--this.refs === 0) {
      if (this.gcReported) native.adjustExternal(-this.nbytes);
      if (this.releasedWhy === null && !this._pending) native.free(this._handle, this.view);
      this._pending = null;
    }
  }
}

export interface MemoryReport {
  /** Bytes of live native storages and the peak since start, per device; `file`: live bytes of file-backed CPU storages (zerosFileBacked), not in `live`. */
  cpu: { live: number; peak: number; allocs: number; cached: number; file: number };
  cuda: { live: number; peak: number; allocs: number; cached: number; file: number }[];
}

/** Live and peak bytes per device, as counted by the addon. */
export function memory(): MemoryReport {
  return native.memory();
}

/** From now on `memory()`'s peaks start at the live bytes (torch.cuda.reset_peak_memory_stats), e.g. to measure one step. */
export function resetPeakMemory(): void {
  native.resetPeakMemory();
}

/**
 * Returns the blocks the allocators keep for reuse (CPU and CUDA) to the system, as
 * torch.cuda.empty_cache() does. The CPU cache is bounded (VLMOE_CPU_CACHE_MB) and evicts size
 * classes left unused for a while when a freed block does not fit, so a next job of other sizes
 * in the same process gets reuse either way; calling this between jobs (the trainer does after
 * each run) gives the memory back at once and lets the next job start from a clean cache.
 */
export function emptyCache(): void {
  native.emptyCache();
}
