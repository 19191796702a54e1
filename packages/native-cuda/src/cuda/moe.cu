// The MoE kernels on CUDA, with the CPU kernels' semantics (cpu/moe_assign.h,
// cpu/moe_permute.h, cpu/grouped_gemm.h):
// - slot assignment: for the capacity policy (keep the first C of each expert's queue) one
//   block per expert scans the queue (choice rank, then token) with a block-wide prefix sum
//   — deterministic, one launch, plus one for the per-expert offsets and rows. The priority
//   policies (batch-priority routing, random token selection) run the CPU algorithm on a host
//   copy (one synchronisation).
// - permute / unpermute (+ combine) / the combine weights' gradient: one launch each, each
//   output element written once (no atomics: deterministic).
// - grouped GEMMs: one GEMM per expert (cuBLAS or our kernel) over its rows, with the bias
//   and activation fused in one launch over all groups; bias gradients as per-group column
//   sums. Group sizes are read on the host (copied back when they live on the device).
#include <cuda_runtime.h>

#include <optional>

#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu/moe_assign.h"
#include "../ops.h"
#include "common.cuh"
#include "cuda_backend.h"
#include "errors.cuh"
#include "half.cuh"

namespace vlmoe {

namespace {

// ---- slot assignment --------------------------------------------------------------------

// block e: counts and slots of expert e's queue (queue order: j-major, then s)
__global__ void k_assign_first_c(int64_t S, int64_t k, int64_t E, int64_t C, const int64_t* expert, int64_t* slot, int64_t* before, int64_t* after, int64_t* first,
                                 KernelError* err) {
  __shared__ int64_t sh[cu::kBlock / 32];
  const int64_t e = blockIdx.x;
  const int64_t n = S * k;
  int64_t base = 0, nfirst = 0;
  for (int64_t q0 = 0; q0 < n; q0 += blockDim.x) {
    const int64_t q = q0 + threadIdx.x;  // queue position → assignment (s, j)
    int64_t a = -1;
    bool mine = false;
    if (q < n) {
      const int64_t j = q / S, s = q % S;
      a = s * k + j;
      const int64_t ex = expert[a];
      if (e == 0 && (ex < 0 || ex >= E)) report(err, kErrMoeExpert, ex, E);
      mine = ex == e;
      if (mine && j == 0) ++nfirst;
    }
    // exclusive prefix of `mine` over the block: warp ballots, then the warps' totals
    const unsigned ball = __ballot_sync(0xffffffffu, mine);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t in_warp = __popc(ball & ((1u << lane) - 1u));
    __syncthreads();
    if (lane == 0) sh[warp] = __popc(ball);
    __syncthreads();
    int64_t before_warp = 0, total = 0;
    for (int w = 0; w < int(blockDim.x >> 5); ++w) {
      if (w < warp) before_warp += sh[w];
      total += sh[w];
    }
    if (mine) {
      const int64_t pos = base + before_warp + in_warp;
      slot[a] = pos < C ? pos : -1;
    }
    base += total;
  }
  const int64_t firsts = cu::block_sum(nfirst, sh);
  if (threadIdx.x == 0) {
    before[e] = base;
    after[e] = base < C ? base : C;
    if (first) first[e] = firsts;
  }
}

// row[a] = offset(expert) + slot, offsets being the exclusive prefix sums of `after`
__global__ void k_assign_rows(int64_t n, int64_t E, const int64_t* expert, const int64_t* slot, const int64_t* after, int64_t* row) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < n; a += int64_t(blockDim.x) * gridDim.x) {
    const int64_t e = expert[a];
    if (slot[a] < 0 || e < 0 || e >= E) {
      row[a] = -1;
      continue;
    }
    int64_t off = 0;
    for (int64_t q = 0; q < e; ++q) off += after[q];
    row[a] = off + slot[a];
  }
}

// ---- permutation ------------------------------------------------------------------------

// rows in [-1, R) and distinct: `seen` (R ints, zeroed) marks taken rows
__global__ void k_check_rows(int64_t n, int64_t R, const int64_t* row, int* seen, KernelError* err) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < n; a += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = row[a];
    if (r < -1 || r >= R) report(err, kErrMoeRow, r, R);
    else if (r >= 0 && atomicExch(seen + r, 1) != 0) report(err, kErrMoeDuplicateRow, r, R);
  }
}

template <class T>
__global__ void k_permute(int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const T* w, const T* src, T* dst) {
  const int64_t n = S * k * d;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t a = i / d, c = i % d;
    const int64_t r = row[a];
    if (r < 0 || r >= R) continue;
    const T v = src[(a / k) * d + c];
    dst[r * d + c] = w ? w[a] * v : v;
  }
}

template <class T>
__global__ void k_unpermute(int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const T* w, const T* src, T* dst) {
  const int64_t n = S * d;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t s = i / d, c = i % d;
    T acc = T(0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t a = s * k + j, r = row[a];
      if (r < 0 || r >= R) continue;
      acc += w ? w[a] * src[r * d + c] : src[r * d + c];
    }
    dst[i] = acc;
  }
}

// one warp per assignment: dw[a] = ⟨dout[a / k], y[row[a]]⟩
template <class T>
__global__ void k_unpermute_wgrad(int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const T* dout, const T* y, T* dw) {
  const int64_t n = S * k;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t(blockDim.x) * gridDim.x) >> 5;
  for (int64_t a = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; a < n; a += warps) {
    const int64_t r = row[a];
    T acc = T(0);
    if (r >= 0 && r < R)
      for (int64_t c = lane; c < d; c += 32) acc += dout[(a / k) * d + c] * y[r * d + c];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) dw[a] = acc;
  }
}

// ---- grouped GEMM helpers ---------------------------------------------------------------

// y[r, :] (+)= b[group(r), :]; with act, also hid = act(y) (the expert FFN's first layer)
template <class T>
__global__ void k_bias_act(int64_t R, int64_t N, int64_t G, const int64_t* off, const T* b, T* y, T* hid, int act) {
  const int64_t n = R * N;
  const OpParams p{};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = i / N, c = i % N;
    T v = y[i];
    if (b) {
      v += b[cu::segment_of(off, G, r) * N + c];
      y[i] = v;
    }
    if (hid) hid[i] = act == 0 ? opfn::gelu{}(v, p) : act == 1 ? opfn::gelu_tanh{}(v, p) : opfn::relu{}(v, p);
  }
}

// g = g · act'(x)
template <class T>
__global__ void k_act_grad(int64_t n, int act, T* g, const T* x) {
  const OpParams p{};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    g[i] = act == 0 ? opfn::gelu_backward{}(g[i], x[i], p) : act == 1 ? opfn::gelu_tanh_backward{}(g[i], x[i], p) : opfn::relu_backward{}(g[i], x[i], p);
}

// db[g, c] = Σ_{rows of group g} dy[r, c]; grid (column blocks, G)
template <class T>
__global__ void k_group_col_sums(int64_t N, const int64_t* off, const T* dy, T* db) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, g = blockIdx.y;
  if (c >= N) return;
  T acc = T(0);
  for (int64_t r = off[g]; r < off[g + 1]; ++r) acc += dy[r * N + c];
  db[g * N + c] = acc;
}

void check_float(DType t, const char* op) {
  if (t != DType::f32 && t != DType::f64) throw std::invalid_argument(std::string(op) + " (cuda): expected float32 or float64, got " + dtype_name(t));
}

// The groups' row offsets: on the host, and a device copy freed (stream-ordered) with it.
struct Offsets {
  std::vector<int64_t> host;
  int device = 0;
  int64_t* dev = nullptr;
  Offsets() = default;
  Offsets(const Offsets&) = delete;
  Offsets& operator=(const Offsets&) = delete;
  ~Offsets() {
    if (dev) cuda_free(device, dev);
  }
};

void offsets(Offsets& o, int device, int64_t G, const int64_t* sizes) {
  o.host.assign(static_cast<size_t>(G) + 1, 0);
  for (int64_t g = 0; g < G; ++g) o.host[g + 1] = o.host[g] + sizes[g];
  o.device = device;
  o.dev = static_cast<int64_t*>(cuda_alloc(device, sizeof(int64_t) * o.host.size()));
  cuda_copy_h2d(device, o.dev, o.host.data(), sizeof(int64_t) * o.host.size());
}

template <class T>
const T* at(const void* p, int64_t off) {
  return static_cast<const T*>(p) + off;
}

// ---- mixed precision (bfloat16 / float16 GEMM operands) ---------------------------------
//
// The grouped ops take `t`, the dtype of the GEMM operands (x and the weights). With
// t = float32 / float64 everything is in t. With t = bfloat16 / float16 (autocast) the GEMMs
// multiply half operands with float32 accumulation (cuBLAS GemmEx, else our kernel) into
// float32, and every other operand — biases, outputs, pre-activations, activations,
// gradients — is float32; a float32 value a later GEMM multiplies (dy, the FFN's hidden
// activations, dpre) is rounded to t into a scratch copy first, as torch.autocast does.

DType acc_dtype(DType t) { return is_half(t) ? DType::f32 : t; }

void check_grouped(DType t, const char* op) {
  if (t != DType::f32 && t != DType::f64 && !is_half(t))
    throw std::invalid_argument(std::string(op) + " (cuda): expected float32, float64, bfloat16 or float16 operands, got " + dtype_name(t));
}

// C[M, N] = op(A) · op(B), row-major, A and B in t, C in acc_dtype(t).
void group_gemm(int device, DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B, int64_t ldb, void* C, int64_t ldc,
                bool reference) {
  if (is_half(t)) cuda_gemm_half(device, t, DType::f32, 1, ta, tb, M, N, K, 1.0, A, lda, 0, B, ldb, 0, 0.0, C, ldc, 0, reference);
  else cuda_gemm(device, t, 1, ta, tb, M, N, K, 1.0, A, lda, 0, B, ldb, 0, 0.0, C, ldc, 0, reference);
}

template <class H>
__global__ void k_round_to(int64_t n, const float* src, H* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) dst[i] = cu::narrow<H>(src[i]);
}

// n float32 values rounded to the half dtype `h` in a scratch block (freed stream-ordered).
DeviceBlock rounded_copy(int device, DType h, const void* src, int64_t n) {
  DeviceBlock b(device, sizeof(uint16_t) * size_t(n > 0 ? n : 1));
  if (n > 0) {
    cu::set_device(device);
    const float* s = static_cast<const float*>(src);
    if (h == DType::bf16) k_round_to<cu::bf16><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(n, s, static_cast<cu::bf16*>(b.p));
    else k_round_to<cu::f16><<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(n, s, static_cast<cu::f16*>(b.p));
    cu::launched("grouped GEMM (rounding to half precision)");
  }
  return b;
}

// The grouped linear backward with dy given twice: `dy` in acc_dtype(t) (for db) and `dyg` in
// t (the GEMMs' operand; the same pointer unless t is a half type). x and w in t.
void grouped_backward(int device, DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, const void* dyg,
                      void* dx, void* dw, void* db, bool reference) {
  Offsets o;
  offsets(o, device, G, sizes);
  const DType at = acc_dtype(t);
  const int64_t es = int64_t(dtype_size(t)), ea = int64_t(dtype_size(at));
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = sizes[g];
    const char* dyg_g = static_cast<const char*>(dyg) + o.host[g] * N * es;
    if (dx && n) group_gemm(device, t, false, true, n, K, N, dyg_g, N, static_cast<const char*>(w) + g * K * N * es, N, static_cast<char*>(dx) + o.host[g] * K * ea, K, reference);
    if (dw) {
      char* dwg = static_cast<char*>(dw) + g * K * N * ea;
      if (n == 0) cuda_memset(device, dwg, 0, size_t(K * N * ea));
      else group_gemm(device, t, true, false, K, N, n, static_cast<const char*>(x) + o.host[g] * K * es, K, dyg_g, N, dwg, N, reference);
    }
  }
  if (db && G * N) {
    cu::set_device(device);
    dispatch_float(at, "grouped_linear_backward", [&](auto tag) {
      using T = decltype(tag);
      k_group_col_sums<T><<<dim3(static_cast<unsigned>((N + cu::kBlock - 1) / cu::kBlock), static_cast<unsigned>(G)), cu::kBlock>>>(N, o.dev, static_cast<const T*>(dy),
                                                                                                                                   static_cast<T*>(db));
    });
    cu::launched("grouped_linear_backward (bias)");
  }
}

}  // namespace

void cuda_moe_assign(int device, int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority, int64_t* slot,
                     int64_t* before, int64_t* after, int64_t* first, int64_t* row) {
  const int64_t n = S * k;
  if (policy != 0 && priority) {
    // the priority policies: the CPU algorithm on host copies
    std::vector<int64_t> he(n), hs(n), hb(E), ha(E), hf(first ? E : 0), hr(row ? n : 0);
    std::vector<double> hp(n);
    cuda_copy_d2h(device, he.data(), expert, sizeof(int64_t) * n);
    cuda_copy_d2h(device, hp.data(), priority, sizeof(double) * n);
    moe_assign(S, k, E, C, policy, he.data(), hp.data(), hs.data(), hb.data(), ha.data(), first ? hf.data() : nullptr, row ? hr.data() : nullptr);
    cuda_copy_h2d(device, slot, hs.data(), sizeof(int64_t) * n);
    cuda_copy_h2d(device, before, hb.data(), sizeof(int64_t) * E);
    cuda_copy_h2d(device, after, ha.data(), sizeof(int64_t) * E);
    if (first) cuda_copy_h2d(device, first, hf.data(), sizeof(int64_t) * E);
    if (row) cuda_copy_h2d(device, row, hr.data(), sizeof(int64_t) * n);
    return;
  }
  KernelError* err = cuda_error_record(device);
  cu::set_device(device);
  k_assign_first_c<<<static_cast<unsigned>(E), cu::kBlock>>>(S, k, E, C, expert, slot, before, after, first, err);
  cu::launched("moe_assign");
  if (row && n) {
    k_assign_rows<<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(n, E, expert, slot, after, row);
    cu::launched("moe_assign (rows)");
  }
}

void cuda_moe_check_rows(int device, int64_t S, int64_t k, int64_t R, const int64_t* row) {
  const int64_t n = S * k;
  if (n == 0) return;
  KernelError* err = cuda_error_record(device);
  DeviceBlock seen(device, sizeof(int) * size_t(R > 0 ? R : 1));
  cuda_memset(device, seen.p, 0, seen.bytes);
  k_check_rows<<<cu::blocks_for(n, cu::kBlock), cu::kBlock>>>(n, R, row, static_cast<int*>(seen.p), err);
  cu::launched("moe rows check");
}

void cuda_moe_permute(int device, DType t, bool unpermute, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) {
  check_float(t, unpermute ? "moe_unpermute" : "moe_permute");
  cu::set_device(device);
  dispatch_float(t, "moe_permute", [&](auto tag) {
    using T = decltype(tag);
    if (unpermute) {
      if (S * d) k_unpermute<T><<<cu::blocks_for(S * d, cu::kBlock), cu::kBlock>>>(S, k, d, R, row, static_cast<const T*>(w), static_cast<const T*>(src), static_cast<T*>(dst));
    } else {
      if (R * d) cuda_memset(device, dst, 0, sizeof(T) * size_t(R * d));  // rows nobody targets are 0
      if (S * k * d) k_permute<T><<<cu::blocks_for(S * k * d, cu::kBlock), cu::kBlock>>>(S, k, d, R, row, static_cast<const T*>(w), static_cast<const T*>(src), static_cast<T*>(dst));
    }
  });
  cu::launched(unpermute ? "moe_unpermute" : "moe_permute");
}

void cuda_moe_unpermute_weight_grad(int device, DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout, const void* y, void* dw) {
  check_float(t, "moe_unpermute_weight_grad");
  if (S * k == 0) return;
  cu::set_device(device);
  dispatch_float(t, "moe_unpermute_weight_grad", [&](auto tag) {
    using T = decltype(tag);
    k_unpermute_wgrad<T><<<cu::blocks_for(S * k * 32, cu::kBlock), cu::kBlock>>>(S, k, d, R, row, static_cast<const T*>(dout), static_cast<const T*>(y), static_cast<T*>(dw));
  });
  cu::launched("moe_unpermute_weight_grad");
}

void cuda_grouped_linear_forward(int device, DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b, void* y,
                                 bool reference) {
  check_grouped(t, "grouped_linear");
  Offsets o;
  offsets(o, device, G, sizes);
  const DType at = acc_dtype(t);
  const int64_t R = o.host[G], es = int64_t(dtype_size(t)), ea = int64_t(dtype_size(at));
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = sizes[g];
    if (n == 0) continue;
    group_gemm(device, t, false, false, n, N, K, static_cast<const char*>(x) + o.host[g] * K * es, K, static_cast<const char*>(w) + g * K * N * es, N,
               static_cast<char*>(y) + o.host[g] * N * ea, N, reference);
  }
  if (b && R * N) {
    cu::set_device(device);
    dispatch_float(at, "grouped_linear", [&](auto tag) {
      using T = decltype(tag);
      k_bias_act<T><<<cu::blocks_for(R * N, cu::kBlock), cu::kBlock>>>(R, N, G, o.dev, static_cast<const T*>(b), static_cast<T*>(y), nullptr, 0);
    });
    cu::launched("grouped_linear (bias)");
  }
}

void cuda_grouped_linear_backward(int device, DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, void* dx,
                                  void* dw, void* db, bool reference) {
  check_grouped(t, "grouped_linear_backward");
  if (!is_half(t)) return grouped_backward(device, t, G, sizes, K, N, x, w, dy, dy, dx, dw, db, reference);
  int64_t R = 0;
  for (int64_t g = 0; g < G; ++g) R += sizes[g];
  const DeviceBlock dyh = rounded_copy(device, t, dy, R * N);
  grouped_backward(device, t, G, sizes, K, N, x, w, dy, dyh.p, dx, dw, db, reference);
}

void cuda_expert_ffn_forward(int device, DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* b1,
                             const void* w2, const void* b2, void* pre, void* hid, void* y, bool reference) {
  check_grouped(t, "expert_ffn");
  if (act < 0 || act > 2) throw std::invalid_argument("expert_ffn: activation code " + std::to_string(act) + " is not 0 (gelu), 1 (gelu_tanh) or 2 (relu)");
  Offsets o;
  offsets(o, device, G, sizes);
  const DType at = acc_dtype(t);
  const int64_t R = o.host[G], es = int64_t(dtype_size(t)), ea = int64_t(dtype_size(at));
  for (int64_t g = 0; g < G; ++g)  // pre = x · w1
    if (sizes[g])
      group_gemm(device, t, false, false, sizes[g], H, D, static_cast<const char*>(x) + o.host[g] * D * es, D, static_cast<const char*>(w1) + g * D * H * es, H,
                 static_cast<char*>(pre) + o.host[g] * H * ea, H, reference);
  cu::set_device(device);
  dispatch_float(at, "expert_ffn", [&](auto tag) {  // pre += b1, hid = act(pre): one launch
    using T = decltype(tag);
    if (R * H) k_bias_act<T><<<cu::blocks_for(R * H, cu::kBlock), cu::kBlock>>>(R, H, G, o.dev, static_cast<const T*>(b1), static_cast<T*>(pre), static_cast<T*>(hid), act);
  });
  cu::launched("expert_ffn (bias, activation)");
  // the second GEMM's operand: hid itself, or (half operands) hid rounded to t
  std::optional<DeviceBlock> hid_h;
  if (is_half(t)) hid_h.emplace(rounded_copy(device, t, hid, R * H));
  const void* hg = hid_h ? hid_h->p : hid;
  for (int64_t g = 0; g < G; ++g)  // y = hid · w2
    if (sizes[g])
      group_gemm(device, t, false, false, sizes[g], D, H, static_cast<const char*>(hg) + o.host[g] * H * es, H, static_cast<const char*>(w2) + g * H * D * es, D,
                 static_cast<char*>(y) + o.host[g] * D * ea, D, reference);
  if (b2 && R * D) {
    cu::set_device(device);
    dispatch_float(at, "expert_ffn", [&](auto tag) {
      using T = decltype(tag);
      k_bias_act<T><<<cu::blocks_for(R * D, cu::kBlock), cu::kBlock>>>(R, D, G, o.dev, static_cast<const T*>(b2), static_cast<T*>(y), nullptr, 0);
    });
    cu::launched("expert_ffn (bias)");
  }
}

void cuda_expert_ffn_backward(int device, DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* w2,
                              const void* pre, const void* hid, const void* dy, void* scratch, void* dx, void* dw1, void* db1, void* dw2, void* db2, bool reference) {
  check_grouped(t, "expert_ffn_backward");
  if (act < 0 || act > 2) throw std::invalid_argument("expert_ffn_backward: activation code " + std::to_string(act) + " is not 0, 1 or 2");
  const DType at = acc_dtype(t);
  const bool half = is_half(t);
  int64_t R = 0;
  for (int64_t g = 0; g < G; ++g) R += sizes[g];
  // second layer: dw2, db2 from (hid, dy); scratch = dy · w2ᵀ (half operands: hid and dy rounded to t)
  {
    std::optional<DeviceBlock> hid_h, dy_h;
    if (half) {
      hid_h.emplace(rounded_copy(device, t, hid, R * H));
      dy_h.emplace(rounded_copy(device, t, dy, R * D));
    }
    grouped_backward(device, t, G, sizes, H, D, half ? hid_h->p : hid, w2, dy, half ? dy_h->p : dy, scratch, dw2, db2, reference);
  }
  if (!dx && !dw1 && !db1) return;  // the first layer's gradients are not wanted: no dpre
  if (R * H) {
    cu::set_device(device);
    dispatch_float(at, "expert_ffn_backward", [&](auto tag) {  // dpre = scratch · act'(pre)
      using T = decltype(tag);
      k_act_grad<T><<<cu::blocks_for(R * H, cu::kBlock), cu::kBlock>>>(R * H, act, static_cast<T*>(scratch), static_cast<const T*>(pre));
    });
    cu::launched("expert_ffn_backward (activation)");
  }
  // first layer: dx, dw1, db1 from (x, dpre)
  std::optional<DeviceBlock> dpre_h;
  if (half) dpre_h.emplace(rounded_copy(device, t, scratch, R * H));
  grouped_backward(device, t, G, sizes, D, H, x, w1, scratch, half ? dpre_h->p : scratch, dx, dw1, db1, reference);
}

}  // namespace vlmoe
