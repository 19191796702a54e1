// Reductions (sum, max, min, prod; max/min with indices) over any set of dims, and cumsum.
//
// The caller passes an Iter whose operand 0 is the output with stride 0 on every reduced
// dim, operand 1 the input, and optionally operand 2 an int64 index output (max/min over a
// single dim). After coalescing, dims split into a kept space K and a reduced space R.
// Two loop orders:
//  * inner reduction (the innermost dim is reduced): per output, run along rows of R;
//  * outer reduction (the innermost dim is kept): per chunk of outputs, add whole rows of
//    K into an accumulator, so the input is read once, in order.
// float32 sums accumulate in float64 (contiguous rows: 16 float32 addends per lane first).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "../threadpool.h"
#include "kernels.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

namespace {

struct Space {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t s_in[kMaxDims];
  int64_t s_out[kMaxDims];
  int64_t s_idx[kMaxDims];
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) n *= shape[d];
    return n;
  }
  // Offsets of linear index i.
  void offsets(int64_t i, int64_t& in, int64_t& out, int64_t& idx) const {
    in = out = idx = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t c = i % shape[d];
      i /= shape[d];
      in += c * s_in[d];
      out += c * s_out[d];
      idx += c * s_idx[d];
    }
  }
};

template <class T>
using acc_t = typename std::conditional<std::is_floating_point<T>::value, double, int64_t>::type;

// op 0 sum, 3 prod: plain accumulation.
template <class T, bool Prod>
struct SumLike {
  using A = acc_t<T>;
  static A init() { return Prod ? A(1) : A(0); }
  static A combine(A a, A b) { return Prod ? a * b : a + b; }
  // 16 independent partial sums (two 512-bit or four 256-bit vectors of doubles): with 8,
  // the latency of one vector add chain, not memory, bounded a float32 sum. Scalar code
  // the compiler vectorises without reordering, so every kernel set gives the same bits.
  static A widened_sum(const T* x, int64_t n) {
    A acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += A(x[i + j]);
    for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
    A r = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) r += A(x[i]);
    return r;
  }
  // float32 rows: 64 float lanes, each adding 16 consecutive blocks' elements in float32,
  // then widened into 64 double lanes. The float32 part of the error is at most 15 units of
  // rounding of one lane's 16 magnitudes (PyTorch's float32 cascade sum: ~log2(n) units of
  // the whole sum), and it is exact whenever 16 addends fit the float mantissa. Widening every
  // element cost a conversion per 8 floats and kept one core at ~40 GB/s; widening once per
  // 16 runs at ~57 GB/s, within 5 % of a pure float32 sum (measured). Each lane is
  // independent scalar code, so every kernel set still gives the same bits.
  static constexpr int64_t kLanes = 64, kRows = 16, kBlock = kLanes * kRows;
  static A blocked_float_sum(const T* x, int64_t n) {
    double acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
      float f[kLanes] = {};
      for (int64_t b = 0; b < kRows; ++b)
        for (int64_t j = 0; j < kLanes; ++j) f[j] += x[i + b * kLanes + j];
      for (int64_t j = 0; j < kLanes; ++j) acc[j] += double(f[j]);
    }
    for (int64_t j = 0; j < 32; ++j) acc[j] += acc[j + 32];
    for (int64_t j = 0; j < 16; ++j) acc[j] += acc[j + 16];
    for (int64_t j = 0; j < 8; ++j) acc[j] += acc[j + 8];
    double r = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    return r + widened_sum(x + i, n - i);
  }
  // Reduce n elements with stride s.
  static A row(const T* x, int64_t n, int64_t s) {
    if constexpr (!Prod && std::is_same<T, float>::value) {
      if (s == 1 && n >= kBlock) return blocked_float_sum(x, n);
    }
    if (!Prod && s == 1) return widened_sum(x, n);
    A r = init();
    for (int64_t i = 0; i < n; ++i) r = combine(r, A(x[i * s]));
    return r;
  }
};

// Max (Min = false) / min with first index; NaN propagates and wins.
template <class T, bool Max>
struct Extreme {
  struct A {
    T v;
    int64_t i;
  };
  static A init() {
    if constexpr (std::is_floating_point<T>::value)
      return {Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity(), -1};
    else
      return {Max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max(), -1};
  }
  static bool better(T x, T v) {
    if constexpr (std::is_floating_point<T>::value)
      if (x != x) return v == v;
    return Max ? x > v : x < v;
  }
};

template <class T, bool Prod>
void reduce_sum(Iter& it, const Space& K, const Space& R) {
  using S = SumLike<T, Prod>;
  using A = typename S::A;
  char* outb = it.base[0];
  const T* in = reinterpret_cast<const T*>(it.base[1]);
  T* out = reinterpret_cast<T*>(outb);
  const int64_t nK = K.numel(), nR = R.numel();
  const bool inner = R.nd > 0 && (K.nd == 0 || R.s_in[R.nd - 1] < K.s_in[K.nd - 1]);
  const int nt = num_threads();
  auto reduce_R_range = [&](const T* base, int64_t rb, int64_t re) -> A {
    // rows along R's last dim
    A acc = S::init();
    const int last = R.nd - 1;
    const int64_t len = R.shape[last], s = R.s_in[last];
    int64_t r = rb;
    while (r < re) {
      int64_t in_off, o, ix;
      R.offsets(r, in_off, o, ix);
      int64_t c = r % len;
      int64_t n = std::min(len - c, re - r);
      acc = S::combine(acc, S::row(base + in_off, n, s));
      r += n;
    }
    return acc;
  };
  if (nR == 0) {
    for (int64_t k = 0; k < nK; ++k) {
      int64_t a, o, x;
      K.offsets(k, a, o, x);
      out[o] = T(S::init());
    }
    return;
  }
  if (inner) {
    if (nK >= nt || nR < kElementwiseGrain) {
      parallel_for(nK, std::max<int64_t>(1, kElementwiseGrain / nR), [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) {
          int64_t a, o, x;
          K.offsets(k, a, o, x);
          out[o] = T(reduce_R_range(in + a, 0, nR));
        }
      });
    } else {
      // Few outputs, long reductions: split R into one chunk per thread, combine in order.
      const int64_t chunks = nt;
      std::vector<A> part(static_cast<size_t>(nK * chunks), S::init());
      const int64_t csize = (nR + chunks - 1) / chunks;
      parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          int64_t rb = c * csize, re = std::min(nR, rb + csize);
          for (int64_t k = 0; k < nK; ++k) {
            int64_t a, o, x;
            K.offsets(k, a, o, x);
            if (rb < re) part[k * chunks + c] = reduce_R_range(in + a, rb, re);
          }
        }
      });
      for (int64_t k = 0; k < nK; ++k) {
        int64_t a, o, x;
        K.offsets(k, a, o, x);
        A acc = S::init();
        for (int64_t c = 0; c < chunks; ++c) acc = S::combine(acc, part[k * chunks + c]);
        out[o] = T(acc);
      }
    }
    return;
  }
  // Outer reduction: K's innermost dim is the fastest; accumulate rows.
  const int lastK = K.nd - 1;
  const int64_t rowlen = K.shape[lastK];
  const int64_t sin_k = K.s_in[lastK], sout_k = K.s_out[lastK];
  const int64_t nrows = nK / rowlen;
  // Parallelise over column blocks of each K-row (and over K-rows).
  const int64_t colblock = 256;
  const int64_t nblk = (rowlen + colblock - 1) / colblock;
  parallel_for(nrows * nblk, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, nR * colblock)),
               [&](int64_t b, int64_t e) {
                 A acc[colblock];
                 for (int64_t t = b; t < e; ++t) {
                   int64_t row = t / nblk, blk = t % nblk;
                   int64_t c0 = blk * colblock, c1 = std::min(rowlen, c0 + colblock);
                   int64_t a, o, x;
                   K.offsets(row * rowlen + c0, a, o, x);
                   const int64_t w = c1 - c0;
                   for (int64_t j = 0; j < w; ++j) acc[j] = S::init();
                   for (int64_t r = 0; r < nR; ++r) {
                     int64_t ri, ro, rx;
                     R.offsets(r, ri, ro, rx);
                     const T* src = in + a + ri;
                     if (sin_k == 1) {
                       for (int64_t j = 0; j < w; ++j) acc[j] = S::combine(acc[j], A(src[j]));
                     } else {
                       for (int64_t j = 0; j < w; ++j) acc[j] = S::combine(acc[j], A(src[j * sin_k]));
                     }
                   }
                   for (int64_t j = 0; j < w; ++j) out[o + j * sout_k] = T(acc[j]);
                 }
               });
}

template <class T, bool Max>
void reduce_extreme(Iter& it, const Space& K, const Space& R, int64_t* idx_out) {
  using E = Extreme<T, Max>;
  using A = typename E::A;
  const T* in = reinterpret_cast<const T*>(it.base[1]);
  T* out = reinterpret_cast<T*>(it.base[0]);
  const int64_t nK = K.numel(), nR = R.numel();
  if (nR == 0) throw std::invalid_argument(Max ? "max: cannot reduce over an empty dimension" : "min: cannot reduce over an empty dimension");
  auto run = [&](int64_t a, int64_t o, int64_t xo) {
    A best = E::init();
    for (int64_t r = 0; r < nR; ++r) {
      int64_t ri, ro, rx;
      R.offsets(r, ri, ro, rx);
      T v = in[a + ri];
      if (best.i < 0 || E::better(v, best.v)) best = {v, r};
    }
    out[o] = best.v;
    if (idx_out) idx_out[xo] = best.i;
  };
  parallel_for(nK, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, nR)), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      int64_t a, o, xo;
      K.offsets(k, a, o, xo);
      run(a, o, xo);
    }
  });
}

}  // namespace

void reduce(int op, DType t, Iter& it, const bool* /*reduced*/, bool with_index, int64_t* index_out,
            const int64_t* /*index_stride*/) {
  // Split dims into kept (output stride != 0) and reduced (output stride 0, size > 1).
  // Operand 2, when present, is the index output with the same strides as the output.
  it.coalesce();
  Space K, R;
  for (int d = 0; d < it.ndim; ++d) {
    Space& S = it.stride[0][d] == 0 ? R : K;
    S.shape[S.nd] = it.shape[d];
    S.s_in[S.nd] = it.stride[1][d];
    S.s_out[S.nd] = it.stride[0][d];
    S.s_idx[S.nd] = with_index ? it.stride[2][d] : 0;
    ++S.nd;
  }
  if (R.nd == 0) {  // nothing of size > 1 is reduced: one-element reductions
    R.shape[0] = 1;
    R.s_in[0] = R.s_out[0] = R.s_idx[0] = 0;
    R.nd = 1;
  }
  int64_t* idx = with_index ? reinterpret_cast<int64_t*>(it.base[2]) : nullptr;
  (void)index_out;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, bool>::value) {
      throw std::invalid_argument("reduce: bool tensors must be cast before reducing");
    } else {
      switch (op) {
        case 0: reduce_sum<T, false>(it, K, R); break;
        case 3: reduce_sum<T, true>(it, K, R); break;
        case 1: reduce_extreme<T, true>(it, K, R, idx); break;
        case 2: reduce_extreme<T, false>(it, K, R, idx); break;
        default: throw std::invalid_argument("reduce: unknown op");
      }
    }
  });
}

// Operands: out, in, over the index space without the scanned dim.
void cumsum(DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride) {
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, bool>::value) {
      throw std::invalid_argument("cumsum: bool tensors must be cast first");
    } else {
      using A = acc_t<T>;
      it.coalesce();
      const int64_t n = it.numel();
      parallel_for(n, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, len)), [&](int64_t b, int64_t e) {
        it.for_each_row(b, e, [&](char** p, int64_t cnt, const int64_t* s) {
          for (int64_t j = 0; j < cnt; ++j) {
            T* o = reinterpret_cast<T*>(p[0]) + j * s[0];
            const T* x = reinterpret_cast<const T*>(p[1]) + j * s[1];
            A acc = 0;
            for (int64_t i = 0; i < len; ++i) {
              acc += A(x[i * in_stride]);
              o[i * out_stride] = T(acc);
            }
          }
        });
      });
    }
  });
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
