// The CUDA side of the addon. Built from cuda/*.cu when CMake finds a CUDA compiler
// (VLMOE_HAVE_CUDA); otherwise cuda_stub.cpp provides the same functions, which report
// zero devices and raise a clear error if called.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "../dtype.h"
#include "../dynlib.h"
#include "../cpu/cross_entropy.h"
#include "../cpu/moe_gate.h"
#include "../cpu/kernels.h"
#include "../iter.h"
#include "../ops.h"
#include "../optim_types.h"

namespace vlmoe {

bool cuda_compiled();
int cuda_device_count();  // 0 when no driver or no GPU
// The caching allocator (cuda/allocator.cu): size-class free lists per device.
void* cuda_alloc(int device, size_t nbytes);
void cuda_free(int device, void* p);
// Returns the cached (free) blocks of `device` to the driver.
void cuda_empty_cache(int device);
struct CudaMemInfo {
  size_t in_use = 0;         // bytes of live blocks (size classes)
  size_t cached = 0;         // bytes of free blocks kept for reuse
  size_t reserved_peak = 0;  // most bytes ever held from the driver
};
CudaMemInfo cuda_mem_info(int device);
void cuda_copy_h2d(int device, void* dst, const void* src, size_t nbytes);
void cuda_copy_d2h(int device, void* dst, const void* src, size_t nbytes);
void cuda_synchronize(int device);
// Sets n bytes at dst to `byte` (stream-ordered).
void cuda_memset(int device, void* dst, int byte, size_t n);
// Makes `device` current for the calling thread (NCCL and kernels act on the current device).
void cuda_set_device(int device);
void cuda_fill(int device, DType t, void* dst, int64_t n, double value);
// Elementwise families, same operand conventions as the CPU kernels (kernels.h).
void cuda_unary(int device, UnaryOp op, DType in, DType out, Iter& it, const OpParams& p);
void cuda_pred(int device, PredOp op, DType in, Iter& it);
void cuda_binary(int device, BinaryOp op, DType t, Iter& it, const OpParams& p);
void cuda_compare(int device, CmpOp op, DType t, Iter& it);
void cuda_where(int device, DType t, Iter& it);
// GEMM (cuda/gemm.cu), the CPU GEMM's row-major strided-batched semantics (cpu/gemm.h):
// cuBLAS when it loads, else (and with `reference`) our own tiled kernel.
void cuda_gemm(int device, DType t, int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
               int64_t strideA, const void* B, int64_t ldb, int64_t strideB, double beta, void* C, int64_t ldc, int64_t strideC, bool reference);
// Row kernels and reductions, the CPU kernels' semantics (cpu/kernels.h).
void cuda_reduce(int device, int op, DType t, Iter& it, bool with_index);
void cuda_cumsum(int device, DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride);
void cuda_softmax(int device, DType t, const SoftmaxArgs& a);
void cuda_softmax_backward(int device, DType t, RowArgs r, bool log, const void* y, const void* g, void* dx);
// Fused flash attention (cuda/attention.cu), cpu/kernels.h's AttentionArgs semantics; takes
// float32, float64 and bf16 / f16 storage (float32 accumulation), head dims up to 128.
void cuda_attention_forward(int device, DType t, const AttentionArgs& a);
void cuda_attention_backward(int device, DType t, const AttentionArgs& a);
void cuda_layernorm_forward(int device, DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd);
void cuda_layernorm_backward(int device, DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd, const void* g, void* dx, void* dw,
                             void* db);
// Fused cross entropy (cpu/cross_entropy.h semantics; also bfloat16 / float16 logits with
// float32 loss, lse and g); a bad target is reported at the next synchronisation.
void cuda_cross_entropy_forward(int device, DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse);
void cuda_cross_entropy_backward(int device, DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g,
                                 void* dlogits);
// Indexing (cpu/index.h semantics); a bad index is reported at the next synchronisation.
void cuda_index_select(int device, DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, void* out);
void cuda_index_add(int device, DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, const void* src);
void cuda_gather(int device, DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size);
void cuda_scatter_add(int device, DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size);
// Throws the first error a kernel reported on `device` since the last call (errors.cu).
void cuda_raise_kernel_errors(int device);
void cuda_rand_int(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
void cuda_dropout(int device, DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset);
void cuda_topk(int device, DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values, int64_t* indices);
// The fused optimisers (cuda/optim.cu), cpu/optim.h's semantics.
void cuda_adam_step(int device, DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count);
void cuda_sgd_step(int device, DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count);
double cuda_multi_tensor_norm(int device, DType t, int kind, double p, const PlainSegment* segs, int64_t count);
void cuda_multi_tensor_scale(int device, DType t, double scale, const PlainSegment* segs, int64_t count);
// The MoE kernels (cuda/moe.cu), the CPU kernels' semantics (cpu/moe_assign.h,
// cpu/moe_permute.h, cpu/grouped_gemm.h); `sizes` are host arrays. For the grouped GEMMs `t`
// is the dtype of x and the weights: with bfloat16 / float16 they multiply with float32
// accumulation and every other operand (biases, outputs, pre / hid, dy, scratch, gradients)
// is float32 (mixed precision, autocast).
void cuda_moe_assign(int device, int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority, int64_t* slot,
                     int64_t* countsBefore, int64_t* countsAfter, int64_t* countsFirst, int64_t* row);
// The fused gating (cuda/moe_gate.cu), cpu/moe_gate.h's semantics; the forward also takes
// bfloat16 / float16 logits (float32 math, float32 gates and lse), E ≤ 1024.
void cuda_moe_gate_forward(int device, DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse);
void cuda_moe_combine_forward(int device, DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                              const int64_t* counts, const void* lse, void* cw, void* aux, void* z);
void cuda_moe_gate_backward(int device, DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts,
                            const void* lse, const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits);
void cuda_moe_check_rows(int device, int64_t S, int64_t k, int64_t R, const int64_t* row);
void cuda_moe_permute(int device, DType t, bool unpermute, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst);
void cuda_moe_unpermute_weight_grad(int device, DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout, const void* y, void* dw);
void cuda_grouped_linear_forward(int device, DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b, void* y,
                                 bool reference);
void cuda_grouped_linear_backward(int device, DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, void* dx,
                                  void* dw, void* db, bool reference);
void cuda_expert_ffn_forward(int device, DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* b1,
                             const void* w2, const void* b2, void* pre, void* hid, void* y, bool reference);
void cuda_expert_ffn_backward(int device, DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* w2,
                              const void* pre, const void* hid, const void* dy, void* scratch, void* dx, void* dw1, void* db1, void* dw2, void* db2, bool reference);
// bfloat16 / float16 (cuda/half.cu): casts to and from every dtype (one side half), fill.
void cuda_half_cast(int device, DType in, DType out, Iter& it);
void cuda_half_fill(int device, DType t, void* dst, int64_t n, double value);
// GEMM with bf16 / f16 operands A and B (same dtype), float32 accumulation, C in float32 or
// the operands' dtype (cuBLAS GemmEx, else our kernel); the cuda_gemm conventions otherwise.
void cuda_gemm_half(int device, DType ab, DType c, int64_t batch, bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
                    int64_t lda, int64_t strideA, const void* B, int64_t ldb, int64_t strideB, double beta, void* C, int64_t ldc, int64_t strideC, bool reference);
using CublasInfo = LibraryInfo;
CublasInfo cuda_cublas_info();
void cuda_rand_uniform(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
void cuda_rand_normal(int device, DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);

}  // namespace vlmoe
