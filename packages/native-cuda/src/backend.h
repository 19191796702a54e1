// One device's kernels behind one table (candle's backend trait, tinygrad's one-file device).
// The bindings (bindings/*.cpp) read and check an op's operands, then call the backend of
// their device: `backend_for(device).op(...)`. The CPU (cpu/backend.cpp) and the CUDA
// (cuda/backend.cpp) backends implement every entry — the compiler checks it (pure
// virtuals). A build without a CUDA compiler has no CUDA backend: backend_for(a CUDA
// device) throws one clear error. A new kernel touches its kernel files, its line here and
// in the two backends, and one binding.
//
// Operand conventions are the CPU kernels' (cpu/*.h, cpu/kernels.h); pointers are device
// pointers of the backend's device.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/cross_entropy.h"
#include "cpu/kernels.h"
#include "cpu/moe_gate.h"
#include "dtype.h"
#include "iter.h"
#include "ops.h"
#include "optim_types.h"
#include "storage.h"

namespace vlmoe {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // memory: host copies, fills (every dtype, bfloat16 / float16 included), waiting for queued work
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void fill(DType t, void* dst, int64_t n, double value) = 0;
  virtual void synchronize() = 0;

  // elementwise
  virtual void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) = 0;
  // a cast with a bfloat16 / float16 side
  virtual void half_cast(DType in, DType out, Iter& it) = 0;
  virtual void pred(PredOp op, DType in, Iter& it) = 0;
  virtual void binary(BinaryOp op, DType t, Iter& it, const OpParams& p) = 0;
  virtual void compare(CmpOp op, DType t, Iter& it) = 0;
  virtual void where(DType t, Iter& it) = 0;

  // reductions
  virtual void reduce(int op, DType t, Iter& it, bool with_index) = 0;
  virtual void cumsum(DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride) = 0;
  virtual void topk(DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values, int64_t* indices) = 0;

  // neural-network kernels (forward and backward)
  virtual void softmax(DType t, const SoftmaxArgs& a) = 0;
  virtual void softmax_backward(DType t, RowArgs r, bool log, const void* y, const void* g, void* dx) = 0;
  virtual void attention_forward(DType t, const AttentionArgs& a) = 0;
  virtual void attention_backward(DType t, const AttentionArgs& a) = 0;
  virtual void layernorm_forward(DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd) = 0;
  virtual void layernorm_backward(DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd, const void* g, void* dx, void* dw,
                                  void* db) = 0;
  virtual void cross_entropy_forward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse) = 0;
  virtual void cross_entropy_backward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g,
                                      void* dlogits) = 0;

  // GEMM: row-major strided batched (cpu/gemm.h); `reference`: the plain kernel (tests)
  virtual void gemm(DType t, int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t strideA,
                    const void* B, int64_t ldb, int64_t strideB, double beta, void* C, int64_t ldc, int64_t strideC, bool reference) = 0;
  // A and B bfloat16 / float16 (or C of another dtype): float32 accumulation
  virtual void gemm_half(DType ab, DType c, int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                         int64_t strideA, const void* B, int64_t ldb, int64_t strideB, double beta, void* C, int64_t ldc, int64_t strideC) = 0;

  // indexing
  virtual void index_select(DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, void* out) = 0;
  virtual void index_add(DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, const void* src) = 0;
  virtual void gather(DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size) = 0;
  virtual void scatter_add(DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size) = 0;

  // random numbers (the same Philox streams on every device) and dropout
  virtual void rand_uniform(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) = 0;
  virtual void rand_normal(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) = 0;
  virtual void rand_int(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) = 0;
  virtual void dropout(DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) = 0;

  // MoE
  virtual void moe_assign(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority, int64_t* slot,
                          int64_t* counts_before, int64_t* counts_after, int64_t* counts_first, int64_t* row) = 0;
  virtual void moe_gate_forward(DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial,
                                void* lse) = 0;
  virtual void moe_combine_forward(DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                                   const int64_t* counts, const void* lse, void* cw, void* aux, void* z) = 0;
  virtual void moe_gate_backward(DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts,
                                 const void* lse, const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits) = 0;
  // rows distinct and in [-1, R): the CPU throws now, a GPU reports at the next synchronisation
  virtual void moe_check_rows(int64_t S, int64_t k, int64_t R, const int64_t* row, const char* op) = 0;
  virtual void moe_permute(DType t, bool unpermute, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) = 0;
  virtual void moe_unpermute_weight_grad(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout, const void* y, void* dw) = 0;
  // the grouped GEMMs: `sizes` are host arrays
  virtual void grouped_linear_forward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b, void* y,
                                      bool reference) = 0;
  virtual void grouped_linear_backward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, void* dx,
                                       void* dw, void* db, bool reference) = 0;
  virtual void expert_ffn_forward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* b1,
                                  const void* w2, const void* b2, void* pre, void* hid, void* y, bool reference) = 0;
  virtual void expert_ffn_backward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* w2,
                                   const void* pre, const void* hid, const void* dy, void* scratch, void* dx, void* dw1, void* db1, void* dw2, void* db2,
                                   bool reference) = 0;

  // the fused multi-tensor optimisers (cpu/optim.h)
  virtual void adam_step(DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count) = 0;
  virtual void sgd_step(DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count) = 0;
  virtual double multi_tensor_norm(DType t, int kind, double p, const PlainSegment* segs, int64_t count) = 0;
  virtual void multi_tensor_scale(DType t, double scale, const PlainSegment* segs, int64_t count) = 0;
};

// The CPU backend (cpu/backend.cpp).
Backend& cpu_backend();
// The backend of CUDA device `device` (cuda/backend.cpp); throws in a build without CUDA (cuda/cuda_stub.cpp).
Backend& cuda_backend(int device);
// The backend of a storage device (kCpu or a CUDA ordinal).
inline Backend& backend_for(int device) { return device == kCpu ? cpu_backend() : cuda_backend(device); }

}  // namespace vlmoe
