// Elementwise kernels: unary, predicates, binary, comparisons, where, fill, cast.
// Compiled once per instruction set (see kernels.h); the contiguous and scalar-broadcast
// loops below are written so the compiler vectorises them.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../threadpool.h"
#include "kernels.h"
#include "vec_math.h"

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

// Explicit SIMD versions of the float32 transcendental ops at the kernel set's widest vector
// (vec_math.h: 16 lanes with AVX-512, 8 with AVX2); other ops and types use the
// auto-vectorised scalar loops above.
template <class Op>
struct VecOp {
  static constexpr bool has = false;
};
#if defined(VLMOE_HAVE_V8)
using vec::VWide;
constexpr int kW = VWide::kLanes;
#define VLMOE_VECOP(name, fn)                                     \
  template <>                                                     \
  struct VecOp<opfn::name> {                                      \
    static constexpr bool has = true;                             \
    static VWide apply(VWide x) { return vec::fn(x); }            \
  };
VLMOE_VECOP(exp, exp)
VLMOE_VECOP(log, log)
VLMOE_VECOP(tanh, tanh)
VLMOE_VECOP(sigmoid, sigmoid)
VLMOE_VECOP(gelu, gelu)
VLMOE_VECOP(gelu_tanh, gelu_tanh)
#undef VLMOE_VECOP

template <class Op, class F>
void unary_vec(Iter& it, F scalar) {
  run_rows(it, kElementwiseGrain / 4, [&](char** p, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(p[0]);
    const float* a = reinterpret_cast<const float*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      int64_t i = 0;
      for (; i + kW <= n; i += kW) VecOp<Op>::apply(VWide::load(a + i)).store(o + i);
      for (; i < n; ++i) o[i] = scalar(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(a[i * s[1]]);
    }
  });
}

// g * gelu'(x), the hot backward of the transformer FFN.
void gelu_backward_vec(Iter& it, const OpParams& p) {
  opfn::gelu_backward f;
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* g = reinterpret_cast<const float*>(ptr[1]);
    const float* x = reinterpret_cast<const float*>(ptr[2]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      int64_t i = 0;
      for (; i + kW <= n; i += kW) vec::gelu_backward(VWide::load(g + i), VWide::load(x + i)).store(o + i);
      for (; i < n; ++i) o[i] = f(g[i], x[i], p);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(g[i * s[1]], x[i * s[2]], p);
    }
  });
}

// gelu(x + bias) / gelu_tanh(x + bias): the add and the SIMD GELU in one pass (the bias row is
// contiguous within each row of x).
template <bool Tanh>
void bias_gelu_vec(Iter& it, const OpParams& p) {
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* x = reinterpret_cast<const float*>(ptr[1]);
    const float* b = reinterpret_cast<const float*>(ptr[2]);
    auto scalar = [&](float a, float c) { return Tanh ? opfn::bias_gelu_tanh{}(a, c, p) : opfn::bias_gelu{}(a, c, p); };
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      int64_t i = 0;
      for (; i + kW <= n; i += kW) {
        const VWide z = VWide::load(x + i) + VWide::load(b + i);
        (Tanh ? vec::gelu_tanh(z) : vec::gelu(z)).store(o + i);
      }
      for (; i < n; ++i) o[i] = scalar(x[i], b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(x[i * s[1]], b[i * s[2]]);
    }
  });
}
#else
template <class Op, class F>
void unary_vec(Iter&, F) {}  // never instantiated: VecOp<...>::has is false without AVX2
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
        if constexpr (std::is_same<T, float>::value && VecOp<opfn::name>::has) \
          unary_vec<opfn::name>(it, [&](T x) { return f(x, p); });         \
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

void binary(BinaryOp op, DType t, Iter& it, const OpParams& p) {
#if defined(VLMOE_HAVE_V8)
  if (op == BinaryOp::gelu_backward && t == DType::f32) return gelu_backward_vec(it, p);
  if (op == BinaryOp::bias_gelu && t == DType::f32) return bias_gelu_vec<false>(it, p);
  if (op == BinaryOp::bias_gelu_tanh && t == DType::f32) return bias_gelu_vec<true>(it, p);
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
