/**
 * The process-group layout of data × tensor × expert parallelism over W ranks, as
 * Megatron-LM builds it from one rank grid with tensor parallelism innermost:
 *
 *   rank = t + T·d        (t: tensor-parallel rank < T, d: data-parallel index < D = W / T)
 *
 * - tensor-parallel groups: consecutive ranks [T·d, T·d + T) (they split each dense layer);
 * - data-parallel groups: the ranks with the same t ({t, t + T, t + 2T, …}); replicated
 *   (non-expert) gradients are reduced here;
 * - expert-parallel groups (size P, P | D): within a data-parallel group, P consecutive data
 *   indices ({t + T·(b·P + i) : i < P}); they split the experts among themselves;
 * - expert-data-parallel groups: the ranks that hold the same experts ({t + T·(b·P + i) : b <
 *   D / P}); expert gradients are reduced here;
 * - expert-data × tensor groups (T > 1): the same with every t ({t + T·(b·P + i) : t < T,
 *   b < D / P}). Experts that tensor parallelism does not split are replicated over the
 *   tensor-parallel group, but each of its ranks runs them on its own share of the tokens
 *   (the MoE layer de-duplicates them), so their gradients are reduced here.
 *
 * With T = 1 this is DeepSpeed's expert layout (expert-parallel groups contiguous, expert-
 * data-parallel groups strided). Every rank calls newGroup for every group in the same order
 * (as torch requires) and keeps the ones it belongs to.
 */
import type { ProcessGroup } from './process_group.js';

export interface ParallelSizes {
  /** Ranks that split each dense layer (Megatron's tensor_model_parallel_size). Default 1. */
  tensor?: number;
  /** Ranks that split the experts of each MoE layer (DeepSpeed's ep_size). Default 1. */
  expert?: number;
}

export interface ParallelGroups {
  world: ProcessGroup;
  /** The ranks that split each dense layer (tensor parallelism). */
  tensorParallel: ProcessGroup;
  /** The ranks holding the same shard of every dense layer (replicated gradients are reduced here). */
  dataParallel: ProcessGroup;
  /** The ranks that split the experts among themselves. */
  expertParallel: ProcessGroup;
  /** The ranks holding the same experts (expert gradients are reduced here). */
  expertDataParallel: ProcessGroup;
  /** The ranks holding the same unsplit experts over every tensor-parallel rank (expertDataParallel when T = 1). */
  expertDataTensorParallel: ProcessGroup;
  tensorParallelSize: number;
  dataParallelSize: number;
  expertParallelSize: number;
}

function sizeOf(what: string, v: number | undefined): number {
  const n = v ?? 1;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${what} must be an integer ≥ 1, got ${v}`);
  return n;
}

/** Builds the groups of the layout (see the file comment); `sizes` as a number is the expert-parallel size alone. */
export function createParallelGroups(world: ProcessGroup, sizes: ParallelSizes | number = {}): ParallelGroups {
  const s = typeof sizes === 'number' ? { expert: sizes } : sizes;
  const W = world.size;
  const T = sizeOf('tensor_parallel_size', s.tensor);
  const P = sizeOf('expert_parallel_size', s.expert);
  if (W % T !== 0) throw new Error(`tensor_parallel_size ${T} must divide the world size ${W}`);
  const D = W / T;
  if (D % P !== 0) throw new Error(`expert_parallel_size ${P} must divide the data-parallel size ${D} (world ${W} / tensor_parallel_size ${T})`);
  // Every rank takes the same branch (the groups of one kind have one size): the whole world
  // needs no new communicator, singletons one call each, others one call per group.
  const mine = (lists: number[][]): ProcessGroup => {
    if (lists[0]!.length === W) return world;
    if (lists[0]!.length === 1) return world.newGroup([world.rank])!;
    let got: ProcessGroup | null = null;
    for (const ranks of lists) {
      const pg = world.newGroup(ranks);
      if (pg) got = pg;
    }
    if (!got) throw new Error(`createParallelGroups: rank ${world.rank} is in none of the groups ${JSON.stringify(lists)}`);
    return got;
  };
  const range = <R>(n: number, f: (i: number) => R): R[] => Array.from({ length: n }, (_, i) => f(i));
  const tensorParallel = mine(range(D, (d) => range(T, (t) => t + T * d)));
  const dataParallel = mine(range(T, (t) => range(D, (d) => t + T * d)));
  const expertParallel = mine(range(T, (t) => range(D / P, (b) => range(P, (i) => t + T * (b * P + i)))).flat());
  const expertDataParallel = mine(range(T, (t) => range(P, (i) => range(D / P, (b) => t + T * (b * P + i)))).flat());
  const expertDataTensorParallel = T === 1 ? expertDataParallel : mine(range(P, (i) => range(D / P, (b) => range(T, (t) => t + T * (b * P + i))).flat()));
  return { world, tensorParallel, dataParallel, expertParallel, expertDataParallel, expertDataTensorParallel, tensorParallelSize: T, dataParallelSize: D, expertParallelSize: P };
}

/** One line per kind of group, for the start-up log: sizes and this rank's members. */
export function describeParallelGroups(g: ParallelGroups): string {
  const show = (pg: ProcessGroup) => `[${pg.ranks.join(', ')}]`;
  return `parallel layout: world ${g.world.size} = tensor ${g.tensorParallelSize} × data ${g.dataParallelSize}` +
    ` (expert ${g.expertParallelSize} × expert-data ${g.dataParallelSize / g.expertParallelSize}); rank ${g.world.rank}:` +
    ` tensor ${show(g.tensorParallel)}, data ${show(g.dataParallel)}, expert ${show(g.expertParallel)}, expert-data ${show(g.expertDataParallel)}`;
}
