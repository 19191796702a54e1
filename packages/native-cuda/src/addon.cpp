// The N-API module of @vlmoe/native-cuda: the build facts (`info`), the thread pool size, and
// the registration of every binding domain (bindings/*.cpp: memory, elementwise, reduce, nn,
// moe, gemm, index, random, optim, comm). Every op is one synchronous call; numeric
// arguments travel through the shared argument block (args.h); a binding checks its operands
// and calls the backend of their device (backend.h). C++ exceptions become JS Errors
// carrying the kernel's message.
#include <napi.h>

#include <atomic>

#include "bindings/common.h"
#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cuda/cuda_backend.h"
#include "threadpool.h"

namespace vlmoe {

double g_args[kArgsLen];

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cudaCompiled", cuda_compiled());
  o.Set("cudaDevices", cuda_device_count());
  o.Set("blas", gemm_backend_name());
  o.Set("blasAvailable", gemm_openblas_available());
  o.Set("gemmKernel", gemm_simd_name());
  o.Set("gemmChoice", gemm_choice_reason());
  o.Set("threads", num_threads());
  o.Set("simd", cpu_simd_name());
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(I(info, 0));
  return info.Env().Undefined();
}

// The addon's state (argument block, handle table, block cache, thread pool) is
// process-wide and unsynchronised: only one JS thread may load it.
std::atomic<bool> g_loaded{false};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (g_loaded.exchange(true))
    throw Napi::Error::New(env, "@vlmoe/native-cuda is already loaded by another JavaScript thread of this process; use it from one thread (e.g. the main thread) and pass typed arrays to workers");
  Napi::Object dtypes = Napi::Object::New(env);
  for (int i = 0; i < kNumDTypes; ++i) dtypes.Set(dtype_name(DType(i)), i);
  exports.Set("dtypes", dtypes);
  register_memory(env, exports);
  register_elementwise(env, exports);
  register_reduce(env, exports);
  register_nn(env, exports);
  register_moe(env, exports);
  register_gemm(env, exports);
  register_index(env, exports);
  register_random(env, exports);
  register_optim(env, exports);
  register_comm(env, exports);
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  return exports;
}

}  // namespace

}  // namespace vlmoe

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vlmoe::Init(env, exports); }
NODE_API_MODULE(vlmoe_native, InitModule)
