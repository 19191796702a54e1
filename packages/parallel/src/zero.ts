/**
 * The ZeRO optimizer (DeepSpeed's `DeepSpeedZeroOptimizer`): it owns how parameters are
 * grouped, flattened and partitioned, how their gradients are reduced at each stage, how the
 * partitions are stepped and gathered back, and how all of it is read and written in the
 * global layout of a checkpoint. The engine drives it; checkpoints talk to it.
 *
 * - Parameter groups: the dense parameters, reduced over the data-parallel group (the whole
 *   world without tensor parallelism), and the expert parameters (tag `expert`), reduced over
 *   the expert-data-parallel group (the ranks that hold the same experts). Gradients are
 *   summed over the group and scaled by the caller (1 / data-parallel size: for experts
 *   DeepSpeed's scaling, the all-to-all already brought every rank's tokens to the expert).
 *   Tensor-parallel shards (tag `tensorParallel`) sit in the dense group like any parameter:
 *   each rank's partition spans its own shards. Experts replicated over the tensor-parallel
 *   group that each of its ranks runs on its own share of the tokens (tag
 *   `tensorParallelTokens`, set by the MoE layer) form a third group, reduced over the
 *   expert-data × tensor-parallel ranks: every rank of it holds a part of their gradient.
 * - Stage 0: the optimiser steps every parameter; gradients are all-reduced in buckets.
 * - Stage 1: each rank keeps optimiser state for its 1/N of a group's flattened parameters
 *   (N = the group's size), steps that partition (a flat `shard` parameter) and the
 *   partitions are all-gathered back into the parameters.
 * - Stage 2: as stage 1, and the gradients are reduce-scattered, so a rank only ever
 *   receives its partition's gradient.
 * - Stage 3: every parameter is partitioned on its own (rank r holds block r of each, padded:
 *   `perParam`), the full tensors of those above the persistence threshold are freed, and
 *   `gatherParams` / `releaseParams` bring them back around each module (zero3.ts drives
 *   them); with `overlapComm` each gradient is reduce-scattered into its block as soon as it
 *   is final and freed; `step` gathers nothing back but the parameters kept whole.
 * - With `overlapComm` the buckets are reduced during backward (overlap.ts).
 * - Global layout (checkpoints): every parameter by name, expert tensors with all E experts
 *   (gathered over the expert-parallel group), tensor-parallel shards put back together
 *   (gathered over the tensor-parallel group), optimiser state per parameter (partitions
 *   gathered and cut back into parameters); `loadGlobalState` takes the same at any layout.
 */
import * as T from '@vlmoe/tensor';
import { checkOffloadDirectory } from './config.js';
import type { ParallelGroups } from './groups.js';
import { OverlappedReducer } from './overlap.js';
import { broadcastInitial } from './zero_init.js';
import { shardOf, tensorParallelTag, unshard } from './tensor_parallel/shard.js';
import type { ProcessGroup, Work } from './process_group.js';

export type Optim = T.optim.Optimizer<T.optim.BaseHyper>;

/** Parameters reduced over one process group, optionally flattened and partitioned. */
export interface ParamGroup {
  kind: 'dense' | 'expert';
  names: string[];
  params: T.nn.Parameter[];
  /** Group the gradients are summed over. */
  group: ProcessGroup;
  /** Flat offsets: params[i] occupies [offsets[i], offsets[i] + numel). */
  offsets: number[];
  numel: number;
  /** Elements per rank partition (numel padded up to a multiple of the group size). */
  chunk: number;
  /** Stages 1, 2: this rank's partition as a trainable flat tensor (the optimiser's only parameter of the group). */
  shard: T.nn.Parameter | null;
  /**
   * Stage 3: every parameter is split on its own (DeepSpeed's per-parameter partitions): rank r
   * holds elements [r·sizes[i], (r+1)·sizes[i]) of params[i] (zero-padded past its end) at
   * partOffsets[i] of its partition, so one parameter is gathered with one equal-block
   * all-gather; the group's flat space is rank-major ([size, chunk]). Null: each rank holds one
   * contiguous range of the flat space (stages 1, 2; `offsets`).
   */
  perParam: { sizes: number[]; partOffsets: number[] } | null;
}

export interface ZeroOptions {
  stage: 0 | 1 | 2 | 3;
  /** Stage 3: parameters with fewer elements stay whole on every rank (DeepSpeed's stage3_param_persistence_threshold). */
  persistenceThreshold?: number;
  /** Gradient bucket size in elements. */
  bucketElements: number;
  /** Reduce buckets during backward as they fill. */
  overlapComm: boolean;
  /** Builds the optimiser over the tensors it steps (the parameters, or the partitions). */
  makeOptimizer(params: T.Tensor[]): Optim;
  /**
   * Where the partitions (the fp32 master weights) and the optimiser state live (stages 1-3):
   * 'nvme': in scratch files under `path` (zerosFileBacked), paged by the kernel, never held in
   * RAM as a whole; 'cpu': host memory (on a CPU run that is where they are anyway). Null: as the parameters.
   */
  offloadOptimizer?: { device: 'cpu' } | { device: 'nvme'; path: string } | null;
}

/** A model's state in the global layout (collective: every rank gets the same). */
export interface GlobalState {
  /** Parameters by name; expert tensors hold all experts. */
  params: [string, T.Tensor][];
  /** Optimiser tensors as ['<param>::<key>', tensor]. */
  optimizer: [string, T.Tensor][];
  /** Optimiser scalars per parameter name (e.g. Adam's step). */
  scalars: Record<string, Record<string, number>>;
}

/** Where a stage-3 parameter lives: its group and index there. */
interface Placement {
  g: ParamGroup;
  i: number;
}

/** A stage-3 all-gather of some parameters of one group: its buffers and, when asynchronous, its Work. */
interface GatherPart {
  g: ParamGroup;
  idx: number[];
  width: number;
  send: T.Tensor;
  all: T.Tensor;
  work: Work | null;
}

/** A prefetch in flight: its all-gathers and the parameters they bring. */
interface Prefetch {
  parts: GatherPart[];
  params: T.nn.Parameter[];
}

export class ZeroOptimizer {
  readonly stage: 0 | 1 | 2 | 3;
  readonly paramGroups: ParamGroup[];
  readonly optimizer: Optim;
  private readonly overlap: OverlappedReducer | null;
  private readonly bucketElements: number;
  /** Stage 3: every parameter's group and index; the partitioned ones (the rest persist whole). */
  private readonly placement = new Map<T.nn.Parameter, Placement>();
  readonly partitioned = new Set<T.nn.Parameter>();
  /** Stage 3: parameters whose gather is in flight (prefetchParams), and the prefetch bringing each. */
  private readonly inflight = new Map<T.nn.Parameter, Prefetch>();
  /** Stage 3: elements gathered ahead so far (prefetchParams). */
  prefetchedElements = 0;
  /**
   * Stage 3 with overlap_comm: each parameter's gradient is reduce-scattered into its block of
   * the partition's gradient as soon as it is final (its post-accumulate-grad hook: the order
   * follows the graph, the same on every rank) and freed at once; parameters that got no
   * gradient in a backward go at its end, in parameter order.
   */
  private readonly s3: { order: Placement[]; done: Set<T.nn.Parameter>; grads: Map<ParamGroup, T.Tensor>; removers: (() => void)[] } | null = null;
  /** Optimiser offload to files (offloadOptimizer 'nvme'): makes the partitions' and the state's zero tensors there; null: ordinary memory. */
  private readonly offloadZeros: ((shape: readonly number[], dtype: T.DType) => T.Tensor) | null = null;

  constructor(named: [string, T.nn.Parameter][], readonly groups: ParallelGroups, o: ZeroOptions) {
    if (!named.length) throw new Error('initialize: the model has no parameters');
    this.stage = o.stage;
    this.bucketElements = o.bucketElements;
    const off = o.offloadOptimizer ?? null;
    if (off && this.stage < 1) throw new Error(`zero_optimization.offload_optimizer needs stage 1, 2 or 3 (got stage ${this.stage})`);
    if (off?.device === 'cpu') {
      const onDevice = named.find(([, p]) => p.device !== 'cpu');
      if (onDevice) throw new Error(`zero_optimization.offload_optimizer device 'cpu' with parameters on ${onDevice[1].device} ('${onDevice[0]}') is not implemented: host-side master weights for device parameters need a GPU run to be built and tested; use device 'none' (or 'nvme' on a CPU run)`);
    }
    if (off?.device === 'nvme') {
      const dir = off.path;
      checkOffloadDirectory(dir, 'initialize');
      this.offloadZeros = (shape, dtype) => T.zerosFileBacked(shape, dir, { dtype });
    }
    const dense = named.filter(([, p]) => !p.tags.expert), expert = named.filter(([, p]) => p.tags.expert);
    const mk = (kind: 'dense' | 'expert', list: [string, T.nn.Parameter][], group: ProcessGroup): ParamGroup => {
      const offsets: number[] = [];
      let n = 0;
      for (const [, p] of list) {
        offsets.push(n);
        n += p.numel;
      }
      if (this.stage === 3) {
        // per-parameter partitions: rank r's partition is its block of every parameter, in order
        const N = group.size, sizes = list.map(([, p]) => Math.ceil(p.numel / N)), partOffsets: number[] = [];
        let c = 0;
        for (const k of sizes) {
          partOffsets.push(c);
          c += k;
        }
        return { kind, names: list.map(([k]) => k), params: list.map(([, p]) => p), group, offsets, numel: n, chunk: c, shard: null, perParam: { sizes, partOffsets } };
      }
      return { kind, names: list.map(([k]) => k), params: list.map(([, p]) => p), group, offsets, numel: n, chunk: Math.ceil(n / group.size), shard: null, perParam: null };
    };
    this.paramGroups = [mk('dense', dense, groups.dataParallel)];
    // experts each tensor-parallel rank runs on its own share of the tokens: summed over that group too
    const tokenSplit = expert.filter(([, p]) => p.tags.tensorParallelTokens && groups.tensorParallelSize > 1);
    const own = expert.filter((e) => !tokenSplit.includes(e));
    if (own.length) this.paramGroups.push(mk('expert', own, groups.expertDataParallel));
    if (tokenSplit.length) this.paramGroups.push(mk('expert', tokenSplit, groups.expertDataTensorParallel));
    // every rank starts from rank 0's dense parameters and its expert-data-parallel peers' experts
    // (parameters not made yet — zeroInit — and recorded alike on every rank stay unmade)
    for (const g of this.paramGroups) broadcastInitial(g.group, g.params);
    if (this.stage >= 1) {
      for (const g of this.paramGroups) {
        const like = g.params[0]!;
        const part = this.offloadZeros ? this.offloadZeros([g.chunk], like.dtype) : T.noGrad(() => T.zeros([g.chunk], { dtype: like.dtype, device: like.device }));
        if (g.perParam) {
          // stage 3: this rank's block of each parameter, one parameter at a time (no full copy of the group)
          const pp = g.perParam, r = g.group.rank;
          g.params.forEach((p, i) => T.scope(() => T.noGrad(() => {
            const c = pp.sizes[i]!, len = Math.min(c, p.numel - r * c);
            // a parameter not made yet (zeroInit) makes this block only
            if (len > 0) T.nn.materializeRange(part.narrow(0, pp.partOffsets[i]!, len), p, r * c);
          })));
        } else {
          const flat = this.flatten(g, (p) => p);
          const { lo, hi } = this.range(g);
          if (hi > lo) T.scope(() => T.noGrad(() => { T.copy_(part.narrow(0, 0, hi - lo), flat.narrow(0, lo, hi - lo)); }));
          flat.dispose();
        }
        g.shard = new T.nn.Parameter(part);
        part.dispose(); // the parameter holds the storage now
      }
      this.optimizer = o.makeOptimizer(this.paramGroups.map((g) => g.shard!));
      // offloaded: the state is made in the files now, never in RAM
      if (this.offloadZeros) for (const g of this.paramGroups) this.optimizer.initState(g.shard!, (like) => this.offloadZeros!(like.shape, like.dtype));
    } else {
      this.optimizer = o.makeOptimizer(named.map(([, p]) => p));
    }
    if (this.stage === 3) {
      // the partitions hold the values now: free the full tensors of all but the small parameters
      const threshold = o.persistenceThreshold ?? 0;
      for (const g of this.paramGroups) g.params.forEach((p, i) => {
        this.placement.set(p, { g, i });
        if (p.numel >= threshold && g.group.size > 1) this.partitioned.add(p);
      });
      this.releaseParams(this.partitioned);
    }
    const reduces = this.paramGroups.some((g) => g.group.size > 1);
    this.overlap = o.overlapComm && reduces && this.stage < 3 ? new OverlappedReducer(this.paramGroups, o.bucketElements, this.stage === 2) : null;
    if (this.stage === 3 && o.overlapComm && reduces) {
      const order: Placement[] = [];
      for (const g of this.paramGroups) for (let i = g.params.length - 1; i >= 0; i--) if (g.params[i]!.requiresGrad) order.push({ g, i });
      const s3 = { order, done: new Set<T.nn.Parameter>(), grads: new Map<ParamGroup, T.Tensor>(), removers: [] as (() => void)[] };
      for (const at of order) s3.removers.push(at.g.params[at.i]!.registerPostAccumulateGradHook((p) => {
        s3.done.add(p as T.nn.Parameter);
        this.reduceScatterParam(at);
      }));
      this.s3 = s3;
    }
  }

  /** Stage 3: reduce-scatters one parameter's gradient (zeros without one) into its block of the group's partition gradient, and frees it. */
  private reduceScatterParam({ g, i }: Placement): void {
    const s3 = this.s3!, p = g.params[i]!, N = g.group.size, c = g.perParam!.sizes[i]!;
    T.noGrad(() => T.scope(() => {
      let flat = p.grad ? p.grad.reshape(-1) : T.zeros([p.numel], { dtype: p.dtype, device: p.device });
      if (c * N > p.numel) flat = T.cat([flat, T.zeros([c * N - p.numel], { dtype: p.dtype, device: p.device })], 0);
      const out = T.empty([c], { dtype: p.dtype, device: p.device });
      g.group.reduceScatterTensor(out, T.contiguous(flat), 'sum');
      let acc = s3.grads.get(g);
      if (!acc) {
        acc = T.keep(T.zeros([g.chunk], { dtype: p.dtype, device: p.device }));
        s3.grads.set(g, acc);
      }
      T.add_(acc.narrow(0, g.perParam!.partOffsets[i]!, c), out);
    }));
    p.zeroGrad();
  }

  /**
   * Stage 3: gathers the full tensors of the given partitioned parameters whose data is
   * released (one all-gather per parameter group of the partitions' blocks, written into the
   * parameters' storage). The values are those of the last step, as when they were released,
   * so the storage's version is kept (autograd's check of saved tensors stays quiet).
   */
  gatherParams(params: Iterable<T.nn.Parameter>): void {
    const todo: T.nn.Parameter[] = [];
    for (const p of params) {
      const pending = this.inflight.get(p);
      if (pending) this.completePrefetch(pending);
      if (this.partitioned.has(p) && p.storage.dataReleased) todo.push(p);
    }
    if (todo.length) this.gatherInto(todo);
  }

  /**
   * Stage 3: starts gathering the given released partitioned parameters asynchronously (on the
   * communication thread) and returns how many elements it gathers; `gatherParams` completes it
   * (or `completePrefetches`). Every rank must prefetch the same parameters in the same order.
   */
  prefetchParams(params: Iterable<T.nn.Parameter>): number {
    const todo: T.nn.Parameter[] = [];
    for (const p of params) if (this.partitioned.has(p) && p.storage.dataReleased && !this.inflight.has(p)) todo.push(p);
    if (!todo.length) return 0;
    const pending = { parts: this.issueGather(todo, true), params: todo };
    for (const p of todo) this.inflight.set(p, pending);
    const n = todo.reduce((a, p) => a + p.numel, 0);
    this.prefetchedElements += n;
    return n;
  }

  /** Stage 3: completes every prefetch still in flight (their parameters end gathered). */
  completePrefetches(): void {
    for (const pending of new Set(this.inflight.values())) this.completePrefetch(pending);
  }

  private completePrefetch(pending: Prefetch): void {
    for (const p of pending.params) this.inflight.delete(p);
    for (const part of pending.parts) this.unpack(part);
  }

  /** Stage 3: the full values of the given parameters from the partitions (one all-gather per group). */
  private gatherInto(params: Iterable<T.nn.Parameter>): void {
    for (const part of this.issueGather(params, false)) this.unpack(part);
  }

  /** One all-gather per parameter group of the given parameters' partition blocks (async: on the communication thread). */
  private issueGather(params: Iterable<T.nn.Parameter>, async: boolean): GatherPart[] {
    const byGroup = new Map<ParamGroup, number[]>();
    for (const p of params) {
      const at = this.placement.get(p)!;
      const list = byGroup.get(at.g) ?? [];
      if (!list.includes(at.i)) list.push(at.i);
      byGroup.set(at.g, list);
    }
    const parts: GatherPart[] = [];
    for (const [g, idx] of byGroup) {
      idx.sort((a, b) => a - b);
      const N = g.group.size, pp = g.perParam!;
      const width = idx.reduce((a, i) => a + pp.sizes[i]!, 0);
      T.noGrad(() => {
        // in a scope: the narrowed views of the partition go with it (a view left to the collector keeps a file-backed partition mapped)
        const send = T.scope(() => T.keep(T.contiguous(idx.length === 1 ? g.shard!.narrow(0, pp.partOffsets[idx[0]!]!, width) : T.cat(idx.map((i) => g.shard!.narrow(0, pp.partOffsets[i]!, pp.sizes[i]!)), 0))));
        const all = T.keep(T.empty([N * width], { dtype: g.shard!.dtype, device: g.shard!.device }));
        const work = async ? g.group.allGatherIntoTensor(all, send, { async: true }) : (g.group.allGatherIntoTensor(all, send), null);
        parts.push({ g, idx, width, send, all, work });
      });
    }
    return parts;
  }

  /** Waits for a gather and writes the full values into the parameters' storage (its version kept: the values are the last step's). */
  private unpack({ g, idx, width, send, all, work }: GatherPart): void {
    work?.wait();
    const N = g.group.size, pp = g.perParam!;
    T.noGrad(() => T.scope(() => {
      const blocks = all.reshape(N, width);
      let at = 0;
      for (const i of idx) {
        const p = g.params[i]!, c = pp.sizes[i]!;
        const full = T.contiguous(blocks.narrow(1, at, c)).reshape(-1).narrow(0, 0, p.numel).reshape(...p.shape);
        at += c;
        const version = p.storage.version;
        p.storage.restoreData();
        T.copy_(p, full);
        p.storage.version = version;
      }
    }));
    send.dispose();
    all.dispose();
  }

  /** Stage 3: frees the full tensors of the given partitioned parameters (their partitions hold the values). */
  releaseParams(params: Iterable<T.nn.Parameter>): void {
    for (const p of params) {
      if (!this.partitioned.has(p)) continue;
      const { g, i } = this.placement.get(p)!;
      p.storage.releaseData(`'${g.names[i]}' is a ZeRO-3 partitioned parameter and is not gathered here: it is gathered for its module's forward and backward (or use the engine's gatheredParameters)`);
    }
  }

  /** Writes parameter i's values `v` (its shape or flat) into `flat`, a buffer of the group's flat space. */
  private place(g: ParamGroup, i: number, v: T.Tensor, flat: T.Tensor): void {
    const p = g.params[i]!;
    if (!g.perParam) {
      // views in a scope: left to the enclosing one (or the collector) they would keep `flat` alive
      T.scope(() => {
        T.copy_(flat.narrow(0, g.offsets[i]!, p.numel), v.reshape(-1));
      });
      return;
    }
    const N = g.group.size, c = g.perParam.sizes[i]!;
    T.scope(() => {
      let src = v.reshape(-1);
      if (c * N > p.numel) src = T.cat([src, T.zeros([c * N - p.numel], { dtype: src.dtype, device: src.device })], 0);
      T.copy_(flat.reshape(N, g.chunk).narrow(1, g.perParam!.partOffsets[i]!, c), src.reshape(N, c));
    });
  }

  /** Parameter i's values (its shape) out of `flat`, a buffer of the group's flat space. */
  private take(g: ParamGroup, i: number, flat: T.Tensor): T.Tensor {
    const p = g.params[i]!;
    if (!g.perParam) return flat.narrow(0, g.offsets[i]!, p.numel).reshape(...p.shape);
    const N = g.group.size, c = g.perParam.sizes[i]!;
    return T.contiguous(flat.reshape(N, g.chunk).narrow(1, g.perParam.partOffsets[i]!, c)).reshape(-1).narrow(0, 0, p.numel).reshape(...p.shape);
  }

  /** Gradient buckets per parameter group when reduction overlaps backward (else null). */
  get overlapBuckets(): number[] | null {
    return this.overlap ? this.overlap.bucketCounts : null;
  }

  /** This rank's partition [lo, hi) of a group's flat space (clipped to the parameters). */
  private range(g: ParamGroup): { lo: number; hi: number } {
    const r = g.group.rank;
    // stage 3's flat space is [size, chunk] with every parameter padded: nothing to clip
    if (g.perParam) return { lo: r * g.chunk, hi: (r + 1) * g.chunk };
    return { lo: Math.min(g.numel, r * g.chunk), hi: Math.min(g.numel, (r + 1) * g.chunk) };
  }

  /** Before a backward: on the accumulation boundary, the buckets start reducing as gradients finish. */
  beginBackward(boundary: boolean): void {
    if (boundary) this.overlap?.begin();
    this.s3?.done.clear();
  }

  /** After a backward (also a failed one): buckets whose parameters got no gradient go now. */
  endBackward(boundary: boolean): void {
    if (boundary) this.overlap?.finishBackward();
    // stage 3: every micro step's gradients go into the partitions; those still waiting go now, in order
    if (this.s3) {
      for (const at of this.s3.order) if (!this.s3.done.has(at.g.params[at.i]!)) this.reduceScatterParam(at);
      this.s3.done.clear();
    }
  }

  /** Concatenation of f(param) for the group's params (zeros where f gives null), flat, padded to chunk · size. */
  private flatten(g: ParamGroup, f: (p: T.nn.Parameter) => T.Tensor | null): T.Tensor {
    return T.noGrad(() => {
      const out = T.zeros([g.chunk * g.group.size], { dtype: g.params[0]!.dtype, device: g.params[0]!.device });
      g.params.forEach((p, i) => {
        const v = f(p);
        if (v) this.place(g, i, v, out);
      });
      return out;
    });
  }

  /** All-reduces a group's gradients in place (stages 0, 1 without overlap): buckets in parameter order. */
  private allReduceGrads(g: ParamGroup, scale: number): void {
    T.noGrad(() => {
      let bucket: T.nn.Parameter[] = [];
      let size = 0;
      const flush = () => {
        if (!bucket.length) return;
        // a scope frees the bucket's flat buffer here, not when the caller's scope ends
        T.scope(() => {
          const flat = T.cat(bucket.map((p) => p.grad!.reshape(-1)), 0);
          g.group.allReduce(flat, 'sum');
          T.mul_(flat, scale);
          let off = 0;
          for (const p of bucket) {
            T.copy_(p.grad!, flat.narrow(0, off, p.numel).reshape(...p.shape));
            off += p.numel;
          }
        });
        bucket = [];
        size = 0;
      };
      for (const p of g.params) {
        if (!p.grad) p.grad = T.keep(T.zeros(p.shape.slice(), { dtype: p.dtype, device: p.device }));
        bucket.push(p);
        size += p.numel;
        if (size >= this.bucketElements) flush();
      }
      flush();
    });
  }

  /**
   * Sums every group's gradients over its group and multiplies them by `scale`: into the
   * parameters' `.grad` (stage 0) or into this rank's partition's `.grad` (stages 1, 2, 3).
   */
  reduceGradients(scale: number): void {
    for (const g of this.paramGroups) {
      if (this.s3) {
        // stage 3: reduce-scattered parameter by parameter during backward
        const part = this.s3.grads.get(g) ?? T.keep(T.zeros([g.chunk], { dtype: g.params[0]!.dtype, device: g.params[0]!.device }));
        this.s3.grads.delete(g);
        T.noGrad(() => T.mul_(part, scale));
        g.shard!.zeroGrad();
        g.shard!.grad = part;
      } else if (this.stage === 2 && this.overlap) {
        // buckets were reduce-scattered during backward: this rank's partition only
        const part = this.overlap.wait(g, scale)!;
        for (const p of g.params) p.zeroGrad();
        g.shard!.zeroGrad();
        g.shard!.grad = T.keep(part);
      } else if (this.stage >= 2) {
        // reduce-scatter: this rank receives only its partition of the summed gradients
        T.noGrad(() => {
          const flat = this.flatten(g, (p) => p.grad);
          for (const p of g.params) p.zeroGrad();
          const part = T.zeros([g.chunk], { dtype: g.params[0]!.dtype, device: g.params[0]!.device });
          g.group.reduceScatterTensor(part, flat, 'sum');
          flat.dispose();
          T.mul_(part, scale);
          g.shard!.zeroGrad();
          g.shard!.grad = T.keep(part);
        });
      } else {
        if (this.overlap) this.overlap.wait(g, scale);
        else this.allReduceGrads(g, scale);
        if (g.shard) {
          T.noGrad(() => {
            const flat = this.flatten(g, (p) => p.grad);
            for (const p of g.params) p.zeroGrad();
            g.shard!.zeroGrad();
            g.shard!.grad = T.scope(() => T.keep(T.contiguous(flat.narrow(0, g.group.rank * g.chunk, g.chunk))));
            flat.dispose();
          });
        }
      }
    }
  }

  /** The reduced gradients this rank steps (the partitions, or the parameters' gradients). */
  private *steppedGrads(): Generator<T.Tensor> {
    for (const g of this.paramGroups) {
      if (g.shard) {
        if (g.shard.grad) yield g.shard.grad;
      } else for (const p of g.params) if (p.grad) yield p.grad;
    }
  }

  /** Multiplies the reduced gradients in place (unscaling, clipping). */
  scaleGradients(factor: number): void {
    T.noGrad(() => {
      for (const grad of this.steppedGrads()) T.mul_(grad, factor);
    });
  }

  /**
   * The squared global gradient norm: every gradient entry of the model counted once
   * (collective). Per group: [replicated, tensor-parallel-split] sums of squares of this rank's
   * gradients (its partition's part of each parameter under ZeRO), summed over the partition
   * group and, for experts, the expert-parallel group; the split part is then summed over the
   * tensor-parallel group, while replicated entries — the same on every rank of it — count once.
   */
  gradNormSq(): number {
    let replicated = 0, split = 0;
    T.noGrad(() => {
      for (const g of this.paramGroups) {
        const local = [0, 0];
        const sq = (x: T.Tensor) => T.sum(T.mul(x, x)).item();
        if (g.shard && g.perParam) {
          // stage 3: parameter i's block is [partOffsets[i], + sizes[i]) (its padding holds zeros)
          const grad = g.shard.grad, pp = g.perParam;
          if (grad) g.params.forEach((p, i) => (local[p.tags.tensorParallel ? 1 : 0] += sq(grad.narrow(0, pp.partOffsets[i]!, pp.sizes[i]!))));
        } else if (g.shard) {
          const grad = g.shard.grad;
          if (grad) {
            const { lo, hi } = this.range(g);
            g.params.forEach((p, i) => {
              const a = Math.max(lo, g.offsets[i]!), b = Math.min(hi, g.offsets[i]! + p.numel);
              if (b > a) local[p.tags.tensorParallel ? 1 : 0] += sq(grad.narrow(0, a - lo, b - a));
            });
          }
        } else for (const p of g.params) if (p.grad) local[p.tags.tensorParallel ? 1 : 0] += sq(p.grad);
        const t = T.tensor(local, { dtype: 'float64', device: g.group.device });
        // a partitioned group is spread over its group; expert groups also differ across the EP group
        if (g.shard) g.group.allReduce(t, 'sum');
        if (g.kind === 'expert') this.groups.expertParallel.allReduce(t, 'sum');
        const [r, s] = t.dataSync() as Float64Array;
        t.dispose();
        replicated += r!;
        split += s!;
      }
    });
    if (this.groups.tensorParallel.size > 1) {
      const t = T.tensor([split], { dtype: 'float64', device: this.groups.world.device });
      this.groups.tensorParallel.allReduce(t, 'sum');
      split = t.item();
      t.dispose();
    }
    return replicated + split;
  }


  /** Drops every gradient (a skipped step). */
  zeroGrad(): void {
    if (this.s3) {
      for (const t of this.s3.grads.values()) t.dispose();
      this.s3.grads.clear();
    }
    for (const g of this.paramGroups) {
      g.shard?.zeroGrad();
      for (const p of g.params) p.zeroGrad();
    }
  }

  /**
   * Steps the optimiser and gathers the updated partitions back into the parameters (stage 3:
   * into the parameters kept whole; the partitioned ones are gathered when next used).
   */
  step(): void {
    this.completePrefetches(); // a gather in flight reads the partitions the step writes
    this.optimizer.step();
    if (this.stage === 3) {
      this.releaseParams(this.partitioned);
      this.gatherInto([...this.placement.keys()].filter((p) => !this.partitioned.has(p)));
      this.zeroGrad();
      return;
    }
    for (const g of this.paramGroups) {
      if (!g.shard) continue;
      T.noGrad(() => T.scope(() => {
        const full = T.empty([g.chunk * g.group.size], { dtype: g.params[0]!.dtype, device: g.params[0]!.device });
        g.group.allGatherIntoTensor(full, g.shard!);
        g.params.forEach((p, i) => T.copy_(p, full.narrow(0, g.offsets[i]!, p.numel).reshape(...p.shape)));
      }));
    }
    this.zeroGrad();
  }

  /** Bytes of the partitions (stages 1-3: this rank's fp32 master weights) this rank holds. */
  partitionBytes(): number {
    return this.paramGroups.reduce((n, g) => n + (g.shard ? g.shard.numel * T.dtypeSize[g.shard.dtype] : 0), 0);
  }

  /** Bytes of optimiser state this rank holds. */
  stateBytes(): number {
    let bytes = 0;
    for (const st of this.optimizer.state.values()) for (const v of Object.values(st)) if (typeof v === 'object' && v) bytes += (v as T.Tensor).numel * T.dtypeSize[(v as T.Tensor).dtype];
    return bytes;
  }

  /**
   * A parameter-shaped tensor of this rank (the parameter, or its optimiser state) in the global
   * layout: expert tensors gathered over the expert-parallel group (local experts first along
   * dim 0), tensor-parallel shards put back together over the tensor-parallel group.
   */
  private toGlobal(g: ParamGroup, p: T.nn.Parameter, local: T.Tensor): T.Tensor {
    let out = local;
    const ep = this.groups.expertParallel;
    if (g.kind === 'expert' && ep.size > 1) out = T.cat(ep.allGather(T.contiguous(out)), 0);
    const tag = tensorParallelTag(p), tp = this.groups.tensorParallel;
    if (tag && tp.size > 1) out = unshard(tp.allGather(T.contiguous(out)), tag);
    return out;
  }

  /** This rank's part of a global tensor for parameter p (its experts, its tensor-parallel shard). */
  private toLocal(g: ParamGroup, p: T.nn.Parameter, global: T.Tensor, where: string): T.Tensor {
    let out = global;
    const tag = tensorParallelTag(p), tp = this.groups.tensorParallel;
    if (tag) {
      try {
        out = shardOf(out, tag, tp.rank, tp.size);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
    }
    if (g.kind !== 'expert') return out;
    const ep = this.groups.expertParallel;
    const L = out.shape[0]! / ep.size;
    if (!Number.isInteger(L)) throw new Error(`${where}: ${out.shape[0]} experts do not divide over expert-parallel size ${ep.size}`);
    return out.narrow(0, ep.rank * L, L);
  }

  /** Per-parameter optimiser state of a group, in the parameters' local shapes. */
  private perParamState(g: ParamGroup): Map<string, Record<string, T.Tensor | number>> {
    const out = new Map<string, Record<string, T.Tensor | number>>();
    if (!g.shard) {
      g.params.forEach((p, i) => {
        const st = this.optimizer.state.get(p);
        if (st) out.set(g.names[i]!, { ...st } as Record<string, T.Tensor | number>);
      });
      return out;
    }
    const st = this.optimizer.state.get(g.shard);
    // every rank of the group calls the same gathers: agree on the keys first
    const keys = st ? Object.keys(st).filter((k) => typeof st[k] === 'object').sort() : [];
    const scalars = st ? (Object.fromEntries(Object.entries(st).filter(([, v]) => typeof v === 'number')) as Record<string, number>) : {};
    const fulls: Record<string, T.Tensor> = {};
    for (const k of keys) {
      const full = T.empty([g.chunk * g.group.size], { dtype: g.params[0]!.dtype, device: g.params[0]!.device });
      g.group.allGatherIntoTensor(full, st![k] as T.Tensor);
      fulls[k] = full;
    }
    if (!keys.length) return out;
    g.params.forEach((p, i) => {
      const rec: Record<string, T.Tensor | number> = { ...scalars };
      for (const k of keys) rec[k] = this.take(g, i, fulls[k]!);
      out.set(g.names[i]!, rec);
    });
    return out;
  }

  /** The parameters and optimiser state in the global layout (collective: every rank calls it). */
  globalState(): GlobalState {
    const s: GlobalState = { params: [], optimizer: [], scalars: {} };
    T.noGrad(() => {
      for (const g of this.paramGroups) {
        const states = this.perParamState(g);
        // stage 3: the values from the partitions (partitioned parameters hold none between uses)
        let values: T.Tensor | null = null;
        if (g.perParam) {
          values = T.empty([g.chunk * g.group.size], { dtype: g.shard!.dtype, device: g.shard!.device });
          g.group.allGatherIntoTensor(values, g.shard!);
        }
        g.params.forEach((p, i) => s.params.push([g.names[i]!, this.toGlobal(g, p, values ? this.take(g, i, values) : p)]));
        values?.dispose(); // take() copied out what it needed
        // optimiser tensors: the same keys on every rank (a step has happened everywhere or nowhere)
        g.names.forEach((name, i) => {
          const st = states.get(name);
          if (!st) return;
          for (const [k, v] of Object.entries(st)) {
            if (typeof v === 'number') (s.scalars[name] ??= {})[k] = v;
            else s.optimizer.push([`${name}::${k}`, this.toGlobal(g, g.params[i]!, v)]);
          }
        });
      }
    });
    return s;
  }

  /**
   * Loads parameters and optimiser state from the global layout: `get(name)` gives a
   * parameter ('<param>::<key>' an optimiser tensor) or null, `optimizerKeys(name)` the
   * optimiser keys stored for a parameter. `where` names the source in errors.
   */
  loadGlobalState(get: (name: string) => T.Tensor | null, optimizerKeys: (name: string) => string[], scalars: Record<string, Record<string, number>>, where: string): void {
    this.completePrefetches(); // gathers in flight read the partitions written below
    T.noGrad(() => {
      for (const g of this.paramGroups) {
        // stage 3: the loaded values go into the partitions (through a full flat buffer)
        const values = g.perParam ? T.zeros([g.chunk * g.group.size], { dtype: g.params[0]!.dtype, device: g.params[0]!.device }) : null;
        g.params.forEach((p, i) => {
          const name = g.names[i]!;
          const v = get(name);
          if (!v) throw new Error(`${where} has no parameter '${name}'`);
          const local = this.toLocal(g, p, v, `${where}: '${name}'`);
          if (local.shape.join() !== p.shape.join()) throw new Error(`${where}: '${name}' is [${local.shape}] there (this rank's part), the model has [${p.shape}]`);
          if (values) this.place(g, i, local, values);
          if (!this.partitioned.has(p)) T.copy_(p, local);
        });
        if (values) {
          this.releaseParams(g.params); // a gathered copy would be stale
          T.copy_(g.shard!, values.narrow(0, g.group.rank * g.chunk, g.chunk));
          values.dispose();
        }
        if (!g.shard) {
          g.params.forEach((p, i) => {
            const name = g.names[i]!;
            const keys = optimizerKeys(name);
            if (!keys.length) return;
            const st: Record<string, T.Tensor | number> = { ...(scalars[name] ?? {}) };
            for (const k of keys) st[k] = T.keep(T.clone(this.toLocal(g, p, get(`${name}::${k}`)!, `${where}: '${name}::${k}'`)));
            this.optimizer.state.set(p, st);
          });
          continue;
        }
        const keys = g.names.length ? optimizerKeys(g.names[0]!) : [];
        if (keys.length) {
          const st: Record<string, T.Tensor | number> = { ...(scalars[g.names[0]!] ?? {}) };
          for (const k of keys) {
            const full = T.zeros([g.chunk * g.group.size], { dtype: g.params[0]!.dtype, device: g.params[0]!.device });
            g.params.forEach((p, i) => {
              const v = get(`${g.names[i]!}::${k}`);
              if (v) this.place(g, i, this.toLocal(g, p, v, `${where}: '${g.names[i]!}::${k}'`), full);
            });
            const mine = full.narrow(0, g.group.rank * g.chunk, g.chunk);
            st[k] = T.keep(this.offloadZeros ? T.copy_(this.offloadZeros(mine.shape, mine.dtype), mine) : T.contiguous(mine));
            full.dispose();
          }
          const before = this.optimizer.state.get(g.shard);
          if (before) for (const v of Object.values(before)) if (typeof v === 'object') v.dispose();
          this.optimizer.state.set(g.shard, st);
        }
        if (g.perParam) continue; // stage 3: loaded above
        // the partition's values follow the loaded parameters
        const lo = g.group.rank * g.chunk;
        T.fill_(g.shard, 0);
        g.params.forEach((p, i) => {
          const a = Math.max(lo, g.offsets[i]!), b = Math.min(lo + g.chunk, g.offsets[i]! + p.numel);
          if (b > a) T.copy_(g.shard!.narrow(0, a - lo, b - a), p.reshape(-1).narrow(0, a - g.offsets[i]!, b - a));
        });
      }
    });
  }

  /** Frees the optimiser state and the partitions. */
  destroy(): void {
    this.completePrefetches();
    this.overlap?.dispose();
    if (this.s3) {
      for (const f of this.s3.removers.splice(0)) f();
      for (const t of this.s3.grads.values()) t.dispose();
      this.s3.grads.clear();
    }
    for (const st of this.optimizer.state.values()) for (const v of Object.values(st)) if (typeof v === 'object' && v) (v as T.Tensor).dispose();
    this.optimizer.state.clear();
    for (const g of this.paramGroups) {
      g.shard?.dispose();
      g.shard = null;
    }
  }
}
