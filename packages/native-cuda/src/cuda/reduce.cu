// Reductions (sum, prod, max/min with first index) and cumsum on CUDA, with the CPU kernel's
// operand conventions (cpu/reduce.cpp): operand 0 is the output with stride 0 on every
// reduced dim, operand 1 the input, operand 2 an optional int64 index output. One block of
// 256 threads per output element when the reduction is long, one thread per output when it
// is short; floating sums accumulate in float64 like the CPU's (so both agree to rounding).
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

struct DevSpace {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t s_in[kMaxDims] = {};
  int64_t s_out[kMaxDims] = {};
  int64_t s_idx[kMaxDims] = {};
  __host__ __device__ int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) n *= shape[d];
    return n;
  }
  __device__ void offsets(int64_t i, int64_t& in, int64_t& out, int64_t& idx) const {
    in = out = idx = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t c = i % shape[d];
      i /= shape[d];
      in += c * s_in[d];
      out += c * s_out[d];
      idx += c * s_idx[d];
    }
  }
};

template <class T>
using acc_t = typename std::conditional<std::is_floating_point<T>::value, double, int64_t>::type;

template <class T, bool Prod>
__global__ void k_sum_block(DevSpace K, DevSpace R, const T* in, T* out) {
  using A = acc_t<T>;
  __shared__ A sh[cu::kBlock / 32];
  const int64_t nK = K.numel(), nR = R.numel();
  for (int64_t k = blockIdx.x; k < nK; k += gridDim.x) {
    int64_t a, o, x;
    K.offsets(k, a, o, x);
    A acc = Prod ? A(1) : A(0);
    for (int64_t r = threadIdx.x; r < nR; r += blockDim.x) {
      int64_t ri, ro, rx;
      R.offsets(r, ri, ro, rx);
      acc = Prod ? acc * A(in[a + ri]) : acc + A(in[a + ri]);
    }
    if (Prod) {
      // products: a shared-memory tree (no shuffle product helper needed)
      __shared__ A prod[cu::kBlock];
      prod[threadIdx.x] = acc;
      __syncthreads();
      for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (int(threadIdx.x) < s) prod[threadIdx.x] *= prod[threadIdx.x + s];
        __syncthreads();
      }
      if (threadIdx.x == 0) out[o] = T(prod[0]);
      __syncthreads();
    } else {
      const A total = cu::block_sum(acc, sh);
      if (threadIdx.x == 0) out[o] = T(total);
    }
  }
}

template <class T, bool Prod>
__global__ void k_sum_thread(DevSpace K, DevSpace R, const T* in, T* out) {
  using A = acc_t<T>;
  const int64_t nK = K.numel(), nR = R.numel();
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < nK; k += int64_t(blockDim.x) * gridDim.x) {
    int64_t a, o, x;
    K.offsets(k, a, o, x);
    A acc = Prod ? A(1) : A(0);
    for (int64_t r = 0; r < nR; ++r) {
      int64_t ri, ro, rx;
      R.offsets(r, ri, ro, rx);
      acc = Prod ? acc * A(in[a + ri]) : acc + A(in[a + ri]);
    }
    out[o] = T(acc);
  }
}

// (value, index) for max / min: NaN wins, ties keep the first index.
template <class T, bool Max>
__device__ __forceinline__ bool better(T x, int64_t xi, T v, int64_t vi) {
  if (vi < 0) return xi >= 0;
  if (xi < 0) return false;
  if constexpr (std::is_floating_point<T>::value) {
    const bool xn = x != x, vn = v != v;
    if (xn || vn) return xn && (!vn || xi < vi);
  }
  if (x == v) return xi < vi;
  return Max ? x > v : x < v;
}

template <class T, bool Max>
__global__ void k_extreme(DevSpace K, DevSpace R, const T* in, T* out, int64_t* idx) {
  __shared__ T sv[cu::kBlock];
  __shared__ int64_t si[cu::kBlock];
  const int64_t nK = K.numel(), nR = R.numel();
  for (int64_t k = blockIdx.x; k < nK; k += gridDim.x) {
    int64_t a, o, xo;
    K.offsets(k, a, o, xo);
    T bv = T(0);
    int64_t bi = -1;
    for (int64_t r = threadIdx.x; r < nR; r += blockDim.x) {
      int64_t ri, ro, rx;
      R.offsets(r, ri, ro, rx);
      const T v = in[a + ri];
      if (better<T, Max>(v, r, bv, bi)) bv = v, bi = r;
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (int(threadIdx.x) < s && better<T, Max>(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + s];
        si[threadIdx.x] = si[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      out[o] = sv[0];
      if (idx) idx[xo] = si[0];
    }
    __syncthreads();
  }
}

template <class T>
__global__ void k_cumsum(DevSpace S, int64_t len, int64_t sin, int64_t sout, const T* in, T* out) {
  using A = acc_t<T>;
  const int64_t n = S.numel();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t a, o, x;
    S.offsets(i, a, o, x);
    A acc = 0;
    for (int64_t j = 0; j < len; ++j) {
      acc += A(in[a + j * sin]);
      out[o + j * sout] = T(acc);
    }
  }
}

}  // namespace

void cuda_reduce(int device, int op, DType t, Iter& it, bool with_index) {
  it.coalesce();
  DevSpace K, R;
  for (int d = 0; d < it.ndim; ++d) {
    DevSpace& S = it.stride[0][d] == 0 ? R : K;
    S.shape[S.nd] = it.shape[d];
    S.s_in[S.nd] = it.stride[1][d];
    S.s_out[S.nd] = it.stride[0][d];
    S.s_idx[S.nd] = with_index ? it.stride[2][d] : 0;
    ++S.nd;
  }
  if (R.nd == 0) {
    R.shape[0] = 1;
    R.nd = 1;
  }
  const int64_t nK = K.numel(), nR = R.numel();
  if ((op == 1 || op == 2) && nR == 0) throw std::invalid_argument(op == 1 ? "max: cannot reduce over an empty dimension" : "min: cannot reduce over an empty dimension");
  if (nK == 0) return;
  cu::set_device(device);
  int64_t* idx = with_index ? reinterpret_cast<int64_t*>(it.base[2]) : nullptr;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, bool>::value) {
      throw std::invalid_argument("reduce: bool tensors must be cast before reducing");
    } else {
      const T* in = reinterpret_cast<const T*>(it.base[1]);
      T* out = reinterpret_cast<T*>(it.base[0]);
      const bool per_block = nR >= 64;
      const unsigned grid = per_block ? cu::blocks_for(nK, 1) : cu::blocks_for(nK, cu::kBlock);
      switch (op) {
        case 0:
          if (per_block) k_sum_block<T, false><<<grid, cu::kBlock>>>(K, R, in, out);
          else k_sum_thread<T, false><<<grid, cu::kBlock>>>(K, R, in, out);
          break;
        case 3:
          if (per_block) k_sum_block<T, true><<<grid, cu::kBlock>>>(K, R, in, out);
          else k_sum_thread<T, true><<<grid, cu::kBlock>>>(K, R, in, out);
          break;
        case 1:
        case 2:
          if (nR == 0) throw std::invalid_argument(op == 1 ? "max: cannot reduce over an empty dimension" : "min: cannot reduce over an empty dimension");
          if (op == 1) k_extreme<T, true><<<cu::blocks_for(nK, 1), cu::kBlock>>>(K, R, in, out, idx);
          else k_extreme<T, false><<<cu::blocks_for(nK, 1), cu::kBlock>>>(K, R, in, out, idx);
          break;
        default: throw std::invalid_argument("reduce: unknown op");
      }
      cu::launched("reduce");
    }
  });
}

void cuda_cumsum(int device, DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride) {
  it.coalesce();
  DevSpace S;
  S.nd = it.ndim;
  for (int d = 0; d < it.ndim; ++d) {
    S.shape[d] = it.shape[d];
    S.s_in[d] = it.stride[1][d];
    S.s_out[d] = it.stride[0][d];
  }
  const int64_t n = S.numel();
  if (n == 0 || len == 0) return;
  cu::set_device(device);
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, bool>::value) {
      throw std::invalid_argument("cumsum: bool tensors must be cast first");
    } else {
      k_cumsum<T><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(S, len, in_stride, out_stride, reinterpret_cast<const T*>(it.base[1]), reinterpret_cast<T*>(it.base[0]));
      cu::launched("cumsum");
    }
  });
}

}  // namespace vlmoe
