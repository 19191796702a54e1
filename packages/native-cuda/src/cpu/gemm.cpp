// GEMM dispatcher: OpenBLAS when compiled in (VLMOE_HAVE_OPENBLAS) and not forced off,
// otherwise the builtin blocked kernels (gemm_builtin.cpp).
//
// OpenBLAS keeps its own thread pool and threading policy; we leave it as configured
// (OPENBLAS_NUM_THREADS / openblas_set_num_threads) rather than second-guessing it here.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gemm.h"

#ifdef VLMOE_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace vlmoe {
namespace {

// Which path the dispatcher starts with. VLMOE_GEMM=openblas|builtin decides; the default
// "auto" takes OpenBLAS unless our built-in kernel has AVX-512 and the OpenBLAS library
// runs a core without AVX-512 kernels (an OpenBLAS older than the CPU falls back to its
// Haswell kernels: on such a machine the built-in path measured 1.9x faster).
std::string g_choice_reason;

bool initial_force_builtin() {
  const char* env = std::getenv("VLMOE_GEMM");
  std::string v = env ? env : "auto";
  if (v == "builtin") {
    g_choice_reason = "VLMOE_GEMM=builtin";
    return true;
  }
#ifdef VLMOE_HAVE_OPENBLAS
  if (v == "openblas") {
    g_choice_reason = "VLMOE_GEMM=openblas";
    return false;
  }
  std::string core = openblas_get_corename();
  std::string lower = core;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const bool blas512 = lower.find("skylakex") != std::string::npos || lower.find("cooperlake") != std::string::npos ||
                       lower.find("sapphirerapids") != std::string::npos || lower.find("zen4") != std::string::npos ||
                       lower.find("zen5") != std::string::npos;
  if (std::strcmp(gemm_simd_name(), "avx512") == 0 && !blas512) {
    g_choice_reason = "auto: OpenBLAS runs its '" + core + "' kernels (no AVX-512); the built-in AVX-512 kernel is faster";
    return true;
  }
  g_choice_reason = "auto: OpenBLAS ('" + core + "' kernels)";
  return false;
#else
  g_choice_reason = "built without OpenBLAS";
  return true;
#endif
}

std::atomic<bool> g_force_builtin{initial_force_builtin()};

inline bool use_openblas() {
#ifdef VLMOE_HAVE_OPENBLAS
  return !g_force_builtin.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

// OpenBLAS takes 32-bit sizes: larger products go to the built-in path.
inline bool fits_blasint(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f) {
  const int64_t lim = 0x7fffffff;
  return a <= lim && b <= lim && c <= lim && d <= lim && e <= lim && f <= lim;
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
  if (use_openblas() && fits_blasint(M, N, K, lda, ldb, ldc)) {
    gemm_prefetch_hint(nullptr, 0);  // a read-ahead serves the builtin kernel only
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
  if (use_openblas() && fits_blasint(M, N, K, lda, ldb, ldc)) {
    gemm_prefetch_hint(nullptr, 0);  // a read-ahead serves the builtin kernel only
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
  if (use_openblas() && fits_blasint(M, N, K, lda, ldb, ldc)) {
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
  if (use_openblas() && fits_blasint(M, N, K, lda, ldb, ldc)) {
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

const char* gemm_choice_reason() { return g_choice_reason.c_str(); }

}  // namespace vlmoe
