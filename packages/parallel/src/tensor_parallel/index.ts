/** Tensor parallelism after Megatron-LM: region mappings, split linears and embedding, vocab-parallel cross-entropy. */
export { copyToTensorParallelRegion, reduceFromTensorParallelRegion, scatterToTensorParallelRegion, gatherFromTensorParallelRegion } from './mappings.js';
export { RowLayout, gatherRows, scatterRows } from './rows.js';
export { ColumnParallelLinear, RowParallelLinear, tensorParallelParameter, type ColumnParallelOptions, type RowParallelOptions } from './linear.js';
export { VocabParallelEmbedding } from './embedding.js';
export { vocabParallelCrossEntropy, type VocabParallelCrossEntropyOptions } from './cross_entropy.js';
export { shardOf, unshard, splitTag, tensorParallelTag, type TensorParallelTag } from './shard.js';
export { ParallelSelfAttention } from './attention.js';
export { ParallelFeedForward } from './feedforward.js';
export { applyTensorParallel, isTensorParallelModule, type TensorParallelModule, type TensorParallelReport } from './apply.js';
