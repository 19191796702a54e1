/**
 * How a tensor-parallel parameter relates to its full (one-process) tensor, after Megatron's
 * `partition_dim` / `partition_stride`: the full tensor's dim `dim` is cut into `stride`
 * equal chunks (1 for a plain split; 3 for a fused q·k·v weight), each chunk into `size`
 * equal blocks, and rank r holds block r of every chunk, in chunk order. A parameter made
 * this way carries the tag `tensorParallel: {dim, stride}`; the engine and checkpoints read
 * it to reduce gradients over the right group and to write and read the full tensor.
 */
import * as T from '@vlmoe/tensor';

export interface TensorParallelTag {
  /** The dim of the full tensor that is split. */
  dim: number;
  /** Chunks of that dim split independently (1: a plain split). */
  stride: number;
}

/** The tag of a tensor-parallel parameter, or null for a replicated one. */
export function tensorParallelTag(p: T.nn.Parameter): TensorParallelTag | null {
  const t = p.tags.tensorParallel as TensorParallelTag | undefined;
  return t ?? null;
}

function checkSplit(what: string, shape: readonly number[], tag: TensorParallelTag, size: number): number {
  const n = shape[tag.dim];
  if (n === undefined) throw new Error(`${what}: dim ${tag.dim} is out of range for shape [${shape.join(', ')}]`);
  if (n % (tag.stride * size) !== 0)
    throw new Error(`${what}: dim ${tag.dim} of [${shape.join(', ')}] (${n}) does not split into ${tag.stride} chunk(s) over ${size} tensor-parallel ranks`);
  return n / (tag.stride * size);
}

/** Rank `rank`'s shard of the full tensor `full` (a contiguous copy). */
export function shardOf(full: T.Tensor, tag: TensorParallelTag, rank: number, size: number): T.Tensor {
  const block = checkSplit('shardOf', full.shape, tag, size);
  const chunk = block * size;
  const parts = Array.from({ length: tag.stride }, (_, c) => full.narrow(tag.dim, c * chunk + rank * block, block));
  return T.noGrad(() => T.contiguous(parts.length === 1 ? parts[0]! : T.cat(parts, tag.dim)));
}

/** The full tensor from every rank's shard, in rank order (the inverse of shardOf). */
export function unshard(shards: readonly T.Tensor[], tag: TensorParallelTag): T.Tensor {
  if (!shards.length) throw new Error('unshard: no shards');
  const block = checkSplit('unshard', shards[0]!.shape, tag, 1);
  const parts: T.Tensor[] = [];
  for (let c = 0; c < tag.stride; c++) for (const s of shards) parts.push(s.narrow(tag.dim, c * block, block));
  return T.noGrad(() => T.cat(parts, tag.dim));
}
