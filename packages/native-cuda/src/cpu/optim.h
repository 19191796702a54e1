// Fused multi-tensor optimiser kernels (CPU): one call updates every parameter of a group.
//
// The kernels take plain arrays of segments (one per parameter tensor, all contiguous) and
// walk the concatenated elements with parallel_for, so a model with hundreds of small
// tensors costs one native call and one thread-pool dispatch per step. Formulas follow
// PyTorch 1.13's single-tensor (for-loop) implementations operation by operation, in the
// parameter's dtype, so trajectories agree with torch.optim to rounding.
//
// The N-API entry points (argument-block layouts documented beside each) are declared at
// the bottom and registered in addon.cpp.
#pragma once
#include <napi.h>

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

// ---- N-API entry points (registered in addon.cpp) ---------------------------------------
// adamStep(dtype, decoupled, amsgrad): block: count, lr, beta1, beta2, eps, weightDecay,
//   maximize, then per tensor: step, numel, p, g, exp_avg, exp_avg_sq (handle, offset each)
//   and, with amsgrad, max_exp_avg_sq.
Napi::Value OptimAdamStep(const Napi::CallbackInfo& info);
// sgdStep(dtype, hasMomentum): block: count, lr, momentum, dampening, weightDecay, nesterov,
//   maximize, then per tensor: numel, p, g (handle, offset) and, with momentum, init flag,
//   buf (handle, offset).
Napi::Value OptimSgdStep(const Napi::CallbackInfo& info);
// multiTensorNorm(dtype, kind) -> number: block: count, p, then per tensor numel, handle, offset.
Napi::Value OptimMultiTensorNorm(const Napi::CallbackInfo& info);
// multiTensorScale(dtype): block: count, scale, then per tensor numel, handle, offset.
Napi::Value OptimMultiTensorScale(const Napi::CallbackInfo& info);

}  // namespace vlmoe
