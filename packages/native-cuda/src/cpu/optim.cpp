// Fused multi-tensor optimiser kernels; see optim.h.
//
// Every loop below is a plain elementwise loop over restrict pointers with the options as
// template parameters (no per-element branches or function pointers), so the compiler
// vectorises it. Work is split over the concatenation of all tensors of the call.
#include "optim.h"


#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../storage.h"
#include "../threadpool.h"

namespace vlmoe {

namespace {

// Calls fn(segment, lo, hi) for the pieces of [0, total) (total = sum of n) that each
// parallel_for chunk covers; a chunk may span several segments.
template <class Seg, class F>
void for_each_piece(const Seg* segs, int64_t count, F&& fn) {
  std::vector<int64_t> start(static_cast<size_t>(count) + 1, 0);
  for (int64_t k = 0; k < count; ++k) start[k + 1] = start[k] + segs[k].n;
  const int64_t total = start[count];
  if (total == 0) return;
  parallel_for(total, kElementwiseGrain, [&](int64_t b, int64_t e) {
    int64_t k = (std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
    while (b < e && k < count) {
      const int64_t lo = b - start[k];
      const int64_t hi = std::min(e, start[k + 1]) - start[k];
      if (hi > lo) fn(segs[k], lo, hi);
      b = start[k] + hi;
      ++k;
    }
  });
}

// ---- Adam / AdamW ---------------------------------------------------------------------

template <class T>
struct AdamConsts {
  T sign, wd, decay, b1, a1, b2, a2, eps, bc2_sqrt, step_size_neg;
};

template <class T, bool L2, bool DECOUPLED, bool AMS>
void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax, int64_t n,
               const AdamConsts<T> c) {
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i] * c.sign;  // maximize: -grad (exact)
    T pi = p[i];
    if (L2) gi = gi + c.wd * pi;          // Adam: grad.add(param, alpha=wd)
    if (DECOUPLED) pi = pi * c.decay;     // AdamW: param.mul_(1 - lr*wd)
    T mi = m[i] * c.b1;                   // exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
    mi = mi + c.a1 * gi;
    T vi = v[i] * c.b2;                   // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
    vi = vi + c.a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T src = vi;
    if (AMS) {
      T mx = vmax[i];
      mx = (mx > vi || mx != mx) ? mx : vi;  // torch.maximum (NaN propagates)
      vmax[i] = mx;
      src = mx;
    }
    const T denom = std::sqrt(src) / c.bc2_sqrt + c.eps;  // (sqrt(v) / sqrt(bc2)).add_(eps)
    p[i] = pi + c.step_size_neg * (mi / denom);          // param.addcdiv_(exp_avg, denom, value=-step_size)
  }
}

template <class T>
void adam_typed(const AdamHyper& h, const AdamSegment* segs, int64_t count) {
  const bool l2 = !h.decoupled && h.weight_decay != 0;
  for_each_piece(segs, count, [&](const AdamSegment& s, int64_t lo, int64_t hi) {
    AdamConsts<T> c;
    const double bc1 = 1.0 - std::pow(h.beta1, s.step);
    const double bc2 = 1.0 - std::pow(h.beta2, s.step);
    c.sign = h.maximize ? T(-1) : T(1);
    c.wd = T(h.weight_decay);
    c.decay = T(1.0 - h.lr * h.weight_decay);
    c.b1 = T(h.beta1);
    c.a1 = T(1.0 - h.beta1);
    c.b2 = T(h.beta2);
    c.a2 = T(1.0 - h.beta2);
    c.eps = T(h.eps);
    c.bc2_sqrt = T(std::sqrt(bc2));
    c.step_size_neg = T(-(h.lr / bc1));
    T* p = static_cast<T*>(s.p) + lo;
    const T* g = static_cast<const T*>(s.g) + lo;
    T* m = static_cast<T*>(s.m) + lo;
    T* v = static_cast<T*>(s.v) + lo;
    T* vm = h.amsgrad ? static_cast<T*>(s.vmax) + lo : nullptr;
    const int64_t n = hi - lo;
    if (h.decoupled) {
      if (h.amsgrad) adam_loop<T, false, true, true>(p, g, m, v, vm, n, c);
      else adam_loop<T, false, true, false>(p, g, m, v, vm, n, c);
    } else if (l2) {
      if (h.amsgrad) adam_loop<T, true, false, true>(p, g, m, v, vm, n, c);
      else adam_loop<T, true, false, false>(p, g, m, v, vm, n, c);
    } else {
      if (h.amsgrad) adam_loop<T, false, false, true>(p, g, m, v, vm, n, c);
      else adam_loop<T, false, false, false>(p, g, m, v, vm, n, c);
    }
  });
}

// ---- SGD --------------------------------------------------------------------------------

template <class T>
struct SgdConsts {
  T sign, wd, mom, a, neg_lr;
};

template <class T, bool WD, bool MOM, bool INIT, bool NESTEROV>
void sgd_loop(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n, const SgdConsts<T> c) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] * c.sign;
    if (WD) d = d + c.wd * p[i];  // d_p.add(param, alpha=wd)
    if (MOM) {
      T b;
      if (INIT) b = d;            // buf = clone(d_p) on the first step
      else {
        b = buf[i] * c.mom;       // buf.mul_(momentum).add_(d_p, alpha=1-dampening)
        b = b + c.a * d;
      }
      buf[i] = b;
      if (NESTEROV) d = d + c.mom * b;  // d_p.add(buf, alpha=momentum)
      else d = b;
    }
    p[i] = p[i] + c.neg_lr * d;   // param.add_(d_p, alpha=-lr)
  }
}

template <class T, bool WD>
void sgd_dispatch(const SgdHyper& h, const SgdSegment& s, T* p, const T* g, T* buf, int64_t n, const SgdConsts<T>& c) {
  if (h.momentum == 0) return sgd_loop<T, WD, false, false, false>(p, g, buf, n, c);
  if (s.init) {
    if (h.nesterov) sgd_loop<T, WD, true, true, true>(p, g, buf, n, c);
    else sgd_loop<T, WD, true, true, false>(p, g, buf, n, c);
  } else {
    if (h.nesterov) sgd_loop<T, WD, true, false, true>(p, g, buf, n, c);
    else sgd_loop<T, WD, true, false, false>(p, g, buf, n, c);
  }
}

template <class T>
void sgd_typed(const SgdHyper& h, const SgdSegment* segs, int64_t count) {
  SgdConsts<T> c;
  c.sign = h.maximize ? T(-1) : T(1);
  c.wd = T(h.weight_decay);
  c.mom = T(h.momentum);
  c.a = T(1.0 - h.dampening);
  c.neg_lr = T(-h.lr);
  for_each_piece(segs, count, [&](const SgdSegment& s, int64_t lo, int64_t hi) {
    T* p = static_cast<T*>(s.p) + lo;
    const T* g = static_cast<const T*>(s.g) + lo;
    T* buf = s.buf ? static_cast<T*>(s.buf) + lo : nullptr;
    if (h.weight_decay != 0) sgd_dispatch<T, true>(h, s, p, g, buf, hi - lo, c);
    else sgd_dispatch<T, false>(h, s, p, g, buf, hi - lo, c);
  });
}

// ---- norms and scaling ----------------------------------------------------------------------

constexpr int64_t kNormBlock = 1 << 15;
constexpr int kLanes = 8;

template <class T>
double sum_squares(const T* __restrict x, int64_t n) {
  double a[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double y = double(x[i + j]);
      a[j] += y * y;
    }
  for (; i < n; ++i) {
    const double y = double(x[i]);
    a[0] += y * y;
  }
  double s = 0;
  for (int j = 0; j < kLanes; ++j) s += a[j];
  return s;
}

inline double nan_max(double m, double y) { return (y > m || y != y) ? y : m; }

template <class T>
double max_abs(const T* __restrict x, int64_t n) {
  double a[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) a[j] = nan_max(a[j], std::fabs(double(x[i + j])));
  for (; i < n; ++i) a[0] = nan_max(a[0], std::fabs(double(x[i])));
  double m = 0;
  for (int j = 0; j < kLanes; ++j) m = nan_max(m, a[j]);
  return m;
}

template <class T>
double sum_pow(const T* __restrict x, int64_t n, double p) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::pow(std::fabs(double(x[i])), p);
  return s;
}

template <class T>
double norm_typed(int kind, double p, const PlainSegment* segs, int64_t count) {
  std::vector<int64_t> start(static_cast<size_t>(count) + 1, 0);
  for (int64_t k = 0; k < count; ++k) start[k + 1] = start[k] + segs[k].n;
  const int64_t total = start[count];
  if (total == 0) return 0;
  const int64_t nblocks = (total + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
  parallel_for(nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      int64_t b = blk * kNormBlock;
      const int64_t e = std::min(total, b + kNormBlock);
      int64_t k = (std::upper_bound(start.begin(), start.end(), b) - start.begin()) - 1;
      double acc = 0;
      while (b < e && k < count) {
        const int64_t lo = b - start[k];
        const int64_t hi = std::min(e, start[k + 1]) - start[k];
        if (hi > lo) {
          const T* x = static_cast<const T*>(segs[k].x) + lo;
          if (kind == 0) acc += sum_squares(x, hi - lo);
          else if (kind == 1) acc = nan_max(acc, max_abs(x, hi - lo));
          else acc += sum_pow(x, hi - lo, p);
        }
        b = start[k] + hi;
        ++k;
      }
      partial[static_cast<size_t>(blk)] = acc;
    }
  });
  double r = 0;
  for (double v : partial) r = kind == 1 ? nan_max(r, v) : r + v;
  return r;
}

template <class T>
void scale_typed(double scale, const PlainSegment* segs, int64_t count) {
  const T s = T(scale);
  for_each_piece(segs, count, [&](const PlainSegment& seg, int64_t lo, int64_t hi) {
    T* __restrict x = static_cast<T*>(seg.x) + lo;
    const int64_t n = hi - lo;
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] * s;
  });
}

[[noreturn]] void bad_dtype(const char* op, DType t) {
  throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(t) + " is not supported (use float32 or float64)");
}


}  // namespace

void adam_step(DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count) {
  if (t == DType::f32) adam_typed<float>(h, segs, count);
  else if (t == DType::f64) adam_typed<double>(h, segs, count);
  else bad_dtype("adamStep", t);
}

void sgd_step(DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count) {
  if (t == DType::f32) sgd_typed<float>(h, segs, count);
  else if (t == DType::f64) sgd_typed<double>(h, segs, count);
  else bad_dtype("sgdStep", t);
}

double multi_tensor_norm(DType t, int kind, double p, const PlainSegment* segs, int64_t count) {
  if (t == DType::f32) return norm_typed<float>(kind, p, segs, count);
  if (t == DType::f64) return norm_typed<double>(kind, p, segs, count);
  bad_dtype("multiTensorNorm", t);
}

void multi_tensor_scale(DType t, double scale, const PlainSegment* segs, int64_t count) {
  if (t == DType::f32) scale_typed<float>(scale, segs, count);
  else if (t == DType::f64) scale_typed<double>(scale, segs, count);
  else bad_dtype("multiTensorScale", t);
}

}  // namespace vlmoe
