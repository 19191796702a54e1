// Storage types for bfloat16 / float16 in CUDA kernels: distinct C++ types over the raw bits
// (so a kernel template tells the two apart), widened to float for the math and rounded
// back with half.h's conversions (bit-identical to the CPU's casts).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../dtype.h"
#include "../half.h"

namespace vlmoe {
namespace cu {

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

template <class T>
constexpr bool is_half_storage = std::is_same<T, bf16>::value || std::is_same<T, f16>::value;

// The type the math runs in: float for the half types, the type itself otherwise.
template <class T>
using compute_t = typename std::conditional<is_half_storage<T>, float, T>::type;

__device__ __forceinline__ float widen(bf16 v) { return bf16_to_f32(v.bits); }
__device__ __forceinline__ float widen(f16 v) { return f16_to_f32(v.bits); }
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ double widen(double v) { return v; }

template <class T, class A>
__device__ __forceinline__ T narrow(A v) {
  if constexpr (std::is_same<T, bf16>::value) return bf16{f32_to_bf16(float(v))};
  else if constexpr (std::is_same<T, f16>::value) return f16{f32_to_f16(float(v))};
  else return static_cast<T>(v);
}

// f(T{}) with T the storage type of a floating dtype: float, double, bf16 or f16.
template <class F>
void dispatch_float_storage(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16{}); return;
    case DType::f16: f(f16{}); return;
    default: throw std::invalid_argument(std::string(op) + " (cuda): expected a floating dtype, got " + dtype_name(t));
  }
}

}  // namespace cu
}  // namespace vlmoe
