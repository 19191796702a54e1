/**
 * How a tensor-parallel parameter relates to its full (one-process) tensor, after Megatron's
 * `partition_dim` / `partition_stride`: the full tensor's dim `dim` is cut into `stride`
 * equal chunks (1 for a plain split; 3 for a fused q·k·v weight), each chunk into `size`
 * equal blocks, and rank r holds block r of every chunk, in chunk order. A parameter made
 * this way carries the tag `tensorParallel: {dim, stride, full?}`; the engine and checkpoints
 * read it to reduce gradients over the right group and to write and read the full tensor.
 *
 * A plain split of a dim that does not divide (a vocabulary of 30,522 over 4 ranks) pads it
 * with zeros up to a multiple of the ranks, as Megatron pads the vocabulary — but only inside
 * the shards: `full` records the true length, `unshard` trims the padding, so checkpoints and
 * the one-process model never see it. The layer that owns such a shard keeps its padding out
 * of the results (the vocab-parallel embedding never looks up a padded row, the vocab-parallel
 * loss masks padded logits), so padded entries get no gradient and stay zero.
 */
import * as T from '@vlmoe/tensor';

export interface TensorParallelTag {
  /** The dim of the full tensor that is split. */
  dim: number;
  /** Chunks of that dim split independently (1: a plain split). */
  stride: number;
  /** A plain split of a dim that does not divide over the ranks: its true length (the shards are zero-padded). */
  full?: number;
}

/** The tag of a tensor-parallel parameter, or null for a replicated one. */
export function tensorParallelTag(p: T.nn.Parameter): TensorParallelTag | null {
  const t = p.tags.tensorParallel as TensorParallelTag | undefined;
  return t ?? null;
}

/** The tag for splitting a dim of length n over `size` ranks in `stride` chunks: padded (with `full`) when a plain split does not divide. */
export function splitTag(n: number, dim: number, size: number, stride = 1): TensorParallelTag {
  if (stride === 1 && n % size !== 0) return { dim, stride, full: n };
  return { dim, stride };
}

/** Rows (along the split dim) of each rank's shard for a full length n. */
function blockLength(what: string, shape: readonly number[], tag: TensorParallelTag, size: number): number {
  const n = shape[tag.dim];
  if (n === undefined) throw new Error(`${what}: dim ${tag.dim} is out of range for shape [${shape.join(', ')}]`);
  if (tag.full !== undefined) {
    if (tag.stride !== 1) throw new Error(`${what}: a padded split must have stride 1, got ${tag.stride}`);
    if (n !== tag.full) throw new Error(`${what}: dim ${tag.dim} of [${shape.join(', ')}] is ${n}, the split was made for ${tag.full}`);
    return Math.ceil(n / size);
  }
  if (n % (tag.stride * size) !== 0)
    throw new Error(`${what}: dim ${tag.dim} of [${shape.join(', ')}] (${n}) does not split into ${tag.stride} chunk(s) over ${size} tensor-parallel ranks`);
  return n / (tag.stride * size);
}

/** Rank `rank`'s shard of the full tensor `full` (a contiguous copy; zero-padded for a padded split). */
export function shardOf(full: T.Tensor, tag: TensorParallelTag, rank: number, size: number): T.Tensor {
  const block = blockLength('shardOf', full.shape, tag, size);
  return T.noGrad(() => {
    if (tag.full !== undefined) {
      const n = tag.full, lo = Math.min(n, rank * block), hi = Math.min(n, lo + block);
      const shape = full.shape.slice();
      shape[tag.dim] = block;
      const out = T.zeros(shape, { dtype: full.dtype, device: full.device });
      if (hi > lo) T.copy_(out.narrow(tag.dim, 0, hi - lo), full.narrow(tag.dim, lo, hi - lo));
      return out;
    }
    const chunk = block * size;
    const parts = Array.from({ length: tag.stride }, (_, c) => full.narrow(tag.dim, c * chunk + rank * block, block));
    return T.contiguous(parts.length === 1 ? parts[0]! : T.cat(parts, tag.dim));
  });
}

/** The full tensor from every rank's shard, in rank order (the inverse of shardOf; padding trimmed). */
export function unshard(shards: readonly T.Tensor[], tag: TensorParallelTag): T.Tensor {
  if (!shards.length) throw new Error('unshard: no shards');
  const n = shards[0]!.shape[tag.dim];
  if (n === undefined) throw new Error(`unshard: dim ${tag.dim} is out of range for shape [${shards[0]!.shape.join(', ')}]`);
  if (n % tag.stride !== 0) throw new Error(`unshard: dim ${tag.dim} of a shard [${shards[0]!.shape.join(', ')}] does not split into ${tag.stride} chunks`);
  const block = n / tag.stride;
  const parts: T.Tensor[] = [];
  for (let c = 0; c < tag.stride; c++) for (const s of shards) parts.push(s.narrow(tag.dim, c * block, block));
  return T.noGrad(() => {
    const all = T.cat(parts, tag.dim);
    return tag.full !== undefined && tag.full < all.shape[tag.dim]! ? T.contiguous(all.narrow(tag.dim, 0, tag.full)) : all;
  });
}
