/**
 * @vlmoe/native-cuda — the compiled addon: device memory by integer handle, CPU kernels
 * (thread pool, AVX2/FMA with a portable fallback, OpenBLAS or built-in GEMM) and, when
 * built with a CUDA compiler, CUDA memory and elementwise kernels.
 *
 * This module only loads the binary and types its surface; `@vlmoe/tensor` is the API
 * users program against. Numeric arguments of kernels travel through `argBlock` (a
 * Float64Array shared with C++), see src/args.h.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which path a shm communicator's all-to-alls took (bytes received by this rank). */
export interface ShmTransferStats {
  /** Read with memcpy from a mapping of the sender's shareable (memfd) block. */
  mappedBytes: number;
  /** Read with process_vm_readv (cross-memory attach: the sender's block was not shareable). */
  cmaBytes: number;
  /** Through the segment's slots (cross-memory attach unavailable, VLMOE_SHM_NO_CMA=1). */
  stagedBytes: number;
  /** This rank's own block. */
  localBytes: number;
  /** Peers' blocks mapped here now, and their bytes (bounded by VLMOE_SHM_MAP_CACHE_MB). */
  mappings: number;
  mappedNowBytes: number;
}

export interface NativeInfo {
  cudaCompiled: boolean;
  cudaDevices: number;
  /** GEMM in use: "openblas" or "builtin". */
  blas: string;
  blasAvailable: boolean;
  /** Why GEMM starts on its path (VLMOE_GEMM=auto|openblas|builtin). */
  gemmChoice: string;
  /** Micro-kernel of the built-in GEMM on this CPU. */
  gemmKernel: string;
  threads: number;
  /** Elementwise kernel set: "avx512", "avx2-fma" or "portable" (VLMOE_SIMD=portable|avx2 caps it). */
  simd: string;
}

export interface MemStats {
  live: number;
  peak: number;
  allocs: number;
  /** CPU bytes freed but cached for reuse (not in `live`). */
  cached: number;
  /** Bytes of live file-backed CPU storages (mapFile; not in `live`: the kernel pages them to their files). */
  file: number;
}

export interface NativeAddon {
  dtypes: Record<string, number>;
  ops: { unary: Record<string, number>; pred: Record<string, number>; binary: Record<string, number>; compare: Record<string, number> };
  info(): NativeInfo;
  alloc(device: number, nbytes: number): number;
  free(handle: number, view?: ArrayBuffer): void;
  /** A zero-filled CPU storage of `nbytes` backed by a new, already unlinked file in directory `dir` (mapped shared). */
  mapFile(dir: string, nbytes: number): number;
  /** Tells V8 that `deltaBytes` more (or, negative, fewer) bytes are held by objects only its collector frees (napi_adjust_external_memory, batched). */
  adjustExternal(deltaBytes: number): void;
  arrayBuffer(handle: number): ArrayBuffer;
  write(handle: number, byteOffset: number, src: ArrayBufferView): void;
  read(handle: number, byteOffset: number, dst: ArrayBufferView): void;
  args(): ArrayBuffer;
  ew(kind: number, op: number, dtypeIn: number, dtypeOut: number): void;
  fill(dtype: number): void;
  reduce(op: number, dtype: number, withIndex: number): void;
  cumsum(dtype: number): void;
  softmax(dtype: number, log: number, maskKind: number): void;
  softmaxBackward(dtype: number, log: number): void;
  /**
   * Fused attention over contiguous q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]; maskKind 0 none,
   * 1 bool keep, 2 additive. Block: B, H, Lq, Lk, D, Dv, scale, q, k, v, out, lse, [mask
   * handle, offset, strides over (b, h, query, key)].
   */
  attention(dtype: number, maskKind: number, causal: number): void;
  /** Block: the attention header, then dout, dq, dk, dv, [mask]. */
  attentionBackward(dtype: number, maskKind: number, causal: number): void;
  /**
   * Fused cross entropy over rows. Block: N, C, ignoreIndex, labelSmoothing, logits [N, C],
   * target [N] (int32 / int64), loss [N], lse [N] (loss and lse: float64 for float64 logits,
   * float32 otherwise — bfloat16 / float16 logits on CUDA). A target outside [0, C) that is
   * not ignoreIndex raises an error naming it (on CUDA at the next synchronisation).
   */
  crossEntropy(dtype: number, targetDtype: number): void;
  /** Block: N, C, ignoreIndex, labelSmoothing, logits, target, lse, g [N], dlogits [N, C] (the logits' dtype). */
  crossEntropyBackward(dtype: number, targetDtype: number): void;
  layerNorm(dtype: number, hasWeight: number, hasBias: number): void;
  layerNormBackward(dtype: number, hasWeight: number, wantDx: number, wantDw: number, wantDb: number): void;
  topk(dtype: number, largest: number): void;
  /** MoE slot assignment (policy 0 = position, 1 = priority); block: S, k, E, C, expert, [priority], slot, countsBefore, countsAfter. */
  moeAssign(policy: number, hasPriority: number, wantFirst?: number, wantRow?: number): void;
  /**
   * Fused MoE gating (cpu/moe_gate.h). Block: S, E, k, P, eps, auxScale, logits [S·E], gates
   * [S·E], index (i64 [S·k]), [topval (f64 [S·k])], colPartial (f64 [P·E]), [lse [S]]; gates
   * and lse float64 for float64 logits, else float32 (bfloat16 / float16 logits on CUDA).
   */
  moeGate(dtype: number, wantTopval: number, wantLse: number): void;
  /** Block: the header, gates, index, slot, colPartial, counts (i64 [E]), [lse], cw [S·k], aux [1], [z [1]] (dtype: the gates'). */
  moeCombine(dtype: number, wantZ: number): void;
  /** Block: the header, gates, index, slot, counts, [lse], [gGates], [gcw], [gaux], [gz], dlogits (dtype: the logits'). */
  moeGateBackward(dtype: number, hasGGates: number, hasGcw: number, hasGaux: number, hasGz: number): void;
  moePermute(dtype: number, hasWeight: number, unpermute: number): void;
  moeUnpermuteWeightGrad(dtype: number): void;
  /**
   * dtype names the GEMM operands (x and the weights); bfloat16 / float16 operands (CUDA,
   * autocast) multiply with float32 accumulation and every other operand — bias, output,
   * pre-activations, activations, gradients, dy — is float32. Likewise for the backward and
   * expertFFN / expertFFNBackward.
   */
  groupedLinear(dtype: number, hasBias: number, reference: number): void;
  groupedLinearBackward(dtype: number, wantDx: number, wantDw: number, wantDb: number, reference: number): void;
  expertFFN(dtype: number, act: number, hasB1: number, hasB2: number, reference: number): void;
  /** Communicators (process-group backends): ids from commInitShm / commInitMpi / commNewGroup. */
  commInitShm(name: string, rank: number, world: number, slotBytes: number, timeoutMs: number): number;
  commInitMpi(timeoutMs: number): number;
  /** Whether this build has MPI. */
  mpiAvailable(): boolean;
  /** Whether cuBLAS loads here (searched on the first call), its version and path, or why not; without it CUDA matmuls use our own kernel. */
  cublasInfo(): { available: boolean; version: number; path: string; reason: string };
  /** Whether NCCL (libnccl.so.2) loads here, its version code and path, or why not (naming every place searched). */
  ncclInfo(): { available: boolean; version: number; path: string; reason: string };
  /** NCCL's 128-byte unique id (rank 0 makes it, every rank passes it to commInitNccl). */
  ncclUniqueId(): Uint8Array;
  commInitNccl(uniqueId: Uint8Array, rank: number, world: number, device: number, timeoutMs: number): number;
  /** mpi: a subgroup of the parent's ranks (collective over the parent); −1 off the group. */
  commNewGroup(parent: number, ranks: number[]): number;
  /** [rank, size]. */
  commInfo(id: number): [number, number];
  /** Bytes a shm communicator's all-to-alls received by each path, and the peers' blocks it maps now. */
  commShmStats(id: number): ShmTransferStats;
  commClose(id: number): void;
  commSetTimeout(id: number, timeoutMs: number): void;
  commAbort(id: number, why: string): void;
  commBarrier(id: number): void;
  /** op: 0 sum, 1 avg, 2 max, 3 min. Block: n, data. */
  /** With async = 1: queued on the communication thread; returns the ticket for commWait / commDone. */
  commAllReduce(id: number, dtype: number, op: number, async?: number): number | undefined;
  commBroadcast(id: number, dtype: number, root: number): void;
  commAllGather(id: number, dtype: number, async?: number): number | undefined;
  /** Block: world counts (elements of each rank's block), in (Σ counts), out (counts[rank]). With async = 1: a ticket, as commAllReduce. */
  commReduceScatter(id: number, dtype: number, op: number, async?: number): number | undefined;
  commAllToAll(id: number, dtype: number): void;
  commSendRecv(id: number, dtype: number, peer: number, isRecv: number): void;
  /** Blocks until an async collective ran (rethrows its error); commDone polls. */
  commWait(ticket: number): void;
  commDone(ticket: number): boolean;
  expertFFNBackward(dtype: number, act: number, wantMask: number, reference: number): void;
  /** dtype: A and B; outDtype: C (default dtype; float32 with bfloat16 / float16 operands: a mixed-precision product). */
  gemm(dtype: number, transA: number, transB: number, outDtype?: number): void;
  gemmReference(dtype: number, transA: number, transB: number): void;
  /** cblas_sgemm called directly on contiguous storages (benchmark peer); false without OpenBLAS. */
  blasSgemmDirect(M: number, N: number, K: number, a: number, b: number, c: number): boolean;
  indexSelect(dtype: number, indexDtype: number): void;
  indexAdd(dtype: number, indexDtype: number): void;
  gather(dtype: number, indexDtype: number): void;
  scatterAdd(dtype: number, indexDtype: number): void;
  random(kind: number, dtype: number): void;
  dropout(dtype: number): void;
  setNumThreads(n: number): void;
  setGemmBuiltin(force: boolean): void;
  synchronize(device: number): void;
  memory(): { cpu: MemStats; cuda: MemStats[] };
  /** Returns cached free CPU blocks to the system. */
  emptyCache(): void;
  /** Peak bytes per device restart from the live bytes (torch's reset_peak_memory_stats). */
  resetPeakMemory(): void;
  /**
   * Fused Adam (decoupled=0, L2 weight decay) / AdamW (decoupled=1) step over many
   * contiguous tensors of one dtype. Block: count, lr, beta1, beta2, eps, weightDecay,
   * maximize, then per tensor: step, numel, param, grad, expAvg, expAvgSq (handle, offset
   * each) and, with amsgrad, maxExpAvgSq. See src/cpu/optim.h.
   */
  adamStep(dtype: number, decoupled: number, amsgrad: number): void;
  /**
   * Fused SGD step. Block: count, lr, momentum, dampening, weightDecay, nesterov, maximize,
   * then per tensor: numel, param, grad (handle, offset) and, with momentum, initFlag and
   * momentumBuffer (handle, offset).
   */
  sgdStep(dtype: number, hasMomentum: number): void;
  /** kind 0: sum of squares, 1: max |x|, 2: sum |x|^p. Block: count, p, then per tensor numel, handle, offset. */
  multiTensorNorm(dtype: number, kind: number): number;
  /** x *= scale over many tensors. Block: count, scale, then per tensor numel, handle, offset. */
  multiTensorScale(dtype: number): void;
}

function findBinary(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/ and dist/ both sit one level below the package root.
  const candidates = [join(here, '..', 'build', 'Release', 'vlmoe_native.node'), join(here, '..', 'build', 'Debug', 'vlmoe_native.node')];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(
    `@vlmoe/native-cuda: the compiled addon was not found (looked in ${candidates.join(', ')}). ` +
      'Build it with `npm run build` (needs cmake and a C++17 compiler; see packages/native-cuda/README.md).',
  );
}

const require = createRequire(import.meta.url);

/** The loaded addon. */
export const native: NativeAddon = require(findBinary()) as NativeAddon;

/** Shared argument block (see src/args.h). */
export const argBlock = new Float64Array(native.args());

export function info(): NativeInfo {
  return native.info();
}
