/**
 * The planner's estimates for one layout (`vlmoe plan`): per-rank memory, communication per step
 * by collective, FLOPs, and a roofline step time and MFU. Like DeepSpeed's memory estimators,
 * for MoE + TP + EP + ZeRO.
 *
 * Memory, per rank, float32 weights (bf16 / fp16 autocast keeps fp32 masters):
 * - model states between steps, exactly as the engine holds them: stage 0 the parameters and
 *   the optimiser state (Adam: 2 words per element, SGD with momentum 1, plain SGD 0); stages 1
 *   and 2 the parameters, plus this rank's partition (fp32 master) and its optimiser state;
 *   stage 3 only the partition, its state and the parameters under
 *   stage3_param_persistence_threshold, kept whole. Partitions: dense parameters over the
 *   data-parallel group, expert parameters over the expert-data-parallel group (× the
 *   tensor-parallel group when TP > 1: whole experts then run on a share of the tokens).
 *   Offload to files (nvme) moves the partitions and the optimiser state out of RAM.
 * - the step's transient on top (gradients, flat reduction buffers, gathered parameters),
 *   measured on the engine (steady state, tiny preset at 1, 2 and 4 ranks): P = this rank's
 *   parameter bytes, Pn = its partition bytes; stage 0 2P (the gradients, a reduction bucket);
 *   stage 1 3.75P + Pn; stage 2 2.75P + 2Pn; stage 3 Pn + 1.1P (full gradients accumulating
 *   over VLMo's passes until final) + the parameters gathered in backward, min(0.45P, 4 bytes ×
 *   stage3_max_live_parameters), + 0.28P with prefetch (small/16E at 2 ranks: 1.60P + Pn by
 *   default, 1.13P + Pn with a live limit of 2e5 elements).
 * - activations (fp32, what the forward keeps for backward): per sample, per block,
 *   (16.6 d + 7.9 d / TP) floats per token (the first term replicated over the tensor-parallel
 *   group, the second split by it: q, k, v, attention output, FFN hidden), 0.9 d more per token
 *   in an MoE FFN (routing and dispatch buffers), and 2 L·V / TP floats for the MLM logits.
 *   Calibrated on the tiny and small presets (dense and MoE, TP 1 and 2) and checked against
 *   measured runs within 10% (tools/cli/test/plan.test.ts). With activation checkpointing
 *   (not in the engine yet: an estimate) each block keeps only its input, and one block's
 *   activations are recomputed at a time.
 *
 * Communication: the input bytes of every collective a step issues, by group, as a process
 * group sees them (checked against counted bytes): gradient all-reduce / reduce-scatter and
 * parameter all-gathers (ZeRO), the tensor-parallel all-reduces (attention, dense FFNs,
 * vocabulary-parallel embedding and loss, the MoE outputs of the token split), the expert
 * all-to-alls (dispatch and combine, forward and backward) and the objectives' gathers
 * (ITC embeddings, hard negatives). Per rank with a balanced router: an expert-parallel rank
 * receives, and computes, as many routed rows as it sends (an untrained router is far from
 * balanced; the calibration compares the mean over ranks). On the wire a ring moves 2(n−1)/n of an all-reduce's
 * bytes and (n−1)/n of an all-gather's output, a reduce-scatter's input or an all-to-all's.
 *
 * Time: a roofline without overlap (a lower bound on a real step): FLOPs / peak + wire bytes /
 * the bandwidth of the slowest link the group spans + the optimiser's memory traffic
 * (+ its disk traffic when offloaded); MFU = model FLOPs / (time × peak).
 */
import type { PlanShape } from './shape.js';

export type PlanOptimizer = 'Adam' | 'SGD-momentum' | 'SGD';

export interface PlanLayout {
  /** Ranks in all (nodes × devices per node). */
  world: number;
  tp: number;
  ep: number;
  stage: 0 | 1 | 2 | 3;
  offload: 'none' | 'nvme';
  /** Samples per rank per micro step, and micro steps per optimiser step. */
  microBatch: number;
  gradAccum: number;
  precision: 'fp32' | 'bf16' | 'fp16';
  optimizer: PlanOptimizer;
  /** Stage 3: stage3_param_persistence_threshold (default 1e5), stage3_prefetch_bucket_size (default 5e7; 0 off), stage3_max_live_parameters (default 1e9). */
  persistenceThreshold: number;
  prefetch: number;
  maxLive?: number;
  activationCheckpointing: boolean;
}

export interface PlanHardware {
  name: string;
  devicesPerNode: number;
  /** Bytes of memory per device (per rank). */
  memory: number;
  /** Peak FLOP/s per device at fp32 and at bf16 / fp16. */
  peakFp32: number;
  peakHalf: number;
  /** Bytes/s per device: inside a node, across nodes, device memory, and the offload disk. */
  intraBandwidth: number;
  interBandwidth: number;
  memoryBandwidth: number;
  diskBandwidth: number;
}

/** Activation coefficients (floats per token per block, in units of d): see the file comment. */
export const ACTIVATION_COEFFICIENTS = { replicated: 16.6, split: 7.9, moe: 0.9, mlmLogits: 2 } as const;
/** Step transients in P (this rank's parameter bytes) and Pn (its partition bytes), measured: see the file comment. */
export const TRANSIENT_COEFFICIENTS = { 0: [2, 0], 1: [3.75, 1], 2: [2.75, 2], 3: [1.1, 1] } as const;
const PREFETCH_TRANSIENT = 0.28;
/** Stage 3: the parameters held gathered in backward, at most this fraction of P (and at most stage3_max_live_parameters). */
const LIVE_TRANSIENT = 0.45;

export interface CollectiveVolume {
  group: 'data-parallel' | 'expert-data-parallel' | 'tensor-parallel' | 'expert-parallel';
  what: string;
  kind: 'all-reduce' | 'all-gather' | 'reduce-scatter' | 'all-to-all';
  /** Input bytes per step per rank (what the process group is handed). */
  bytes: number;
  /** Bytes this rank sends on the wire per step (ring). */
  wireBytes: number;
  /** Ranks in the group, and whether it spans nodes. */
  size: number;
  spansNodes: boolean;
}

export interface PlanEstimate {
  layout: PlanLayout;
  dataParallel: number;
  /** Elements of this rank: dense (after TP), experts (after EP), partition (stage ≥ 1). */
  elements: { dense: number; expert: number; partition: number; persistent: number };
  memory: {
    parameters: number;
    optimizer: number;
    partitions: number;
    /** Bytes offloaded to files (not in RAM). */
    offloaded: number;
    modelStates: number;
    transient: number;
    activations: number;
    activationsCheckpointed: number;
    /** Model states + transient + activations (with checkpointing if the layout asks for it). */
    peak: number;
  };
  comm: CollectiveVolume[];
  flops: { perStep: number; perRankPerStep: number };
  time: { compute: number; comm: number; optimizer: number; step: number; mfu: number };
  fits: boolean;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Forward FLOPs of one sample (matrix products: attention, FFNs / experts, routers, patch
 * embedding, heads): `split` is what tensor parallelism divides (attention, dense FFNs, the
 * experts' token shares, the vocabulary), `replicated` what every rank of its group repeats
 * (routers, patch embedding, the MLM transform).
 */
export function forwardFlopsPerSample(s: PlanShape): { split: number; replicated: number } {
  const r = s.config, d = r.dim, h = r.ffnHidden, k = r.moe?.k ?? 0, E = r.moe?.numExperts ?? 0;
  let split = 0, replicated = 0;
  for (const b of s.blocks) {
    split += 8 * b.tokens * d * d + 4 * b.tokenSeq * d; // qkv + proj; scores and weighted values
    split += 4 * d * h * (b.denseTokens + k * b.moeTokens);
    replicated += 2 * E * d * b.moeTokens;
  }
  const imagePasses = s.passes.filter((p) => p.image > 0).length;
  replicated += imagePasses * 2 * r.numPatches * 3 * r.patchSize * r.patchSize * d;
  replicated += s.mlmTokens * 2 * d * d; // MLM transform
  split += s.mlmTokens * 2 * d * r.vocabSize; // MLM decoder
  return { split, replicated };
}

/** The estimate for one layout on one kind of hardware. Throws naming what does not divide. */
export function estimate(s: PlanShape, L: PlanLayout, hw: PlanHardware): PlanEstimate {
  const r = s.config, d = r.dim, E = r.moe?.numExperts ?? 0, k = r.moe?.k ?? 0;
  const { world: W, tp: t, ep: e } = L;
  if (W % t !== 0) throw new Error(`tensor parallel ${t} does not divide the world ${W}`);
  const n = W / t;
  if (n % e !== 0) throw new Error(`expert parallel ${e} does not divide the data-parallel size ${n}`);
  if (e > 1 && (!E || E % e !== 0)) throw new Error(`expert parallel ${e} does not divide the ${E} experts`);
  if (r.heads % t !== 0) throw new Error(`tensor parallel ${t} does not divide the ${r.heads} heads`);
  const nx = (n / e) * t; // the expert parameters' ZeRO group (whole experts over TP ranks run on token shares)
  const localNumel = (p: PlanShape['params'][number]) => (p.expert ? p.numel / e : p.split ? p.numel / t : p.numel);
  const dense = sum(s.params.filter((p) => !p.expert).map(localNumel));
  const expert = sum(s.params.filter((p) => p.expert).map(localNumel));
  const P = 4 * (dense + expert);
  const partition = L.stage >= 1 ? (L.stage === 3 ? sum(s.params.map((p) => Math.ceil(localNumel(p) / (p.expert ? nx : n)))) : Math.ceil(dense / n) + (expert ? Math.ceil(expert / nx) : 0)) : 0;
  const persistent = L.stage === 3 ? sum(s.params.filter((p) => localNumel(p) < L.persistenceThreshold || (p.expert ? nx : n) === 1).map(localNumel)) : 0;
  const words = L.optimizer === 'Adam' ? 2 : L.optimizer === 'SGD-momentum' ? 1 : 0;
  const stateElements = L.stage === 0 ? dense + expert : partition;
  const parameters = L.stage === 3 ? 4 * persistent : P;
  const optimizer = 4 * words * stateElements;
  const partitions = 4 * partition;
  const offloaded = L.offload === 'nvme' && L.stage >= 1 ? optimizer + partitions : 0;
  const modelStates = parameters + optimizer + partitions - offloaded;
  const [a, b] = TRANSIENT_COEFFICIENTS[L.stage];
  const transient = a * P + b * partitions + (L.stage === 3 ? Math.min(LIVE_TRANSIENT * P, 4 * (L.maxLive ?? 1e9)) + (L.prefetch > 0 ? PREFETCH_TRANSIENT * P : 0) : 0);
  // activations of one micro batch
  const C = ACTIVATION_COEFFICIENTS;
  const perSample = 4 * (sum(s.blocks.map((bl) => bl.tokens * (C.replicated * d + (C.split * d) / t) + bl.moeTokens * C.moe * d)) + (C.mlmLogits * s.mlmTokens * r.vocabSize) / t);
  const activations = L.microBatch * perSample;
  const biggest = Math.max(...s.blocks.map((bl) => bl.tokens * (C.replicated * d + (C.split * d) / t) + bl.moeTokens * C.moe * d));
  const activationsCheckpointed = L.microBatch * 4 * (sum(s.blocks.map((bl) => bl.tokens * d)) + biggest + (C.mlmLogits * s.mlmTokens * r.vocabSize) / t);
  const peak = modelStates + transient + (L.activationCheckpointing ? activationsCheckpointed : activations);

  // communication of one optimiser step
  const comm: CollectiveVolume[] = [];
  const per = hw.devicesPerNode;
  const spans = (size: number, stride: number) => size * stride > per;
  const add = (group: CollectiveVolume['group'], what: string, kind: CollectiveVolume['kind'], bytes: number, size: number, stride: number) => {
    if (size <= 1 || bytes <= 0) return;
    const f = kind === 'all-reduce' ? (2 * (size - 1)) / size : kind === 'all-gather' ? size - 1 : (size - 1) / size;
    comm.push({ group, what, kind, bytes, wireBytes: f * bytes, size, spansNodes: spans(size, stride) });
  };
  const ga = L.gradAccum, B = L.microBatch;
  const groups = [{ group: 'data-parallel' as const, els: dense, size: n, stride: t }, { group: 'expert-data-parallel' as const, els: expert, size: nx, stride: t * e }];
  for (const g of groups) {
    if (!g.els) continue;
    const mine = (x: number) => Math.ceil(x / g.size);
    if (L.stage <= 1) add(g.group, 'gradients', 'all-reduce', 4 * g.els, g.size, g.stride);
    if (L.stage === 2) add(g.group, 'gradients', 'reduce-scatter', 4 * g.els, g.size, g.stride);
    if (L.stage === 1 || L.stage === 2) add(g.group, 'parameters after the step', 'all-gather', 4 * mine(g.els), g.size, g.stride);
    if (L.stage === 3) {
      const mineParams = s.params.filter((p) => (g.group === 'data-parallel') !== p.expert);
      const list = mineParams.map(localNumel);
      // gathered for each forward call of its module and once in backward (released in between)
      const parted = mineParams.filter((p) => !(localNumel(p) < L.persistenceThreshold));
      add(g.group, 'parameters (each forward call and backward)', 'all-gather', ga * 4 * sum(parted.map((p) => (p.uses + 1) * mine(localNumel(p)))), g.size, g.stride);
      add(g.group, 'gradients', 'reduce-scatter', 4 * sum(list.map((x) => mine(x) * g.size)), g.size, g.stride);
      add(g.group, 'persistent parameters after the step', 'all-gather', 4 * sum(list.filter((x) => x < L.persistenceThreshold).map(mine)), g.size, g.stride);
    }
  }
  // the objectives' gathers over the data-parallel group (ITC embeddings with their backward, hard negatives, the MLM count)
  const S = r.imageSize;
  add('data-parallel', 'objectives (ITC, hard negatives)', 'all-gather', ga * (B * (2 * d * 4 + 2 * d * 4 + 8 + 3 * S * S * 4 + 2 * r.maxTextLen * 8) + 8), n, t);
  add('data-parallel', 'objectives (ITC backward)', 'all-reduce', ga * 2 * n * B * d * 4, n, t);
  // the MoE layer calls of one micro batch: tokens per call (the V and L sides of a block are separate layers)
  const moeCalls: number[] = [];
  for (const bl of s.blocks) {
    if (!bl.moe) continue;
    for (const p of s.passes) {
      if (p.fused && bl.vl) continue;
      for (const tok of [p.image, p.text]) if (tok) moeCalls.push(B * tok);
    }
  }
  // tensor parallelism: attention and dense FFN all-reduces forward and backward, the MoE token split, vocabulary-parallel embedding and loss
  if (t > 1) {
    let tpBytes = 0;
    for (const bl of s.blocks) tpBytes += 2 * B * bl.tokens * d * 4 + 2 * B * bl.denseTokens * d * 4;
    for (const T_ of moeCalls) tpBytes += 2 * Math.ceil((T_ * k) / t) * d * 4;
    tpBytes += B * sum(s.passes.map((p) => p.text)) * d * 4 + B * s.mlmTokens * (d * 4 + 3 * 4) + 8;
    add('tensor-parallel', 'activations (attention, FFNs, MoE outputs, vocabulary)', 'all-reduce', ga * tpBytes, t, 1);
  }
  // expert parallelism: dispatch and combine, forward and backward, per MoE layer call: the routed rows
  // (all of them without token dropping; at most the experts' capacity with it: an upper bound, an unbalanced router drops more)
  if (e > 1 && r.moe) {
    let a2a = 0;
    // with TP each rank of the group routes its block of the rows (a balanced router: every rank receives as many rows as it sends)
    for (const T_ of moeCalls) {
      const tokens = Math.ceil(T_ / t);
      const cap = Math.max(r.moe.minCapacity, Math.ceil((r.moe.capacityFactor * k * tokens) / E));
      a2a += 4 * (r.moe.dropTokens ? Math.min(tokens * k, E * cap) : tokens * k) * d * 4;
    }
    add('expert-parallel', 'tokens (dispatch and combine, forward and backward)', 'all-to-all', ga * a2a, e, t);
  }

  // time
  const peakFlops = L.precision === 'fp32' ? hw.peakFp32 : hw.peakHalf;
  const fwd = forwardFlopsPerSample(s);
  const perStep = 3 * (fwd.split + fwd.replicated) * B * ga * n;
  const perRank = 3 * (fwd.split / t + fwd.replicated) * B * ga;
  const compute = perRank / peakFlops;
  const commTime = sum(comm.map((c) => c.wireBytes / (c.spansNodes ? hw.interBandwidth : hw.intraBandwidth)));
  // the optimiser reads the gradients, reads and writes the master weights and its state
  const optBytes = 4 * stateElements * (1 + 2 * (1 + words));
  const optimizerTime = optBytes / hw.memoryBandwidth + (offloaded ? (2 * offloaded) / hw.diskBandwidth : 0);
  const step = compute + commTime + optimizerTime;
  return {
    layout: L, dataParallel: n, elements: { dense, expert, partition, persistent },
    memory: { parameters, optimizer, partitions, offloaded, modelStates, transient, activations, activationsCheckpointed, peak },
    comm, flops: { perStep, perRankPerStep: perRank },
    time: { compute, comm: commTime, optimizer: optimizerTime, step, mfu: perStep / W / (step * peakFlops) },
    fits: peak <= hw.memory,
  };
}
