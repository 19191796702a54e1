// Used when the addon is built without a CUDA compiler: no devices, no CUDA backend (backend.h),
// and a clear error from anything that would need one.
#include <stdexcept>

#include "../backend.h"
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
// No CUDA backend: the one place a CUDA device's kernels would be reached.
Backend& cuda_backend(int) { no_cuda(); }
// The device runtime that storage and the NCCL communicator reach directly.
void* cuda_alloc(int, size_t) { no_cuda(); }
void cuda_free(int, void*) { no_cuda(); }
void cuda_empty_cache(int) {}
CudaMemInfo cuda_mem_info(int) { return {}; }
void cuda_memset(int, void*, int, size_t) { no_cuda(); }
void cuda_set_device(int) { no_cuda(); }
CublasInfo cuda_cublas_info() { return CublasInfo{false, 0, "", "this build has no CUDA support"}; }
void* cuda_stream_create(int) { no_cuda(); }
void cuda_stream_destroy(int, void*) {}
void* cuda_event_create(int) { no_cuda(); }
void cuda_event_destroy(int, void*) {}
void cuda_event_record(int, void*, void*) { no_cuda(); }
void cuda_stream_wait_event(int, void*, void*) { no_cuda(); }
bool cuda_event_done(int, void*) { no_cuda(); }
}  // namespace vlmoe
