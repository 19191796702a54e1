// N-API bindings, GEMM: matmul (float32 / float64, and bfloat16 / float16 operands), the reference kernel, the BLAS peer for benchmarks, the BLAS choice.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#ifdef VLMOE_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <stdexcept>
#include <string>

#include "common.h"
#include "../cpu/gemm.h"
#include "../cuda/cuda_backend.h"
#include "../napi_library.h"

namespace vlmoe {
namespace {

// cublasInfo(): whether cuBLAS loads (first call searches), its version and path, or why not.
Napi::Value CublasInfoJs(const Napi::CallbackInfo& info) { return library_info_js(info.Env(), cuda_cublas_info()); }

// The GEMM block: batch, M, N, K, alpha, beta, lda, ldb, ldc, strideA, strideB, strideC,
// A, B, C (handle, offset each), each view checked against its storage; C of dtype `ct`.
struct GemmCall {
  int64_t batch, M, N, K, lda, ldb, ldc, sA, sB, sC;
  double alpha, beta;
  Operand A, B, C;
};
static GemmCall read_gemm(Reader& r, const char* op, DType t, DType ct, bool ta, bool tb) {
  GemmCall g;
  g.batch = r.n(), g.M = r.n(), g.N = r.n(), g.K = r.n();
  g.alpha = r.f(), g.beta = r.f();
  g.lda = r.n(), g.ldb = r.n(), g.ldc = r.n(), g.sA = r.n(), g.sB = r.n(), g.sC = r.n();
  auto reach = [&](int64_t rows, int64_t cols, int64_t ld, int64_t s) {
    return (rows == 0 || cols == 0 || g.batch == 0) ? int64_t(-1) : (g.batch - 1) * s + (rows - 1) * ld + cols - 1;
  };
  g.A = r.ptr(t, 0, ta ? reach(g.K, g.M, g.lda, g.sA) : reach(g.M, g.K, g.lda, g.sA));
  g.B = r.ptr(t, 0, tb ? reach(g.N, g.K, g.ldb, g.sB) : reach(g.K, g.N, g.ldb, g.sB));
  g.C = r.ptr(ct, 0, reach(g.M, g.N, g.ldc, g.sC));
  if (g.A.device != g.C.device || g.B.device != g.C.device) throw std::invalid_argument(std::string(op) + ": operands are on different devices");
  return g;
}

// gemm(dtype, transA, transB[, cDtype]): the GEMM block; C in cDtype (float32 for a
// mixed-precision product of bfloat16 / float16 operands), else in dtype.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool ta = I(info, 1) != 0, tb = I(info, 2) != 0;
  const DType ct = info.Length() > 3 ? dtype_from_int(I(info, 3)) : t;
  Reader r("matmul");
  const GemmCall g = read_gemm(r, "matmul", t, ct, ta, tb);
  Backend& be = backend_for(g.C.device);
  if (is_half(t) || ct != t) be.gemm_half(t, ct, g.batch, ta, tb, g.M, g.N, g.K, g.alpha, g.A.ptr, g.lda, g.sA, g.B.ptr, g.ldb, g.sB, g.beta, g.C.ptr, g.ldc, g.sC);
  else be.gemm(t, g.batch, ta, tb, g.M, g.N, g.K, g.alpha, g.A.ptr, g.lda, g.sA, g.B.ptr, g.ldb, g.sB, g.beta, g.C.ptr, g.ldc, g.sC, false);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// gemmReference(dtype, transA, transB): the GEMM block, the plain kernel (tests).
Napi::Value GemmReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool ta = I(info, 1) != 0, tb = I(info, 2) != 0;
  Reader r("gemm_reference");
  const GemmCall g = read_gemm(r, "gemm_reference", t, t, ta, tb);
  backend_for(g.C.device).gemm(t, g.batch, ta, tb, g.M, g.N, g.K, g.alpha, g.A.ptr, g.lda, g.sA, g.B.ptr, g.ldb, g.sB, g.beta, g.C.ptr, g.ldc, g.sC, true);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// blasSgemmDirect(M, N, K, A, B, C): cblas_sgemm on contiguous row-major float32 storages,
// bypassing every layer of ours — the peer of the GEMM benchmark. Returns false when the
// addon was built without OpenBLAS.
Napi::Value BlasSgemmDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int64_t M = I(info, 0), N = I(info, 1), K = I(info, 2);
  const Buffer& a = storage_get(I(info, 3));
  const Buffer& b = storage_get(I(info, 4));
  const Buffer& c = storage_get(I(info, 5));
  if (a.nbytes < size_t(M * K * 4) || b.nbytes < size_t(K * N * 4) || c.nbytes < size_t(M * N * 4))
    throw std::out_of_range("blasSgemmDirect: storages are smaller than the product");
#ifdef VLMOE_HAVE_OPENBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, static_cast<const float*>(a.ptr), int(K),
              static_cast<const float*>(b.ptr), int(N), 0.0f, static_cast<float*>(c.ptr), int(N));
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);
#endif
  VLMOE_CATCH(env)
}

Napi::Value SetGemmBuiltin(const Napi::CallbackInfo& info) {
  gemm_set_force_builtin(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("cublasInfo", Napi::Function::New(env, CublasInfoJs, "cublasInfo"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("gemmReference", Napi::Function::New(env, GemmReference, "gemmReference"));
  exports.Set("blasSgemmDirect", Napi::Function::New(env, BlasSgemmDirect, "blasSgemmDirect"));
  exports.Set("setGemmBuiltin", Napi::Function::New(env, SetGemmBuiltin, "setGemmBuiltin"));
}

}  // namespace vlmoe
