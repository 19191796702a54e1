// Fused MoE gating on the CPU (semantics in moe_gate.h): the reference of the CUDA kernels.
// Rows run on the thread pool; sums run in float64; the combine weights are rounded in the
// gates' dtype step by step as route.ts's composed ops round them.
#include "moe_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../threadpool.h"

namespace vlmoe {

namespace {

int64_t row_grain(int64_t E) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, E)); }

template <class T>
void gate_rows(const MoeGateArgs& a, const T* x, T* gates, int64_t* index, double* topval, T* lse) {
  const int64_t E = a.E, k = a.k;
  parallel_for(a.S, row_grain(E), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * E;
      T* gr = gates + r * E;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < E; ++j) mx = double(xr[j]) > mx ? double(xr[j]) : mx;
      const double shift = std::isfinite(mx) ? mx : 0.0;
      double s = 0;
      for (int64_t j = 0; j < E; ++j) s += std::exp(double(xr[j]) - shift);
      const double l = shift + std::log(s);
      if (lse) lse[r] = T(l);
      for (int64_t j = 0; j < E; ++j) gr[j] = T(std::exp(double(xr[j]) - shift) / s);
      // top-k of the logits by insertion (k ≤ 8): strictly larger moves up, so ties keep
      // the lower expert index first
      int64_t idx[kMoeGateMaxK];
      T val[kMoeGateMaxK];
      int64_t n = 0;
      for (int64_t j = 0; j < E; ++j) {
        const T v = xr[j];
        if (n == k && !(v > val[k - 1])) continue;
        int64_t p = n < k ? n++ : k - 1;
        while (p > 0 && v > val[p - 1]) {
          val[p] = val[p - 1];
          idx[p] = idx[p - 1];
          --p;
        }
        val[p] = v;
        idx[p] = j;
      }
      for (int64_t q = n; q < k; ++q) idx[q] = q;  // NaN rows: any distinct experts
      for (int64_t q = 0; q < k; ++q) {
        index[r * k + q] = idx[q];
        if (topval) topval[r * k + q] = double(gr[idx[q]]);
      }
    }
  });
}

template <class T>
void column_partials(const MoeGateArgs& a, const T* gates, double* col) {
  const int64_t S = a.S, E = a.E, P = a.P;
  parallel_for(P, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      double* cp = col + p * E;
      std::fill(cp, cp + E, 0.0);
      const int64_t r0 = S * p / P, r1 = S * (p + 1) / P;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < E; ++j) cp[j] += double(gates[r * E + j]);
    }
  });
}

template <class T>
void combine_rows(const MoeGateArgs& a, const T* gates, const int64_t* index, const int64_t* slot, T* cw) {
  const int64_t E = a.E, k = a.k;
  const T eps = T(a.eps);
  for (int64_t r = 0; r < a.S; ++r) {
    T* w = cw + r * k;
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t ex = index[r * k + j];
      if (ex < 0 || ex >= E) throw std::out_of_range("moe_combine: expert index " + std::to_string(ex) + " (row " + std::to_string(r) + ") is outside [0, " + std::to_string(E) + ")");
      w[j] = slot[r * k + j] >= 0 ? gates[r * E + ex] : T(0);
      sum += double(w[j]);
    }
    if (k < 2) continue;
    const T d = std::max(T(sum), eps);
    for (int64_t j = 0; j < k; ++j) w[j] = w[j] / d;
  }
}

template <class T>
void backward_rows(const MoeGateArgs& a, const T* gates, const int64_t* index, const int64_t* slot, const int64_t* counts, const T* lse, const T* gG,
                   const T* gcw, const T* gaux, const T* gz, T* dx) {
  const int64_t S = a.S, E = a.E, k = a.k;
  const double auxc = gaux ? double(gaux[0]) * a.aux_scale / (double(S) * double(S)) : 0.0;
  const double zc = gz ? double(gz[0]) * 2.0 / double(S) : 0.0;
  const T eps = T(a.eps);
  parallel_for(S, row_grain(E), [&](int64_t b, int64_t e) {
    std::vector<double> G(E);
    for (int64_t r = b; r < e; ++r) {
      const T* p = gates + r * E;
      for (int64_t j = 0; j < E; ++j) G[j] = (gG ? double(gG[r * E + j]) : 0.0) + (gaux ? auxc * double(counts[j]) : 0.0);
      if (gcw) {
        double v[kMoeGateMaxK], g[kMoeGateMaxK], sum = 0, gv = 0;
        for (int64_t j = 0; j < k; ++j) {
          v[j] = slot[r * k + j] >= 0 ? double(p[index[r * k + j]]) : 0.0;
          g[j] = double(gcw[r * k + j]);
          sum += v[j];
          gv += g[j] * v[j];
        }
        double inv = 1, corr = 0;
        if (k >= 2) {
          const T sumT = T(sum);
          const bool clamped = sumT < eps;  // clamp's gradient passes where sum ≥ eps
          const double D = clamped ? double(eps) : double(sumT);
          inv = 1 / D;
          corr = clamped ? 0.0 : gv / (D * D);
        }
        for (int64_t j = 0; j < k; ++j)
          if (slot[r * k + j] >= 0) G[index[r * k + j]] += g[j] * inv - corr;
      }
      double dot = 0;
      for (int64_t j = 0; j < E; ++j) dot += double(p[j]) * G[j];
      const double zr = gz ? zc * double(lse[r]) : 0.0;
      for (int64_t j = 0; j < E; ++j) dx[r * E + j] = T(double(p[j]) * (G[j] - dot + zr));
    }
  });
}

}  // namespace

void moe_gate_forward(DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse) {
  dispatch_float_cpu(t, "moe_gate", [&](auto tag) {
    using T = decltype(tag);
    gate_rows<T>(a, static_cast<const T*>(logits), static_cast<T*>(gates), index, topval, static_cast<T*>(lse));
    column_partials<T>(a, static_cast<const T*>(gates), col_partial);
  });
}

void moe_combine_forward(DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                         const int64_t* counts, const void* lse, void* cw, void* aux, void* z) {
  dispatch_float_cpu(g, "moe_combine", [&](auto tag) {
    using T = decltype(tag);
    combine_rows<T>(a, static_cast<const T*>(gates), index, slot, static_cast<T*>(cw));
    const double S = double(a.S);
    double acc = 0;
    for (int64_t e = 0; e < a.E; ++e) {
      double me = 0;
      for (int64_t p = 0; p < a.P; ++p) me += col_partial[p * a.E + e];
      acc += (me / S) * (double(counts[e]) / S);
    }
    static_cast<T*>(aux)[0] = T(a.S > 0 ? a.aux_scale * acc : std::nan(""));
    if (z) {
      const T* l = static_cast<const T*>(lse);
      double zs = 0;
      for (int64_t r = 0; r < a.S; ++r) zs += double(l[r]) * double(l[r]);
      static_cast<T*>(z)[0] = T(zs / S);
    }
  });
}

void moe_gate_backward(DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts, const void* lse,
                       const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits) {
  dispatch_float_cpu(t, "moe_gate_backward", [&](auto tag) {
    using T = decltype(tag);
    backward_rows<T>(a, static_cast<const T*>(gates), index, slot, counts, static_cast<const T*>(lse), static_cast<const T*>(g_gates), static_cast<const T*>(g_cw),
                     static_cast<const T*>(g_aux), static_cast<const T*>(g_z), static_cast<T*>(dlogits));
  });
}

}  // namespace vlmoe
