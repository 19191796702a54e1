// MoE token permutation: between token order [S, d] and an expert-contiguous buffer [R, d].
//
// Assignment a = s·k + j (choice j of token s) lives at row[a] of the buffer, or nowhere when
// row[a] < 0 (dropped). Rows are distinct. The buffer is compact (R = kept assignments, expert
// e's rows at offset[e] + slot) or padded (R = E·C, row = e·C + slot); the kernels only see
// rows. Weights, when given, are one scalar per assignment (the combine weights). float32
// data accumulates in float32, float64 in float64; each output element is written once.
#pragma once
#include <cstdint>

#include "../dtype.h"

namespace vlmoe {

// dst[row[a]] = w[a] · src[a / k] (w = 1 when null); rows no assignment targets become 0.
void moe_permute(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w,
                 const void* src, void* dst);
// dst[s] = Σ_j w[s·k+j] · src[row[s·k+j]] over kept choices (w = 1 when null); 0 when none.
void moe_unpermute(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w,
                   const void* src, void* dst);
// dw[a] = ⟨dout[a / k], y[row[a]]⟩, 0 for dropped assignments (the combine weights' gradient).
void moe_unpermute_weight_grad(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row,
                               const void* dout, const void* y, void* dw);

// Rows must be distinct and inside [-1, R): checked here, with the offending assignment named.
void moe_check_rows(int64_t S, int64_t k, int64_t R, const int64_t* row, const char* op);

}  // namespace vlmoe
