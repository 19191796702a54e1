// Reference GEMM: a plain triple loop with double accumulation. Slow and obviously
// correct; the tests compare the tuned paths against it.
#include "gemm.h"

namespace vlmoe {
namespace {

template <typename T>
void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                    int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      if (alpha != T(0)) {
        for (int64_t k = 0; k < K; ++k) {
          const double a = transA ? A[k * lda + i] : A[i * lda + k];
          const double b = transB ? B[j * ldb + k] : B[k * ldb + j];
          acc += a * b;
        }
      }
      T& c = C[i * ldc + j];
      const double ab = static_cast<double>(alpha) * acc;
      // beta == 0 must not read C (it may hold NaN).
      c = beta == T(0) ? static_cast<T>(ab) : static_cast<T>(ab + static_cast<double>(beta) * c);
    }
  }
}

}  // namespace

void gemm_reference_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                        float* C, int64_t ldc) {
  gemm_reference<float>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_reference_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                        const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                        double* C, int64_t ldc) {
  gemm_reference<double>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace vlmoe
