// Elementwise kernels: unary, predicates, binary, comparisons, where, fill, cast.
// Compiled once per instruction set (see kernels.h); the contiguous and scalar-broadcast
// loops below are written so the compiler vectorises them.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../threadpool.h"
#include "kernels.h"
#include "vec_math_avx2.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

namespace {

template <class F>
void run_rows(Iter& it, int64_t grain, F&& row) {
  it.coalesce();
  int64_t n = it.numel();
  parallel_for(n, grain, [&](int64_t b, int64_t e) { it.for_each_row(b, e, row); });
}

template <class Ti, class To, class F>
void unary_loop(Iter& it, F f) {
  run_rows(it, kElementwiseGrain, [&](char** p, int64_t n, const int64_t* s) {
    To* o = reinterpret_cast<To*>(p[0]);
    const Ti* a = reinterpret_cast<const Ti*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<To>(f(a[i]));
    } else if (s[0] == 1 && s[1] == 0) {
      const To v = static_cast<To>(f(a[0]));
      for (int64_t i = 0; i < n; ++i) o[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = static_cast<To>(f(a[i * s[1]]));
    }
  });
}

template <class T, class To, class F>
void binary_loop(Iter& it, F f) {
  run_rows(it, kElementwiseGrain, [&](char** p, int64_t n, const int64_t* s) {
    To* o = reinterpret_cast<To*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const T* b = reinterpret_cast<const T*>(p[2]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
      const T bv = b[0];
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
      const T av = a[0];
      for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(a[i * s[1]], b[i * s[2]]);
    }
  });
}

[[noreturn]] void bad_dtype(const char* op, DType t) {
  throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(t) + " is not supported");
}

template <class Ti, class To>
void cast_loop(Iter& it) {
  unary_loop<Ti, To>(it, [](Ti x) { return x; });
}

// Explicit 8-lane versions of the float32 transcendental ops (see vec_math_avx2.h); other
// ops and types use the auto-vectorised scalar loops above.
template <class Op>
struct Vec8 {
  static constexpr bool has = false;
};
#if defined(__AVX2__) && defined(__FMA__)
#define VLMOE_VEC8(name, fn)                                        \
  template <>                                                       \
  struct Vec8<opfn::name> {                                         \
    static constexpr bool has = true;                               \
    static __m256 apply(__m256 x) { return v8::fn(x); }             \
  };
VLMOE_VEC8(exp, exp)
VLMOE_VEC8(log, log)
VLMOE_VEC8(tanh, tanh)
VLMOE_VEC8(sigmoid, sigmoid)
VLMOE_VEC8(gelu, gelu)
VLMOE_VEC8(gelu_tanh, gelu_tanh)
#undef VLMOE_VEC8

template <class Op, class F>
void unary_vec8(Iter& it, F scalar) {
  run_rows(it, kElementwiseGrain / 4, [&](char** p, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(p[0]);
    const float* a = reinterpret_cast<const float*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, Vec8<Op>::apply(_mm256_loadu_ps(a + i)));
      for (; i < n; ++i) o[i] = scalar(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(a[i * s[1]]);
    }
  });
}

// g * gelu'(x), the hot backward of the transformer FFN.
void gelu_backward_vec8(Iter& it, const OpParams& p) {
  opfn::gelu_backward f;
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* g = reinterpret_cast<const float*>(ptr[1]);
    const float* x = reinterpret_cast<const float*>(ptr[2]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, v8::gelu_backward(_mm256_loadu_ps(g + i), _mm256_loadu_ps(x + i)));
      for (; i < n; ++i) o[i] = f(g[i], x[i], p);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(g[i * s[1]], x[i * s[2]], p);
    }
  });
}
#else
template <class Op, class F>
void unary_vec8(Iter&, F) {}  // never instantiated: Vec8<...>::has is false without AVX2
#endif

}  // namespace

void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) {
  if (op == UnaryOp::copy && in != out) {
    dispatch_dtype(in, [&](auto ti) {
      using Ti = decltype(ti);
      dispatch_dtype(out, [&](auto to) {
        using To = decltype(to);
        if constexpr (std::is_same<To, bool>::value) {
          unary_loop<Ti, bool>(it, [](Ti x) { return x != Ti(0); });
        } else {
          cast_loop<Ti, To>(it);
        }
      });
    });
    return;
  }
  if (in != out) throw std::invalid_argument("unary: input and output dtypes differ");
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                        \
  case UnaryOp::name:                                                       \
    dispatch_dtype(in, [&](auto tag) {                                      \
      using T = decltype(tag);                                              \
      if constexpr (kind_##kind<T>) {                                       \
        opfn::name f;                                                       \
        if constexpr (std::is_same<T, float>::value && Vec8<opfn::name>::has) \
          unary_vec8<opfn::name>(it, [&](T x) { return f(x, p); });         \
        else                                                                \
          unary_loop<T, T>(it, [&](T x) { return f(x, p); });               \
      } else {                                                              \
        bad_dtype(#name, in);                                               \
      }                                                                     \
    });                                                                     \
    return;
    VLMOE_UNARY_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("unary: unknown op code");
  }
}

void pred(PredOp op, DType in, Iter& it) {
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                        \
  case PredOp::name:                                                        \
    dispatch_dtype(in, [&](auto tag) {                                      \
      using T = decltype(tag);                                              \
      if constexpr (kind_##kind<T>) {                                       \
        opfn::name f;                                                       \
        unary_loop<T, bool>(it, [&](T x) { return f(x); });                 \
      } else {                                                              \
        bad_dtype(#name, in);                                               \
      }                                                                     \
    });                                                                     \
    return;
    VLMOE_PRED_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("pred: unknown op code");
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// gelu(x + bias) / gelu_tanh(x + bias): the add and the 8-lane GELU in one pass (the bias
// row is contiguous within each row of x).
template <bool Tanh>
void bias_gelu_vec8(Iter& it, const OpParams& p) {
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* x = reinterpret_cast<const float*>(ptr[1]);
    const float* b = reinterpret_cast<const float*>(ptr[2]);
    auto scalar = [&](float a, float c) { return Tanh ? opfn::bias_gelu_tanh{}(a, c, p) : opfn::bias_gelu{}(a, c, p); };
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        const __m256 z = _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(o + i, Tanh ? v8::gelu_tanh(z) : v8::gelu(z));
      }
      for (; i < n; ++i) o[i] = scalar(x[i], b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(x[i * s[1]], b[i * s[2]]);
    }
  });
}
#endif

void binary(BinaryOp op, DType t, Iter& it, const OpParams& p) {
#if defined(__AVX2__) && defined(__FMA__)
  if (op == BinaryOp::gelu_backward && t == DType::f32) return gelu_backward_vec8(it, p);
  if (op == BinaryOp::bias_gelu && t == DType::f32) return bias_gelu_vec8<false>(it, p);
  if (op == BinaryOp::bias_gelu_tanh && t == DType::f32) return bias_gelu_vec8<true>(it, p);
#endif
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                        \
  case BinaryOp::name:                                                      \
    dispatch_dtype(t, [&](auto tag) {                                       \
      using T = decltype(tag);                                              \
      if constexpr (kind_##kind<T>) {                                       \
        opfn::name f;                                                       \
        binary_loop<T, T>(it, [&](T a, T b) { return f(a, b, p); });        \
      } else {                                                              \
        bad_dtype(#name, t);                                                \
      }                                                                     \
    });                                                                     \
    return;
    VLMOE_BINARY_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("binary: unknown op code");
  }
}

void compare(CmpOp op, DType t, Iter& it) {
  switch (op) {
#define VLMOE_CASE(name, kind, expr)                                        \
  case CmpOp::name:                                                         \
    dispatch_dtype(t, [&](auto tag) {                                       \
      using T = decltype(tag);                                              \
      opfn::name f;                                                         \
      binary_loop<T, bool>(it, [&](T a, T b) { return f(a, b); });          \
    });                                                                     \
    return;
    VLMOE_CMP_OPS(VLMOE_CASE)
#undef VLMOE_CASE
    default: throw std::invalid_argument("compare: unknown op code");
  }
}

// Operands: out, cond (bool), a, b.
void where(DType t, Iter& it) {
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    run_rows(it, kElementwiseGrain, [&](char** p, int64_t n, const int64_t* s) {
      T* o = reinterpret_cast<T*>(p[0]);
      const bool* c = reinterpret_cast<const bool*>(p[1]);
      const T* a = reinterpret_cast<const T*>(p[2]);
      const T* b = reinterpret_cast<const T*>(p[3]);
      if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];
      }
    });
  });
}

void fill(DType t, void* dst, int64_t n, double value) {
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    T v = static_cast<T>(value);
    T* d = static_cast<T*>(dst);
    parallel_for(n, kElementwiseGrain * 4, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] = v;
    });
  });
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
