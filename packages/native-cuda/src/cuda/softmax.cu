// Softmax / log-softmax over rows on CUDA (the CPU kernel's semantics, cpu/softmax.cpp):
// y = softmax(scale·x + mask) with an optional bool (keep) or additive mask broadcast over the
// rows; a fully masked row gives zeros (log: −inf). One block per row; the row is read for
// the max, the sum of exponentials (float64) and the output — the fused attention path, not
// three tensor ops. Backward: dx = y·(g − Σ g·y), or for log-softmax dx = g − exp(y)·Σ g.
#include <cuda_runtime.h>

#include <cmath>

#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

struct DevMask {
  const void* p = nullptr;
  bool is_bool = false;
  int ndim = 0;
  int64_t row_shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t col_stride = 0;
};

template <class T>
__device__ __forceinline__ T score(const T* xr, int64_t j, T scale, const DevMask& m, int64_t moff) {
  if (!m.p) return xr[j] * scale;
  if (m.is_bool) return static_cast<const bool*>(m.p)[moff + j * m.col_stride] ? xr[j] * scale : T(-INFINITY);
  return xr[j] * scale + static_cast<const T*>(m.p)[moff + j * m.col_stride];
}

template <class T>
__global__ void k_softmax(int64_t rows, int64_t cols, T scale, bool log, const T* x, T* y, DevMask m) {
  __shared__ T shm[cu::kBlock / 32];
  __shared__ double shs[cu::kBlock / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    int64_t moff = 0;
    if (m.p) {
      int64_t rem = r;
      for (int d = m.ndim - 1; d >= 0; --d) {
        moff += (rem % m.row_shape[d]) * m.stride[d];
        rem /= m.row_shape[d];
      }
    }
    T mx = T(-INFINITY);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const T v = score(xr, j, scale, m, moff);
      mx = v > mx ? v : mx;
    }
    mx = cu::block_max(mx, shm);
    if (mx == T(-INFINITY)) {
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = log ? T(-INFINITY) : T(0);
      continue;
    }
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += double(exp(score(xr, j, scale, m, moff) - mx));
    s = cu::block_sum(s, shs);
    if (log) {
      const T lse = mx + T(::log(s));
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = score(xr, j, scale, m, moff) - lse;
    } else {
      const T inv = T(1.0 / s);
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = T(exp(score(xr, j, scale, m, moff) - mx)) * inv;
    }
  }
}

template <class T>
__global__ void k_softmax_bwd(int64_t rows, int64_t cols, bool log, const T* y, const T* g, T* dx) {
  __shared__ double sh[cu::kBlock / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = g + r * cols;
    T* dr = dx + r * cols;
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      if (log) s += yr[j] != T(-INFINITY) ? double(gr[j]) : 0.0;
      else s += double(gr[j]) * double(yr[j]);
    }
    const T st = T(cu::block_sum(s, sh));
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      if (log) dr[j] = yr[j] == T(-INFINITY) ? T(0) : gr[j] - T(exp(yr[j])) * st;
      else dr[j] = yr[j] * (gr[j] - st);
    }
  }
}

}  // namespace

void cuda_softmax(int device, DType t, const SoftmaxArgs& a) {
  if (a.r.rows == 0 || a.r.cols == 0) return;
  DevMask m;
  if (a.mask) {
    m.p = a.mask;
    m.is_bool = a.mask_bool;
    m.ndim = a.mask_ndim;
    for (int d = 0; d < a.mask_ndim; ++d) m.row_shape[d] = a.row_shape[d], m.stride[d] = a.mask_stride[d];
    m.col_stride = a.mask_col_stride;
  }
  cu::set_device(device);
  dispatch_float(t, "softmax", [&](auto tag) {
    using T = decltype(tag);
    k_softmax<T><<<cu::blocks_for(a.r.rows, 1), cu::kBlock>>>(a.r.rows, a.r.cols, T(a.scale), a.log, static_cast<const T*>(a.x), static_cast<T*>(a.y), m);
  });
  cu::launched("softmax");
}

void cuda_softmax_backward(int device, DType t, RowArgs r, bool log, const void* y, const void* g, void* dx) {
  if (r.rows == 0 || r.cols == 0) return;
  cu::set_device(device);
  dispatch_float(t, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    k_softmax_bwd<T><<<cu::blocks_for(r.rows, 1), cu::kBlock>>>(r.rows, r.cols, log, static_cast<const T*>(y), static_cast<const T*>(g), static_cast<T*>(dx));
  });
  cu::launched("softmax_backward");
}

}  // namespace vlmoe
