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
#include "kernels.h"

namespace vlmoe {
namespace {

// The reference path (tests) runs every group through the plain triple-loop GEMM; groups run
// concurrently (below) go through the builtin GEMM, single-threaded.
thread_local bool t_reference = false;
thread_local bool t_concurrent = false;

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  (t_reference ? gemm_reference_f32 : t_concurrent ? gemm_builtin_f32 : gemm_f32)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda, const double* B,
                 int64_t ldb, double beta, double* C, int64_t ldc) {
  (t_reference ? gemm_reference_f64 : t_concurrent ? gemm_builtin_f64 : gemm_f64)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

struct ReferenceScope {
  explicit ReferenceScope(bool on) : prev(t_reference) { t_reference = on; }
  ~ReferenceScope() { t_reference = prev; }
  bool prev;
};

struct ConcurrentScope {
  ConcurrentScope() : prev(t_concurrent) { t_concurrent = true; }
  ~ConcurrentScope() { t_concurrent = prev; }
  bool prev;
};

// Scheduling. One GEMM threaded inside (the plain way) loses efficiency when groups are
// small: every group re-packs its own weight matrix, and with few rows per group the
// threads split little work. So groups smaller than a thread's share of the rows run
// concurrently instead, one single-threaded builtin GEMM per group (nested parallel_for runs
// inline), taken largest first from a shared counter (dynamic LPT). Larger groups keep the
// dispatcher's threaded GEMM (builtin on our pool, or OpenBLAS with its own threads — which
// is why the concurrent groups never enter OpenBLAS: its threads must not be entered from
// several of ours at once). The reference path stays sequential. With OpenBLAS chosen, a
// group's bits thus depend on its size (builtin when small, OpenBLAS when big).
// The concurrent builtin groups stand in for OpenBLAS only when the dispatcher chose it on
// its own ("auto"); VLMOE_GEMM=openblas keeps every group on OpenBLAS, one after another.
// Read-ahead: with ~32 rows per expert a group's GEMM does ~16 flops per weight byte, about
// the machine's flops-to-DRAM balance, so each GEMM prefetches (gemm_prefetch_hint) the weights
// its thread reads next while it computes, and the next pack finds them in cache.
bool concurrent_groups_allowed() {
  if (std::string(gemm_backend_name()) == "builtin") return true;
  return !gemm_force_builtin() && std::string(gemm_choice_reason()).rfind("auto", 0) == 0;
}

// run(g, ahead): ahead is the group this thread most likely runs next (-1: none or unknown),
// whose weights the run may prefetch (gemm_prefetch_hint) while it computes group g. With
// groups taken from a shared counter by nt threads, a thread's next group is about nt places
// on; a wrong guess still warms the shared L3 for the thread that takes it.
template <typename Fn>
void for_each_group(int64_t G, const int64_t* sizes, int64_t total, const Fn& run) {
  const int nt = num_threads();
  if (t_reference || nt <= 1 || G <= 1 || !concurrent_groups_allowed()) {
    for (int64_t g = 0; g < G; ++g) run(g, g + 1 < G ? g + 1 : int64_t(-1));
    return;
  }
  std::vector<int64_t> small;
  for (int64_t g = 0; g < G; ++g) {
    if (sizes[g] * nt > total) run(g, int64_t(-1));  // big: threaded GEMM
    else small.push_back(g);
  }
  if (small.empty()) return;
  std::stable_sort(small.begin(), small.end(), [&](int64_t a, int64_t b) { return sizes[a] > sizes[b]; });
  std::atomic<size_t> next{0};
  parallel_for(nt, 1, [&](int64_t, int64_t) {
    ConcurrentScope concurrent;
    for (size_t i = next.fetch_add(1); i < small.size(); i = next.fetch_add(1))
      run(small[i], i + nt < small.size() ? small[i + nt] : int64_t(-1));
  });
}

// Prefetch hint for the next GEMM on this thread: matrix `g` (-1: none) of a [G, rows, cols]
// stack. None on the reference path: its triple loop would leave the hint to a later GEMM.
template <typename T>
void ahead(const T* stack, int64_t g, int64_t elems) {
  if (g >= 0 && !t_reference) gemm_prefetch_hint(stack + g * elems, sizeof(T) * static_cast<size_t>(elems));
}

// Columns sums of an [n, N] block into out [N] (overwrites).
template <typename T>
void col_sums(int64_t n, int64_t N, const T* src, T* out) {
  for (int64_t c = 0; c < N; ++c) out[c] = T(0);
  for (int64_t r = 0; r < n; ++r) {
    const T* row = src + r * N;
    for (int64_t c = 0; c < N; ++c) out[c] += row[c];
  }
}

// Every row of the [n, N] block y = bias [N] (the GEMM then accumulates onto it).
template <typename T>
void fill_rows(int64_t n, int64_t N, const T* bias, T* y) {
  for (int64_t r = 0; r < n; ++r) std::memcpy(y + r * N, bias, sizeof(T) * N);
}

template <typename T>
void forward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* b, T* y) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  for_each_group(G, sizes, off[G], [&](int64_t g, int64_t next) {
    const int64_t n = sizes[g];
    if (n == 0) return;
    T* yg = y + off[g] * N;
    if (b) fill_rows(n, N, b + g * N, yg);
    ahead(w, next, K * N);
    gemm(false, false, n, N, K, T(1), x + off[g] * K, K, w + g * K * N, N, b ? T(1) : T(0), yg, N);
  });
}

template <typename T>
void backward_impl(int64_t G, const int64_t* sizes, int64_t K, int64_t N, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  for_each_group(G, sizes, off[G], [&](int64_t g, int64_t next) {
    const int64_t n = sizes[g];
    const T* dyg = dy + off[g] * N;
    if (dx && n > 0) {
      if (!dw) ahead(w, next, K * N);
      gemm(false, true, n, K, N, T(1), dyg, N, w + g * K * N, N, T(0), dx + off[g] * K, K);
    }
    if (dw) {
      T* dwg = dw + g * K * N;
      if (n == 0) std::memset(dwg, 0, sizeof(T) * K * N);
      else {
        if (dx) ahead(w, next, K * N);  // the next group's dx reads its weights
        gemm(true, false, K, N, n, T(1), x + off[g] * K, K, dyg, N, T(0), dwg, N);
      }
    }
    if (db) col_sums(n, N, dyg, db + g * N);
  });
}

Iter flat_iter(int nops, void* const* ptrs, int64_t n, int elsize) {
  Iter it;
  it.ndim = 1;
  it.nops = nops;
  it.shape[0] = n;
  for (int k = 0; k < nops; ++k) {
    it.base[k] = static_cast<char*>(ptrs[k]);
    it.elsize[k] = elsize;
    it.stride[k][0] = 1;
  }
  return it;
}

// out = act(in), n contiguous elements (the project's vectorised elementwise kernels).
void activation(DType t, int act, const void* in, void* out, int64_t n) {
  void* ptrs[2] = {out, const_cast<void*>(in)};
  Iter it = flat_iter(2, ptrs, n, static_cast<int>(dtype_size(t)));
  const UnaryOp op = act == 0 ? UnaryOp::gelu : act == 1 ? UnaryOp::gelu_tanh : UnaryOp::relu;
  VLMOE_CPU(unary, op, t, t, it, OpParams{});
}

// g = g · act'(x), in place, n contiguous elements.
void activation_backward(DType t, int act, void* g, const void* x, int64_t n) {
  void* ptrs[3] = {g, g, const_cast<void*>(x)};
  Iter it = flat_iter(3, ptrs, n, static_cast<int>(dtype_size(t)));
  const BinaryOp op = act == 0 ? BinaryOp::gelu_backward : act == 1 ? BinaryOp::gelu_tanh_backward : BinaryOp::relu_backward;
  VLMOE_CPU(binary, op, t, it, OpParams{});
}

template <typename T>
void ffn_forward_impl(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const T* x, const T* w1, const T* b1,
                      const T* w2, const T* b2, T* pre, T* hid, T* y) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  for_each_group(G, sizes, off[G], [&](int64_t g, int64_t next) {
    const int64_t n = sizes[g];
    if (n == 0) return;
    T* pg = pre + off[g] * H;
    T* hg = hid + off[g] * H;
    T* yg = y + off[g] * D;
    if (b1) fill_rows(n, H, b1 + g * H, pg);
    ahead(w2, g, H * D);  // read by the second GEMM, next
    gemm(false, false, n, H, D, T(1), x + off[g] * D, D, w1 + g * D * H, H, b1 ? T(1) : T(0), pg, H);
    activation(t, act, pg, hg, n * H);
    if (b2) fill_rows(n, D, b2 + g * D, yg);
    ahead(w1, next, D * H);
    gemm(false, false, n, D, H, T(1), hg, H, w2 + g * H * D, D, b2 ? T(1) : T(0), yg, D);
  });
}

template <typename T>
void ffn_backward_impl(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const T* x, const T* w1, const T* w2,
                       const T* pre, const T* hid, const T* dy, T* scratch, T* dx, T* dw1, T* db1, T* dw2, T* db2) {
  std::vector<int64_t> off(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) off[g + 1] = off[g] + sizes[g];
  const bool need_dpre = dx || dw1 || db1;
  for_each_group(G, sizes, off[G], [&](int64_t g, int64_t next) {
    const int64_t n = sizes[g];
    const T* dyg = dy + off[g] * D;
    if (n == 0) {
      if (dw1) std::memset(dw1 + g * D * H, 0, sizeof(T) * D * H);
      if (db1) std::memset(db1 + g * H, 0, sizeof(T) * H);
      if (dw2) std::memset(dw2 + g * H * D, 0, sizeof(T) * H * D);
      if (db2) std::memset(db2 + g * D, 0, sizeof(T) * D);
      return;
    }
    // Read-ahead: each weight read by a dx-type GEMM is prefetched during the GEMM before it
    // (w2 during dw2, w1 during dp), and the next group's w2 during this group's last GEMM.
    if (dw2) {
      if (need_dpre) ahead(w2, g, H * D);
      gemm(true, false, H, D, n, T(1), hid + off[g] * H, H, dyg, D, T(0), dw2 + g * H * D, D);
    }
    if (db2) col_sums(n, D, dyg, db2 + g * D);
    if (!need_dpre) return;
    T* dp = scratch + off[g] * H;
    if (dx) ahead(w1, g, D * H);
    gemm(false, true, n, H, D, T(1), dyg, D, w2 + g * H * D, D, T(0), dp, H);
    activation_backward(t, act, dp, pre + off[g] * H, n * H);
    if (dw1) {
      ahead(dx ? w1 : w2, dx ? g : next, D * H);
      gemm(true, false, D, H, n, T(1), x + off[g] * D, D, dp, H, T(0), dw1 + g * D * H, H);
    }
    if (db1) col_sums(n, H, dp, db1 + g * H);
    if (dx) ahead(w2, next, H * D);
    if (dx) gemm(false, true, n, D, H, T(1), dp, H, w1 + g * D * H, H, T(0), dx + off[g] * D, D);
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

void expert_ffn_forward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1,
                        const void* b1, const void* w2, const void* b2, void* pre, void* hid, void* y, bool reference) {
  check_float(t, "expert_ffn");
  if (act < 0 || act > 2) throw std::invalid_argument("expert_ffn: activation code " + std::to_string(act) + " is not 0 (gelu), 1 (gelu_tanh) or 2 (relu)");
  ReferenceScope scope(reference);
  if (t == DType::f32)
    ffn_forward_impl<float>(t, G, sizes, D, H, act, static_cast<const float*>(x), static_cast<const float*>(w1), static_cast<const float*>(b1),
                            static_cast<const float*>(w2), static_cast<const float*>(b2), static_cast<float*>(pre), static_cast<float*>(hid),
                            static_cast<float*>(y));
  else
    ffn_forward_impl<double>(t, G, sizes, D, H, act, static_cast<const double*>(x), static_cast<const double*>(w1), static_cast<const double*>(b1),
                             static_cast<const double*>(w2), static_cast<const double*>(b2), static_cast<double*>(pre), static_cast<double*>(hid),
                             static_cast<double*>(y));
}

void expert_ffn_backward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1,
                         const void* w2, const void* pre, const void* hid, const void* dy, void* scratch, void* dx, void* dw1,
                         void* db1, void* dw2, void* db2, bool reference) {
  check_float(t, "expert_ffn_backward");
  if (act < 0 || act > 2) throw std::invalid_argument("expert_ffn_backward: activation code " + std::to_string(act) + " is not 0, 1 or 2");
  ReferenceScope scope(reference);
  if (t == DType::f32)
    ffn_backward_impl<float>(t, G, sizes, D, H, act, static_cast<const float*>(x), static_cast<const float*>(w1), static_cast<const float*>(w2),
                             static_cast<const float*>(pre), static_cast<const float*>(hid), static_cast<const float*>(dy),
                             static_cast<float*>(scratch), static_cast<float*>(dx), static_cast<float*>(dw1), static_cast<float*>(db1),
                             static_cast<float*>(dw2), static_cast<float*>(db2));
  else
    ffn_backward_impl<double>(t, G, sizes, D, H, act, static_cast<const double*>(x), static_cast<const double*>(w1), static_cast<const double*>(w2),
                              static_cast<const double*>(pre), static_cast<const double*>(hid), static_cast<const double*>(dy),
                              static_cast<double*>(scratch), static_cast<double*>(dx), static_cast<double*>(dw1), static_cast<double*>(db1),
                              static_cast<double*>(dw2), static_cast<double*>(db2));
}

}  // namespace vlmoe
