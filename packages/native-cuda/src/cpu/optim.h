// Fused multi-tensor optimiser kernels (CPU): one call updates every parameter of a group.
//
// The kernels take plain arrays of segments (one per parameter tensor, all contiguous) and
// walk the concatenated elements with parallel_for, so a model with hundreds of small
// tensors costs one native call and one thread-pool dispatch per step. Formulas follow
// PyTorch 1.13's single-tensor (for-loop) implementations operation by operation, in the
// parameter's dtype, so trajectories agree with torch.optim to rounding.
//
// The N-API entry points are bindings/optim.cpp's.
#pragma once
#include <cstdint>

#include "../dtype.h"
#include "../optim_types.h"

namespace vlmoe {

// float32 or float64 (throws for other dtypes).
void adam_step(DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count);
void sgd_step(DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count);
// kind 0: sum of x^2; 1: max |x| (NaN propagates); 2: sum |x|^p. Accumulated in double over
// fixed blocks summed in order, so the result does not depend on the thread count.
double multi_tensor_norm(DType t, int kind, double p, const PlainSegment* segs, int64_t count);
// x *= scale for every segment.
void multi_tensor_scale(DType t, double scale, const PlainSegment* segs, int64_t count);

}  // namespace vlmoe
