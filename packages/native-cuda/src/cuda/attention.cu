// Fused scaled-dot-product attention on CUDA, FlashAttention-2 style, mirroring the CPU
// reference (cpu/attention.cpp; semantics in cpu/kernels.h, AttentionArgs).
//
// Storage: float32, float64, bfloat16 or float16 (q, k, v, out, the gradients and an
// additive mask share it); every product and sum runs in A = float (double for float64),
// and lse is A. Head dims D, Dv ≤ 128; kernels are instantiated for max(D, Dv) ≤ 32, 64, 128.
// Scalar FMA, no tensor cores: correct first.
//
// Layout of the work: tiles of kBr = 32 query rows and kBc = 32 keys, 256 threads. A row of
// a tile (or a key, in the backward) is owned by 8 consecutive threads of one warp ("group":
// reductions over it are three xor-shuffles); a thread holds 4 of the row's 32 scores
// (columns lane8 + 8u) and every 8th element of its output row (lane8 + 8w).
//
// Forward: one block per (b·h, query tile). Q lives in shared memory for the whole block;
// K/V tiles stream through shared memory; the running max m, sum l and the output
// accumulator stay in registers (online softmax); P goes through shared memory only to be
// multiplied by V within the owning warp. No [Lq, Lk] matrix touches global memory.
//
// Backward: a small kernel computes D_i = rowsum(dout ∘ out); then one block per
// (b·h, key tile) keeps dK, dV for its 32 keys in registers and streams the query tiles
// (Q, dO, lse, D) through shared memory, recomputing P = exp(S − lse), dP = dO·Vᵀ,
// dS = P∘(dP − D). dQ = scale·dS·K is accumulated across key-tile blocks with atomicAdd into
// an A-typed buffer (dq itself for float32/float64, zeroed first; a scratch buffer, then a
// cast, for bf16/f16). Atomic float adds make dQ's last bits depend on block order;
// dK/dV are deterministic.
//
// Fully masked rows: lse = −inf, out = 0; the backward treats p as 0 there, so such rows
// pass no gradient (softmax's rule).
//
// All launches go to the legacy default stream like every other kernel of the addon; launch
// errors surface through cu::launched.
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <type_traits>

#include "../half.h"
#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

constexpr int kBr = 32;        // query rows per tile
constexpr int kBc = 32;        // keys per tile
constexpr int kThreads = 256;  // 8 threads per row: kThreads = 8 · kBr = 8 · kBc
constexpr int kGroup = 8;
static_assert(kThreads == kGroup * kBr && kThreads == kGroup * kBc, "8 threads own a row");
constexpr int kCols = kBc / kGroup;  // scores per thread

// Storage types: load to / store from the accumulation type.
struct F32 {
  using T = float;
  __device__ static float ld(T x) { return x; }
  __device__ static T st(float x) { return x; }
};
struct F64 {
  using T = double;
  __device__ static double ld(T x) { return x; }
  __device__ static T st(double x) { return x; }
};
struct BF16 {
  using T = uint16_t;
  __device__ static float ld(T x) { return bf16_to_f32(x); }
  __device__ static T st(float x) { return f32_to_bf16(x); }
};
struct F16 {
  using T = uint16_t;
  __device__ static float ld(T x) { return f16_to_f32(x); }
  __device__ static T st(float x) { return f32_to_f16(x); }
};

template <class S, class A>
struct Params {
  using T = typename S::T;
  int64_t BH = 0, H = 0, Lq = 0, Lk = 0;
  int D = 0, Dv = 0;
  A scale = 1;
  bool causal = false;
  const void* mask = nullptr;
  bool mask_bool = false;
  int64_t ms[4] = {};
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  T* out = nullptr;
  A* lse = nullptr;
  const T* dout = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  A* dq_acc = nullptr;
  const A* delta = nullptr;
};

template <class A>
__device__ __forceinline__ A neg_inf() {
  return A(-INFINITY);
}

// Reductions over the 8 threads of a group (consecutive lanes; every lane of the warp calls).
template <class A>
__device__ __forceinline__ A group_max(A v) {
#pragma unroll
  for (int o = 1; o < kGroup; o <<= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}
template <class A>
__device__ __forceinline__ A group_sum(A v) {
#pragma unroll
  for (int o = 1; o < kGroup; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Score of query i (row in sQ) and key j (row in sK) of head bh; −inf when masked. The caller
// handles i ≥ Lq and j ≥ Lk.
template <class S, class A>
__device__ __forceinline__ A score_of(const Params<S, A>& p, const A* qrow, const A* krow, int64_t bh, int64_t i, int64_t j) {
  if (p.causal && j > i) return neg_inf<A>();
  int64_t moff = 0;
  if (p.mask) {
    moff = (bh / p.H) * p.ms[0] + (bh % p.H) * p.ms[1] + i * p.ms[2] + j * p.ms[3];
    if (p.mask_bool && !static_cast<const bool*>(p.mask)[moff]) return neg_inf<A>();
  }
  A dot = 0;
  for (int d = 0; d < p.D; ++d) dot += qrow[d] * krow[d];
  A s = p.scale * dot;
  if (p.mask && !p.mask_bool) s += A(S::ld(static_cast<const typename S::T*>(p.mask)[moff]));
  return s;
}

// rows [r0, r0 + n) of a [rows, width] tensor into shared memory with leading dim ld (zeros
// past `rows`).
template <class S, class A>
__device__ __forceinline__ void load_tile(A* sh, int ld, const typename S::T* g, int64_t r0, int64_t rows, int width, int n) {
  for (int idx = threadIdx.x; idx < n * width; idx += kThreads) {
    const int r = idx / width, c = idx % width;
    sh[r * ld + c] = r0 + r < rows ? A(S::ld(g[(r0 + r) * width + c])) : A(0);
  }
}

template <class S, class A, int kMaxD>
__global__ void __launch_bounds__(kThreads) k_attn_fwd(Params<S, A> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int ldq = p.D + 1, ldv = p.Dv + 1, ldp = kBc + 1;
  A* sQ = reinterpret_cast<A*>(smem);  // [kBr][ldq]
  A* sK = sQ + kBr * ldq;               // [kBc][ldq]
  A* sV = sK + kBc * ldq;               // [kBc][ldv]
  A* sP = sV + kBc * ldv;               // [kBr][ldp]

  const int64_t ntiles = (p.Lq + kBr - 1) / kBr;
  const int64_t bh = blockIdx.x / ntiles, q0 = (blockIdx.x % ntiles) * kBr;
  const int row = threadIdx.x / kGroup, lane8 = threadIdx.x % kGroup;
  const int64_t i = q0 + row;
  const typename S::T* q = p.q + bh * p.Lq * p.D;
  const typename S::T* k = p.k + bh * p.Lk * p.D;
  const typename S::T* v = p.v + bh * p.Lk * p.Dv;

  load_tile<S, A>(sQ, ldq, q, q0, p.Lq, p.D, kBr);

  constexpr int kAcc = kMaxD / kGroup;
  A acc[kAcc];
#pragma unroll
  for (int w = 0; w < kAcc; ++w) acc[w] = 0;
  A m = neg_inf<A>(), l = 0;
  // causal: no row of this tile sees a key past its last row
  const int64_t kend = p.causal ? (q0 + kBr < p.Lk ? q0 + kBr : p.Lk) : p.Lk;
  for (int64_t k0 = 0; k0 < kend; k0 += kBc) {
    __syncthreads();  // the previous tile's sK / sV are consumed (and sQ is loaded)
    load_tile<S, A>(sK, ldq, k, k0, p.Lk, p.D, kBc);
    load_tile<S, A>(sV, ldv, v, k0, p.Lk, p.Dv, kBc);
    __syncthreads();
    A s[kCols];
    A mt = neg_inf<A>();
#pragma unroll
    for (int u = 0; u < kCols; ++u) {
      const int c = lane8 + kGroup * u;
      const int64_t j = k0 + c;
      s[u] = (i < p.Lq && j < p.Lk) ? score_of<S, A>(p, sQ + row * ldq, sK + c * ldq, bh, i, j) : neg_inf<A>();
      mt = s[u] > mt ? s[u] : mt;
    }
    mt = group_max(mt);
    const A mn = mt > m ? mt : m;
    A alpha = 1, psum = 0;
    if (mn != neg_inf<A>()) {
      alpha = exp(m - mn);  // 0 while m is −inf
#pragma unroll
      for (int u = 0; u < kCols; ++u) {
        s[u] = exp(s[u] - mn);  // masked: exp(−inf) = 0
        psum += s[u];
      }
    } else {
#pragma unroll
      for (int u = 0; u < kCols; ++u) s[u] = 0;
    }
    psum = group_sum(psum);
    l = l * alpha + psum;
    m = mn;
#pragma unroll
    for (int u = 0; u < kCols; ++u) sP[row * ldp + lane8 + kGroup * u] = s[u];
    __syncwarp();  // the row's 8 threads are one warp's lanes
#pragma unroll
    for (int w = 0; w < kAcc; ++w) {
      const int d = lane8 + kGroup * w;
      if (d < p.Dv) {
        A o = acc[w] * alpha;
        for (int c = 0; c < kBc; ++c) o += sP[row * ldp + c] * sV[c * ldv + d];
        acc[w] = o;
      }
    }
  }
  if (i < p.Lq) {
    typename S::T* out = p.out + (bh * p.Lq + i) * p.Dv;
    const bool dead = l == A(0);  // every key masked: zeros, lse −inf
    const A inv = dead ? A(0) : A(1) / l;
#pragma unroll
    for (int w = 0; w < kAcc; ++w) {
      const int d = lane8 + kGroup * w;
      if (d < p.Dv) out[d] = S::st(dead ? A(0) : acc[w] * inv);
    }
    if (lane8 == 0) p.lse[bh * p.Lq + i] = dead ? neg_inf<A>() : m + log(l);
  }
}

// D_i = Σ_d dout_id · out_id, one warp per row.
template <class S, class A>
__global__ void k_attn_delta(int64_t rows, int Dv, const typename S::T* out, const typename S::T* dout, A* delta) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
    A s = 0;
    for (int d = lane; d < Dv; d += 32) s += A(S::ld(out[r * Dv + d])) * A(S::ld(dout[r * Dv + d]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) delta[r] = s;
  }
}

template <class S, class A, int kMaxD>
__global__ void __launch_bounds__(kThreads) k_attn_bwd(Params<S, A> p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int ldq = p.D + 1, ldv = p.Dv + 1, ldp = kBc + 1;
  A* sK = reinterpret_cast<A*>(smem);  // [kBc][ldq]
  A* sV = sK + kBc * ldq;               // [kBc][ldv]
  A* sQ = sV + kBc * ldv;               // [kBr][ldq]
  A* sdO = sQ + kBr * ldq;              // [kBr][ldv]
  A* sP = sdO + kBr * ldv;              // [kBr][ldp]
  A* sdS = sP + kBr * ldp;              // [kBr][ldp], scaled by `scale`
  A* sL = sdS + kBr * ldp;              // [kBr] lse
  A* sD = sL + kBr;                     // [kBr] delta

  const int64_t ntiles = (p.Lk + kBc - 1) / kBc;
  const int64_t bh = blockIdx.x / ntiles, k0 = (blockIdx.x % ntiles) * kBc;
  const int own = threadIdx.x / kGroup, lane8 = threadIdx.x % kGroup;  // own: the row (scores, dQ) or key (dK, dV)
  const typename S::T* q = p.q + bh * p.Lq * p.D;
  const typename S::T* dout = p.dout + bh * p.Lq * p.Dv;
  const A* lse = p.lse + bh * p.Lq;
  const A* delta = p.delta + bh * p.Lq;
  A* dq = p.dq_acc + bh * p.Lq * p.D;

  load_tile<S, A>(sK, ldq, p.k + bh * p.Lk * p.D, k0, p.Lk, p.D, kBc);
  load_tile<S, A>(sV, ldv, p.v + bh * p.Lk * p.Dv, k0, p.Lk, p.Dv, kBc);

  constexpr int kAcc = kMaxD / kGroup;
  A gk[kAcc], gv[kAcc];
#pragma unroll
  for (int w = 0; w < kAcc; ++w) gk[w] = gv[w] = 0;

  // causal: rows above the tile's first key see none of its keys (kBr == kBc keeps tiles aligned)
  const int64_t qstart = p.causal ? k0 : 0;
  for (int64_t q0 = qstart; q0 < p.Lq; q0 += kBr) {
    __syncthreads();  // the previous query tile is consumed (and sK / sV are loaded)
    load_tile<S, A>(sQ, ldq, q, q0, p.Lq, p.D, kBr);
    load_tile<S, A>(sdO, ldv, dout, q0, p.Lq, p.Dv, kBr);
    if (threadIdx.x < kBr) {
      const int64_t i = q0 + threadIdx.x;
      sL[threadIdx.x] = i < p.Lq ? lse[i] : neg_inf<A>();
      sD[threadIdx.x] = i < p.Lq ? delta[i] : A(0);
    }
    __syncthreads();
    // P, dS for (row `own`, keys lane8 + 8u)
    {
      const int64_t i = q0 + own;
      const A li = sL[own], di = sD[own];
#pragma unroll
      for (int u = 0; u < kCols; ++u) {
        const int c = lane8 + kGroup * u;
        const int64_t j = k0 + c;
        A pij = 0, ds = 0;
        if (i < p.Lq && j < p.Lk && li != neg_inf<A>()) {
          const A s = score_of<S, A>(p, sQ + own * ldq, sK + c * ldq, bh, i, j);
          if (s != neg_inf<A>()) {
            pij = exp(s - li);
            A dp = 0;
            for (int d = 0; d < p.Dv; ++d) dp += sdO[own * ldv + d] * sV[c * ldv + d];
            ds = pij * (dp - di) * p.scale;
          }
        }
        sP[own * ldp + c] = pij;
        sdS[own * ldp + c] = ds;
      }
    }
    __syncthreads();
    // dV[key own] += Σ_r P[r][own]·dO[r];  dK[key own] += Σ_r dS[r][own]·Q[r]
#pragma unroll
    for (int w = 0; w < kAcc; ++w) {
      const int d = lane8 + kGroup * w;
      if (d < p.Dv) {
        A a = gv[w];
        for (int r = 0; r < kBr; ++r) a += sP[r * ldp + own] * sdO[r * ldv + d];
        gv[w] = a;
      }
      if (d < p.D) {
        A a = gk[w];
        for (int r = 0; r < kBr; ++r) a += sdS[r * ldp + own] * sQ[r * ldq + d];
        gk[w] = a;
      }
    }
    // dQ[row own] += Σ_c dS[own][c]·K[c]  (other key tiles add to the same rows)
    if (q0 + own < p.Lq) {
#pragma unroll
      for (int w = 0; w < kAcc; ++w) {
        const int d = lane8 + kGroup * w;
        if (d < p.D) {
          A a = 0;
          for (int c = 0; c < kBc; ++c) a += sdS[own * ldp + c] * sK[c * ldq + d];
          if (a != A(0)) atomicAdd(dq + (q0 + own) * p.D + d, a);
        }
      }
    }
  }
  const int64_t j = k0 + own;
  if (j < p.Lk) {
    typename S::T* dk = p.dk + (bh * p.Lk + j) * p.D;
    typename S::T* dv = p.dv + (bh * p.Lk + j) * p.Dv;
#pragma unroll
    for (int w = 0; w < kAcc; ++w) {
      const int d = lane8 + kGroup * w;
      if (d < p.D) dk[d] = S::st(gk[w]);
      if (d < p.Dv) dv[d] = S::st(gv[w]);
    }
  }
}

template <class S, class A>
__global__ void k_attn_store(int64_t n, const A* src, typename S::T* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) dst[i] = S::st(src[i]);
}

size_t fwd_smem(int D, int Dv, size_t es) { return es * (size_t(kBr) * (D + 1) + size_t(kBc) * (D + 1) + size_t(kBc) * (Dv + 1) + size_t(kBr) * (kBc + 1)); }
size_t bwd_smem(int D, int Dv, size_t es) {
  return es * (size_t(kBc) * (D + 1) + size_t(kBc) * (Dv + 1) + size_t(kBr) * (D + 1) + size_t(kBr) * (Dv + 1) + 2 * size_t(kBr) * (kBc + 1) + 2 * size_t(kBr));
}

// Opts a kernel into more than the default 48 KiB of dynamic shared memory when it needs it.
template <class K>
void allow_smem(K kernel, size_t bytes, const char* what) {
  if (bytes > 48 * 1024) cu::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), what);
}

template <class S, class A>
Params<S, A> params_of(const AttentionArgs& a) {
  using T = typename S::T;
  Params<S, A> p;
  p.BH = a.B * a.H, p.H = a.H, p.Lq = a.Lq, p.Lk = a.Lk;
  p.D = int(a.D), p.Dv = int(a.Dv);
  p.scale = A(a.scale);
  p.causal = a.causal;
  p.mask = a.mask;
  p.mask_bool = a.mask_bool;
  for (int d = 0; d < 4; ++d) p.ms[d] = a.mask_stride[d];
  p.q = static_cast<const T*>(a.q);
  p.k = static_cast<const T*>(a.k);
  p.v = static_cast<const T*>(a.v);
  p.out = static_cast<T*>(a.out);
  p.lse = static_cast<A*>(a.lse);
  p.dout = static_cast<const T*>(a.dout);
  p.dk = static_cast<T*>(a.dk);
  p.dv = static_cast<T*>(a.dv);
  return p;
}

unsigned grid_of(int64_t BH, int64_t L, int64_t tile, const char* op) {
  const int64_t n = BH * ((L + tile - 1) / tile);
  if (n > 2147483647LL) throw std::invalid_argument(std::string(op) + ": too many (batch·head, tile) blocks for one launch");
  return unsigned(n);
}

template <class S, class A, int kMaxD>
void forward(const AttentionArgs& a) {
  Params<S, A> p = params_of<S, A>(a);
  const size_t smem = fwd_smem(p.D, p.Dv, sizeof(A));
  allow_smem(k_attn_fwd<S, A, kMaxD>, smem, "attention: cudaFuncSetAttribute");
  k_attn_fwd<S, A, kMaxD><<<grid_of(p.BH, p.Lq, kBr, "attention"), kThreads, smem>>>(p);
  cu::launched("attention");
}

template <class S, class A, int kMaxD>
void backward(int device, const AttentionArgs& a) {
  Params<S, A> p = params_of<S, A>(a);
  const int64_t rows = p.BH * p.Lq;
  DeviceBlock delta(device, size_t(rows > 0 ? rows : 1) * sizeof(A));
  p.delta = static_cast<const A*>(delta.p);
  if (rows > 0) {
    k_attn_delta<S, A><<<cu::blocks_for(rows, cu::kBlock / 32), cu::kBlock>>>(rows, p.Dv, p.out, p.dout, static_cast<A*>(delta.p));
    cu::launched("attention_backward (delta)");
  }
  // dQ accumulates across key-tile blocks: in dq itself when it is A-typed, else in scratch.
  constexpr bool direct = std::is_same<typename S::T, A>::value;
  const size_t dq_bytes = size_t(rows * p.D) * sizeof(A);
  DeviceBlock scratch(device, direct || dq_bytes == 0 ? 1 : dq_bytes);
  p.dq_acc = direct ? reinterpret_cast<A*>(a.dq) : static_cast<A*>(scratch.p);
  if (dq_bytes) cu::check(cudaMemsetAsync(p.dq_acc, 0, dq_bytes), "attention_backward: cudaMemsetAsync");
  if (p.Lk > 0) {
    const size_t smem = bwd_smem(p.D, p.Dv, sizeof(A));
    allow_smem(k_attn_bwd<S, A, kMaxD>, smem, "attention_backward: cudaFuncSetAttribute");
    k_attn_bwd<S, A, kMaxD><<<grid_of(p.BH, p.Lk, kBc, "attention_backward"), kThreads, smem>>>(p);
    cu::launched("attention_backward");
  }
  if (!direct && dq_bytes) {
    const int64_t n = rows * p.D;
    k_attn_store<S, A><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(n, p.dq_acc, static_cast<typename S::T*>(a.dq));
    cu::launched("attention_backward (dq)");
  }
}

struct ForwardOp {
  const AttentionArgs& a;
  template <class S, class A, int kMaxD>
  void run() const { forward<S, A, kMaxD>(a); }
};
struct BackwardOp {
  int device;
  const AttentionArgs& a;
  template <class S, class A, int kMaxD>
  void run() const { backward<S, A, kMaxD>(device, a); }
};

// Calls f.run<S, A, kMaxD>() for the dtype and head dims.
template <class F>
void dispatch(DType t, const AttentionArgs& a, const char* op, const F& f) {
  const int64_t dmax = a.D > a.Dv ? a.D : a.Dv;
  if (dmax > 128) throw std::invalid_argument(std::string(op) + ": head dims up to 128 on CUDA, got D = " + std::to_string(a.D) + ", Dv = " + std::to_string(a.Dv));
  auto by_dim = [&](auto s, auto acc) {
    using S = decltype(s);
    using A = decltype(acc);
    if (dmax <= 32) f.template run<S, A, 32>();
    else if (dmax <= 64) f.template run<S, A, 64>();
    else f.template run<S, A, 128>();
  };
  switch (t) {
    case DType::f32: by_dim(F32{}, float{}); break;
    case DType::f64: by_dim(F64{}, double{}); break;
    case DType::bf16: by_dim(BF16{}, float{}); break;
    case DType::f16: by_dim(F16{}, float{}); break;
    default: throw std::invalid_argument(std::string(op) + ": expected float32, float64, bfloat16 or float16, got " + dtype_name(t));
  }
}

}  // namespace

void cuda_attention_forward(int device, DType t, const AttentionArgs& a) {
  if (a.B * a.H * a.Lq == 0) return;
  cu::set_device(device);
  dispatch(t, a, "attention", ForwardOp{a});
}

void cuda_attention_backward(int device, DType t, const AttentionArgs& a) {
  if (a.B * a.H == 0) return;
  cu::set_device(device);
  dispatch(t, a, "attention_backward", BackwardOp{device, a});
}

}  // namespace vlmoe
