// The CUDA backend: every entry of backend.h on one CUDA device, through the kernel launchers
// of cuda/*.cu (declared in cuda_backend.h). Built only when CMake finds a CUDA compiler; a
// build without one has no CUDA backend (cuda_stub.cpp: cuda_backend() throws).
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../backend.h"
#include "cuda_backend.h"

namespace vlmoe {
namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : d_(device) {}
  const char* name() const override { return "cuda"; }

  void copy_from_host(void* dst, const void* src, size_t nbytes) override { cuda_copy_h2d(d_, dst, src, nbytes); }
  void copy_to_host(void* dst, const void* src, size_t nbytes) override { cuda_copy_d2h(d_, dst, src, nbytes); }
  void fill(DType t, void* dst, int64_t n, double value) override {
    if (is_half(t)) cuda_half_fill(d_, t, dst, n, value);
    else cuda_fill(d_, t, dst, n, value);
  }
  void synchronize() override { cuda_synchronize(d_); }

  void unary(UnaryOp op, DType in, DType out, Iter& it, const OpParams& p) override { cuda_unary(d_, op, in, out, it, p); }
  void half_cast(DType in, DType out, Iter& it) override { cuda_half_cast(d_, in, out, it); }
  void pred(PredOp op, DType in, Iter& it) override { cuda_pred(d_, op, in, it); }
  void binary(BinaryOp op, DType t, Iter& it, const OpParams& p) override { cuda_binary(d_, op, t, it, p); }
  void compare(CmpOp op, DType t, Iter& it) override { cuda_compare(d_, op, t, it); }
  void where(DType t, Iter& it) override { cuda_where(d_, t, it); }

  void reduce(int op, DType t, Iter& it, bool with_index) override { cuda_reduce(d_, op, t, it, with_index); }
  void cumsum(DType t, Iter& it, int64_t len, int64_t in_stride, int64_t out_stride) override { cuda_cumsum(d_, t, it, len, in_stride, out_stride); }
  void topk(DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values, int64_t* indices) override { cuda_topk(d_, t, r, k, largest, x, values, indices); }

  void softmax(DType t, const SoftmaxArgs& a) override { cuda_softmax(d_, t, a); }
  void softmax_backward(DType t, RowArgs r, bool log, const void* y, const void* g, void* dx) override { cuda_softmax_backward(d_, t, r, log, y, g, dx); }
  void attention_forward(DType t, const AttentionArgs& a) override { cuda_attention_forward(d_, t, a); }
  void attention_backward(DType t, const AttentionArgs& a) override { cuda_attention_backward(d_, t, a); }
  void layernorm_forward(DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd) override {
    cuda_layernorm_forward(d_, t, r, eps, x, w, b, y, mean, rstd);
  }
  void layernorm_backward(DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd, const void* g, void* dx, void* dw,
                          void* db) override {
    cuda_layernorm_backward(d_, t, r, x, w, mean, rstd, g, dx, dw, db);
  }
  void cross_entropy_forward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, void* loss, void* lse) override {
    cuda_cross_entropy_forward(d_, t, a, logits, target, loss, lse);
  }
  void cross_entropy_backward(DType t, const CrossEntropyArgs& a, const void* logits, const void* target, const void* lse, const void* g, void* dlogits) override {
    cuda_cross_entropy_backward(d_, t, a, logits, target, lse, g, dlogits);
  }

  void gemm(DType t, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA, const void* B,
            int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC, bool reference) override {
    cuda_gemm(d_, t, batch, ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, reference);
  }
  void gemm_half(DType ab, DType c, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA,
                 const void* B, int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC) override {
    cuda_gemm_half(d_, ab, c, batch, ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, false);
  }

  void index_select(DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, void* out) override {
    cuda_index_select(d_, t, x, outer, size, inner, it, idx, m, out);
  }
  void index_add(DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m, const void* src) override {
    cuda_index_add(d_, t, out, outer, size, inner, it, idx, m, src);
  }
  void gather(DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size) override { cuda_gather(d_, t, it_dtype, it, x_dim_stride, x_dim_size); }
  void scatter_add(DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size) override {
    cuda_scatter_add(d_, t, it_dtype, it, out_dim_stride, out_dim_size);
  }

  void rand_uniform(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) override { cuda_rand_uniform(d_, t, dst, n, seed, offset, lo, hi); }
  void rand_normal(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) override {
    cuda_rand_normal(d_, t, dst, n, seed, offset, mean, std);
  }
  void rand_int(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) override { cuda_rand_int(d_, t, dst, n, seed, offset, low, high); }
  void dropout(DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) override {
    cuda_dropout(d_, t, x, y, mask, n, p, seed, offset);
  }

  void moe_assign(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority, int64_t* slot, int64_t* counts_before,
                  int64_t* counts_after, int64_t* counts_first, int64_t* row) override {
    cuda_moe_assign(d_, S, k, E, C, policy, expert, priority, slot, counts_before, counts_after, counts_first, row);
  }
  void moe_gate_forward(DType t, const MoeGateArgs& a, const void* logits, void* gates, int64_t* index, double* topval, double* col_partial, void* lse) override {
    cuda_moe_gate_forward(d_, t, a, logits, gates, index, topval, col_partial, lse);
  }
  void moe_combine_forward(DType g, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const double* col_partial,
                           const int64_t* counts, const void* lse, void* cw, void* aux, void* z) override {
    cuda_moe_combine_forward(d_, g, a, gates, index, slot, col_partial, counts, lse, cw, aux, z);
  }
  void moe_gate_backward(DType t, const MoeGateArgs& a, const void* gates, const int64_t* index, const int64_t* slot, const int64_t* counts, const void* lse,
                         const void* g_gates, const void* g_cw, const void* g_aux, const void* g_z, void* dlogits) override {
    cuda_moe_gate_backward(d_, t, a, gates, index, slot, counts, lse, g_gates, g_cw, g_aux, g_z, dlogits);
  }
  // reported at the next synchronisation
  void moe_check_rows(int64_t S, int64_t k, int64_t R, const int64_t* row, const char*) override { cuda_moe_check_rows(d_, S, k, R, row); }
  void moe_permute(DType t, bool unpermute, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) override {
    cuda_moe_permute(d_, t, unpermute, S, k, d, R, row, w, src, dst);
  }
  void moe_unpermute_weight_grad(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout, const void* y, void* dw) override {
    cuda_moe_unpermute_weight_grad(d_, t, S, k, d, R, row, dout, y, dw);
  }
  void grouped_linear_forward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* b, void* y,
                              bool reference) override {
    cuda_grouped_linear_forward(d_, t, G, sizes, K, N, x, w, b, y, reference);
  }
  void grouped_linear_backward(DType t, int64_t G, const int64_t* sizes, int64_t K, int64_t N, const void* x, const void* w, const void* dy, void* dx, void* dw,
                               void* db, bool reference) override {
    cuda_grouped_linear_backward(d_, t, G, sizes, K, N, x, w, dy, dx, dw, db, reference);
  }
  void expert_ffn_forward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* b1, const void* w2,
                          const void* b2, void* pre, void* hid, void* y, bool reference) override {
    cuda_expert_ffn_forward(d_, t, G, sizes, D, H, act, x, w1, b1, w2, b2, pre, hid, y, reference);
  }
  void expert_ffn_backward(DType t, int64_t G, const int64_t* sizes, int64_t D, int64_t H, int act, const void* x, const void* w1, const void* w2, const void* pre,
                           const void* hid, const void* dy, void* scratch, void* dx, void* dw1, void* db1, void* dw2, void* db2, bool reference) override {
    cuda_expert_ffn_backward(d_, t, G, sizes, D, H, act, x, w1, w2, pre, hid, dy, scratch, dx, dw1, db1, dw2, db2, reference);
  }

  void adam_step(DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count) override { cuda_adam_step(d_, t, h, segs, count); }
  void sgd_step(DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count) override { cuda_sgd_step(d_, t, h, segs, count); }
  double multi_tensor_norm(DType t, int kind, double p, const PlainSegment* segs, int64_t count) override { return cuda_multi_tensor_norm(d_, t, kind, p, segs, count); }
  void multi_tensor_scale(DType t, double scale, const PlainSegment* segs, int64_t count) override { cuda_multi_tensor_scale(d_, t, scale, segs, count); }

 private:
  int d_;
};

}  // namespace

Backend& cuda_backend(int device) {
  // one backend per visible device, made once (thread-safe static initialisation)
  static const std::vector<std::unique_ptr<CudaBackend>> all = [] {
    std::vector<std::unique_ptr<CudaBackend>> v;
    for (int d = 0; d < cuda_device_count(); ++d) v.push_back(std::make_unique<CudaBackend>(d));
    return v;
  }();
  if (device < 0 || device >= static_cast<int>(all.size()))
    throw std::invalid_argument("cuda:" + std::to_string(device) + " is not a visible CUDA device (" + std::to_string(all.size()) + " visible)");
  return *all[static_cast<size_t>(device)];
}

}  // namespace vlmoe
