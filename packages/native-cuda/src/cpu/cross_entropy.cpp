// Fused cross entropy on the CPU (semantics in cross_entropy.h): one pass over a row for the
// max, one for Σ exp and Σ x (float64), and one for the backward's gradient row.
#include "cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "../threadpool.h"

namespace vlmoe {

namespace {

template <class F>
void with_target_type(DType it, F&& f) {
  if (it == DType::i64) f(int64_t{});
  else if (it == DType::i32) f(int32_t{});
  else throw std::invalid_argument(std::string("cross_entropy: targets must be int32 or int64, got ") + dtype_name(it));
}

template <class T, class I>
void forward_rows(const CrossEntropyArgs& a, const T* x, const I* tgt, T* loss, T* lse) {
  const int64_t C = a.C;
  const double eps = a.smoothing;
  parallel_for(a.N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, C)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * C;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < C; ++j) mx = double(xr[j]) > mx ? double(xr[j]) : mx;
      const double shift = std::isfinite(mx) ? mx : 0.0;
      double s = 0, sx = 0;
      for (int64_t j = 0; j < C; ++j) {
        s += std::exp(double(xr[j]) - shift);
        sx += double(xr[j]);
      }
      const double l = shift + std::log(s);
      lse[r] = T(l);
      const int64_t t = static_cast<int64_t>(tgt[r]);
      if (t == a.ignore_index) {
        loss[r] = T(0);
        continue;
      }
      double v = l - double(xr[t]);
      if (eps != 0) v = (1 - eps) * v + eps * (l - sx / double(C));
      loss[r] = T(v);
    }
  });
}

template <class T, class I>
void backward_rows(const CrossEntropyArgs& a, const T* x, const I* tgt, const T* lse, const T* g, T* dx) {
  const int64_t C = a.C;
  const double eps = a.smoothing, uni = C > 0 ? eps / double(C) : 0.0, hit = 1 - eps;
  parallel_for(a.N, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, C)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * C;
      T* dr = dx + r * C;
      const int64_t t = static_cast<int64_t>(tgt[r]);
      if (t == a.ignore_index) {
        std::fill(dr, dr + C, T(0));
        continue;
      }
      const double l = double(lse[r]), gr = double(g[r]);
      for (int64_t j = 0; j < C; ++j) dr[j] = T((std::exp(double(xr[j]) - l) - uni - (j == t ? hit : 0.0)) * gr);
    }
  });
}

}  // namespace

void cross_entropy_check_targets(const CrossEntropyArgs& a, const void* target) {
  with_target_type(a.target_dtype, [&](auto tag) {
    using I = decltype(tag);
    const I* tg = static_cast<const I*>(target);
    for (int64_t r = 0; r < a.N; ++r) {
      const int64_t t = static_cast<int64_t>(tg[r]);
      if (t != a.ignore_index && (t < 0 || t >= a.C))
        throw std::out_of_range("cross_entropy: target " + std::to_string(t) + " (row " + std::to_string(r) + ") is out of range for " + std::to_string(a.C) +
                                " classes (expected 0.." + std::to_string(a.C - 1) + " or ignore_index " + std::to_string(a.ignore_index) + ")");
    }
  });
}

void cross_entropy_forward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse) {
  dispatch_float_cpu(t, "cross_entropy", [&](auto ttag) {
    using T = decltype(ttag);
    cross_entropy_check_targets(a, target);
    with_target_type(a.target_dtype, [&](auto itag) {
      using I = decltype(itag);
      forward_rows<T, I>(a, static_cast<const T*>(logits), static_cast<const I*>(target), static_cast<T*>(loss), static_cast<T*>(lse));
    });
  });
}

void cross_entropy_backward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g, void* dlogits) {
  dispatch_float_cpu(t, "cross_entropy_backward", [&](auto ttag) {
    using T = decltype(ttag);
    cross_entropy_check_targets(a, target);
    with_target_type(a.target_dtype, [&](auto itag) {
      using I = decltype(itag);
      backward_rows<T, I>(a, static_cast<const T*>(logits), static_cast<const I*>(target), static_cast<const T*>(lse), static_cast<const T*>(g),
                          static_cast<T*>(dlogits));
    });
  });
}

}  // namespace vlmoe
