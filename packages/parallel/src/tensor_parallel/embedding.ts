/**
 * Megatron-LM's `VocabParallelEmbedding`: the embedding table [V, d] split by rows over a
 * tensor-parallel group of P ranks (rank r holds ids [r·V/P, (r+1)·V/P)). Each rank looks up
 * the ids in its range, writes zeros for the others, and one all-reduce sums the ranks'
 * rows into the full lookup (backward: each rank's gradient rows land in its own shard only).
 * V must divide by P (Megatron pads the vocabulary to a multiple for the same reason).
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { tensorParallelParameter } from './linear.js';
import { reduceFromTensorParallelRegion } from './mappings.js';

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
    if (V % group.size !== 0)
      throw new Error(`VocabParallelEmbedding: a vocabulary of ${V} does not split over ${group.size} tensor-parallel ranks; use a vocabulary size divisible by ${group.size} (Megatron pads it to a multiple)`);
    this.weight = tensorParallelParameter(weight, group, { dim: 0, stride: 1 }, weight.tags);
    this.vocabStart = group.rank * (V / group.size);
    this.vocabEnd = this.vocabStart + V / group.size;
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
