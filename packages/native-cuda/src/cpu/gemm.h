// Dense matrix multiply (GEMM) on the CPU.
//
// All matrices are row-major. The semantics follow BLAS (cblas with CblasRowMajor):
//
//   C[M,N] = alpha * op(A) * op(B) + beta * C
//
//   op(A) is [M,K]: A is stored [M,K] with row stride lda, or [K,M] when transA.
//   op(B) is [K,N]: B is stored [K,N] with row stride ldb, or [N,K] when transB.
//   C has row stride ldc.
//
// beta == 0 ignores C's previous contents (even NaN/Inf); alpha == 0 or K == 0 does not
// read A or B. Leading dimensions must be >= the stored row length (at least 1).
//
// Three implementations:
//   gemm_reference_*  plain triple loop, used by tests as the ground truth;
//   gemm_builtin_*    blocked, packed, SIMD micro-kernels chosen at run time, threaded on
//                     the project's pool (threadpool.h);
//   gemm_*            the dispatcher: OpenBLAS when compiled with VLMOE_HAVE_OPENBLAS and
//                     not forced off with gemm_set_force_builtin(true), else builtin.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vlmoe {

void gemm_reference_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                        float* C, int64_t ldc);
void gemm_reference_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                        const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                        double* C, int64_t ldc);

void gemm_builtin_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc);
void gemm_builtin_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                      double* C, int64_t ldc);

// Read-ahead for the next builtin GEMM on the calling thread: that GEMM spreads software
// prefetches of [p, p + bytes) over its micro-kernel calls, so the DRAM traffic of data the
// thread reads next (a grouped GEMM's next expert weights) overlaps this product's arithmetic
// instead of stalling the next pack. Consumed (cleared) by the next gemm_builtin_* or gemm_*
// call on the thread (the dispatcher drops it when OpenBLAS runs the product). Only a hint: it
// changes no result, and bytes = 0 clears it.
void gemm_prefetch_hint(const void* p, size_t bytes);

// Strided batched builtin GEMM (see gemm_batched_* below).
void gemm_builtin_batched_f32(int64_t batch, bool transA, bool transB, int64_t M, int64_t N,
                              int64_t K, float alpha, const float* A, int64_t lda,
                              int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                              float beta, float* C, int64_t ldc, int64_t strideC);
void gemm_builtin_batched_f64(int64_t batch, bool transA, bool transB, int64_t M, int64_t N,
                              int64_t K, double alpha, const double* A, int64_t lda,
                              int64_t strideA, const double* B, int64_t ldb, int64_t strideB,
                              double beta, double* C, int64_t ldc, int64_t strideC);

// Dispatch: OpenBLAS (cblas_sgemm / cblas_dgemm) when available and not forced off,
// else the builtin path.
void gemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);
void gemm_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
              const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
              double* C, int64_t ldc);

// Strided batched: for b in [0, batch):
//   (C + b*strideC) = alpha * op(A + b*strideA) * op(B + b*strideB) + beta * (C + b*strideC)
// Strides are in elements. strideA/strideB may be 0 (broadcast one operand).
void gemm_batched_f32(int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, int64_t strideA, const float* B,
                      int64_t ldb, int64_t strideB, float beta, float* C, int64_t ldc,
                      int64_t strideC);
void gemm_batched_f64(int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      double alpha, const double* A, int64_t lda, int64_t strideA,
                      const double* B, int64_t ldb, int64_t strideB, double beta, double* C,
                      int64_t ldc, int64_t strideC);

// "openblas" or "builtin": the path gemm_f32/gemm_f64 take right now.
const char* gemm_backend_name();
// True when compiled with OpenBLAS (VLMOE_HAVE_OPENBLAS).
bool gemm_openblas_available();
// Tests and benchmarks switch paths at run time (thread-safe; takes effect on the next call).
void gemm_set_force_builtin(bool force);
bool gemm_force_builtin();
// Why the dispatcher started on its path (VLMOE_GEMM=auto|openblas|builtin).
const char* gemm_choice_reason();
// Which builtin micro-kernel runs on this CPU: "avx512", "avx2-fma" or "portable".
const char* gemm_simd_name();

}  // namespace vlmoe
