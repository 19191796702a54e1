#include "grouped_gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../threadpool.h"
#include "gemm.h"

namespace vlmoe {
namespace {

// The reference path (tests) runs every group through the plain triple-loop GEMM.
thread_local bool t_reference = false;

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  (t_reference ? gemm_reference_f32 : gemm_f32)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda, const double* B,
                 int64_t ldb, double beta, double* C, int64_t ldc) {
  (t_reference ? gemm_reference_f64 : gemm_f64)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

struct ReferenceScope {
  explicit ReferenceScope(bool on) : prev(t_reference) { t_reference = on; }
  ~ReferenceScope() { t_reference = prev; }
  bool prev;
};

template <typename T>
void forward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* b, T* y) {
  int64_t off = 0;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = sizes[g];
    if (n == 0) continue;
    T* yg = y + off * N;
    if (b) {
      const T* bg = b + g * N;
      parallel_for(n, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) std::memcpy(yg + r * N, bg, sizeof(T) * N);
      });
    }
    gemm(false, false, n, N, K, T(1), x + off * K, K, w + g * K * N, N, b ? T(1) : T(0), yg, N);
    off += n;
  }
}

template <typename T>
void backward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  int64_t off = 0;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = sizes[g];
    const T* dyg = dy + off * N;
    if (dx && n > 0) gemm(false, true, n, K, N, T(1), dyg, N, w + g * K * N, N, T(0), dx + off * K, K);
    if (dw) {
      T* dwg = dw + g * K * N;
      if (n == 0) std::memset(dwg, 0, sizeof(T) * K * N);
      else gemm(true, false, K, N, n, T(1), x + off * K, K, dyg, N, T(0), dwg, N);
    }
    if (db) {
      T* dbg = db + g * N;
      parallel_for(N, 256, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) dbg[c] = T(0);
        for (int64_t r = 0; r < n; ++r) {
          const T* row = dyg + r * N;
          for (int64_t c = c0; c < c1; ++c) dbg[c] += row[c];
        }
      });
    }
    off += n;
  }
}

void check_float(DType t, const char* op) {
  if (t != DType::f32 && t != DType::f64)
    throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(t) + " is not supported (use float32 or float64)");
}

}  // namespace

void grouped_linear_forward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b,
                            void* y, bool reference) {
  check_float(t, "grouped_linear");
  ReferenceScope scope(reference);
  if (t == DType::f32)
    forward_impl(G, sizes, K, N, static_cast<const float*>(x), static_cast<const float*>(w), static_cast<const float*>(b), static_cast<float*>(y));
  else
    forward_impl(G, sizes, K, N, static_cast<const double*>(x), static_cast<const double*>(w), static_cast<const double*>(b), static_cast<double*>(y));
}

void grouped_linear_backward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy,
                             void* dx, void* dw, void* db, bool reference) {
  check_float(t, "grouped_linear_backward");
  ReferenceScope scope(reference);
  if (t == DType::f32)
    backward_impl(G, sizes, K, N, static_cast<const float*>(x), static_cast<const float*>(w), static_cast<const float*>(dy),
                  static_cast<float*>(dx), static_cast<float*>(dw), static_cast<float*>(db));
  else
    backward_impl(G, sizes, K, N, static_cast<const double*>(x), static_cast<const double*>(w), static_cast<const double*>(dy),
                  static_cast<double*>(dx), static_cast<double*>(dw), static_cast<double*>(db));
}

}  // namespace vlmoe
