// Elementwise kernels: unary, predicates, binary, comparisons, where, fill, cast.
// Compiled once per instruction set (see kernels.h); the contiguous and scalar-broadcast
// loops below are written so the compiler vectorises them.
#include <cstdint>
#include <cstdlib>
#include <cstring>
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
  parallel_for(n, grain, [&](int64_t b, int64_t e) { it.for_each_row(b, e, row); }, 64);
}

// Outputs of at least this many bytes are written with non-temporal stores by the SIMD loops
// below: they do not fit the last-level cache anyway, and a normal store first reads every
// line it writes (a third more memory traffic for a unary op, a quarter for a binary one).
// VLMOE_STREAM_STORES=0 turns it off.
constexpr int64_t kStreamBytes = int64_t(16) << 20;
bool stream_stores_allowed() {
  static const bool on = [] {
    const char* s = std::getenv("VLMOE_STREAM_STORES");
    return !(s && std::string(s) == "0");
  }();
  return on;
}
bool stream_output(const Iter& it, int elsize) { return stream_stores_allowed() && it.numel() * elsize >= kStreamBytes; }

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

// The contiguous SIMD loop of an elementwise kernel: out[i] = vec(i) for whole vectors from
// the row's start, the rest scalar(i). Streamed (non-temporal) when `stream` and the row
// starts on a vector boundary; either way the same values go to the same elements.
template <class Vec, class Scalar>
inline void vec_row(float* o, int64_t n, bool stream, Vec vec, Scalar scalar) {
  int64_t i = 0;
  if (stream && reinterpret_cast<uintptr_t>(o) % sizeof(VWide) == 0) {
    for (; i + kW <= n; i += kW) vec(i).stream(o + i);
    _mm_sfence();
  } else {
    for (; i + kW <= n; i += kW) vec(i).store(o + i);
  }
  for (; i < n; ++i) o[i] = scalar(i);
}

template <class Op, class F>
void unary_vec(Iter& it, F scalar) {
  const bool stream = stream_output(it, 4);
  run_rows(it, kElementwiseGrain / 4, [&](char** p, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(p[0]);
    const float* a = reinterpret_cast<const float*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      vec_row(o, n, stream, [&](int64_t i) { return VecOp<Op>::apply(VWide::load(a + i)); }, [&](int64_t i) { return scalar(a[i]); });
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(a[i * s[1]]);
    }
  });
}

// g * gelu'(x), the hot backward of the transformer FFN.
void gelu_backward_vec(Iter& it, const OpParams& p) {
  opfn::gelu_backward f;
  const bool stream = stream_output(it, 4);
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* g = reinterpret_cast<const float*>(ptr[1]);
    const float* x = reinterpret_cast<const float*>(ptr[2]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      vec_row(o, n, stream, [&](int64_t i) { return vec::gelu_backward(VWide::load(g + i), VWide::load(x + i)); }, [&](int64_t i) { return f(g[i], x[i], p); });
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(g[i * s[1]], x[i * s[2]], p);
    }
  });
}

// gelu(x + bias) / gelu_tanh(x + bias): the add and the SIMD GELU in one pass (the bias row is
// contiguous within each row of x).
template <bool Tanh>
void bias_gelu_vec(Iter& it, const OpParams& p) {
  const bool stream = stream_output(it, 4);
  run_rows(it, kElementwiseGrain / 4, [&](char** ptr, int64_t n, const int64_t* s) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* x = reinterpret_cast<const float*>(ptr[1]);
    const float* b = reinterpret_cast<const float*>(ptr[2]);
    auto scalar = [&](float a, float c) { return Tanh ? opfn::bias_gelu_tanh{}(a, c, p) : opfn::bias_gelu{}(a, c, p); };
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      vec_row(o, n, stream, [&](int64_t i) {
        const VWide z = VWide::load(x + i) + VWide::load(b + i);
        return Tanh ? vec::gelu_tanh(z) : vec::gelu(z);
      }, [&](int64_t i) { return scalar(x[i], b[i]); });
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = scalar(x[i * s[1]], b[i * s[2]]);
    }
  });
}
// float32 a + b, a − b, a · b, a / b into a large output, streamed: contiguous operands or
// one of them a broadcast scalar (the cases the auto-vectorised binary_loop handles fastest).
// Returns false, doing nothing, when the output is small or the layout is another one.
template <class Op>
bool arith_streamed(Iter& it, Op op) {
  if (!stream_output(it, 4)) return false;
  it.coalesce();
  if (it.ndim != 1 || it.stride[0][0] != 1) return false;
  const int64_t sa = it.stride[1][0], sb = it.stride[2][0];
  if (!((sa == 1 || sa == 0) && (sb == 1 || sb == 0))) return false;
  run_rows(it, kElementwiseGrain, [&](char** ptr, int64_t n, const int64_t*) {
    float* o = reinterpret_cast<float*>(ptr[0]);
    const float* a = reinterpret_cast<const float*>(ptr[1]);
    const float* b = reinterpret_cast<const float*>(ptr[2]);
    const VWide va = VWide::set1(a[0]), vb = VWide::set1(b[0]);
    vec_row(o, n, true, [&](int64_t i) { return op(sa ? VWide::load(a + i) : va, sb ? VWide::load(b + i) : vb); },
            [&](int64_t i) { return op(a[sa * i], b[sb * i]); });
  });
  return true;
}
#else
template <class Op, class F>
void unary_vec(Iter&, F) {}  // never instantiated: VecOp<...>::has is false without AVX2
#endif

// A same-dtype copy (contiguous() of a permuted or sliced view, clone): a memcpy per
// contiguous row. The auto-vectorised element loop measured 8x slower on the row pattern of a
// head split ([B, L, 3, H, Dh] -> [3, B, H, L, Dh]: rows of Dh floats read 3·H·Dh apart):
// 7.8 -> 0.9 ms for B 32, L 89, H 6, Dh 32 on one thread.
template <class W>
void copy_strided(char* o, const char* a, int64_t n, int64_t so, int64_t sa) {
  W* out = reinterpret_cast<W*>(o);
  const W* in = reinterpret_cast<const W*>(a);
  for (int64_t i = 0; i < n; ++i) out[i * so] = in[i * sa];
}

void copy_rows(Iter& it, size_t es) {
  run_rows(it, kElementwiseGrain, [&](char** ptr, int64_t n, const int64_t* s) {
    if (s[0] == 1 && s[1] == 1) {
      std::memcpy(ptr[0], ptr[1], es * static_cast<size_t>(n));
      return;
    }
    switch (es) {
      case 1: copy_strided<uint8_t>(ptr[0], ptr[1], n, s[0], s[1]); break;
      case 2: copy_strided<uint16_t>(ptr[0], ptr[1], n, s[0], s[1]); break;
      case 4: copy_strided<uint32_t>(ptr[0], ptr[1], n, s[0], s[1]); break;
      case 8: copy_strided<uint64_t>(ptr[0], ptr[1], n, s[0], s[1]); break;
      default:
        for (int64_t i = 0; i < n; ++i) std::memcpy(ptr[0] + i * s[0] * es, ptr[1] + i * s[1] * es, es);
    }
  });
}

}  // namespace

void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) {
  if (op == UnaryOp::copy && in == out) {
    copy_rows(it, dtype_size(in));
    return;
  }
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
  if (t == DType::f32) {
    const auto add = [](auto a, auto b) { return a + b; };
    const auto sub = [](auto a, auto b) { return a - b; };
    const auto mul = [](auto a, auto b) { return a * b; };
    const auto div = [](auto a, auto b) { return a / b; };
    if (op == BinaryOp::add && arith_streamed(it, add)) return;
    if (op == BinaryOp::sub && arith_streamed(it, sub)) return;
    if (op == BinaryOp::mul && arith_streamed(it, mul)) return;
    if (op == BinaryOp::div && arith_streamed(it, div)) return;
  }
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
