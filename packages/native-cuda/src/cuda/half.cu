// bfloat16 / float16 on CUDA: casts to and from every dtype, fill (half.h does the rounding,
// bit-identical to the CPU's), and the half-precision GEMM's fallback kernel inputs.
#include <cuda_runtime.h>

#include "../half.h"
#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

struct Dev2 {
  int nd;
  int64_t shape[kMaxDims];
  int64_t s[2][kMaxDims];
};

__device__ double load(const char* p, DType t) {
  switch (t) {
    case DType::f32: return *reinterpret_cast<const float*>(p);
    case DType::f64: return *reinterpret_cast<const double*>(p);
    case DType::i32: return *reinterpret_cast<const int32_t*>(p);
    case DType::i64: return double(*reinterpret_cast<const int64_t*>(p));
    case DType::b8: return *reinterpret_cast<const uint8_t*>(p) ? 1.0 : 0.0;
    case DType::u8: return *reinterpret_cast<const uint8_t*>(p);
    case DType::bf16: return bf16_to_f32(*reinterpret_cast<const uint16_t*>(p));
    case DType::f16: return f16_to_f32(*reinterpret_cast<const uint16_t*>(p));
  }
  return 0;
}

__device__ void store(char* p, DType t, double v) {
  switch (t) {
    case DType::f32: *reinterpret_cast<float*>(p) = float(v); return;
    case DType::f64: *reinterpret_cast<double*>(p) = v; return;
    case DType::i32: *reinterpret_cast<int32_t*>(p) = int32_t(v); return;
    case DType::i64: *reinterpret_cast<int64_t*>(p) = int64_t(v); return;
    case DType::b8: *reinterpret_cast<uint8_t*>(p) = v != 0; return;
    case DType::u8: *reinterpret_cast<uint8_t*>(p) = uint8_t(int64_t(v)); return;
    case DType::bf16: *reinterpret_cast<uint16_t*>(p) = f32_to_bf16(float(v)); return;
    case DType::f16: *reinterpret_cast<uint16_t*>(p) = f32_to_f16(float(v)); return;
  }
}

__global__ void k_cast(Dev2 d, int64_t n, char* out, DType to, int eo, const char* in, DType ti, int ei) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t o0 = 0, o1 = 0, r = i;
    for (int k = d.nd - 1; k >= 0; --k) {
      const int64_t c = r % d.shape[k];
      r /= d.shape[k];
      o0 += c * d.s[0][k];
      o1 += c * d.s[1][k];
    }
    store(out + o0 * eo, to, load(in + o1 * ei, ti));
  }
}

__global__ void k_fill16(uint16_t* d, int64_t n, uint16_t v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) d[i] = v;
}

}  // namespace

void cuda_half_cast(int device, DType in, DType out, Iter& it) {
  it.coalesce();
  const int64_t n = it.numel();
  if (n == 0) return;
  Dev2 d{};
  d.nd = it.ndim;
  for (int k = 0; k < it.ndim; ++k) d.shape[k] = it.shape[k], d.s[0][k] = it.stride[0][k], d.s[1][k] = it.stride[1][k];
  cu::set_device(device);
  k_cast<<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(d, n, it.base[0], out, int(dtype_size(out)), it.base[1], in, int(dtype_size(in)));
  cu::launched("cast (half precision)");
}

void cuda_half_fill(int device, DType t, void* dst, int64_t n, double value) {
  if (n == 0) return;
  const uint16_t h = t == DType::bf16 ? f32_to_bf16(float(value)) : f32_to_f16(float(value));
  cu::set_device(device);
  k_fill16<<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(static_cast<uint16_t*>(dst), n, h);
  cu::launched("fill (half precision)");
}

}  // namespace vlmoe
