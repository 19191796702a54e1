// Fused token-choice MoE gating (the router of packages/moe, route.ts `tokenChoice`), in
// three kernels around moe_assign (slots, drop policy, counts):
//
// moe_gate_forward — logits x [S, E] (float32 / float64; on CUDA also bfloat16 / float16):
//   lse_r      = log Σ_e exp(x_re)                                  (optional) [S]
//   gates_re   = exp(x_re − lse_r)                                  [S, E]
//   index_r    = the k ≤ 8 largest x_r· (= largest gates; ties → lower expert index, as
//                topk on the logits, which route.ts uses)         int64 [S, k]
//   topval_rj  = gates_r,index_rj as stored (rounded), in float64 (optional: the
//                batch-priority drop policy's priorities)           [S, k]
//   colPartial = P rows of partial column sums of gates (float64); Σ_p colPartial[p, e] =
//                Σ_r gates_re. The CPU splits the rows into P contiguous chunks; CUDA writes
//                one partial row per block (no atomics: deterministic).  [P, E]
// gates and lse are float64 for float64 logits, float32 otherwise.
//
// moe_combine_forward — from gates, index, slot (moe_assign's, −1 = dropped), colPartial
// and the balance-loss counts c [E] (int64):
//   cw_rj = kept_rj ? gates_r,index_rj : 0, then for k ≥ 2 divided by
//           max(Σ_j cw_rj, eps) (the sum in the gates' dtype, as route.ts's clamp)    [S, k]
//   aux   = auxScale · Σ_e (Σ_p colPartial[p, e] / S) · (c_e / S)                   [1]
//           (route.ts: auxScale = E / (k > 2 ? k : 1), covering both of its formulas)
//   z     = mean_r lse_r²  (optional)                                               [1]
//
// moe_gate_backward — dlogits [S, E] (the logits' dtype) from the upstream gradients of
// gates (gG [S, E]), cw (gcw [S, k]), aux and z (1-element tensors), each optional:
//   G_re  = gG_re + gaux·auxScale·c_e / S²
//           + Σ_j [index_rj = e]·kept_rj·(gcw_rj / D_r − [Σ_r ≥ eps]·Σ_l gcw_rl·cw'_rl / D_r²)
//           (k = 1: + Σ_j [index_rj = e]·kept_rj·gcw_rj), with cw' the kept gate values,
//           Σ_r their sum and D_r = max(Σ_r, eps)
//   dx_re = p_re·(G_re − Σ_e' p_re'·G_re') + gz·(2·lse_r / S)·p_re,  p = gates
#pragma once
#include <cstdint>

#include "../dtype.h"

namespace vlmoe {

constexpr int64_t kMoeGateMaxK = 8;
constexpr int64_t kMoeGateMaxExpertsCuda = 1024;

struct MoeGateArgs {
  int64_t S = 0, E = 0, k = 1;
  int64_t P = 1;           // partial rows of the column sums
  double eps = 0;          // combine: the denominator's lower bound (k ≥ 2)
  double aux_scale = 0;    // combine / backward: aux = aux_scale · Σ_e me_e · ce_e
};

// The gates' (and lse's) dtype for logits of dtype t: float64 stays, the rest use float32.
inline DType moe_gate_row_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

void moe_gate_forward(DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse);
// g: the gates' dtype (float32 / float64).
void moe_combine_forward(DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                         const int64_t* counts, const void* lse, void* cw, void* aux, void* z);
// t: the logits' dtype (dlogits); gates, lse and the gradients in moe_gate_row_dtype(t).
void moe_gate_backward(DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts, const void* lse,
                       const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits);

}  // namespace vlmoe
