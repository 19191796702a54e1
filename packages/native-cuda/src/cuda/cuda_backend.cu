// CUDA memory, copies, fill, random fills and the elementwise families.
//
// Elementwise kernels take the coalesced Iter by value (it fits in kernel parameter
// space) and map one thread to one element with a grid-stride loop; the contiguous case
// skips the index arithmetic, and when every operand is also 16-byte aligned a vector kernel
// moves 16 bytes per access (run_unary / run_binary). The op functors are the same ones the CPU uses (ops.h).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "../philox.h"
#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

struct DevIter {
  int ndim;
  int nops;
  int64_t shape[kMaxDims];
  int64_t stride[kMaxOps][kMaxDims];
  int elsize[kMaxOps];
  bool contiguous;
  // a [rows, cols] binary op whose operand `row_bcast` (1 or 2) is one row broadcast over the
  // rows (x + bias, the FFN's bias + activation) and the others contiguous: 0 otherwise
  int row_bcast;
  int64_t cols;
};

DevIter to_dev(Iter& it) {
  it.coalesce();
  DevIter d{};
  d.ndim = it.ndim;
  d.nops = it.nops;
  d.contiguous = it.ndim <= 1;
  for (int k = 0; k < it.nops; ++k) {
    d.elsize[k] = it.elsize[k];
    for (int i = 0; i < it.ndim; ++i) d.stride[k][i] = it.stride[k][i];
    if (it.ndim == 1 && it.stride[k][0] != 1) d.contiguous = false;
  }
  for (int i = 0; i < it.ndim; ++i) d.shape[i] = it.shape[i];
  if (it.nops == 3 && it.ndim == 2) {
    const int64_t c = it.shape[1];
    auto dense = [&](int k) { return it.stride[k][0] == c && it.stride[k][1] == 1; };
    auto row = [&](int k) { return it.stride[k][0] == 0 && it.stride[k][1] == 1; };
    if (dense(0) && dense(1) && row(2)) d.row_bcast = 2;
    else if (dense(0) && row(1) && dense(2)) d.row_bcast = 1;
    d.cols = c;
  }
  return d;
}

__device__ __forceinline__ void offsets(const DevIter& it, int64_t i, int64_t* off) {
  for (int k = 0; k < it.nops; ++k) off[k] = 0;
  for (int d = it.ndim - 1; d >= 0; --d) {
    int64_t c = i % it.shape[d];
    i /= it.shape[d];
    for (int k = 0; k < it.nops; ++k) off[k] += c * it.stride[k][d];
  }
}

template <class Ti, class To, class F>
__global__ void k_unary(DevIter it, int64_t n, To* o, const Ti* a, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    if (it.contiguous) {
      o[i] = static_cast<To>(f(a[i]));
    } else {
      int64_t off[kMaxOps];
      offsets(it, i, off);
      o[off[0]] = static_cast<To>(f(a[off[1]]));
    }
  }
}

template <class T, class To, class F>
__global__ void k_binary(DevIter it, int64_t n, To* o, const T* a, const T* b, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    if (it.contiguous) {
      o[i] = f(a[i], b[i]);
    } else if (it.row_bcast == 2) {
      o[i] = f(a[i], b[i % it.cols]);
    } else if (it.row_bcast == 1) {
      o[i] = f(a[i % it.cols], b[i]);
    } else {
      int64_t off[kMaxOps];
      offsets(it, i, off);
      o[off[0]] = f(a[off[1]], b[off[2]]);
    }
  }
}

// The fast path of contiguous, same-shape operands whose pointers are all 16-byte aligned:
// each thread moves V = cu::vec_width elements per operand as one vector (float4, 8 × bf16,
// 2 × double, …), grid-stride over the n / V whole vectors; the last n % V elements go
// one by one.
template <class Ti, class To, class F>
__global__ void k_unary_vec(int64_t n, To* o, const Ti* a, F f) {
  constexpr int V = cu::vec_width<Ti, To>;
  const int64_t nv = n / V, step = int64_t(blockDim.x) * gridDim.x, tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = tid; i < nv; i += step) {
    const cu::Vec<Ti, V> x = reinterpret_cast<const cu::Vec<Ti, V>*>(a)[i];
    cu::Vec<To, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = static_cast<To>(f(x.v[k]));
    reinterpret_cast<cu::Vec<To, V>*>(o)[i] = y;
  }
  for (int64_t i = nv * V + tid; i < n; i += step) o[i] = static_cast<To>(f(a[i]));
}

template <class T, class To, class F>
__global__ void k_binary_vec(int64_t n, To* o, const T* a, const T* b, F f) {
  constexpr int V = cu::vec_width<T, To>;
  const int64_t nv = n / V, step = int64_t(blockDim.x) * gridDim.x, tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = tid; i < nv; i += step) {
    const cu::Vec<T, V> x = reinterpret_cast<const cu::Vec<T, V>*>(a)[i];
    const cu::Vec<T, V> z = reinterpret_cast<const cu::Vec<T, V>*>(b)[i];
    cu::Vec<To, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = f(x.v[k], z.v[k]);
    reinterpret_cast<cu::Vec<To, V>*>(o)[i] = y;
  }
  for (int64_t i = nv * V + tid; i < n; i += step) o[i] = f(a[i], b[i]);
}

template <class T>
__global__ void k_where(DevIter it, int64_t n, T* o, const bool* c, const T* a, const T* b) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[kMaxOps];
    offsets(it, i, off);
    o[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

template <class T>
__global__ void k_fill(T* d, int64_t n, T v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) d[i] = v;
}

template <class T>
__global__ void k_uniform(T* d, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    Philox4 r = philox(seed, offset + uint64_t(i));
    double u = sizeof(T) == 4 ? double(uniform_f32(r)) : uniform_f64(r);
    T v = T(lo + (hi - lo) * u);
    d[i] = v < T(hi) ? v : T(lo);
  }
}

template <class T>
__global__ void k_normal(T* d, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    d[i] = T(mean + std * normal_f64(philox(seed, offset + uint64_t(i))));
}

// Adapters from the shared op functors to the kernels' call shapes (no device lambdas,
// so no --extended-lambda and no generic-lambda restrictions).
template <class Ti>
struct CastF {
  __device__ Ti operator()(Ti x) const { return x; }
};
template <class F, class T>
struct UnaryF {
  OpParams p;
  __device__ T operator()(T x) const { return F{}(x, p); }
};
template <class F>
struct PredF {
  template <class T>
  __device__ bool operator()(T x) const { return F{}(x); }
};
template <class F, class T>
struct BinaryF {
  OpParams p;
  __device__ T operator()(T a, T b) const { return F{}(a, b, p); }
};
template <class F>
struct CmpF {
  template <class T>
  __device__ bool operator()(T a, T b) const { return F{}(a, b); }
};

unsigned grid_for(int64_t n) {
  int64_t g = (n + 255) / 256;
  return static_cast<unsigned>(g < 65535 * 4 ? (g < 1 ? 1 : g) : 65535 * 4);
}

template <class Launch>
void launch(int device, int64_t n, Launch&& l) {
  if (n == 0) return;
  set_device(device);
  l(grid_for(n), 256u);
  check(cudaGetLastError(), "kernel launch");
}

// Unary / binary launches: the vector kernel when every operand is contiguous (same shape, no
// broadcast) and 16-byte aligned, else the general (strided, broadcasting) kernel.
template <class Ti, class To, class F>
void run_unary(int device, const DevIter& d, int64_t n, To* o, const Ti* a, F f) {
  if (d.contiguous && cu::aligned16(o) && cu::aligned16(a)) {
    constexpr int V = cu::vec_width<Ti, To>;
    launch(device, (n + V - 1) / V, [&](unsigned g, unsigned b) { k_unary_vec<Ti, To><<<g, b>>>(n, o, a, f); });
  } else {
    launch(device, n, [&](unsigned g, unsigned b) { k_unary<Ti, To><<<g, b>>>(d, n, o, a, f); });
  }
}

template <class T, class To, class F>
void run_binary(int device, const DevIter& d, int64_t n, To* o, const T* a, const T* b, F f) {
  if (d.contiguous && cu::aligned16(o) && cu::aligned16(a) && cu::aligned16(b)) {
    constexpr int V = cu::vec_width<T, To>;
    launch(device, (n + V - 1) / V, [&](unsigned g, unsigned bl) { k_binary_vec<T, To><<<g, bl>>>(n, o, a, b, f); });
  } else {
    launch(device, n, [&](unsigned g, unsigned bl) { k_binary<T, To><<<g, bl>>>(d, n, o, a, b, f); });
  }
}

[[noreturn]] void bad(const char* op, DType t) {
  throw std::invalid_argument(std::string(op) + " (cuda): dtype " + dtype_name(t) + " is not supported");
}

}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void cuda_copy_h2d(int device, void* dst, const void* src, size_t n) {
  set_device(device);
  check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
}

void cuda_copy_d2h(int device, void* dst, const void* src, size_t n) {
  set_device(device);
  check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
  cuda_raise_kernel_errors(device);
}

void cuda_synchronize(int device) {
  set_device(device);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  cuda_raise_kernel_errors(device);
}

void cuda_set_device(int device) { set_device(device); }

void cuda_memset(int device, void* dst, int byte, size_t n) {
  set_device(device);
  check(cudaMemsetAsync(dst, byte, n, nullptr), "cudaMemsetAsync");
}

void cuda_fill(int device, DType t, void* dst, int64_t n, double value) {
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    launch(device, n, [&](unsigned g, unsigned b) { k_fill<T><<<g, b>>>(static_cast<T*>(dst), n, static_cast<T>(value)); });
  });
}

void cuda_unary(int device, UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) {
  DevIter d = to_dev(it);
  const int64_t n = it.numel();
  if (op == UnaryOp::copy && in != out) {
    dispatch_dtype(in, [&](auto ti) {
      using Ti = decltype(ti);
      dispatch_dtype(out, [&](auto to) {
        using To = decltype(to);
        run_unary(device, d, n, reinterpret_cast<To*>(it.base[0]), reinterpret_cast<const Ti*>(it.base[1]), CastF<Ti>{});
      });
    });
    return;
  }
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                                                       \
  case UnaryOp::name:                                                                                      \
    dispatch_dtype(in, [&](auto tag) {                                                                     \
      using T = decltype(tag);                                                                             \
      if constexpr (kind_##kind<T>) {                                                                      \
        UnaryF<opfn::name, T> f{p};                                                                        \
        run_unary(device, d, n, reinterpret_cast<T*>(it.base[0]), reinterpret_cast<const T*>(it.base[1]), f); \
      } else {                                                                                             \
        bad(#name, in);                                                                                    \
      }                                                                                                    \
    });                                                                                                    \
    return;
    VLMOE_UNARY_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("unary (cuda): unknown op");
  }
}

void cuda_pred(int device, PredOp op, DType in, Iter& it) {
  DevIter d = to_dev(it);
  const int64_t n = it.numel();
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                                                          \
  case PredOp::name:                                                                                          \
    dispatch_dtype(in, [&](auto tag) {                                                                        \
      using T = decltype(tag);                                                                                \
      if constexpr (kind_##kind<T>) {                                                                         \
        PredF<opfn::name> f;                                                                                  \
        run_unary(device, d, n, reinterpret_cast<bool*>(it.base[0]), reinterpret_cast<const T*>(it.base[1]), f); \
      } else {                                                                                                \
        bad(#name, in);                                                                                       \
      }                                                                                                       \
    });                                                                                                       \
    return;
    VLMOE_PRED_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("pred (cuda): unknown op");
  }
}

void cuda_binary(int device, BinaryOp op, DType t, Iter& it, const OpParams& p) {
  DevIter d = to_dev(it);
  const int64_t n = it.numel();
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                                                         \
  case BinaryOp::name:                                                                                       \
    dispatch_dtype(t, [&](auto tag) {                                                                        \
      using T = decltype(tag);                                                                               \
      if constexpr (kind_##kind<T>) {                                                                        \
        BinaryF<opfn::name, T> f{p};                                                                         \
        run_binary(device, d, n, reinterpret_cast<T*>(it.base[0]), reinterpret_cast<const T*>(it.base[1]),   \
                   reinterpret_cast<const T*>(it.base[2]), f);                                               \
      } else {                                                                                               \
        bad(#name, t);                                                                                       \
      }                                                                                                      \
    });                                                                                                      \
    return;
    VLMOE_BINARY_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("binary (cuda): unknown op");
  }
}

void cuda_compare(int device, CmpOp op, DType t, Iter& it) {
  DevIter d = to_dev(it);
  const int64_t n = it.numel();
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                                                       \
  case CmpOp::name:                                                                                        \
    dispatch_dtype(t, [&](auto tag) {                                                                      \
      using T = decltype(tag);                                                                             \
      CmpF<opfn::name> f;                                                                                  \
      run_binary(device, d, n, reinterpret_cast<bool*>(it.base[0]), reinterpret_cast<const T*>(it.base[1]), \
                 reinterpret_cast<const T*>(it.base[2]), f);                                               \
    });                                                                                                    \
    return;
    VLMOE_CMP_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("compare (cuda): unknown op");
  }
}

void cuda_where(int device, DType t, Iter& it) {
  DevIter d = to_dev(it);
  const int64_t n = it.numel();
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    launch(device, n, [&](unsigned g, unsigned b) {
      k_where<T><<<g, b>>>(d, n, reinterpret_cast<T*>(it.base[0]), reinterpret_cast<const bool*>(it.base[1]),
                           reinterpret_cast<const T*>(it.base[2]), reinterpret_cast<const T*>(it.base[3]));
    });
  });
}

void cuda_rand_uniform(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_float(t, "rand (cuda)", [&](auto tag) {
    using T = decltype(tag);
    launch(device, n, [&](unsigned g, unsigned b) { k_uniform<T><<<g, b>>>(static_cast<T*>(dst), n, seed, offset, lo, hi); });
  });
}

void cuda_rand_normal(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_float(t, "randn (cuda)", [&](auto tag) {
    using T = decltype(tag);
    launch(device, n, [&](unsigned g, unsigned b) { k_normal<T><<<g, b>>>(static_cast<T*>(dst), n, seed, offset, mean, std); });
  });
}

}  // namespace vlmoe
