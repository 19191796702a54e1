/**
 * @vlmoe/tensor — tensors on native CPU/CUDA storage with define-by-run autograd,
 * deterministic memory (scopes, dispose) and PyTorch-named ops.
 */
import './methods.js';

export { Tensor, contiguousStrides, shapeNumel, type Shape } from './tensor.js';
export { type DType, DTYPES, dtypeSize, promoteTypes, isFloating, isHalf, type TypedArray } from './dtype.js';
export { autocast, autocastDType, type AutocastDType } from './autocast.js';
export { cudaAvailable, normalizeDevice, type Device } from './device.js';
export { memory, emptyCache, resetPeakMemory, type MemoryReport } from './storage.js';
export { flopCount } from './backend/flops.js';
export { profile, recordFunction, isProfiling, currentRange, profileByFamily, type ProfileRow, type ProfileResult } from './profiler.js';
export { scope, tidy, keep, scopeDepth } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, Node, customOp, setNodeCreationHook, type BackwardOptions, type BackwardFn } from './autograd.js';
export { Generator, manualSeed, defaultGenerator } from './generator.js';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './gradcheck.js';
export * from './ops/creation.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/views.js';
export * from './ops/matmul.js';
export * from './ops/softmax.js';
export * from './ops/layernorm.js';
export * from './ops/dropout.js';
export * from './ops/indexing.js';
export { moeGate, moeCombine, moeGateBackward, MOE_GATE_MAX_K, type MoeGateResult, type MoeGateOptions, type MoeCombineOptions, type MoeCombineResult, type MoeGateGrads } from './ops/moe_gate.js';
export { moeAssign, moePermute, moeUnpermute, groupedLinear, expertFFN, type MoeAssignOptions, type MoeAssignResult, type GroupedLinearOptions, type ExpertFFNOptions, type ExpertActivation } from './ops/moe.js';
export * from './ops/join.js';
export * from './ops/loss.js';
export * from './ops/attention.js';
export { flashAttention, type FlashAttentionOptions } from './ops/flash_attention.js';
export { toDevice } from './ops/device.js';
export * from './serialization/safetensors.js';
export { loadPth, loadPthObject, savePth, serializePth, deserializePth, stateDictFromPth, PthError, PyDict, PyTuple, PickleError, type PyKey, type PthLoadOptions, type PthStateDictOptions, type PthSaveOptions } from './serialization/pth.js';
export { asObject } from './serialization/json_config.js';
// the repository's file and did-you-mean helpers (one implementation, in @vlmoe/util), re-exported for the packages above
export { readJsonFile, didYouMean, nearestKey, writeFileAtomic, writeFileAtomicSync, type ChunkWriter, type AsyncChunkWriter } from '@vlmoe/util';
export { z, parseConfig, jsonSchemaOf, configUsage, knownKeysAt, SCHEMA_KEY, type Z, type ParseConfigOptions } from './serialization/config_schema.js';
/** Uninitialised tensor (like torch.empty). */
export { emptyTensor as empty } from './ops/creation.js';
export { info as nativeInfo } from '@vlmoe/native-cuda';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';

import { native } from '@vlmoe/native-cuda';
/** Sets the native CPU thread pool size. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}
/**
 * Waits until every kernel queued on a CUDA device has run (torch.cuda.synchronize); raises
 * an error a kernel reported (an index out of range) since the last synchronisation. For
 * timing GPU work; reads to the host synchronise by themselves.
 */
export function synchronize(device = 'cuda:0'): void {
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`synchronize: expected a CUDA device ('cuda' or 'cuda:N'), got '${device}'`);
  native.synchronize(m[1] === undefined ? 0 : Number(m[1]));
}
/** Forces the built-in GEMM even when OpenBLAS (CPU) or cuBLAS (CUDA) is available (benchmarks and tests). */
export function useBuiltinGemm(on: boolean): void {
  native.setGemmBuiltin(on);
}
