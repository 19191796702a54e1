// GEMM dispatcher: OpenBLAS when compiled in (VLMOE_HAVE_OPENBLAS) and not forced off,
// otherwise the builtin blocked kernels (gemm_builtin.cpp).
//
// OpenBLAS keeps its own thread pool and threading policy; we leave it as configured
// (OPENBLAS_NUM_THREADS / openblas_set_num_threads) rather than second-guessing it here.
#include <atomic>

#include "gemm.h"

#ifdef VLMOE_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace vlmoe {
namespace {

std::atomic<bool> g_force_builtin{false};

inline bool use_openblas() {
#ifdef VLMOE_HAVE_OPENBLAS
  return !g_force_builtin.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

#ifdef VLMOE_HAVE_OPENBLAS
// cblas takes int dimensions (OpenBLAS built with 32-bit integers).
inline blasint bi(int64_t v) { return static_cast<blasint>(v); }
inline CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

// BLAS requires ld >= max(1, row length) even when a dimension is zero, and degenerate
// shapes are cheap to do here, so handle them before calling into OpenBLAS.
template <typename T>
bool degenerate(int64_t M, int64_t N, int64_t K, T alpha, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return true;
  if (K > 0 && alpha != T(0)) return false;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T& c = C[i * ldc + j];
      c = beta == T(0) ? T(0) : beta * c;
    }
  return true;
}
#endif

}  // namespace

void gemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc) {
#ifdef VLMOE_HAVE_OPENBLAS
  if (use_openblas()) {
    if (degenerate(M, N, K, alpha, beta, C, ldc)) return;
    cblas_sgemm(CblasRowMajor, tr(transA), tr(transB), bi(M), bi(N), bi(K), alpha, A, bi(lda),
                B, bi(ldb), beta, C, bi(ldc));
    return;
  }
#endif
  gemm_builtin_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
              const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
              double* C, int64_t ldc) {
#ifdef VLMOE_HAVE_OPENBLAS
  if (use_openblas()) {
    if (degenerate(M, N, K, alpha, beta, C, ldc)) return;
    cblas_dgemm(CblasRowMajor, tr(transA), tr(transB), bi(M), bi(N), bi(K), alpha, A, bi(lda),
                B, bi(ldb), beta, C, bi(ldc));
    return;
  }
#endif
  gemm_builtin_f64(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched_f32(int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      float alpha, const float* A, int64_t lda, int64_t strideA, const float* B,
                      int64_t ldb, int64_t strideB, float beta, float* C, int64_t ldc,
                      int64_t strideC) {
#ifdef VLMOE_HAVE_OPENBLAS
  if (use_openblas()) {
    // OpenBLAS threads each call internally; just loop.
    for (int64_t b = 0; b < batch; ++b)
      gemm_f32(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
               C + b * strideC, ldc);
    return;
  }
#endif
  gemm_builtin_batched_f32(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb,
                           strideB, beta, C, ldc, strideC);
}

void gemm_batched_f64(int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K,
                      double alpha, const double* A, int64_t lda, int64_t strideA,
                      const double* B, int64_t ldb, int64_t strideB, double beta, double* C,
                      int64_t ldc, int64_t strideC) {
#ifdef VLMOE_HAVE_OPENBLAS
  if (use_openblas()) {
    for (int64_t b = 0; b < batch; ++b)
      gemm_f64(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
               C + b * strideC, ldc);
    return;
  }
#endif
  gemm_builtin_batched_f64(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb,
                           strideB, beta, C, ldc, strideC);
}

const char* gemm_backend_name() { return use_openblas() ? "openblas" : "builtin"; }

bool gemm_openblas_available() {
#ifdef VLMOE_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

void gemm_set_force_builtin(bool force) {
  g_force_builtin.store(force, std::memory_order_relaxed);
}

bool gemm_force_builtin() { return g_force_builtin.load(std::memory_order_relaxed); }

}  // namespace vlmoe
