/**
 * Megatron-LM's `VocabParallelEmbedding`: the embedding table [V, d] split by rows over a
 * tensor-parallel group of P ranks (rank r holds ids [r·V/P, (r+1)·V/P)). Each rank looks up
 * the ids in its range, writes zeros for the others, and one all-reduce sums the ranks'
 * rows into the full lookup (backward: each rank's gradient rows land in its own shard only).
 * When P does not divide V each rank holds ⌈V/P⌉ rows and the last shards end in zero padding
 * (as Megatron pads the vocabulary), never looked up and trimmed from checkpoints.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { tensorParallelParameter } from './linear.js';
import { reduceFromTensorParallelRegion } from './mappings.js';
import { splitTag } from './shard.js';

export class VocabParallelEmbedding extends T.nn.Module {
  weight: T.nn.Parameter;
  /** The ids this rank holds: [vocabStart, vocabEnd). */
  readonly vocabStart: number;
  readonly vocabEnd: number;

  /** `weight` [V, d] is the full table; this rank keeps its rows. */
  constructor(readonly group: ProcessGroup, weight: T.nn.Parameter) {
    super();
    if (weight.ndim !== 2) throw new Error(`VocabParallelEmbedding: weight must be [vocab, dim], got [${weight.shape.join(', ')}]`);
    const V = weight.shape[0]!;
    this.weight = tensorParallelParameter(weight, group, splitTag(V, 0, group.size), weight.tags);
    const rows = this.weight.shape[0]!;
    this.vocabStart = Math.min(V, group.rank * rows);
    this.vocabEnd = Math.min(V, this.vocabStart + rows);
  }

  static fromDense(embedding: T.nn.Embedding, group: ProcessGroup): VocabParallelEmbedding {
    return new VocabParallelEmbedding(group, embedding.weight);
  }

  forward(ids: T.Tensor): T.Tensor {
    if (this.group.size === 1) return T.embedding(ids, this.weight);
    const outside = T.logicalOr(T.lt(ids, this.vocabStart), T.ge(ids, this.vocabEnd));
    const local = T.where(outside, 0, T.sub(ids, this.vocabStart));
    const rows = T.embedding(local, this.weight);
    const mine = T.where(T.unsqueeze(outside, -1), 0, rows);
    return reduceFromTensorParallelRegion(this.group, mine);
  }
}
