// Element types shared by the TypeScript layer and every kernel. The numeric codes are part
// of the addon's ABI: the TypeScript side reads them from `native.dtypes`, never hard-codes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace vlmoe {

enum class DType : int { f32 = 0, f64 = 1, i32 = 2, i64 = 3, b8 = 4, u8 = 5 };
constexpr int kNumDTypes = 6;

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
    case DType::u8: return "uint8";
  }
  return "?";
}

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::b8: case DType::u8: return 1;
  }
  return 0;
}

inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

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

}  // namespace vlmoe
