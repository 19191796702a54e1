// Layer norm forward and backward on CUDA, fused (the CPU kernel's semantics,
// cpu/layernorm.cpp): forward writes y and the per-row mean and 1/std; backward writes dx
// per row (one block each) and dw / db as column sums of g·x̂ and g, accumulated in float64 —
// per column block over row chunks, then summed in a fixed order (deterministic).
#include <cuda_runtime.h>

#include <cmath>

#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

template <class T>
__global__ void k_ln_fwd(int64_t rows, int64_t cols, double eps, const T* x, const T* w, const T* b, T* y, T* mean, T* rstd) {
  __shared__ double sh[cu::kBlock / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += double(xr[j]);
    const double mu = cols ? cu::block_sum(s, sh) / double(cols) : 0.0;
    double v = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double d = double(xr[j]) - mu;
      v += d * d;
    }
    v = cu::block_sum(v, sh);
    const double rs = 1.0 / sqrt(v / double(cols ? cols : 1) + eps);
    const T muT = T(mu), rsT = T(rs);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      T o = (xr[j] - muT) * rsT;
      if (w) o *= w[j];
      if (b) o += b[j];
      yr[j] = o;
    }
    if (threadIdx.x == 0) {
      if (mean) mean[r] = muT;
      if (rstd) rstd[r] = rsT;
    }
  }
}

template <class T>
__global__ void k_ln_bwd_dx(int64_t rows, int64_t cols, const T* x, const T* w, const T* mean, const T* rstd, const T* g, T* dx) {
  __shared__ double sh[cu::kBlock / 32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    const T* gr = g + r * cols;
    const T mu = mean[r], rs = rstd[r];
    double s1 = 0, s2 = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const T xh = (xr[j] - mu) * rs;
      const T dxh = w ? gr[j] * w[j] : gr[j];
      s1 += double(dxh);
      s2 += double(dxh) * double(xh);
    }
    s1 = cu::block_sum(s1, sh);
    s2 = cu::block_sum(s2, sh);
    const T m1 = T(s1 / double(cols)), m2 = T(s2 / double(cols));
    T* dr = dx + r * cols;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const T xh = (xr[j] - mu) * rs;
      const T dxh = w ? gr[j] * w[j] : gr[j];
      dr[j] = rs * (dxh - m1 - xh * m2);
    }
  }
}

constexpr int kChunks = 64;  // row chunks of the dw / db partial sums

// part[c][j] (c < kChunks): column sums over chunk c of the rows; grid (column blocks, kChunks)
template <class T>
__global__ void k_ln_bwd_partial(int64_t rows, int64_t cols, const T* x, const T* mean, const T* rstd, const T* g, double* pw, double* pb) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  const int64_t per = (rows + kChunks - 1) / kChunks;
  const int64_t r0 = blockIdx.y * per, r1 = r0 + per < rows ? r0 + per : rows;
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const T xh = (x[r * cols + j] - mean[r]) * rstd[r];
    const double gv = double(g[r * cols + j]);
    sw += gv * double(xh);
    sb += gv;
  }
  pw[blockIdx.y * cols + j] = sw;
  pb[blockIdx.y * cols + j] = sb;
}

template <class T>
__global__ void k_ln_bwd_final(int64_t cols, const double* pw, const double* pb, T* dw, T* db) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  double sw = 0, sb = 0;
  for (int c = 0; c < kChunks; ++c) sw += pw[c * cols + j], sb += pb[c * cols + j];
  if (dw) dw[j] = T(sw);
  if (db) db[j] = T(sb);
}

}  // namespace

void cuda_layernorm_forward(int device, DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd) {
  if (r.rows == 0) return;
  cu::set_device(device);
  dispatch_float(t, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    k_ln_fwd<T><<<cu::blocks_for(r.rows, 1), cu::kBlock>>>(r.rows, r.cols, eps, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                                                          static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd));
  });
  cu::launched("layer_norm");
}

void cuda_layernorm_backward(int device, DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd, const void* g, void* dx, void* dw,
                             void* db) {
  cu::set_device(device);
  dispatch_float(t, "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (dx && r.rows)
      k_ln_bwd_dx<T><<<cu::blocks_for(r.rows, 1), cu::kBlock>>>(r.rows, r.cols, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
                                                               static_cast<const T*>(rstd), static_cast<const T*>(g), static_cast<T*>(dx));
    if ((dw || db) && r.cols) {
      const size_t bytes = sizeof(double) * size_t(kChunks) * size_t(r.cols);
      DeviceBlock bw(device, bytes), bb(device, bytes);  // returned, stream-ordered, at scope end
      double* pw = static_cast<double*>(bw.p);
      double* pb = static_cast<double*>(bb.p);
      const unsigned cb = static_cast<unsigned>((r.cols + cu::kBlock - 1) / cu::kBlock);
      k_ln_bwd_partial<T><<<dim3(cb, kChunks), cu::kBlock>>>(r.rows, r.cols, static_cast<const T*>(x), static_cast<const T*>(mean), static_cast<const T*>(rstd),
                                                           static_cast<const T*>(g), pw, pb);
      k_ln_bwd_final<T><<<cb, cu::kBlock>>>(r.cols, pw, pb, static_cast<T*>(dw), static_cast<T*>(db));
    }
  });
  cu::launched("layer_norm_backward");
}

}  // namespace vlmoe
