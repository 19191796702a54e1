// bfloat16 / float16 on CUDA: casts to and from every dtype, fill (half.h does the rounding,
// bit-identical to the CPU's), and the half-precision GEMM's fallback kernel inputs.
#include <cuda_runtime.h>

#include "../half.h"
#include "common.cuh"
#include "cuda_backend.h"
#include "half.cuh"

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

// The common casts of mixed precision (float32 ↔ bfloat16 / float16, and a half type to
// itself) over contiguous, 16-byte aligned operands: 8 values per thread (one 16-byte access
// of the half side, two of the float32 side), the tail one by one. The conversions are
// k_cast's (half.h), so the results are the same bits.
template <class Ti, class To>
__global__ void k_cast_vec(int64_t n, To* o, const Ti* a) {
  constexpr int V = cu::vec_width<Ti, To>;
  const int64_t nv = n / V, step = int64_t(blockDim.x) * gridDim.x, tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = tid; i < nv; i += step) {
    const cu::Vec<Ti, V> x = reinterpret_cast<const cu::Vec<Ti, V>*>(a)[i];
    cu::Vec<To, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = cu::narrow<To>(cu::widen(x.v[k]));
    reinterpret_cast<cu::Vec<To, V>*>(o)[i] = y;
  }
  for (int64_t i = nv * V + tid; i < n; i += step) o[i] = cu::narrow<To>(cu::widen(a[i]));
}

template <class Ti, class To>
void cast_vec(int64_t n, void* out, const void* in) {
  constexpr int V = cu::vec_width<Ti, To>;
  k_cast_vec<Ti, To><<<cu::blocks_for((n + V - 1) / V, cu::kBlock), cu::kBlock>>>(n, static_cast<To*>(out), static_cast<const Ti*>(in));
}

// Runs the vector cast when (in, out) is one of its pairs; false otherwise.
bool try_cast_vec(DType in, DType out, int64_t n, void* o, const void* a) {
  using cu::bf16;
  using cu::f16;
  if (in == DType::f32 && out == DType::bf16) cast_vec<float, bf16>(n, o, a);
  else if (in == DType::f32 && out == DType::f16) cast_vec<float, f16>(n, o, a);
  else if (in == DType::bf16 && out == DType::f32) cast_vec<bf16, float>(n, o, a);
  else if (in == DType::f16 && out == DType::f32) cast_vec<f16, float>(n, o, a);
  else if (in == DType::bf16 && out == DType::bf16) cast_vec<bf16, bf16>(n, o, a);
  else if (in == DType::f16 && out == DType::f16) cast_vec<f16, f16>(n, o, a);
  else return false;
  return true;
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
  const bool dense = it.ndim == 0 || (it.ndim == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1);
  if (dense && cu::aligned16(it.base[0]) && cu::aligned16(it.base[1]) && try_cast_vec(in, out, n, it.base[0], it.base[1])) {
    cu::launched("cast (half precision)");
    return;
  }
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
