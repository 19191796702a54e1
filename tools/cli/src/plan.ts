/**
 * `vlmoe plan`: per-rank memory, communication per step, a roofline step time and MFU for a
 * VL-MoE model on a world of devices at one parallel layout — or, with --search, every layout
 * that fits, fastest first (@vlmoe/moe's planner: plan/estimate.ts says what is counted and how
 * it was calibrated).
 */
import { humanCount } from './info.js';
import { HARDWARE, estimate, planShape, preset, searchLayouts, type PlanEstimate, type PlanHardware, type PlanLayout, type PresetName } from '@vlmoe/moe';

export const PLAN_USAGE = `usage: vlmoe plan [--preset tiny|small|base|large] [--experts E] [--k K]
                  [--hardware h100|a100-80|cpu] [--nodes N] [--per-node G] [--memory-gb M]
                  [--tp T] [--ep E] [--stage 0-3] [--offload none|nvme] [--micro-batch B]
                  [--global-batch G] [--precision fp32|bf16|fp16] [--optimizer adam|sgd-momentum|sgd]
                  [--max-live N] [--prefetch N] [--activation-checkpointing] [--search] [--top K] [--json]

  --preset, --experts, --k   the model, as vlmoe info [base, 32, 1]
  --hardware     device preset [h100]: memory, peak FLOP/s, NVLink / InfiniBand / memory / disk
                 bandwidth per device (cpu: our 24 GiB 2-core machine shared by 4 ranks)
  --nodes, --per-node   the world: nodes × devices (ranks) per node [1 × the preset's]
  --memory-gb    memory per device in GB (10^9 bytes), overriding the preset's
  --tp, --ep, --stage, --offload   the layout [1, 1, 0, none]: tensor_parallel_size,
                 expert_parallel_size, zero_optimization.stage, offload_optimizer (nvme: files)
  --micro-batch  samples per rank per micro step [8]; --global-batch [micro × data-parallel]
  --precision    fp32 or bf16 / fp16 autocast (the peak FLOP/s used) [bf16 on GPUs, fp32 on cpu]
  --optimizer    adam (AdamW: 2 state words per element), sgd-momentum (1), sgd (0) [adam]
  --max-live     ZeRO-3: stage3_max_live_parameters, elements gathered in backward [1e9]
  --prefetch     ZeRO-3: stage3_prefetch_bucket_size, elements gathered ahead (0: none) [5e7]
  --activation-checkpointing   count activations as checkpointed per block (an estimate: the
                 engine does not checkpoint yet)
  --search       every layout of the world (TP, EP, stage, offload, micro batch at the global
                 batch), those that fit first, fastest first; --top rows [10]
  --json         the estimates as JSON

Memory per rank: model states between steps (exact), the step's transient and activations
(calibrated on measured runs: within 10%, tools/cli/test/plan.test.ts); communication: the
bytes of every collective a step issues, by group; time: FLOPs / peak + wire bytes /
bandwidth + the optimiser's memory traffic, no overlap (a lower bound on a real step).`;

export interface PlanOptions {
  preset?: PresetName;
  experts?: number;
  k?: number;
  hardware?: string;
  nodes?: number;
  perNode?: number;
  memoryGb?: number;
  tp?: number;
  ep?: number;
  stage?: number;
  offload?: 'none' | 'nvme';
  microBatch?: number;
  globalBatch?: number;
  precision?: 'fp32' | 'bf16' | 'fp16';
  optimizer?: 'adam' | 'sgd-momentum' | 'sgd';
  activationCheckpointing?: boolean;
  maxLive?: number;
  prefetch?: number;
  search?: boolean;
  top?: number;
  json?: boolean;
}

const gb = (b: number) => `${(b / 1e9).toFixed(b < 1e9 ? 3 : 2)} GB`;
const human = (n: number) => humanCount(Math.round(n));
const ms = (s: number) => (s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1e3).toFixed(1)} ms`);

function describeLayout(L: PlanLayout, dp: number): string {
  return `TP ${L.tp} × DP ${dp} (EP ${L.ep}), ZeRO-${L.stage}${L.offload === 'nvme' ? ' + offload nvme' : ''}, micro batch ${L.microBatch} × ${L.gradAccum} accumulation, ${L.precision}`;
}

/** The text (or JSON) `vlmoe plan` prints; throws with a clear message on a layout that does not divide. */
export function plan(o: PlanOptions): string {
  const name = o.preset ?? 'base', experts = o.experts ?? 32;
  const cfg = preset(name, experts ? { experts, k: o.k ?? 1 } : {});
  const shape = planShape(cfg);
  const base = HARDWARE[o.hardware ?? 'h100'];
  if (!base) throw new Error(`--hardware must be one of ${Object.keys(HARDWARE).join(', ')}, got '${o.hardware}'`);
  const hw: PlanHardware = { ...base, devicesPerNode: o.perNode ?? base.devicesPerNode, memory: o.memoryGb !== undefined ? o.memoryGb * 1e9 : base.memory };
  const world = (o.nodes ?? 1) * hw.devicesPerNode;
  const tp = o.tp ?? 1;
  const micro = o.microBatch ?? 8;
  const precision = o.precision ?? (o.hardware === 'cpu' ? 'fp32' : 'bf16');
  const optimizer = o.optimizer === 'sgd' ? 'SGD' : o.optimizer === 'sgd-momentum' ? 'SGD-momentum' : 'Adam';
  const common = { precision, optimizer, persistenceThreshold: 1e5, prefetch: o.prefetch ?? 5e7, maxLive: o.maxLive ?? 1e9, activationCheckpointing: o.activationCheckpointing ?? false } as const;
  const model = `${experts ? `VL-MoE-${name}/${experts}E top-${o.k ?? 1}` : `VLMo-${name}`}, ${human(shape.params.reduce((a, p) => a + p.numel, 0))} parameters`;
  const where = `${o.nodes ?? 1} × ${hw.devicesPerNode} ${o.hardware ?? 'h100'} (${world} ranks, ${gb(hw.memory)} each)`;
  if (o.search) {
    if (world % tp !== 0) throw new Error(`--tp ${tp} does not divide the world ${world}`);
    const globalBatch = o.globalBatch ?? micro * world;
    const all = searchLayouts(shape, hw, world, globalBatch, common);
    if (o.json) return JSON.stringify(all.slice(0, o.top ?? 10));
    const fit = all.filter((e) => e.fits);
    const rows = all.slice(0, o.top ?? 10).map((e, i) => `${String(i + 1).padStart(3)}  ${e.fits ? 'fits ' : 'NO   '}  ${ms(e.time.step).padStart(9)}  ${(100 * e.time.mfu).toFixed(1).padStart(5)}%  ${gb(e.memory.peak).padStart(10)}  ${describeLayout(e.layout, e.dataParallel)}`);
    return [`${model} on ${where}, global batch ${globalBatch}: ${fit.length} of ${all.length} layouts fit`, '', '  #  fits   step (est.)   MFU   peak/rank  layout', ...rows].join('\n');
  }
  const dp = world / tp;
  const global = o.globalBatch ?? micro * dp;
  if (!Number.isInteger(dp)) throw new Error(`--tp ${tp} does not divide the world ${world}`);
  if (global % (micro * dp) !== 0) throw new Error(`--global-batch ${global} is not a multiple of micro batch ${micro} × data-parallel size ${dp}`);
  const L: PlanLayout = { ...common, world, tp, ep: o.ep ?? 1, stage: (o.stage ?? 0) as PlanLayout['stage'], offload: o.offload ?? 'none', microBatch: micro, gradAccum: global / (micro * dp) };
  const e: PlanEstimate = estimate(shape, L, hw);
  if (o.json) return JSON.stringify(e);
  const m = e.memory;
  const lines = [
    `${model} on ${where}`,
    `layout: ${describeLayout(L, e.dataParallel)}, global batch ${global}`,
    '',
    'memory per rank',
    `  parameters          ${gb(m.parameters).padStart(10)}   (${human(e.elements.dense)} dense + ${human(e.elements.expert)} expert elements on this rank${L.stage === 3 ? `; ${human(e.elements.persistent)} kept whole` : ''})`,
    `  optimizer state     ${gb(m.optimizer).padStart(10)}`,
    `  partitions (fp32)   ${gb(m.partitions).padStart(10)}`,
    ...(m.offloaded ? [`  offloaded to files  ${gb(m.offloaded).padStart(10)}   (not in memory)`] : []),
    `  model states        ${gb(m.modelStates).padStart(10)}`,
    `  step transient      ${gb(m.transient).padStart(10)}   (gradients, reduction buffers, gathered parameters)`,
    `  activations         ${gb(m.activations).padStart(10)}   (${gb(m.activationsCheckpointed)} with activation checkpointing, an estimate)`,
    `  peak                ${gb(m.peak).padStart(10)}   ${e.fits ? 'fits' : `does NOT fit in ${gb(hw.memory)}`}`,
    '',
    'communication per step per rank (collective input bytes; on the wire)',
    ...(e.comm.length ? e.comm.map((c) => `  ${c.group.padEnd(21)} ${c.kind.padEnd(14)} ${gb(c.bytes).padStart(10)}  ${gb(c.wireBytes).padStart(10)}  ${c.what}${c.spansNodes ? ' (across nodes)' : ''}`) : ['  none (one rank)']),
    '',
    `time per step (roofline, no overlap): ${ms(e.time.step)} = compute ${ms(e.time.compute)} + communication ${ms(e.time.comm)} + optimizer ${ms(e.time.optimizer)}; MFU ${(100 * e.time.mfu).toFixed(1)}%`,
    `FLOPs per step ${e.flops.perStep.toExponential(3)} (${e.flops.perRankPerStep.toExponential(3)} per rank)`,
  ];
  return lines.join('\n');
}
