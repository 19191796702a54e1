// Used when the addon is built without a CUDA compiler: no devices, clear errors.
#include <stdexcept>

#include "cuda_backend.h"
#include "streams.h"

namespace vlmoe {
namespace {
[[noreturn]] void no_cuda() {
  throw std::runtime_error("this build of @vlmoe/native-cuda has no CUDA support (no CUDA compiler was found at build time)");
}
}  // namespace
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
void* cuda_alloc(int, size_t) { no_cuda(); }
void cuda_free(int, void*) { no_cuda(); }
void cuda_empty_cache(int) {}
CudaMemInfo cuda_mem_info(int) { return {}; }
void cuda_copy_h2d(int, void*, const void*, size_t) { no_cuda(); }
void cuda_copy_d2h(int, void*, const void*, size_t) { no_cuda(); }
void cuda_synchronize(int) { no_cuda(); }
void cuda_memset(int, void*, int, size_t) { no_cuda(); }
void cuda_set_device(int) { no_cuda(); }
void cuda_fill(int, DType, void*, int64_t, double) { no_cuda(); }
void cuda_unary(int, UnaryOp, DType, DType, Iter&, const OpParams&) { no_cuda(); }
void cuda_pred(int, PredOp, DType, Iter&) { no_cuda(); }
void cuda_binary(int, BinaryOp, DType, Iter&, const OpParams&) { no_cuda(); }
void cuda_compare(int, CmpOp, DType, Iter&) { no_cuda(); }
void cuda_where(int, DType, Iter&) { no_cuda(); }
void cuda_gemm(int, DType, int64_t, bool, bool, int64_t, int64_t, int64_t, double, const void*, int64_t, int64_t, const void*, int64_t, int64_t, double, void*, int64_t,
               int64_t, bool) {
  no_cuda();
}
void cuda_reduce(int, int, DType, Iter&, bool) { no_cuda(); }
void cuda_cumsum(int, DType, Iter&, int64_t, int64_t, int64_t) { no_cuda(); }
void cuda_softmax(int, DType, const SoftmaxArgs&) { no_cuda(); }
void cuda_softmax_backward(int, DType, RowArgs, bool, const void*, const void*, void*) { no_cuda(); }
void cuda_attention_forward(int, DType, const AttentionArgs&) { no_cuda(); }
void cuda_attention_backward(int, DType, const AttentionArgs&) { no_cuda(); }
void cuda_layernorm_forward(int, DType, RowArgs, double, const void*, const void*, const void*, void*, void*, void*) { no_cuda(); }
void cuda_layernorm_backward(int, DType, RowArgs, const void*, const void*, const void*, const void*, const void*, void*, void*, void*) { no_cuda(); }
void cuda_cross_entropy_forward(int, DType, const CrossEntropyArgs&, const void*, const void*, void*, void*) { no_cuda(); }
void cuda_cross_entropy_backward(int, DType, const CrossEntropyArgs&, const void*, const void*, const void*, const void*, void*) { no_cuda(); }
void cuda_index_select(int, DType, const void*, int64_t, int64_t, int64_t, DType, const void*, int64_t, void*) { no_cuda(); }
void cuda_index_add(int, DType, void*, int64_t, int64_t, int64_t, DType, const void*, int64_t, const void*) { no_cuda(); }
void cuda_gather(int, DType, DType, Iter&, int64_t, int64_t) { no_cuda(); }
void cuda_scatter_add(int, DType, DType, Iter&, int64_t, int64_t) { no_cuda(); }
void cuda_raise_kernel_errors(int) {}
void cuda_rand_int(int, DType, void*, int64_t, uint64_t, uint64_t, int64_t, int64_t) { no_cuda(); }
void cuda_dropout(int, DType, const void*, void*, uint8_t*, int64_t, double, uint64_t, uint64_t) { no_cuda(); }
void cuda_topk(int, DType, RowArgs, int64_t, bool, const void*, void*, int64_t*) { no_cuda(); }
void cuda_adam_step(int, DType, const AdamHyper&, const AdamSegment*, int64_t) { no_cuda(); }
void cuda_sgd_step(int, DType, const SgdHyper&, const SgdSegment*, int64_t) { no_cuda(); }
double cuda_multi_tensor_norm(int, DType, int, double, const PlainSegment*, int64_t) { no_cuda(); }
void cuda_multi_tensor_scale(int, DType, double, const PlainSegment*, int64_t) { no_cuda(); }
void cuda_moe_assign(int, int64_t, int64_t, int64_t, int64_t, int, const int64_t*, const double*, int64_t*, int64_t*, int64_t*, int64_t*, int64_t*) { no_cuda(); }
void cuda_moe_gate_forward(int, DType, const MoeGateArgs&, const void*, void*, int64_t*, double*, double*, void*) { no_cuda(); }
void cuda_moe_combine_forward(int, DType, const MoeGateArgs&, const void*, const int64_t*, const int64_t*, const double*, const int64_t*, const void*, void*, void*,
                              void*) {
  no_cuda();
}
void cuda_moe_gate_backward(int, DType, const MoeGateArgs&, const void*, const int64_t*, const int64_t*, const int64_t*, const void*, const void*, const void*,
                            const void*, const void*, void*) {
  no_cuda();
}
void cuda_moe_check_rows(int, int64_t, int64_t, int64_t, const int64_t*) { no_cuda(); }
void cuda_moe_permute(int, DType, bool, int64_t, int64_t, int64_t, int64_t, const int64_t*, const void*, const void*, void*) { no_cuda(); }
void cuda_moe_unpermute_weight_grad(int, DType, int64_t, int64_t, int64_t, int64_t, const int64_t*, const void*, const void*, void*) { no_cuda(); }
void cuda_grouped_linear_forward(int, DType, int64_t, const int64_t*, int64_t, int64_t, const void*, const void*, const void*, void*, bool) { no_cuda(); }
void cuda_grouped_linear_backward(int, DType, int64_t, const int64_t*, int64_t, int64_t, const void*, const void*, const void*, void*, void*, void*, bool) { no_cuda(); }
void cuda_expert_ffn_forward(int, DType, int64_t, const int64_t*, int64_t, int64_t, int, const void*, const void*, const void*, const void*, const void*, void*, void*,
                             void*, bool) {
  no_cuda();
}
void cuda_expert_ffn_backward(int, DType, int64_t, const int64_t*, int64_t, int64_t, int, const void*, const void*, const void*, const void*, const void*, const void*,
                              void*, void*, void*, void*, void*, void*, bool) {
  no_cuda();
}
void cuda_half_cast(int, DType, DType, Iter&) { no_cuda(); }
void cuda_half_fill(int, DType, void*, int64_t, double) { no_cuda(); }
void cuda_gemm_half(int, DType, DType, int64_t, bool, bool, int64_t, int64_t, int64_t, double, const void*, int64_t, int64_t, const void*, int64_t, int64_t, double, void*,
                    int64_t, int64_t, bool) {
  no_cuda();
}
CublasInfo cuda_cublas_info() { return CublasInfo{false, 0, "", "this build has no CUDA support"}; }
void cuda_rand_uniform(int, DType, void*, int64_t, uint64_t, uint64_t, double, double) { no_cuda(); }
void cuda_rand_normal(int, DType, void*, int64_t, uint64_t, uint64_t, double, double) { no_cuda(); }
void* cuda_stream_create(int) { no_cuda(); }
void cuda_stream_destroy(int, void*) {}
void* cuda_event_create(int) { no_cuda(); }
void cuda_event_destroy(int, void*) {}
void cuda_event_record(int, void*, void*) { no_cuda(); }
void cuda_stream_wait_event(int, void*, void*) { no_cuda(); }
bool cuda_event_done(int, void*) { no_cuda(); }
}  // namespace vlmoe
