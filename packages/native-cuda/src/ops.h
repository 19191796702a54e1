// Elementwise operators as functors usable from CPU and CUDA code.
//
// Each X-macro row is (name, kind, expression). Kinds say which dtypes an op accepts:
//   ARITH  all numeric types (float32, float64, int32, int64, uint8)
//   FLOAT  floating types only (the TypeScript layer promotes integers first)
//   BOOL   bool only
//   ALL    every type, bool included
// Unary expressions see `x` and the scalar parameters `p.s0`, `p.s1`; binary ones see `a`, `b`.
// The op codes (row order) are exported to TypeScript as `native.ops`.
#pragma once
#include <cstdint>
#include <type_traits>

#include "scalar_math.h"

namespace vlmoe {

struct OpParams {
  double s0 = 0, s1 = 0;
};

#define VLMOE_UNARY_OPS(X)                                                                    \
  X(copy, ALL, x)                                                                             \
  X(neg, ARITH, T(-x))                                                                        \
  X(abs, ARITH, T(x < T(0) ? T(-x) : x))                                                      \
  X(sign, ARITH, T(x != x ? x : T((T(0) < x) - (x < T(0)))))                                  \
  X(square, ARITH, T(x * x))                                                                  \
  X(relu, ARITH, T(x < T(0) ? T(0) : x))                                                      \
  X(affine, ARITH, T(T(p.s0) * x + T(p.s1)))                                                  \
  X(clamp, ARITH, clamp_value(x, p.s0, p.s1))                                                 \
  X(exp, FLOAT, sm::exp_(x))                                                                  \
  X(log, FLOAT, sm::log_(x))                                                                  \
  X(sqrt, FLOAT, sm::sqrt_(x))                                                                \
  X(rsqrt, FLOAT, T(1) / sm::sqrt_(x))                                                        \
  X(reciprocal, FLOAT, T(1) / x)                                                              \
  X(tanh, FLOAT, sm::tanh_(x))                                                                \
  X(sigmoid, FLOAT, T(1) / (T(1) + sm::exp_(-x)))                                             \
  X(gelu, FLOAT, T(0.5) * x * (T(1) + sm::erf_(x * T(0.70710678118654752440))))               \
  X(gelu_tanh, FLOAT,                                                                         \
    T(0.5) * x * (T(1) + sm::tanh_(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)))) \
  X(floor, FLOAT, sm::floor_(x))                                                              \
  X(ceil, FLOAT, sm::ceil_(x))                                                                \
  X(round, FLOAT, sm::round_(x))                                                              \
  X(pow_scalar, FLOAT, sm::pow_(x, T(p.s0)))                                                  \
  X(logical_not, BOOL, !x)

// Unary predicates: T -> bool.
#define VLMOE_PRED_OPS(X)         \
  X(isnan, FLOAT, x != x)         \
  X(isfinite, FLOAT, (x - x) == (x - x))

#define VLMOE_BINARY_OPS(X)                                                                     \
  X(add, ARITH, T(a + b))                                                                       \
  X(sub, ARITH, T(a - b))                                                                       \
  X(mul, ARITH, T(a * b))                                                                       \
  X(div, FLOAT, a / b)                                                                          \
  X(pow, FLOAT, sm::pow_(a, b))                                                                 \
  X(maximum, ARITH, T((a > b || a != a) ? a : b))                                               \
  X(minimum, ARITH, T((a < b || a != a) ? a : b))                                               \
  X(add_scaled, ARITH, T(a + T(p.s0) * b))                                                      \
  X(relu_backward, ARITH, T(b > T(0) ? a : T(0)))                                               \
  X(sigmoid_backward, FLOAT, a * b * (T(1) - b))                                                \
  X(tanh_backward, FLOAT, a * (T(1) - b * b))                                                   \
  X(gelu_backward, FLOAT,                                                                       \
    a * (T(0.5) * (T(1) + sm::erf_(b * T(0.70710678118654752440))) +                            \
         b * T(0.39894228040143267794) * sm::exp_(T(-0.5) * b * b)))                            \
  X(gelu_tanh_backward, FLOAT, gelu_tanh_grad(a, b))                                            \
  X(bias_gelu, FLOAT, T(0.5) * (a + b) * (T(1) + sm::erf_((a + b) * T(0.70710678118654752440))))  \
  X(bias_gelu_tanh, FLOAT,                                                                      \
    T(0.5) * (a + b) * (T(1) + sm::tanh_(T(0.79788456080286535588) * ((a + b) + T(0.044715) * (a + b) * (a + b) * (a + b))))) \
  X(logical_and, BOOL, a && b)                                                                  \
  X(logical_or, BOOL, a || b)                                                                   \
  X(logical_xor, BOOL, a != b)

// Comparisons: T, T -> bool.
#define VLMOE_CMP_OPS(X) \
  X(eq, ALL, a == b)     \
  X(ne, ALL, a != b)     \
  X(lt, ALL, a < b)      \
  X(le, ALL, a <= b)     \
  X(gt, ALL, a > b)      \
  X(ge, ALL, a >= b)

// Clamp into [lo, hi]. Integer inputs compare in double so that infinite or out-of-range
// bounds (clamp with one side open) never convert to the integer type; NaN stays NaN.
template <class T>
VLMOE_HD T clamp_value(T x, double lo, double hi) {
  if constexpr (std::is_floating_point<T>::value) {
    return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x);
  } else {
    const double d = static_cast<double>(x);
    return d < lo ? T(lo) : (d > hi ? T(hi) : x);
  }
}

template <class T>
VLMOE_HD T gelu_tanh_grad(T g, T x) {
  const T k = T(0.79788456080286535588), c = T(0.044715);
  T u = k * (x + c * x * x * x);
  T t = sm::tanh_(u);
  T du = k * (T(1) + T(3) * c * x * x);
  return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
}

#define VLMOE_ENUM_ENTRY(name, kind, expr) name,
enum class UnaryOp : int { VLMOE_UNARY_OPS(VLMOE_ENUM_ENTRY) kCount };
enum class PredOp : int { VLMOE_PRED_OPS(VLMOE_ENUM_ENTRY) kCount };
enum class BinaryOp : int { VLMOE_BINARY_OPS(VLMOE_ENUM_ENTRY) kCount };
enum class CmpOp : int { VLMOE_CMP_OPS(VLMOE_ENUM_ENTRY) kCount };
#undef VLMOE_ENUM_ENTRY

namespace opfn {
#define VLMOE_UNARY_FUNCTOR(name, kind, expr)                                   \
  struct name {                                                                 \
    template <class T>                                                          \
    VLMOE_HD T operator()(T x, const OpParams& p) const { (void)p; return expr; } \
  };
VLMOE_UNARY_OPS(VLMOE_UNARY_FUNCTOR)
#undef VLMOE_UNARY_FUNCTOR
#define VLMOE_PRED_FUNCTOR(name, kind, expr) \
  struct name {                              \
    template <class T>                       \
    VLMOE_HD bool operator()(T x) const { return expr; } \
  };
VLMOE_PRED_OPS(VLMOE_PRED_FUNCTOR)
#undef VLMOE_PRED_FUNCTOR
#define VLMOE_BINARY_FUNCTOR(name, kind, expr)                                         \
  struct name {                                                                        \
    template <class T>                                                                 \
    VLMOE_HD T operator()(T a, T b, const OpParams& p) const { (void)p; return expr; } \
  };
VLMOE_BINARY_OPS(VLMOE_BINARY_FUNCTOR)
#undef VLMOE_BINARY_FUNCTOR
#define VLMOE_CMP_FUNCTOR(name, kind, expr) \
  struct name {                             \
    template <class T>                      \
    VLMOE_HD bool operator()(T a, T b) const { return expr; } \
  };
VLMOE_CMP_OPS(VLMOE_CMP_FUNCTOR)
#undef VLMOE_CMP_FUNCTOR
}  // namespace opfn

// Which dtypes an op kind accepts.
template <class T> constexpr bool kind_ALL = true;
template <class T> constexpr bool kind_ARITH = !std::is_same<T, bool>::value;
template <class T> constexpr bool kind_FLOAT = std::is_floating_point<T>::value;
template <class T> constexpr bool kind_BOOL = std::is_same<T, bool>::value;

}  // namespace vlmoe
