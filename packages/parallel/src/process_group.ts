/**
 * The process-group interface, after torch.distributed: collectives on @vlmoe/tensor
 * tensors, in place where PyTorch's are. Every rank of a group must call the same
 * collectives in the same order. Every collective has a timeout; a rank that dies or stalls
 * makes the others fail with an error naming it (never a hang).
 */
import type { Tensor } from '@vlmoe/tensor';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** Handle of an async collective (torch's `Work`). */
export interface Work {
  /** Blocks until the collective is complete (rethrows its error). */
  wait(): void;
  isCompleted(): boolean;
}

export interface AsyncOption {
  /** Return a `Work` handle instead of completing before returning (torch's `async_op`). */
  async?: boolean;
}

export interface ProcessGroup {
  readonly backend: string;
  /** This process's rank in the group, and the group's size. */
  readonly rank: number;
  readonly size: number;
  /** Ranks of the world group that form this group (index = group rank). */
  readonly ranks: readonly number[];
  /** Where the tensors it moves live: 'cpu' (shm, mpi) or 'cuda:N' (nccl). */
  readonly device: string;

  /** In place: every rank ends with the reduction of every rank's `t`. */
  allReduce(t: Tensor, op?: ReduceOp): void;
  allReduce(t: Tensor, op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  /** In place: every rank ends with `root`'s `t`. */
  broadcast(t: Tensor, root: number): void;
  broadcast(t: Tensor, root: number, opts: AsyncOption & { async: true }): Work;
  /** `out` ([size · n, …], like torch's all_gather_into_tensor) ← every rank's `input` in rank order. */
  allGatherIntoTensor(out: Tensor, input: Tensor): void;
  allGatherIntoTensor(out: Tensor, input: Tensor, opts: AsyncOption & { async: true }): Work;
  /** Every rank's `input`, in rank order. */
  allGather(input: Tensor): Tensor[];
  /** `out` ← the reduction over ranks of block `rank` of `input` ([size · n, …] split along dim 0). */
  reduceScatterTensor(out: Tensor, input: Tensor, op?: ReduceOp): void;
  reduceScatterTensor(out: Tensor, input: Tensor, op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  /**
   * `out` ← the reduction over ranks of `inputList[rank]` (torch's reduce_scatter): block j of
   * every rank goes to rank j; blocks may differ in size (as MPI_Reduce_scatter's counts), but
   * every rank passes the same sizes. Consecutive views of one contiguous buffer are sent
   * without a copy.
   */
  reduceScatter(out: Tensor, inputList: readonly Tensor[], op?: ReduceOp): void;
  reduceScatter(out: Tensor, inputList: readonly Tensor[], op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  /**
   * Rows of `input` (dim 0) go to ranks in order, `inputSplitSizes[j]` rows to rank j
   * (equal splits when omitted); `out` receives `outputSplitSizes[j]` rows from rank j.
   */
  allToAllSingle(out: Tensor, input: Tensor, outputSplitSizes?: readonly number[], inputSplitSizes?: readonly number[]): void;
  allToAllSingle(out: Tensor, input: Tensor, outputSplitSizes: readonly number[] | undefined, inputSplitSizes: readonly number[] | undefined, opts: AsyncOption & { async: true }): Work;
  barrier(): void;
  /** Blocking point-to-point (group ranks). */
  send(t: Tensor, dst: number): void;
  recv(t: Tensor, src: number): void;
  /** Collective over this group: a group of the given ranks of this group (null on ranks outside it). */
  newGroup(ranks: readonly number[]): ProcessGroup | null;
  /** Makes every rank blocked in this group fail now with `why`. */
  abort(why: string): void;
  setTimeout(ms: number): void;
  destroy(): void;
}

/** A Work already complete (backends that finish the collective before returning). */
export class CompletedWork implements Work {
  wait(): void {}
  isCompleted(): boolean {
    return true;
  }
}
