#include "grouped_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <vector>
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

// Scheduling. One GEMM threaded inside (the plain way) loses efficiency when groups are
// small: every group re-packs its own weight matrix, and with few rows per group the
// threads split little work. So groups smaller than a thread's share of the rows run
// concurrently instead, one single-threaded GEMM per group (nested parallel_for runs inline),
// taken largest first from a shared counter (dynamic LPT). Larger groups keep the threaded
// GEMM. With OpenBLAS as the dispatcher's choice everything stays sequential (its own
// threads must not be entered from several of ours at once), as does the reference path.
template <typename Fn>
void for_each_group(int64_t G, const int64_t* sizes, int64_t total, const Fn& run) {
  const int nt = num_threads();
  if (t_reference || nt <= 1 || G <= 1 || std::string(gemm_backend_name()) != "builtin") {
    for (int64_t g = 0; g < G; ++g) run(g);
    return;
  }
  std::vector<int64_t> small;
  for (int64_t g = 0; g < G; ++g) {
    if (sizes[g] * nt > total) run(g);  // big: threaded GEMM
    else small.push_back(g);
  }
  if (small.empty()) return;
  std::stable_sort(small.begin(), small.end(), [&](int64_t a, int64_t b) { return sizes[a] > sizes[b]; });
  std::atomic<size_t> next{0};
  parallel_for(nt, 1, [&](int64_t, int64_t) {
    for (size_t i = next.fetch_add(1); i < small.size(); i = next.fetch_add(1)) run(small[i]);
  });
}

template <typename T>
void forward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* b, T* y) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  for_each_group(G, sizes, off[G], [&](int64_t g) {
    const int64_t n = sizes[g];
    if (n == 0) return;
    T* yg = y + off[g] * N;
    if (b) {
      const T* bg = b + g * N;
      for (int64_t r = 0; r < n; ++r) std::memcpy(yg + r * N, bg, sizeof(T) * N);
    }
    gemm(false, false, n, N, K, T(1), x + off[g] * K, K, w + g * K * N, N, b ? T(1) : T(0), yg, N);
  });
}

template <typename T>
void backward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  for_each_group(G, sizes, off[G], [&](int64_t g) {
    const int64_t n = sizes[g];
    const T* dyg = dy + off[g] * N;
    if (dx && n > 0) gemm(false, true, n, K, N, T(1), dyg, N, w + g * K * N, N, T(0), dx + off[g] * K, K);
    if (dw) {
      T* dwg = dw + g * K * N;
      if (n == 0) std::memset(dwg, 0, sizeof(T) * K * N);
      else gemm(true, false, K, N, n, T(1), x + off[g] * K, K, dyg, N, T(0), dwg, N);
    }
    if (db) {
      T* dbg = db + g * N;
      for (int64_t c = 0; c < N; ++c) dbg[c] = T(0);
      for (int64_t r = 0; r < n; ++r) {
        const T* row = dyg + r * N;
        for (int64_t c = 0; c < N; ++c) dbg[c] += row[c];
      }
    }
  });
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
