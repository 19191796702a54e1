// Indexing kernels on CUDA (the CPU semantics, cpu/index.h): index_select (embedding
// lookup), index_add (its backward), gather and scatter_add along a dim. Additions into
// shared rows use atomics (float32/float64/int32/int64), so duplicate indices accumulate;
// the order of floating additions is not fixed (as in PyTorch's CUDA index_add). Indices out
// of range are reported through the kernel error record (errors.cu) and skipped.
#include <cuda_runtime.h>

#include <type_traits>

#include "common.cuh"
#include "cuda_backend.h"
#include "errors.cuh"

namespace vlmoe {

namespace {

template <class T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same<T, int64_t>::value) atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  else atomicAdd(p, v);
}

template <class T, class I>
__global__ void k_index_select(const T* x, int64_t outer, int64_t size, int64_t inner, const I* idx, int64_t m, T* out, KernelError* err) {
  const int64_t n = outer * m * inner;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < n; q += int64_t(blockDim.x) * gridDim.x) {
    const int64_t i = q % inner, j = (q / inner) % m, o = q / (inner * m);
    const int64_t v = static_cast<int64_t>(idx[j]);
    if (v < 0 || v >= size) {
      report(err, kErrIndexSelect, v, size);
      out[q] = T(0);
      continue;
    }
    out[q] = x[(o * size + v) * inner + i];
  }
}

template <class T, class I>
__global__ void k_index_add(T* out, int64_t outer, int64_t size, int64_t inner, const I* idx, int64_t m, const T* src, KernelError* err) {
  const int64_t n = outer * m * inner;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < n; q += int64_t(blockDim.x) * gridDim.x) {
    const int64_t i = q % inner, j = (q / inner) % m, o = q / (inner * m);
    const int64_t v = static_cast<int64_t>(idx[j]);
    if (v < 0 || v >= size) {
      report(err, kErrIndexAdd, v, size);
      continue;
    }
    atomic_add(out + (o * size + v) * inner + i, src[q]);
  }
}

struct Dev3 {
  int nd;
  int64_t shape[kMaxDims];
  int64_t s[3][kMaxDims];
};

Dev3 dev3(Iter& it) {
  it.coalesce();
  Dev3 d{};
  d.nd = it.ndim;
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < it.ndim; ++i) d.s[k][i] = it.stride[k][i];
  for (int i = 0; i < it.ndim; ++i) d.shape[i] = it.shape[i];
  return d;
}

__device__ __forceinline__ void offsets3(const Dev3& d, int64_t i, int64_t* off) {
  off[0] = off[1] = off[2] = 0;
  for (int k = d.nd - 1; k >= 0; --k) {
    const int64_t c = i % d.shape[k];
    i /= d.shape[k];
    off[0] += c * d.s[0][k], off[1] += c * d.s[1][k], off[2] += c * d.s[2][k];
  }
}

// operands: out, idx, x (x's stride along dim is 0; x_dim_stride steps along it)
template <class T, class I>
__global__ void k_gather(Dev3 d, int64_t n, T* out, const I* idx, const T* x, int64_t x_dim_stride, int64_t x_dim_size, KernelError* err) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[3];
    offsets3(d, i, off);
    const int64_t v = static_cast<int64_t>(idx[off[1]]);
    if (v < 0 || v >= x_dim_size) {
      report(err, kErrGather, v, x_dim_size);
      out[off[0]] = T(0);
      continue;
    }
    out[off[0]] = x[off[2] + v * x_dim_stride];
  }
}

// operands: out (stride 0 along dim), idx, src
template <class T, class I>
__global__ void k_scatter_add(Dev3 d, int64_t n, T* out, const I* idx, const T* src, int64_t out_dim_stride, int64_t out_dim_size, KernelError* err) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[3];
    offsets3(d, i, off);
    const int64_t v = static_cast<int64_t>(idx[off[1]]);
    if (v < 0 || v >= out_dim_size) {
      report(err, kErrScatterAdd, v, out_dim_size);
      continue;
    }
    atomic_add(out + off[0] + v * out_dim_stride, src[off[2]]);
  }
}

template <class F>
void with_index(DType it, const char* op, F&& f) {
  if (it == DType::i64) f(int64_t{});
  else if (it == DType::i32) f(int32_t{});
  else throw std::invalid_argument(std::string(op) + ": indices must be int32 or int64, got " + dtype_name(it));
}

// the dtypes CUDA atomics add
template <class T>
constexpr bool addable = std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, int32_t>::value || std::is_same<T, int64_t>::value;

}  // namespace

void cuda_index_select(int device, DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, void* out) {
  const int64_t n = outer * m * inner;
  if (n == 0) return;
  KernelError* err = cuda_error_record(device);
  cu::set_device(device);
  with_index(it, "index_select", [&](auto itag) {
    using I = decltype(itag);
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      k_index_select<T, I><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(static_cast<const T*>(x), outer, size, inner, static_cast<const I*>(idx), m, static_cast<T*>(out), err);
    });
  });
  cu::launched("index_select");
}

void cuda_index_add(int device, DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, const void* src) {
  const int64_t n = outer * m * inner;
  if (n == 0) return;
  KernelError* err = cuda_error_record(device);
  cu::set_device(device);
  with_index(it, "index_add", [&](auto itag) {
    using I = decltype(itag);
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!addable<T>) {
        throw std::invalid_argument(std::string("index_add (cuda): dtype ") + dtype_name(t) + " is not supported (float32, float64, int32, int64)");
      } else {
        k_index_add<T, I><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(static_cast<T*>(out), outer, size, inner, static_cast<const I*>(idx), m, static_cast<const T*>(src), err);
      }
    });
  });
  cu::launched("index_add");
}

void cuda_gather(int device, DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size) {
  const int64_t n = it.numel();
  if (n == 0) return;
  KernelError* err = cuda_error_record(device);
  Dev3 d = dev3(it);
  cu::set_device(device);
  with_index(it_dtype, "gather", [&](auto itag) {
    using I = decltype(itag);
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      k_gather<T, I><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(d, n, reinterpret_cast<T*>(it.base[0]), reinterpret_cast<const I*>(it.base[1]),
                                                                    reinterpret_cast<const T*>(it.base[2]), x_dim_stride, x_dim_size, err);
    });
  });
  cu::launched("gather");
}

void cuda_scatter_add(int device, DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size) {
  const int64_t n = it.numel();
  if (n == 0) return;
  KernelError* err = cuda_error_record(device);
  Dev3 d = dev3(it);
  cu::set_device(device);
  with_index(it_dtype, "scatter_add", [&](auto itag) {
    using I = decltype(itag);
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!addable<T>) {
        throw std::invalid_argument(std::string("scatter_add (cuda): dtype ") + dtype_name(t) + " is not supported (float32, float64, int32, int64)");
      } else {
        k_scatter_add<T, I><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(d, n, reinterpret_cast<T*>(it.base[0]), reinterpret_cast<const I*>(it.base[1]),
                                                                          reinterpret_cast<const T*>(it.base[2]), out_dim_stride, out_dim_size, err);
      }
    });
  });
  cu::launched("scatter_add");
}

}  // namespace vlmoe
