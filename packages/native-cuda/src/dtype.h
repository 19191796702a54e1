// Element types shared by the TypeScript layer and every kernel. The numeric codes are part
// of the addon's ABI: the TypeScript side reads them from `native.dtypes`, never hard-codes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace vlmoe {

// bf16 / f16 are storage types: casts, fill, matmul (float32 accumulation) and data moves
// take them; the compute kernels dispatch over the other six and refuse them by name.
enum class DType : int { f32 = 0, f64 = 1, i32 = 2, i64 = 3, b8 = 4, u8 = 5, bf16 = 6, f16 = 7 };
constexpr int kNumDTypes = 8;

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
    case DType::u8: return "uint8";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
  }
  return "?";
}

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::b8: case DType::u8: return 1;
    case DType::bf16: case DType::f16: return 2;
  }
  return 0;
}

inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }
inline bool is_half(DType t) { return t == DType::bf16 || t == DType::f16; }

[[noreturn]] inline void half_unsupported(DType t) {
  throw std::invalid_argument(std::string("dtype ") + dtype_name(t) +
                              " is a storage type here: casts, fill and matmul take it; cast to float32 for this op");
}

inline DType dtype_from_int(int v) {
  if (v < 0 || v >= kNumDTypes) throw std::invalid_argument("unknown dtype code " + std::to_string(v));
  return static_cast<DType>(v);
}

// Calls f(T{}) with T the C++ type of `t`.
template <class F>
auto dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    case DType::b8: return f(bool{});
    case DType::u8: return f(uint8_t{});
    case DType::bf16:
    case DType::f16: half_unsupported(t);
  }
  throw std::invalid_argument("unknown dtype");
}

template <class F>
auto dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: throw std::invalid_argument(std::string(op) + ": expected a floating dtype, got " + dtype_name(t));
  }
}

// dispatch_float for a CPU kernel whose CUDA twin also takes bfloat16 / float16 storage: the
// error for a half dtype says where it is supported.
template <class F>
auto dispatch_float_cpu(DType t, const char* op, F&& f) {
  if (is_half(t)) throw std::invalid_argument(std::string(op) + ": " + dtype_name(t) + " is supported on CUDA only; cast to float32 on the CPU");
  return dispatch_float(t, op, std::forward<F>(f));
}

}  // namespace vlmoe
