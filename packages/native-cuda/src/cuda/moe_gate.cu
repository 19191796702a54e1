// The fused MoE gating on CUDA (semantics in cpu/moe_gate.h):
// - moe_gate: one launch, one warp per row (E ≤ 1024: each lane keeps ≤ 32 logits in
//   registers): max, Σ exp, gates, lse, then k ≤ 8 rounds of a warp arg-max over the
//   logits (ties → lower expert index). Column sums: each lane accumulates its columns over
//   its warp's rows in float64 registers, the block's warps add theirs into shared memory one
//   warp after the other (fixed order), and the block writes its partial row P = blockIdx.x
//   of colPartial — no atomics, deterministic; moe_combine adds the P partial rows.
// - moe_combine: one launch; a thread per row for the combine weights; block 0 also reduces
//   the partial column sums against the counts (aux) and Σ lse² (z) in fixed order.
// - moe_gate_backward: one launch, one warp per row, two passes over the row (⟨p, G⟩, then
//   the gradient row); gaux and gz are read on the device (no synchronisation).
#include <cuda_runtime.h>

#include <cmath>

#include "../cpu/moe_gate.h"
#include "common.cuh"
#include "cuda_backend.h"
#include "half.cuh"

namespace vlmoe {

namespace {

constexpr int kWarps = cu::kBlock / 32;
constexpr int kPerLane = int(kMoeGateMaxExpertsCuda / 32);
constexpr int kNone = 0x7fffffff;

using cu::warp_max;
using cu::warp_sum;

struct GateParams {
  int64_t S, E, k, P;
  double eps, aux_scale;
};

GateParams params(const MoeGateArgs& a) { return GateParams{a.S, a.E, a.k, a.P, a.eps, a.aux_scale}; }

// grid = P blocks of kBlock threads; rows r = (b·kWarps + w) + i·P·kWarps
template <class T>
__global__ void k_moe_gate(GateParams p, const T* x, cu::compute_t<T>* gates, int64_t* index, double* topval, double* col_partial, cu::compute_t<T>* lse) {
  using A = cu::compute_t<T>;
  __shared__ double colsh[kMoeGateMaxExpertsCuda];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int E = int(p.E);
  for (int j = threadIdx.x; j < E; j += blockDim.x) colsh[j] = 0;
  double acc[kPerLane];
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) acc[c] = 0;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < p.S; r += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + r * p.E;
    A v[kPerLane];
    A mx = A(-INFINITY);
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int j = c * 32 + lane;
      v[c] = j < E ? cu::widen(xr[j]) : A(-INFINITY);
      mx = v[c] > mx ? v[c] : mx;
    }
    mx = warp_max(mx);
    const A shift = isfinite(mx) ? mx : A(0);
    A s = 0;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c)
      if (c * 32 + lane < E) s += exp(v[c] - shift);
    s = warp_sum(s);
    A* gr = gates + r * p.E;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int j = c * 32 + lane;
      if (j < E) {
        const A g = exp(v[c] - shift) / s;
        gr[j] = g;
        acc[c] += double(g);
      }
    }
    if (lse && lane == 0) lse[r] = shift + log(s);
    // k rounds of a warp arg-max over the logits not yet taken (ties → lower index)
    unsigned taken = 0;
    for (int q = 0; q < int(p.k); ++q) {
      A bv = A(-INFINITY);
      int bj = kNone;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int j = c * 32 + lane;  // ascending: a tie keeps the lower index
        if (j < E && !(taken & (1u << c)) && (bj == kNone || v[c] > bv)) {
          bv = v[c];
          bj = j;
        }
      }
      for (int o = 16; o > 0; o >>= 1) {
        const A ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oj = __shfl_xor_sync(0xffffffffu, bj, o);
        if (oj != kNone && (bj == kNone || ov > bv || (ov == bv && oj < bj))) {
          bv = ov;
          bj = oj;
        }
      }
      if ((bj & 31) == lane) taken |= 1u << (bj >> 5);
      if (lane == 0) {
        index[r * p.k + q] = bj;
        // the stored gate, recomputed exactly as above (same thread-independent expression)
        if (topval) topval[r * p.k + q] = double(A(exp(bv - shift) / s));
      }
    }
  }
  // the block's partial column sums: warps one after the other (fixed order)
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) {
    if (warp == w) {
#pragma unroll
      for (int c = 0; c < kPerLane; ++c)
        if (c * 32 + lane < E) colsh[c * 32 + lane] += acc[c];
    }
    __syncthreads();
  }
  for (int j = threadIdx.x; j < E; j += blockDim.x) col_partial[int64_t(blockIdx.x) * p.E + j] = colsh[j];
}

template <class G>
__global__ void k_moe_combine(GateParams p, const G* gates, const int64_t* index, const int64_t* slot, const double* col_partial, const int64_t* counts, const G* lse,
                              G* cw, G* aux, G* z) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < p.S; r += int64_t(blockDim.x) * gridDim.x) {
    G w[kMoeGateMaxK];
    double sum = 0;
    for (int j = 0; j < int(p.k); ++j) {
      const int64_t ex = index[r * p.k + j];
      w[j] = slot[r * p.k + j] >= 0 && ex >= 0 && ex < p.E ? gates[r * p.E + ex] : G(0);
      sum += double(w[j]);
    }
    if (p.k >= 2) {
      const G s = G(sum), e = G(p.eps);
      const G d = s > e ? s : e;
      for (int j = 0; j < int(p.k); ++j) w[j] = w[j] / d;
    }
    for (int j = 0; j < int(p.k); ++j) cw[r * p.k + j] = w[j];
  }
  if (blockIdx.x != 0) return;
  __shared__ double sh[cu::kBlock / 32];
  const double S = double(p.S);
  double acc = 0;
  for (int64_t e = threadIdx.x; e < p.E; e += blockDim.x) {
    double me = 0;
    for (int64_t q = 0; q < p.P; ++q) me += col_partial[q * p.E + e];
    acc += (me / S) * (double(counts[e]) / S);
  }
  acc = cu::block_sum(acc, sh);
  if (threadIdx.x == 0) aux[0] = G(p.S > 0 ? p.aux_scale * acc : nan(""));
  if (!z) return;
  double zs = 0;
  for (int64_t r = threadIdx.x; r < p.S; r += blockDim.x) zs += double(lse[r]) * double(lse[r]);
  zs = cu::block_sum(zs, sh);
  if (threadIdx.x == 0) z[0] = G(zs / S);
}

template <class T>
__global__ void k_moe_gate_backward(GateParams p, const cu::compute_t<T>* gates, const int64_t* index, const int64_t* slot, const int64_t* counts,
                                    const cu::compute_t<T>* lse, const cu::compute_t<T>* gG, const cu::compute_t<T>* gcw, const cu::compute_t<T>* gaux,
                                    const cu::compute_t<T>* gz, T* dx) {
  using G = cu::compute_t<T>;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const double S = double(p.S);
  const double auxc = gaux ? double(gaux[0]) * p.aux_scale / (S * S) : 0.0;
  const double zc = gz ? double(gz[0]) * 2.0 / S : 0.0;
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < p.S; r += int64_t(gridDim.x) * kWarps) {
    const G* pr = gates + r * p.E;
    // the combine weights' gradient w.r.t. the kept gate values (every lane computes all k)
    int64_t ex[kMoeGateMaxK];
    double dv[kMoeGateMaxK];
    const int k = int(p.k);
    if (gcw) {
      double v[kMoeGateMaxK], sum = 0, gv = 0;
      for (int j = 0; j < k; ++j) {
        const bool kept = slot[r * p.k + j] >= 0;
        ex[j] = kept ? index[r * p.k + j] : -1;
        v[j] = kept && ex[j] >= 0 && ex[j] < p.E ? double(pr[ex[j]]) : 0.0;
        dv[j] = double(gcw[r * p.k + j]);
        sum += v[j];
        gv += dv[j] * v[j];
      }
      double inv = 1, corr = 0;
      if (k >= 2) {
        const G sumG = G(sum), eps = G(p.eps);
        const bool clamped = sumG < eps;
        const double D = clamped ? double(eps) : double(sumG);
        inv = 1 / D;
        corr = clamped ? 0.0 : gv / (D * D);
      }
      for (int j = 0; j < k; ++j) dv[j] = dv[j] * inv - corr;
    }
    auto Gof = [&](int64_t j) {
      double g = (gG ? double(gG[r * p.E + j]) : 0.0) + (gaux ? auxc * double(counts[j]) : 0.0);
      if (gcw)
        for (int q = 0; q < k; ++q)
          if (ex[q] == j) g += dv[q];
      return g;
    };
    double dot = 0;
    for (int64_t j = lane; j < p.E; j += 32) dot += double(pr[j]) * Gof(j);
    dot = warp_sum(dot);
    const double zr = gz ? zc * double(lse[r]) : 0.0;
    for (int64_t j = lane; j < p.E; j += 32) dx[r * p.E + j] = cu::narrow<T>(double(pr[j]) * (Gof(j) - dot + zr));
  }
}

template <class F>
void dispatch_gates(DType g, const char* op, F&& f) {
  if (g == DType::f32) f(float{});
  else if (g == DType::f64) f(double{});
  else throw std::invalid_argument(std::string(op) + " (cuda): gates must be float32 or float64, got " + dtype_name(g));
}

}  // namespace

void cuda_moe_gate_forward(int device, DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse) {
  if (a.E > kMoeGateMaxExpertsCuda)
    throw std::invalid_argument("moe_gate (cuda): at most " + std::to_string(kMoeGateMaxExpertsCuda) + " experts, got " + std::to_string(a.E));
  cu::set_device(device);
  const GateParams p = params(a);
  cu::dispatch_float_storage(t, "moe_gate", [&](auto tag) {
    using T = decltype(tag);
    using A = cu::compute_t<T>;
    k_moe_gate<T><<<unsigned(a.P), cu::kBlock>>>(p, static_cast<const T*>(logits), static_cast<A*>(gates), index, topval, col_partial, static_cast<A*>(lse));
  });
  cu::launched("moe_gate");
}

void cuda_moe_combine_forward(int device, DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                              const int64_t* counts, const void* lse, void* cw, void* aux, void* z) {
  cu::set_device(device);
  const GateParams p = params(a);
  dispatch_gates(g, "moe_combine", [&](auto tag) {
    using G = decltype(tag);
    k_moe_combine<G><<<cu::blocks_for(a.S, cu::kBlock), cu::kBlock>>>(p, static_cast<const G*>(gates), index, slot, col_partial, counts, static_cast<const G*>(lse),
                                                                      static_cast<G*>(cw), static_cast<G*>(aux), static_cast<G*>(z));
  });
  cu::launched("moe_combine");
}

void cuda_moe_gate_backward(int device, DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts,
                            const void* lse, const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits) {
  if (a.S == 0) return;
  cu::set_device(device);
  const GateParams p = params(a);
  cu::dispatch_float_storage(t, "moe_gate_backward", [&](auto tag) {
    using T = decltype(tag);
    using G = cu::compute_t<T>;
    k_moe_gate_backward<T><<<cu::blocks_for((a.S + kWarps - 1) / kWarps, 1), cu::kBlock>>>(
        p, static_cast<const G*>(gates), index, slot, counts, static_cast<const G*>(lse), static_cast<const G*>(g_gates), static_cast<const G*>(g_cw),
        static_cast<const G*>(g_aux), static_cast<const G*>(g_z), static_cast<T*>(dlogits));
  });
  cu::launched("moe_gate_backward");
}

}  // namespace vlmoe
