// The CPU backend: every entry of backend.h on the host kernels (cpu/*.cpp). The
// vectorised kernel sets are chosen at run time (VLMOE_CPU: AVX2/FMA or portable).
#include <cstring>
#include <stdexcept>
#include <string>

#include "../backend.h"
#include "cross_entropy.h"
#include "gemm.h"
#include "grouped_gemm.h"
#include "half_ops.h"
#include "index.h"
#include "kernels.h"
#include "moe_assign.h"
#include "moe_gate.h"
#include "moe_permute.h"
#include "optim.h"
#include "random.h"

namespace vlmoe {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void copy_from_host(void* dst, const void* src, size_t nbytes) override { std::memcpy(dst, src, nbytes); }
  void copy_to_host(void* dst, const void* src, size_t nbytes) override { std::memcpy(dst, src, nbytes); }
  void fill(DType t, void* dst, int64_t n, double value) override {
    if (is_half(t)) half_fill(t, dst, n, value);
    else VLMOE_CPU(fill, t, dst, n, value);
  }
  void synchronize() override {}

  void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) override { VLMOE_CPU(unary, op, in, out, it, p); }
  void half_cast(DType in, DType out, Iter& it) override { ::vlmoe::half_cast(in, out, it); }
  void pred(PredOp op, DType in, Iter& it) override { VLMOE_CPU(pred, op, in, it); }
  void binary(BinaryOp op, DType t, Iter& it, const OpParams& p) override { VLMOE_CPU(binary, op, t, it, p); }
  void compare(CmpOp op, DType t, Iter& it) override { VLMOE_CPU(compare, op, t, it); }
  void where(DType t, Iter& it) override { VLMOE_CPU(where, t, it); }

  void reduce(int op, DType t, Iter& it, bool with_index) override { VLMOE_CPU(reduce, op, t, it, nullptr, with_index, nullptr, nullptr); }
  void cumsum(DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride) override { VLMOE_CPU(cumsum, t, it, len, in_stride, out_stride); }
  void topk(DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values, int64_t* indices) override {
    VLMOE_CPU(topk, t, r, k, largest, x, values, indices);
  }

  void softmax(DType t, const SoftmaxArgs& a) override { VLMOE_CPU(softmax_forward, t, a); }
  void softmax_backward(DType t, RowArgs r, bool log, const void* y, const void* g, void* dx) override { VLMOE_CPU(softmax_backward, t, r, log, y, g, dx); }
  void attention_forward(DType t, const AttentionArgs& a) override { VLMOE_CPU(attention_forward, t, a); }
  void attention_backward(DType t, const AttentionArgs& a) override { VLMOE_CPU(attention_backward, t, a); }
  void layernorm_forward(DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd) override {
    VLMOE_CPU(layernorm_forward, t, r, eps, x, w, b, y, mean, rstd);
  }
  void layernorm_backward(DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd, const void* g, void* dx, void* dw,
                          void* db) override {
    VLMOE_CPU(layernorm_backward, t, r, x, w, mean, rstd, g, dx, dw, db);
  }
  void cross_entropy_forward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse) override {
    ::vlmoe::cross_entropy_forward(t, a, logits, target, loss, lse);
  }
  void cross_entropy_backward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g, void* dlogits) override {
    ::vlmoe::cross_entropy_backward(t, a, logits, target, lse, g, dlogits);
  }

  void gemm(DType t, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA, const void* B,
            int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC, bool reference) override {
    if (t != DType::f32 && t != DType::f64)
      throw std::invalid_argument(std::string(reference ? "gemm_reference" : "matmul") + ": dtype " + dtype_name(t) + " is not supported (use float32 or float64)");
    const bool f32 = t == DType::f32;
    if (!reference) {
      if (f32)
        gemm_batched_f32(batch, ta, tb, M, N, K, float(alpha), static_cast<const float*>(A), lda, sA, static_cast<const float*>(B), ldb, sB, float(beta),
                         static_cast<float*>(C), ldc, sC);
      else
        gemm_batched_f64(batch, ta, tb, M, N, K, alpha, static_cast<const double*>(A), lda, sA, static_cast<const double*>(B), ldb, sB, beta,
                         static_cast<double*>(C), ldc, sC);
      return;
    }
    for (int64_t b = 0; b < batch; ++b) {
      if (f32)
        gemm_reference_f32(ta, tb, M, N, K, float(alpha), static_cast<const float*>(A) + b * sA, lda, static_cast<const float*>(B) + b * sB, ldb, float(beta),
                           static_cast<float*>(C) + b * sC, ldc);
      else
        gemm_reference_f64(ta, tb, M, N, K, alpha, static_cast<const double*>(A) + b * sA, lda, static_cast<const double*>(B) + b * sB, ldb, beta,
                           static_cast<double*>(C) + b * sC, ldc);
    }
  }
  void gemm_half(DType ab, DType c, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA,
                 const void* B, int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC) override {
    gemm_half_cpu(ab, c, batch, ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC);
  }

  void index_select(DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, void* out) override {
    ::vlmoe::index_select(t, x, outer, size, inner, it, idx, m, out);
  }
  void index_add(DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, const void* src) override {
    ::vlmoe::index_add(t, out, outer, size, inner, it, idx, m, src);
  }
  void gather(DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size) override { ::vlmoe::gather(t, it_dtype, it, x_dim_stride, x_dim_size); }
  void scatter_add(DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size) override {
    ::vlmoe::scatter_add(t, it_dtype, it, out_dim_stride, out_dim_size);
  }

  void rand_uniform(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) override { ::vlmoe::rand_uniform(t, dst, n, seed, offset, lo, hi); }
  void rand_normal(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) override {
    ::vlmoe::rand_normal(t, dst, n, seed, offset, mean, std);
  }
  void rand_int(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) override { ::vlmoe::rand_int(t, dst, n, seed, offset, low, high); }
  void dropout(DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) override {
    ::vlmoe::dropout(t, x, y, mask, n, p, seed, offset);
  }

  void moe_assign(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority, int64_t* slot, int64_t* counts_before,
                  int64_t* counts_after, int64_t* counts_first, int64_t* row) override {
    ::vlmoe::moe_assign(S, k, E, C, policy, expert, priority, slot, counts_before, counts_after, counts_first, row);
  }
  void moe_gate_forward(DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse) override {
    ::vlmoe::moe_gate_forward(t, a, logits, gates, index, topval, col_partial, lse);
  }
  void moe_combine_forward(DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                           const int64_t* counts, const void* lse, void* cw, void* aux, void* z) override {
    ::vlmoe::moe_combine_forward(g, a, gates, index, slot, col_partial, counts, lse, cw, aux, z);
  }
  void moe_gate_backward(DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts, const void* lse,
                         const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits) override {
    ::vlmoe::moe_gate_backward(t, a, gates, index, slot, counts, lse, g_gates, g_cw, g_aux, g_z, dlogits);
  }
  void moe_check_rows(int64_t S, int64_t k, int64_t R, const int64_t* row, const char* op) override { ::vlmoe::moe_check_rows(S, k, R, row, op); }
  void moe_permute(DType t, bool unpermute, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) override {
    (unpermute ? ::vlmoe::moe_unpermute : ::vlmoe::moe_permute)(t, S, k, d, R, row, w, src, dst);
  }
  void moe_unpermute_weight_grad(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout, const void* y, void* dw) override {
    ::vlmoe::moe_unpermute_weight_grad(t, S, k, d, R, row, dout, y, dw);
  }
  void grouped_linear_forward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b, void* y,
                              bool reference) override {
    ::vlmoe::grouped_linear_forward(t, G, sizes, K, N, x, w, b, y, reference);
  }
  void grouped_linear_backward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, void* dx, void* dw,
                               void* db, bool reference) override {
    ::vlmoe::grouped_linear_backward(t, G, sizes, K, N, x, w, dy, dx, dw, db, reference);
  }
  void expert_ffn_forward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* b1, const void* w2,
                          const void* b2, void* pre, void* hid, void* y, bool reference) override {
    ::vlmoe::expert_ffn_forward(t, G, sizes, D, H, act, x, w1, b1, w2, b2, pre, hid, y, reference);
  }
  void expert_ffn_backward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* w2, const void* pre,
                           const void* hid, const void* dy, void* scratch, void* dx, void* dw1, void* db1, void* dw2, void* db2, bool reference) override {
    ::vlmoe::expert_ffn_backward(t, G, sizes, D, H, act, x, w1, w2, pre, hid, dy, scratch, dx, dw1, db1, dw2, db2, reference);
  }

  void adam_step(DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count) override { ::vlmoe::adam_step(t, h, segs, count); }
  void sgd_step(DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count) override { ::vlmoe::sgd_step(t, h, segs, count); }
  double multi_tensor_norm(DType t, int kind, double p, const PlainSegment* segs, int64_t count) override {
    return ::vlmoe::multi_tensor_norm(t, kind, p, segs, count);
  }
  void multi_tensor_scale(DType t, double scale, const PlainSegment* segs, int64_t count) override { ::vlmoe::multi_tensor_scale(t, scale, segs, count); }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

}  // namespace vlmoe
