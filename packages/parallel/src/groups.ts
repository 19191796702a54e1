/**
 * DeepSpeed's process-group layout for expert parallelism of size P over W ranks:
 * expert-parallel groups are contiguous ranks ([0..P−1], [P..2P−1], …) and expert-data-parallel
 * groups strided ([0, P, 2P, …], [1, P+1, …]). Every rank calls newGroup for every group in
 * the same order (as torch requires) and keeps the two it belongs to.
 */
import type { ProcessGroup } from './process_group.js';

export interface ParallelGroups {
  world: ProcessGroup;
  /** The ranks that split the experts among themselves. */
  expertParallel: ProcessGroup;
  /** The ranks holding the same experts (expert gradients are reduced here). */
  expertDataParallel: ProcessGroup;
  expertParallelSize: number;
}

export function createParallelGroups(world: ProcessGroup, expertParallelSize: number): ParallelGroups {
  const W = world.size, P = expertParallelSize;
  if (!(Number.isInteger(P) && P >= 1 && W % P === 0)) throw new Error(`expert_parallel_size ${P} must divide the world size ${W}`);
  if (P === 1) return { world, expertParallel: world.newGroup([world.rank])!, expertDataParallel: world, expertParallelSize: 1 };
  if (P === W) return { world, expertParallel: world, expertDataParallel: world.newGroup([world.rank])!, expertParallelSize: P };
  let ep: ProcessGroup | null = null, edp: ProcessGroup | null = null;
  for (let g = 0; g < W / P; g++) {
    const pg = world.newGroup(Array.from({ length: P }, (_, i) => g * P + i));
    if (pg) ep = pg;
  }
  for (let j = 0; j < P; j++) {
    const pg = world.newGroup(Array.from({ length: W / P }, (_, i) => i * P + j));
    if (pg) edp = pg;
  }
  return { world, expertParallel: ep!, expertDataParallel: edp!, expertParallelSize: P };
}
