// Random integers and dropout on CUDA: the same Philox counter streams as the CPU
// (philox.h), so a seed gives the same numbers and the same dropout mask on both devices.
// (Uniform and normal fills live with the elementwise kernels in cuda_backend.cu.)
#include <cuda_runtime.h>

#include <stdexcept>
#include <type_traits>

#include "../philox.h"
#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

template <class T>
__global__ void k_randint(T* d, int64_t n, uint64_t seed, uint64_t offset, int64_t low, uint64_t range) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    Philox4 r = philox(seed, offset + uint64_t(i));
    const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
    d[i] = static_cast<T>(low + int64_t(bits % range));
  }
}

template <class T>
__global__ void k_dropout(const T* x, T* y, uint8_t* mask, int64_t n, float p, T scale, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const bool keep = uniform_f32(philox(seed, offset + uint64_t(i))) >= p;
    mask[i] = keep;
    y[i] = keep ? x[i] * scale : T(0);
  }
}

}  // namespace

void cuda_rand_int(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  if (high <= low) throw std::invalid_argument("randint: high must be greater than low");
  if (n == 0) return;
  cu::set_device(device);
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    k_randint<T><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(static_cast<T*>(dst), n, seed, offset, low, uint64_t(high - low));
  });
  cu::launched("randint");
}

void cuda_dropout(int device, DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  cu::set_device(device);
  dispatch_float(t, "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
    k_dropout<T><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(static_cast<const T*>(x), static_cast<T*>(y), mask, n, float(p), scale, seed, offset);
  });
  cu::launched("dropout");
}

}  // namespace vlmoe
