// Fused cross entropy over rows of logits [N, C] (contiguous) against class targets [N]
// (int32 / int64), with ignore_index and label smoothing ε:
//   lse_r  = log Σ_c exp(x_rc)
//   loss_r = (1 − ε)·(lse_r − x_r,t) + ε·(lse_r − mean_c x_rc),   0 where t_r = ignore_index
//   dx_rc  = (softmax(x_r)_c − (1 − ε)·[c = t_r] − ε/C)·g_r,      0 rows where t_r = ignore_index
// A target outside [0, C) that is not ignore_index is an error naming it. The loss, lse and
// g are in the logits' dtype (float32 / float64); sums run in float64.
#pragma once
#include <cstdint>

#include "../dtype.h"

namespace vlmoe {

struct CrossEntropyArgs {
  int64_t N = 0, C = 0;
  int64_t ignore_index = -100;
  double smoothing = 0;
  DType target_dtype = DType::i64;
};

// Throws std::out_of_range naming the first target outside [0, C) that is not ignore_index.
void cross_entropy_check_targets(const CrossEntropyArgs& a, const void* target);
void cross_entropy_forward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse);
void cross_entropy_backward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g, void* dlogits);

}  // namespace vlmoe
