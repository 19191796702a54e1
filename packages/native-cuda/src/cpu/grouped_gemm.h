// Grouped linear layers: G weight matrices applied to G consecutive, variable-sized row
// groups of one buffer (the expert-contiguous tokens of an MoE layer), one call for all.
//
//   x [R, K] with rows [off_g, off_g + n_g) in group g (off_g = n_0 + … + n_{g−1}, Σ n_g = R)
//   w [G, K, N] (in × out, as DeepSpeed-MoE's stacked expert weights), b [G, N] or null
//   forward:  y_g = x_g · w_g + b_g                                   y [R, N]
//   backward: dx_g = dy_g · w_gᵀ,  dw_g = x_gᵀ · dy_g,  db_g = Σ_rows dy_g
//
// Each group is one GEMM through gemm_f32/gemm_f64 (OpenBLAS or the builtin kernels), so a
// group gets the threaded GEMM; empty groups cost nothing and get zero weight gradients.
// reference = true runs each group through gemm_reference_* (the tests' ground truth).
#pragma once
#include <cstdint>

#include "../dtype.h"

namespace vlmoe {

void grouped_linear_forward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w,
                            const void* b, void* y, bool reference = false);
// Any of dx, dw, db may be null (not wanted). dw/db are overwritten, not accumulated.
void grouped_linear_backward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w,
                             const void* dy, void* dx, void* dw, void* db, bool reference = false);

// The fused expert FFN: per group, y_g = act(x_g · w1_g + b1_g) · w2_g + b2_g, with the
// group's hidden activations still in cache when the second GEMM reads them.
//   x [R, D], w1 [G, D, H], b1 [G, H], w2 [G, H, D], b2 [G, D] (biases may be null)
//   act: 0 gelu (erf), 1 gelu (tanh approximation), 2 relu
// Forward writes pre [R, H] (x·w1 + b1) and hid [R, H] (act(pre)), kept for backward, and
// y [R, D]. Backward takes them with dy [R, D] and a scratch [R, H]; any of dx, dw1, db1,
// dw2, db2 may be null (not wanted). Gradients are overwritten, not accumulated.
void expert_ffn_forward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1,
                        const void* b1, const void* w2, const void* b2, void* pre, void* hid, void* y, bool reference = false);
void expert_ffn_backward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1,
                         const void* w2, const void* pre, const void* hid, const void* dy, void* scratch, void* dx, void* dw1,
                         void* db1, void* dw2, void* db2, bool reference = false);

}  // namespace vlmoe
