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
 * Rank 0 writes into `<tag>.tmp-<pid>` and renames it into place, then replaces `latest`
 * atomically: a crash mid-save never leaves a half checkpoint under the tag.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import type { DistributedEngine } from './engine.js';
import type { LossScalerState } from './loss_scaler.js';

const MAX_SHARD_BYTES = 1 << 30;

interface Index {
  format: 'vlmoe-checkpoint';
  version: 1;
  tag: string;
  layout: { world: number; expertParallel: number; stage: number };
  globalSteps: number;
  microSteps: number;
  lrs: number[];
  scheduler: unknown;
  /** fp16: the loss scaler's state; steps skipped on overflow. */
  lossScaler?: LossScalerState | null;
  skippedSteps?: number;
  /** The caller's own resumable state (DeepSpeed's client_state): data position, RNG, … */
  clientState: unknown;
  /** Optimiser scalars per parameter name (e.g. Adam's step). */
  scalars: Record<string, Record<string, number>>;
  weightMap: Record<string, string>;
}

type SetLike = DistributedEngine['sets'][number];

/** Gathers expert tensors (local experts first along dim 0) over the expert-parallel group. */
function globalExperts(e: DistributedEngine, local: T.Tensor): T.Tensor {
  const ep = e.groups.expertParallel;
  if (ep.size === 1) return local;
  return T.cat(ep.allGather(T.contiguous(local)), 0);
}

/** Per-parameter optimiser state of a set, in the parameters' local shapes. */
function perParamState(e: DistributedEngine, s: SetLike): Map<string, Record<string, T.Tensor | number>> {
  const out = new Map<string, Record<string, T.Tensor | number>>();
  if (!s.shard) {
    s.params.forEach((p, i) => {
      const st = e.optimizer.state.get(p);
      if (st) out.set(s.names[i]!, { ...st } as Record<string, T.Tensor | number>);
    });
    return out;
  }
  const st = e.optimizer.state.get(s.shard);
  // every rank of the group calls the same gathers: agree on the keys first
  const keys = st ? Object.keys(st).filter((k) => typeof st[k] === 'object').sort() : [];
  const scalars = st ? Object.fromEntries(Object.entries(st).filter(([, v]) => typeof v === 'number')) as Record<string, number> : {};
  const fulls: Record<string, T.Tensor> = {};
  for (const k of keys) {
    const full = T.empty([s.chunk * s.group.size], { dtype: s.params[0]!.dtype, device: s.params[0]!.device });
    s.group.allGatherIntoTensor(full, st![k] as T.Tensor);
    fulls[k] = full;
  }
  if (!keys.length) return out;
  s.params.forEach((p, i) => {
    const rec: Record<string, T.Tensor | number> = { ...scalars };
    for (const k of keys) rec[k] = fulls[k]!.narrow(0, s.offsets[i]!, p.numel).reshape(...p.shape);
    out.set(s.names[i]!, rec);
  });
  return out;
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

export function saveCheckpointImpl(e: DistributedEngine, dir: string, tag = `global_step${e.globalSteps}`, clientState: unknown = null): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(tag)) throw new Error(`saveCheckpoint: tag '${tag}' may only hold letters, digits, '_', '.', '-'`);
  const world = e.groups.world;
  const model: [string, T.Tensor][] = [];
  const optim: [string, T.Tensor][] = [];
  const scalars: Record<string, Record<string, number>> = {};
  T.noGrad(() => {
    for (const s of e.sets) {
      const states = perParamState(e, s);
      s.params.forEach((p, i) => {
        const name = s.names[i]!;
        model.push([name, s.kind === 'expert' ? globalExperts(e, p) : p]);
      });
      // optimiser tensors: the same keys on every rank (a step has happened everywhere or nowhere)
      for (let i = 0; i < s.params.length; i++) {
        const name = s.names[i]!;
        const st = states.get(name);
        if (!st) continue;
        for (const [k, v] of Object.entries(st)) {
          if (typeof v === 'number') (scalars[name] ??= {})[k] = v;
          else optim.push([`${name}::${k}`, s.kind === 'expert' ? globalExperts(e, v) : v]);
        }
      }
    }
  });
  if (world.rank === 0) {
    fs.mkdirSync(dir, { recursive: true });
    const final = path.join(dir, tag);
    const tmp = `${final}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    const weightMap: Record<string, string> = {};
    writeShards(tmp, 'model', model, weightMap);
    writeShards(tmp, 'optim', optim, weightMap);
    const index: Index = {
      format: 'vlmoe-checkpoint', version: 1, tag,
      layout: { world: world.size, expertParallel: e.groups.expertParallelSize, stage: e.config.stage },
      globalSteps: e.globalSteps, microSteps: e.microSteps, lrs: e.getLr(), lossScaler: e.lossScaler ? e.lossScaler.stateDict() : null, skippedSteps: e.skippedSteps,
      scheduler: e.lrScheduler ? e.lrScheduler.stateDict() : null, clientState, scalars, weightMap,
    };
    fs.writeFileSync(path.join(tmp, 'checkpoint.json'), JSON.stringify(index, null, 1));
    const old = `${final}.old-${process.pid}`;
    if (fs.existsSync(final)) fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
    T.writeFileAtomicSync(path.join(dir, 'latest'), (write) => write(new TextEncoder().encode(tag)));
  }
  world.barrier();
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
  const index = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as Index;
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

export function loadCheckpointImpl(e: DistributedEngine, dir: string, tag?: string): unknown {
  const { root, index, get } = openCheckpoint(dir, tag, 'loadCheckpoint');
  const ep = e.groups.expertParallel;
  const localOf = (s: SetLike, g: T.Tensor): T.Tensor => {
    if (s.kind !== 'expert') return g;
    const L = g.shape[0]! / ep.size;
    if (!Number.isInteger(L)) throw new Error(`loadCheckpoint: ${g.shape[0]} experts do not divide over expert-parallel size ${ep.size}`);
    return g.narrow(0, ep.rank * L, L);
  };
  T.noGrad(() => {
    for (const s of e.sets) {
      s.params.forEach((p, i) => {
        const name = s.names[i]!;
        const g = get(name);
        if (!g) throw new Error(`loadCheckpoint: ${root} has no parameter '${name}'`);
        const v = localOf(s, g);
        if (v.shape.join() !== p.shape.join()) throw new Error(`loadCheckpoint: '${name}' is [${v.shape}] in the checkpoint (local part), the model has [${p.shape}]`);
        T.copy_(p, v);
      });
      // optimiser state
      const keysOf = (name: string) => Object.keys(index.weightMap).filter((k) => k.startsWith(`${name}::`)).map((k) => k.slice(name.length + 2));
      if (!s.shard) {
        s.params.forEach((p, i) => {
          const name = s.names[i]!;
          const keys = keysOf(name);
          if (!keys.length) return;
          const st: Record<string, T.Tensor | number> = { ...(index.scalars[name] ?? {}) };
          for (const k of keys) st[k] = T.keep(T.clone(localOf(s, get(`${name}::${k}`)!)));
          e.optimizer.state.set(p, st);
        });
      } else {
        const keys = s.names.length ? keysOf(s.names[0]!) : [];
        if (!keys.length) continue;
        const st: Record<string, T.Tensor | number> = { ...(index.scalars[s.names[0]!] ?? {}) };
        for (const k of keys) {
          const full = T.zeros([s.chunk * s.group.size], { dtype: s.params[0]!.dtype, device: s.params[0]!.device });
          s.params.forEach((p, i) => {
            const v = get(`${s.names[i]!}::${k}`);
            if (v) T.copy_(full.narrow(0, s.offsets[i]!, p.numel), localOf(s, v).reshape(-1));
          });
          st[k] = T.keep(T.contiguous(full.narrow(0, s.group.rank * s.chunk, s.chunk)));
          full.dispose();
        }
        e.optimizer.state.set(s.shard, st);
        // the shard's values follow the loaded parameters
        const lo = s.group.rank * s.chunk;
        T.fill_(s.shard, 0);
        s.params.forEach((p, i) => {
          const a = Math.max(lo, s.offsets[i]!), b = Math.min(lo + s.chunk, s.offsets[i]! + p.numel);
          if (b > a) T.copy_(s.shard!.narrow(0, a - lo, b - a), p.reshape(-1).narrow(0, a - s.offsets[i]!, b - a));
        });
      }
    }
  });
  e.globalSteps = index.globalSteps;
  e.microSteps = index.microSteps;
  e.skippedSteps = index.skippedSteps ?? 0;
  if (e.lossScaler && index.lossScaler) e.lossScaler.loadStateDict(index.lossScaler);
  e.optimizer.paramGroups.forEach((g) => (g.lr = index.lrs[0] ?? g.lr));
  if (e.lrScheduler && index.scheduler) e.lrScheduler.loadStateDict(index.scheduler as T.optim.SchedulerStateDict);
  e.groups.world.barrier();
  return index.clientState ?? null;
}
