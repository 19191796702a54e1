// Fused cross entropy on CUDA (semantics in cpu/cross_entropy.h): logits in float32, float64,
// bfloat16 or float16 (half storage, float32 math); the loss, lse and g rows in float64 for
// float64 logits, float32 otherwise; dlogits in the logits' dtype.
//
// One row per block of cu::kBlock threads (block_max / block_sum from common.cuh), or, for
// rows of at most kWarpCols classes, one row per warp (shuffle reductions, no shared memory,
// kBlock / 32 rows per block). The forward reads a row twice (max, then Σ exp and Σ x); the
// backward writes the gradient row in one pass from the saved lse. A target outside [0, C)
// that is not ignore_index is reported through the kernel error record (errors.cu) and its
// row's loss and gradient are 0.
#include <cuda_runtime.h>

#include <cmath>

#include "../cpu/cross_entropy.h"
#include "common.cuh"
#include "cuda_backend.h"
#include "errors.cuh"
#include "half.cuh"

namespace vlmoe {

namespace {

constexpr int64_t kWarpCols = 1024;
constexpr int kWarps = cu::kBlock / 32;

using cu::warp_max;
using cu::warp_sum;

struct CeParams {
  int64_t N, C, ignore_index;
  double smoothing;
};

// One row: lanes `lane` of `width` threads (a warp or the block) walk the columns.
// WARP: reductions over the warp; else over the block (every thread of the block calls).
template <bool WARP, class T, class I>
__device__ __forceinline__ void ce_row_forward(const CeParams& p, int64_t r, int lane, int width, const T* x, const I* tgt, cu::compute_t<T>* loss,
                                               cu::compute_t<T>* lse, KernelError* err, cu::compute_t<T>* sh) {
  using A = cu::compute_t<T>;
  const T* xr = x + r * p.C;
  A mx = A(-INFINITY);
  for (int64_t j = lane; j < p.C; j += width) {
    const A v = cu::widen(xr[j]);
    mx = v > mx ? v : mx;
  }
  if constexpr (WARP) mx = warp_max(mx);
  else mx = cu::block_max(mx, sh);
  const A shift = isfinite(mx) ? mx : A(0);
  A s = 0, sx = 0;
  for (int64_t j = lane; j < p.C; j += width) {
    const A v = cu::widen(xr[j]);
    s += exp(v - shift);
    sx += v;
  }
  if constexpr (WARP) {
    s = warp_sum(s);
    sx = warp_sum(sx);
  } else {
    s = cu::block_sum(s, sh);
    sx = cu::block_sum(sx, sh);
  }
  if (lane != 0) return;
  const A l = shift + log(s);
  lse[r] = l;
  const int64_t t = static_cast<int64_t>(tgt[r]);
  if (t == p.ignore_index) {
    loss[r] = A(0);
    return;
  }
  if (t < 0 || t >= p.C) {
    report(err, kErrCrossEntropyTarget, t, p.C);
    loss[r] = A(0);
    return;
  }
  A v = l - cu::widen(xr[t]);
  if (p.smoothing != 0) v = A(1 - p.smoothing) * v + A(p.smoothing) * (l - sx / A(p.C));
  loss[r] = v;
}

template <class T, class I>
__device__ __forceinline__ void ce_row_backward(const CeParams& p, int64_t r, int lane, int width, const T* x, const I* tgt, const cu::compute_t<T>* lse,
                                                const cu::compute_t<T>* g, T* dx) {
  using A = cu::compute_t<T>;
  const T* xr = x + r * p.C;
  T* dr = dx + r * p.C;
  const int64_t t = static_cast<int64_t>(tgt[r]);
  if (t == p.ignore_index || t < 0 || t >= p.C) {  // a bad target was reported by the forward
    for (int64_t j = lane; j < p.C; j += width) dr[j] = cu::narrow<T>(A(0));
    return;
  }
  const A l = lse[r], gr = g[r], uni = A(p.smoothing / double(p.C)), hit = A(1 - p.smoothing);
  for (int64_t j = lane; j < p.C; j += width) {
    const A d = exp(cu::widen(xr[j]) - l) - uni - (j == t ? hit : A(0));
    dr[j] = cu::narrow<T>(d * gr);
  }
}

template <class T, class I>
__global__ void k_ce_forward_block(CeParams p, const T* x, const I* tgt, cu::compute_t<T>* loss, cu::compute_t<T>* lse, KernelError* err) {
  __shared__ cu::compute_t<T> sh[kWarps];
  for (int64_t r = blockIdx.x; r < p.N; r += gridDim.x) ce_row_forward<false>(p, r, threadIdx.x, blockDim.x, x, tgt, loss, lse, err, sh);
}

template <class T, class I>
__global__ void k_ce_forward_warp(CeParams p, const T* x, const I* tgt, cu::compute_t<T>* loss, cu::compute_t<T>* lse, KernelError* err) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < p.N; r += int64_t(gridDim.x) * kWarps)
    ce_row_forward<true>(p, r, lane, 32, x, tgt, loss, lse, err, static_cast<cu::compute_t<T>*>(nullptr));
}

template <class T, class I>
__global__ void k_ce_backward_block(CeParams p, const T* x, const I* tgt, const cu::compute_t<T>* lse, const cu::compute_t<T>* g, T* dx) {
  for (int64_t r = blockIdx.x; r < p.N; r += gridDim.x) ce_row_backward(p, r, threadIdx.x, blockDim.x, x, tgt, lse, g, dx);
}

template <class T, class I>
__global__ void k_ce_backward_warp(CeParams p, const T* x, const I* tgt, const cu::compute_t<T>* lse, const cu::compute_t<T>* g, T* dx) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < p.N; r += int64_t(gridDim.x) * kWarps) ce_row_backward(p, r, lane, 32, x, tgt, lse, g, dx);
}

template <class F>
void with_target(DType it, F&& f) {
  if (it == DType::i64) f(int64_t{});
  else if (it == DType::i32) f(int32_t{});
  else throw std::invalid_argument(std::string("cross_entropy (cuda): targets must be int32 or int64, got ") + dtype_name(it));
}

CeParams params(const CrossEntropyArgs& a) { return CeParams{a.N, a.C, a.ignore_index, a.smoothing}; }

// grid for the warp path (kWarps rows per block) or the block path (a row per block)
unsigned grid_rows(int64_t N, bool warp) { return cu::blocks_for(warp ? (N + kWarps - 1) / kWarps : N, 1); }

}  // namespace

void cuda_cross_entropy_forward(int device, DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse) {
  if (a.N == 0) return;
  KernelError* err = cuda_error_record(device);
  cu::set_device(device);
  const CeParams p = params(a);
  const bool warp = a.C <= kWarpCols;
  cu::dispatch_float_storage(t, "cross_entropy", [&](auto ttag) {
    using T = decltype(ttag);
    using A = cu::compute_t<T>;
    with_target(a.target_dtype, [&](auto itag) {
      using I = decltype(itag);
      const T* x = static_cast<const T*>(logits);
      const I* tg = static_cast<const I*>(target);
      if (warp) k_ce_forward_warp<T, I><<<grid_rows(a.N, true), cu::kBlock>>>(p, x, tg, static_cast<A*>(loss), static_cast<A*>(lse), err);
      else k_ce_forward_block<T, I><<<grid_rows(a.N, false), cu::kBlock>>>(p, x, tg, static_cast<A*>(loss), static_cast<A*>(lse), err);
    });
  });
  cu::launched("cross_entropy");
}

void cuda_cross_entropy_backward(int device, DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g,
                                 void* dlogits) {
  if (a.N == 0 || a.C == 0) return;
  cu::set_device(device);
  const CeParams p = params(a);
  const bool warp = a.C <= kWarpCols;
  cu::dispatch_float_storage(t, "cross_entropy_backward", [&](auto ttag) {
    using T = decltype(ttag);
    using A = cu::compute_t<T>;
    with_target(a.target_dtype, [&](auto itag) {
      using I = decltype(itag);
      const T* x = static_cast<const T*>(logits);
      const I* tg = static_cast<const I*>(target);
      if (warp) k_ce_backward_warp<T, I><<<grid_rows(a.N, true), cu::kBlock>>>(p, x, tg, static_cast<const A*>(lse), static_cast<const A*>(g), static_cast<T*>(dlogits));
      else k_ce_backward_block<T, I><<<grid_rows(a.N, false), cu::kBlock>>>(p, x, tg, static_cast<const A*>(lse), static_cast<const A*>(g), static_cast<T*>(dlogits));
    });
  });
  cu::launched("cross_entropy_backward");
}

}  // namespace vlmoe
