/**
 * The process group over a native communicator (native-cuda's comm/communicator.h: shm, mpi,
 * nccl): argument checks, strided tensors made contiguous and copied back, split sizes, async
 * work. The backends (shm.ts, mpi.ts, nccl.ts) only create the communicator and subgroups.
 * Collectives complete before returning, except `allReduce` and the reduce-scatters with
 * `{async: true}`, queued on the native communication thread (NativeWork); the other async
 * variants return a completed Work.
 */
import { argBlock as A, native } from '@vlmoe/native-cuda';
import * as T from '@vlmoe/tensor';
import { CompletedWork, type AsyncOption, type ProcessGroup, type ReduceOp, type Work } from './process_group.js';

const DTYPE_CODE = native.dtypes as Record<string, number>;
const OPS: Record<ReduceOp, number> = { sum: 0, avg: 1, max: 2, min: 3 };

function put(i: number, t: T.Tensor): number {
  A[i] = t.storage.handle;
  A[i + 1] = t.offset;
  return i + 2;
}


/** Runs fn on a contiguous version of t, copying results back when t is a strided view. */
function inPlace(t: T.Tensor, fn: (c: T.Tensor) => void): void {
  if (t.isContiguous()) return fn(t);
  const c = T.contiguous(t);
  fn(c);
  T.noGrad(() => T.copy_(t, c));
  c.dispose();
}

/**
 * An async collective queued on the native communication thread (native-cuda's
 * comm/async_queue): holds the tensors it reads and writes until `wait()`, then copies a
 * strided target back.
 */
export class NativeWork implements Work {
  private finished = false;
  constructor(private readonly ticket: number, private readonly buffers: T.Tensor[], private readonly finish?: () => void) {}
  wait(): void {
    if (this.finished) return;
    try {
      native.commWait(this.ticket);
    } finally {
      this.finished = true;
    }
    this.finish?.();
    this.buffers.length = 0;
  }
  isCompleted(): boolean {
    return this.finished || native.commDone(this.ticket);
  }
}

/** The collectives over a native communicator; subclasses create the communicator and subgroups. */
export abstract class NativeProcessGroup implements ProcessGroup {
  abstract readonly backend: string;
  readonly rank: number;
  readonly size: number;
  readonly ranks: readonly number[];
  protected id: number;
  protected timeoutMs: number;

  protected constructor(id: number, ranks: readonly number[] | undefined, timeoutMs: number) {
    this.id = id;
    const [rank, size] = native.commInfo(id);
    this.rank = rank;
    this.size = size;
    this.ranks = ranks ? [...ranks] : Array.from({ length: size }, (_, i) => i);
    this.timeoutMs = timeoutMs;
  }

  abstract newGroup(ranks: readonly number[]): ProcessGroup | null;

  /** Where this group's tensors live: 'cpu' (shm, mpi) or 'cuda:N' (nccl). */
  get device(): string {
    return 'cpu';
  }

  protected checkTensor(op: string, t: T.Tensor): void {
    t.check(op);
    if (t.device !== this.device)
      throw new Error(`${op}: the ${this.backend} backend of this group moves tensors on ${this.device}, got one on ${t.device}${this.device === 'cpu' ? ' (nccl is for CUDA tensors)' : ' (shm and mpi are for CPU tensors)'}`);
    if (!(t.dtype in DTYPE_CODE)) throw new TypeError(`${op}: unsupported dtype ${t.dtype}`);
  }

  protected checkRanks(ranks: readonly number[]): number[] {
    const sorted = [...ranks];
    if (!sorted.length || new Set(sorted).size !== sorted.length || sorted.some((r) => !(Number.isInteger(r) && r >= 0 && r < this.size)))
      throw new Error(`newGroup: ranks must be distinct group ranks in [0, ${this.size}), got [${ranks.join(', ')}]`);
    return sorted;
  }

  protected get live(): number {
    if (this.id < 0) throw new Error('process group: destroyed');
    return this.id;
  }

  allReduce(t: T.Tensor, op?: ReduceOp): void;
  allReduce(t: T.Tensor, op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  allReduce(t: T.Tensor, op: ReduceOp = 'sum', opts?: AsyncOption): void | Work {
    this.checkTensor('allReduce', t);
    if (!(op in OPS)) throw new RangeError(`allReduce: op must be 'sum', 'avg', 'max' or 'min', got '${String(op)}'`);
    if (op === 'avg' && t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`allReduce: 'avg' needs a floating tensor, got ${t.dtype}`);
    if (opts?.async) {
      // runs on the communication thread; `t` (or its contiguous copy) must live until wait()
      const c = t.isContiguous() ? t : T.contiguous(t);
      A[0] = c.numel;
      put(1, c);
      const ticket = native.commAllReduce(this.live, DTYPE_CODE[c.dtype]!, OPS[op], 1)!;
      return new NativeWork(ticket, [t, c], c === t ? undefined : () => {
        T.noGrad(() => T.copy_(t, c));
        c.dispose();
      });
    }
    inPlace(t, (c) => {
      A[0] = c.numel;
      put(1, c);
      native.commAllReduce(this.live, DTYPE_CODE[c.dtype]!, OPS[op]);
    });
  }

  broadcast(t: T.Tensor, root: number): void;
  broadcast(t: T.Tensor, root: number, opts: AsyncOption & { async: true }): Work;
  broadcast(t: T.Tensor, root: number, opts?: AsyncOption): void | Work {
    this.checkTensor('broadcast', t);
    if (!(Number.isInteger(root) && root >= 0 && root < this.size)) throw new RangeError(`broadcast: root ${root} is outside [0, ${this.size})`);
    inPlace(t, (c) => {
      A[0] = c.numel;
      put(1, c);
      native.commBroadcast(this.live, DTYPE_CODE[c.dtype]!, root);
    });
    if (opts?.async) return new CompletedWork();
  }

  allGatherIntoTensor(out: T.Tensor, input: T.Tensor): void;
  allGatherIntoTensor(out: T.Tensor, input: T.Tensor, opts: AsyncOption & { async: true }): Work;
  allGatherIntoTensor(out: T.Tensor, input: T.Tensor, opts?: AsyncOption): void | Work {
    this.checkTensor('allGather', input);
    this.checkTensor('allGather', out);
    if (out.dtype !== input.dtype) throw new TypeError(`allGather: out is ${out.dtype}, input ${input.dtype}`);
    if (out.numel !== input.numel * this.size) throw new Error(`allGather: out has ${out.numel} elements, expected size · input = ${this.size} · ${input.numel}`);
    const ic = T.contiguous(input);
    if (opts?.async) {
      // runs on the communication thread: the buffers stay referenced until wait()
      const oc = out.isContiguous() ? out : T.contiguous(out);
      A[0] = ic.numel;
      put(put(1, ic), oc);
      const ticket = native.commAllGather(this.live, DTYPE_CODE[ic.dtype]!, 1)!;
      return new NativeWork(ticket, [out, oc, input, ic], () => {
        if (oc !== out) {
          T.noGrad(() => T.copy_(out, oc));
          oc.dispose();
        }
        if (ic !== input) ic.dispose();
      });
    }
    inPlace(out, (oc) => {
      A[0] = ic.numel;
      put(put(1, ic), oc);
      native.commAllGather(this.live, DTYPE_CODE[ic.dtype]!);
    });
    if (ic !== input) ic.dispose();
  }

  allGather(input: T.Tensor): T.Tensor[] {
    const out = T.empty([this.size * input.numel], { dtype: input.dtype, device: input.device });
    this.allGatherIntoTensor(out, input);
    return T.split(out.reshape(this.size, ...input.shape), 1, 0).map((p) => p.reshape(...input.shape));
  }

  reduceScatterTensor(out: T.Tensor, input: T.Tensor, op?: ReduceOp): void;
  reduceScatterTensor(out: T.Tensor, input: T.Tensor, op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  reduceScatterTensor(out: T.Tensor, input: T.Tensor, op: ReduceOp = 'sum', opts?: AsyncOption): void | Work {
    this.checkTensor('reduceScatter', input);
    if (input.numel !== out.numel * this.size) throw new Error(`reduceScatter: input has ${input.numel} elements, expected size · out = ${this.size} · ${out.numel}`);
    const ic = T.contiguous(input);
    return this.reduceScatterFlat(out, ic, new Array<number>(this.size).fill(out.numel), op, opts, ic === input ? undefined : ic);
  }

  reduceScatter(out: T.Tensor, inputList: readonly T.Tensor[], op?: ReduceOp): void;
  reduceScatter(out: T.Tensor, inputList: readonly T.Tensor[], op: ReduceOp | undefined, opts: AsyncOption & { async: true }): Work;
  reduceScatter(out: T.Tensor, inputList: readonly T.Tensor[], op: ReduceOp = 'sum', opts?: AsyncOption): void | Work {
    if (inputList.length !== this.size) throw new Error(`reduceScatter: inputList has ${inputList.length} tensors, expected one per rank (${this.size})`);
    inputList.forEach((t, j) => {
      this.checkTensor(`reduceScatter (inputList[${j}])`, t);
      if (t.dtype !== inputList[0]!.dtype) throw new TypeError(`reduceScatter: inputList[${j}] is ${t.dtype}, inputList[0] ${inputList[0]!.dtype}`);
    });
    const counts = inputList.map((t) => t.numel);
    if (out.numel !== counts[this.rank]) throw new Error(`reduceScatter: out has ${out.numel} elements, inputList[${this.rank}] (this rank's block) ${counts[this.rank]}`);
    // consecutive contiguous views of one storage go as they are; anything else is concatenated
    const first = inputList[0]!;
    let at = first.offset;
    const consecutive = inputList.every((t) => {
      const ok = t.numel === 0 || (t.storage === first.storage && t.offset === at && t.isContiguous());
      at += t.numel;
      return ok;
    });
    if (consecutive) return this.reduceScatterFlat(out, first, counts, op, opts);
    const flat = T.noGrad(() => T.cat(inputList.map((t) => t.reshape(-1)), 0));
    return this.reduceScatterFlat(out, flat, counts, op, opts, flat);
  }

  /**
   * `base`: its storage holds the blocks (counts[j] elements for rank j) one after another from
   * base.offset on; `owned`: a temporary to free once the collective is done.
   */
  private reduceScatterFlat(out: T.Tensor, base: T.Tensor, counts: number[], op: ReduceOp, opts: AsyncOption | undefined, owned?: T.Tensor): void | Work {
    this.checkTensor('reduceScatter', out);
    if (!(op in OPS)) throw new RangeError(`reduceScatter: op must be 'sum', 'avg', 'max' or 'min', got '${String(op)}'`);
    if (out.dtype !== base.dtype) throw new TypeError(`reduceScatter: out is ${out.dtype}, input ${base.dtype}`);
    if (op === 'avg' && out.dtype !== 'float32' && out.dtype !== 'float64') throw new TypeError(`reduceScatter: 'avg' needs a floating tensor, got ${out.dtype}`);
    const oc = out.isContiguous() ? out : T.contiguous(out);
    counts.forEach((c, j) => (A[j] = c));
    put(put(this.size, base), oc);
    const finish = () => {
      if (oc !== out) {
        T.noGrad(() => T.copy_(out, oc));
        oc.dispose();
      }
      owned?.dispose();
    };
    if (opts?.async) {
      // runs on the communication thread: the buffers stay referenced until wait()
      const ticket = native.commReduceScatter(this.live, DTYPE_CODE[base.dtype]!, OPS[op], 1)!;
      return new NativeWork(ticket, [out, oc, base], finish);
    }
    try {
      native.commReduceScatter(this.live, DTYPE_CODE[base.dtype]!, OPS[op]);
    } finally {
      finish();
    }
  }

  allToAllSingle(out: T.Tensor, input: T.Tensor, outputSplitSizes?: readonly number[], inputSplitSizes?: readonly number[]): void;
  allToAllSingle(out: T.Tensor, input: T.Tensor, outputSplitSizes: readonly number[] | undefined, inputSplitSizes: readonly number[] | undefined, opts: AsyncOption & { async: true }): Work;
  allToAllSingle(out: T.Tensor, input: T.Tensor, outputSplitSizes?: readonly number[], inputSplitSizes?: readonly number[], opts?: AsyncOption): void | Work {
    this.checkTensor('allToAllSingle', input);
    this.checkTensor('allToAllSingle', out);
    if (out.dtype !== input.dtype) throw new TypeError(`allToAllSingle: out is ${out.dtype}, input ${input.dtype}`);
    const P = this.size;
    const rowIn = input.ndim ? input.numel / (input.shape[0] || 1) : 1;
    const rowOut = out.ndim ? out.numel / (out.shape[0] || 1) : 1;
    const rowsIn = input.ndim ? input.shape[0]! : 1, rowsOut = out.ndim ? out.shape[0]! : 1;
    const splits = (given: readonly number[] | undefined, rows: number, what: string): number[] => {
      if (given) {
        if (given.length !== P || given.some((v) => !(Number.isInteger(v) && v >= 0))) throw new Error(`allToAllSingle: ${what} must be ${P} integers ≥ 0, got [${given.join(', ')}]`);
        const sum = given.reduce((a, b) => a + b, 0);
        if (sum !== rows) throw new Error(`allToAllSingle: ${what} sum to ${sum} but the tensor has ${rows} rows`);
        return [...given];
      }
      if (rows % P !== 0) throw new Error(`allToAllSingle: ${rows} rows do not split evenly over ${P} ranks; give ${what}`);
      return new Array<number>(P).fill(rows / P);
    };
    const si = splits(inputSplitSizes, rowsIn, 'inputSplitSizes');
    const so = splits(outputSplitSizes, rowsOut, 'outputSplitSizes');
    if (rowIn !== rowOut && rowsIn > 0 && rowsOut > 0) throw new Error(`allToAllSingle: rows of input (${rowIn} elements) and out (${rowOut}) differ`);
    const ic = T.contiguous(input);
    inPlace(out, (oc) => {
      let i = 0;
      for (const v of si) A[i++] = v * rowIn;
      for (const v of so) A[i++] = v * rowOut;
      put(put(i, ic), oc);
      native.commAllToAll(this.live, DTYPE_CODE[ic.dtype]!);
    });
    if (ic !== input) ic.dispose();
    if (opts?.async) return new CompletedWork();
  }

  barrier(): void {
    native.commBarrier(this.live);
  }

  private p2p(t: T.Tensor, peer: number, recv: boolean): void {
    const op = recv ? 'recv' : 'send';
    this.checkTensor(op, t);
    if (!(Number.isInteger(peer) && peer >= 0 && peer < this.size) || peer === this.rank) throw new RangeError(`${op}: peer ${peer} must be another rank in [0, ${this.size})`);
    inPlace(t, (c) => {
      A[0] = c.numel;
      put(1, c);
      native.commSendRecv(this.live, DTYPE_CODE[c.dtype]!, peer, recv ? 1 : 0);
    });
  }

  send(t: T.Tensor, dst: number): void {
    this.p2p(t, dst, false);
  }

  recv(t: T.Tensor, src: number): void {
    this.p2p(t, src, true);
  }

  abort(why: string): void {
    if (this.id >= 0) native.commAbort(this.id, why);
  }

  setTimeout(ms: number): void {
    if (!(ms > 0)) throw new RangeError(`setTimeout: expected a positive number of ms, got ${ms}`);
    this.timeoutMs = ms;
    native.commSetTimeout(this.live, ms);
  }

  destroy(): void {
    if (this.id >= 0) native.commClose(this.id);
    this.id = -1;
  }
}
