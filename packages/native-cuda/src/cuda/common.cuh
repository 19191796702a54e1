// Shared pieces of the CUDA kernels: error checks, launch helpers, block-wide reductions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_backend.h"

namespace vlmoe {
namespace cu {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

inline void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

// After a launch: a bad configuration surfaces here, not at the next synchronisation.
inline void launched(const char* what) { check(cudaGetLastError(), what); }

inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 8) {
  int64_t g = (n + threads - 1) / threads;
  return static_cast<unsigned>(g < 1 ? 1 : (g > cap ? cap : g));
}

constexpr int kBlock = 256;

// V elements of T moved as one unit: aligned to min(16, V·sizeof(T)) bytes, so the compiler
// emits 16-byte (or 8-, 4-byte) vector loads and stores. Valid at element index i·V of a
// base pointer that is 16-byte aligned (see aligned16).
template <class T, int V>
struct alignas(sizeof(T) * V < 16 ? sizeof(T) * V : 16) Vec {
  T v[V];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Elements per thread of a vector path over operands of types A and B: 16 bytes of the
// narrower type, at most 32 bytes (two 16-byte accesses) of the wider.
// (A variable, not a function: a constexpr host function is not callable from device code.)
template <class A, class B>
constexpr int vec_width = int(16 / (sizeof(A) < sizeof(B) ? sizeof(A) : sizeof(B)) < 32 / (sizeof(A) < sizeof(B) ? sizeof(B) : sizeof(A))
                                  ? 16 / (sizeof(A) < sizeof(B) ? sizeof(A) : sizeof(B))
                                  : 32 / (sizeof(A) < sizeof(B) ? sizeof(B) : sizeof(A)));

}  // namespace cu

// A scratch block of the caching allocator, returned (stream-ordered) when it goes out of
// scope, also when the op throws.
struct DeviceBlock {
  int device;
  size_t bytes;
  void* p;
  DeviceBlock(int d, size_t n) : device(d), bytes(n), p(cuda_alloc(d, n)) {}
  DeviceBlock(DeviceBlock&& o) noexcept : device(o.device), bytes(o.bytes), p(o.p) { o.p = nullptr; }
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() {
    if (p) cuda_free(device, p);
  }
};

namespace cu {

// The segment of element i of a concatenation: the largest k < count with start[k] <= i
// (start: the count + 1 prefix sums; empty segments are skipped past).
__device__ __forceinline__ int64_t segment_of(const int64_t* start, int64_t count, int64_t i) {
  int64_t lo = 0, hi = count;  // start[lo] <= i < start[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (start[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

// Block-wide sum of v (every thread of a block of kBlock threads calls it); the result is
// valid in every thread. `sh` holds kBlock / 32 values.
template <class A>
__device__ __forceinline__ A block_sum(A v, A* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // sh may still be read by a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  A r = A(0);
  for (int w = 0; w < int(blockDim.x >> 5); ++w) r += sh[w];
  return r;
}

// Warp-wide max / sum (every lane gets the result; all 32 lanes must call).
template <class A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class A>
__device__ __forceinline__ A block_max(A v, A* sh) {
  for (int o = 16; o > 0; o >>= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  A r = sh[0];
  for (int w = 1; w < int(blockDim.x >> 5); ++w) r = sh[w] > r ? sh[w] : r;
  return r;
}

}  // namespace cu
}  // namespace vlmoe
