// bfloat16 / float16 on the CPU (cpu/half.cpp): casts to and from every dtype, fill, and the
// float32 conversions the half-precision GEMM uses.
#pragma once
#include <cstdint>

#include "../dtype.h"
#include "../iter.h"

namespace vlmoe {

// out = cast(in) over the Iter (operand 0 out, 1 in); one of the two dtypes is bf16 / f16.
void half_cast(DType in, DType out, Iter& it);
void half_fill(DType t, void* dst, int64_t n, double value);
// Contiguous conversions.
void half_to_f32(DType t, const void* src, float* dst, int64_t n);
void f32_to_half(DType t, const float* src, void* dst, int64_t n);
// C = alpha·op(A)·op(B) + beta·C with A, B in bf16 / f16 (the same), C in float32 or that
// dtype: operands widened to float32, one float32 GEMM (cpu/gemm.h semantics), C rounded once.
void gemm_half_cpu(DType ab, DType c, int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                   int64_t strideA, const void* B, int64_t ldb, int64_t strideB, double beta, void* C, int64_t ldc, int64_t strideC);

}  // namespace vlmoe
