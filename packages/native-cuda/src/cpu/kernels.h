// The CPU kernel sets. The files of VLMOE_ISA_SOURCES (CMakeLists.txt) are compiled once
// portable (namespace cpu_portable) and, on x86-64, with -mavx2 -mfma (cpu_avx2) and with
// AVX-512 F/DQ/BW/VL (cpu_avx512). dispatch.cpp picks one set at start-up from the CPU's
// features (VLMOE_SIMD=portable|avx2 caps it), so one binary runs everywhere and uses the
// widest vectors the CPU has.
#pragma once
#include <cstdint>

#include "../dtype.h"
#include "../iter.h"
#include "../ops.h"

namespace vlmoe {

// Row layout for row-wise kernels (softmax, layer norm, topk, cumsum): `rows` rows of
// `cols` contiguous elements.
struct RowArgs {
  int64_t rows = 0, cols = 0;
};

// Softmax over the last dim of x [rows, cols] (contiguous) with an optional mask. The
// mask is an Iter-like strided operand over [rows, cols]: either bool (true = keep) or the
// same float type (added to the scores). y = softmax(scale * x + mask).
struct SoftmaxArgs {
  RowArgs r;
  double scale = 1.0;
  bool log = false;
  const void* x = nullptr;
  void* y = nullptr;
  const void* mask = nullptr;  // null: no mask
  bool mask_bool = false;
  int mask_ndim = 0;           // mask strides over the rows' multi-index, then the column stride
  int64_t row_shape[kMaxDims] = {};
  int64_t mask_stride[kMaxDims] = {};
  int64_t mask_col_stride = 0;
};

// Fused scaled-dot-product attention (flash style: no [Lq, Lk] matrix is stored) over
// contiguous q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv]:
//   s_ij = scale · q_i·k_j (+ mask_ij if additive; −inf where a bool mask is false or, when
//   causal, where j > i), out_i = softmax_j(s_i) · v, lse_i = log Σ_j exp(s_ij).
// A row whose keys are all masked gets out = 0 and lse = −inf (softmax's fully-masked rule),
// and passes no gradient. lse is float64 for float64 inputs, else float32. Backward (the
// FlashAttention-2 recurrence) reads q, k, v, out, lse, dout and writes dq, dk, dv.
struct AttentionArgs {
  int64_t B = 0, H = 0, Lq = 0, Lk = 0, D = 0, Dv = 0;
  double scale = 1.0;
  bool causal = false;
  const void* mask = nullptr;  // null: no mask
  bool mask_bool = false;      // true: bool keep-mask; false: additive, same dtype as q
  int64_t mask_stride[4] = {}; // over (b, h, query, key); 0 on broadcast dims
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;  // forward output; backward input
  void* lse = nullptr;  // forward output; backward input
  const void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
};

#define VLMOE_DECLARE_CPU_KERNELS                                                                  \
  void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p);                        \
  void pred(PredOp op, DType in, Iter& it);                                                        \
  void binary(BinaryOp op, DType t, Iter& it, const OpParams& p);                                  \
  void compare(CmpOp op, DType t, Iter& it);                                                       \
  void where(DType t, Iter& it);                                                                   \
  void fill(DType t, void* dst, int64_t n, double value);                                          \
  /* reduce: op 0 sum, 1 max, 2 min, 3 prod. Operands: out, in (out strides 0 on reduced */        \
  /* dims), optional index output (int64) when with_index. nreduce = reduced dim count. */         \
  void reduce(int op, DType t, Iter& it, const bool* reduced, bool with_index, int64_t* index_out, \
              const int64_t* index_stride);                                                        \
  void cumsum(DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride);              \
  void softmax_forward(DType t, const SoftmaxArgs& a);                                             \
  void softmax_backward(DType t, RowArgs r, bool log, const void* y, const void* g, void* dx);     \
  void layernorm_forward(DType t, RowArgs r, double eps, const void* x, const void* w,             \
                         const void* b, void* y, void* mean, void* rstd);                          \
  void layernorm_backward(DType t, RowArgs r, const void* x, const void* w, const void* mean,      \
                          const void* rstd, const void* g, void* dx, void* dw, void* db);          \
  void topk(DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values,              \
            int64_t* indices);                                                                     \
  void attention_forward(DType t, const AttentionArgs& a);                                         \
  void attention_backward(DType t, const AttentionArgs& a);

namespace cpu_portable {
VLMOE_DECLARE_CPU_KERNELS
}
#if defined(__x86_64__)
namespace cpu_avx2 {
VLMOE_DECLARE_CPU_KERNELS
}
namespace cpu_avx512 {
VLMOE_DECLARE_CPU_KERNELS
}
#endif

enum class CpuSimd { kPortable, kAvx2, kAvx512 };
// The kernel set in use (chosen once, at start-up) and its name: "avx512", "avx2-fma", "portable".
CpuSimd cpu_simd();
const char* cpu_simd_name();

#if defined(__x86_64__)
#define VLMOE_CPU(fn, ...)                                                                 \
  (::vlmoe::cpu_simd() == ::vlmoe::CpuSimd::kAvx512 ? ::vlmoe::cpu_avx512::fn(__VA_ARGS__) \
   : ::vlmoe::cpu_simd() == ::vlmoe::CpuSimd::kAvx2 ? ::vlmoe::cpu_avx2::fn(__VA_ARGS__)   \
                                                    : ::vlmoe::cpu_portable::fn(__VA_ARGS__))
#else
#define VLMOE_CPU(fn, ...) (::vlmoe::cpu_portable::fn(__VA_ARGS__))
#endif

}  // namespace vlmoe
