/**
 * `allGatherRows`: a differentiable all-gather along dim 0 (VLMo / CLIP's `GatherLayer`), so
 * a contrastive loss can use every data-parallel rank's embeddings as negatives. Forward:
 * `[B, …]` on each rank → `[W·B, …]` (rank r's rows at r·B). Backward: the gradient of the
 * gathered tensor is summed over ranks (each rank's loss touches every rank's rows) and this
 * rank's block is returned. Every rank must pass the same shape.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from './process_group.js';

export function allGatherRows(pg: ProcessGroup, x: T.Tensor): T.Tensor {
  if (pg.size === 1) return x;
  const B = x.shape[0]!;
  const rest = x.shape.slice(1);
  return T.customOp('allGatherRows', [x], () => {
    const out = T.empty([pg.size * B, ...rest], { dtype: x.dtype, device: x.device });
    pg.allGatherIntoTensor(out, T.contiguous(x));
    return out;
  }, (g) => {
    const sum = T.clone(T.contiguous(g));
    pg.allReduce(sum, 'sum');
    return [T.contiguous(sum.narrow(0, pg.rank * B, B))];
  });
}
