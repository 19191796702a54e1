/**
 * Checkpoints that outlive their layout. Everything is stored in the global layout: dense
 * parameters by name, expert parameters with all E experts stacked (gathered over the
 * expert-parallel group), optimiser state per parameter (ZeRO partitions gathered and cut
 * back into parameters). So a checkpoint saved at one world size, expert-parallel size and
 * ZeRO stage loads at any other.
 *
 *   <dir>/<tag>/model-00001-of-0000N.safetensors …   parameters, sharded by size
 *   <dir>/<tag>/optim-00001-of-0000M.safetensors …   optimiser tensors as "<param>::<key>"
 *   <dir>/<tag>/checkpoint.json                       index: tensor → file, steps, lrs,
 *                                                      scheduler, optimiser scalars, layout
 *   <dir>/latest                                      the newest tag
 *
 * The tensors in the global layout come from the ZeRO optimizer (zero.ts), which also takes
 * them back at any layout; this file only writes and reads the folder. Rank 0 writes into
 * `<tag>.tmp-<pid>` and renames it into place, then replaces `latest` atomically: a crash
 * mid-save never leaves a half checkpoint under the tag.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import type { LossScalerState } from './loss_scaler.js';
import type { ProcessGroup } from './process_group.js';
import type { ZeroOptimizer } from './zero.js';

const MAX_SHARD_BYTES = 1 << 30;

/** The layout a checkpoint was written at (informational: it loads at any layout). */
export interface CheckpointLayout {
  world: number;
  expertParallel: number;
  /** Absent in checkpoints written before tensor parallelism (1). */
  tensorParallel?: number;
  stage: number;
}

/** The engine's training state that a checkpoint carries beside the tensors. */
export interface TrainingState {
  globalSteps: number;
  microSteps: number;
  lrs: number[];
  scheduler: unknown;
  /** fp16: the loss scaler's state; steps skipped on overflow. */
  lossScaler: LossScalerState | null;
  skippedSteps: number;
  /** The caller's own resumable state (DeepSpeed's client_state): data position, RNG, … */
  clientState: unknown;
}

interface Index extends TrainingState {
  format: 'vlmoe-checkpoint';
  version: 1;
  tag: string;
  layout: CheckpointLayout;
  /** Optimiser scalars per parameter name (e.g. Adam's step). */
  scalars: Record<string, Record<string, number>>;
  weightMap: Record<string, string>;
}

function writeShards(dir: string, prefix: string, tensors: [string, T.Tensor][], weightMap: Record<string, string>): void {
  const shards: [string, T.Tensor][][] = [[]];
  let bytes = 0;
  for (const item of tensors) {
    const b = item[1].numel * T.dtypeSize[item[1].dtype];
    if (bytes + b > MAX_SHARD_BYTES && shards[shards.length - 1]!.length) {
      shards.push([]);
      bytes = 0;
    }
    shards[shards.length - 1]!.push(item);
    bytes += b;
  }
  shards.forEach((list, i) => {
    if (!list.length) return;
    const file = `${prefix}-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    T.saveFile(path.join(dir, file), Object.fromEntries(list.map(([n, t]) => [n, T.contiguous(t)])));
    for (const [n] of list) weightMap[n] = file;
  });
}

/** Writes the folder `<dir>/<tag>/` atomically (a temporary folder renamed into place), then `latest`. */
function writeCheckpointFolder(dir: string, tag: string, params: [string, T.Tensor][], optimizer: [string, T.Tensor][], index: Omit<Index, 'weightMap'>): void {
  fs.mkdirSync(dir, { recursive: true });
  const final = path.join(dir, tag);
  const tmp = `${final}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  const weightMap: Record<string, string> = {};
  writeShards(tmp, 'model', params, weightMap);
  writeShards(tmp, 'optim', optimizer, weightMap);
  fs.writeFileSync(path.join(tmp, 'checkpoint.json'), JSON.stringify({ ...index, weightMap }, null, 1));
  const old = `${final}.old-${process.pid}`;
  if (fs.existsSync(final)) fs.renameSync(final, old);
  fs.renameSync(tmp, final);
  fs.rmSync(old, { recursive: true, force: true });
  T.writeFileAtomicSync(path.join(dir, 'latest'), (write) => write(new TextEncoder().encode(tag)));
}

const checkTag = (tag: string, who: string) => {
  if (!/^[A-Za-z0-9_.-]+$/.test(tag)) throw new Error(`${who}: tag '${tag}' may only hold letters, digits, '_', '.', '-'`);
};

/**
 * Writes `<dir>/<tag>/` (collective: every rank calls it; rank 0 writes). `buffers`: the
 * module's buffers by name (state that is not trained, e.g. a router's expert bias), written
 * beside the parameters from rank 0 (buffers are the same on every rank).
 */
export function saveCheckpoint(dir: string, tag: string, zero: ZeroOptimizer, world: ProcessGroup, layout: CheckpointLayout, state: TrainingState, buffers: [string, T.Tensor][] = []): void {
  checkTag(tag, 'saveCheckpoint');
  const global = zero.globalState();
  if (world.rank === 0) writeCheckpointFolder(dir, tag, [...global.params, ...buffers], global.optimizer, { format: 'vlmoe-checkpoint', version: 1, tag, layout, ...state, scalars: global.scalars });
  world.barrier();
}

/**
 * A weights-only checkpoint in the same layout (no optimiser state; one process): what
 * `loadCheckpointWeights` and a fine-tuning run's `init` read — e.g. weights imported from
 * another framework (`vlmoe import`), DeepSpeed's `save_16bit_model` counterpart.
 */
export function saveCheckpointWeights(dir: string, tag: string, weights: Record<string, T.Tensor>, o: { globalSteps?: number; clientState?: unknown } = {}): void {
  checkTag(tag, 'saveCheckpointWeights');
  const state: TrainingState = { globalSteps: o.globalSteps ?? 0, microSteps: 0, lrs: [], scheduler: null, lossScaler: null, skippedSteps: 0, clientState: o.clientState ?? null };
  writeCheckpointFolder(dir, tag, Object.entries(weights), [], { format: 'vlmoe-checkpoint', version: 1, tag, layout: { world: 1, expertParallel: 1, stage: 0 }, ...state, scalars: {} });
}

/** A checkpoint folder opened for reading: its index and a lazy tensor getter. */
interface OpenCheckpoint {
  root: string;
  index: Index;
  get(name: string): T.Tensor | null;
}

function openCheckpoint(dir: string, tag: string | undefined, who: string): OpenCheckpoint {
  const t = tag ?? (fs.existsSync(path.join(dir, 'latest')) ? fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim() : '');
  if (!t) throw new Error(`${who}: no tag given and no ${path.join(dir, 'latest')}`);
  const root = path.join(dir, t);
  const indexPath = path.join(root, 'checkpoint.json');
  if (!fs.existsSync(indexPath)) throw new Error(`${who}: ${indexPath} does not exist`);
  const index = T.readJsonFile(indexPath, 'checkpoint index') as Index;
  if (index.format !== 'vlmoe-checkpoint') throw new Error(`${who}: ${indexPath} is not a vlmoe checkpoint`);
  const files = new Map<string, Record<string, T.Tensor>>();
  const get = (name: string): T.Tensor | null => {
    const f = index.weightMap[name];
    if (!f) return null;
    if (!files.has(f)) files.set(f, T.loadFile(path.join(root, f)).tensors);
    return files.get(f)![name] ?? null;
  };
  return { root, index, get };
}

/**
 * The model weights of a checkpoint in the global layout (expert tensors hold all experts),
 * by parameter name — what a fine-tuning run loads from a pretraining run (DeepSpeed's
 * `get_fp32_state_dict_from_zero_checkpoint`). No process group needed.
 */
export function loadCheckpointWeights(dir: string, tag?: string): { tag: string; globalSteps: number; clientState: unknown; weights: Record<string, T.Tensor> } {
  const c = openCheckpoint(dir, tag, 'loadCheckpointWeights');
  const weights: Record<string, T.Tensor> = {};
  for (const name of Object.keys(c.index.weightMap)) if (!name.includes('::')) weights[name] = c.get(name)!;
  return { tag: c.index.tag, globalSteps: c.index.globalSteps, clientState: c.index.clientState ?? null, weights };
}

/** Loads the latest (or `tag`) checkpoint into the ZeRO optimizer's parameters and state and into `buffers` (by name); returns the training state it holds (collective). */
export function loadCheckpoint(dir: string, tag: string | undefined, zero: ZeroOptimizer, world: ProcessGroup, buffers: [string, T.Tensor][] = []): TrainingState {
  const { root, index, get } = openCheckpoint(dir, tag, 'loadCheckpoint');
  const keysOf = (name: string) => Object.keys(index.weightMap).filter((k) => k.startsWith(`${name}::`)).map((k) => k.slice(name.length + 2));
  zero.loadGlobalState(get, keysOf, index.scalars, `loadCheckpoint: ${root}`);
  for (const [name, b] of buffers) {
    const v = get(name);
    if (!v) throw new Error(`loadCheckpoint: ${root} has no buffer '${name}' (written by a model without it?)`);
    if (v.shape.length !== b.shape.length || v.shape.some((x, i) => x !== b.shape[i])) throw new Error(`loadCheckpoint: ${root}: buffer '${name}' is [${v.shape.join(', ')}], the model's is [${b.shape.join(', ')}]`);
    T.noGrad(() => T.copy_(b, v));
  }
  world.barrier();
  return {
    globalSteps: index.globalSteps, microSteps: index.microSteps, lrs: index.lrs, scheduler: index.scheduler,
    lossScaler: index.lossScaler ?? null, skippedSteps: index.skippedSteps ?? 0, clientState: index.clientState ?? null,
  };
}
