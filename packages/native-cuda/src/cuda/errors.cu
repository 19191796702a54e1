// Errors found inside kernels (an index out of range): a kernel cannot throw, and checking
// on the host would cost a synchronisation per op. Each device has one error record in
// mapped (zero-copy) host memory; the first failing thread of any kernel claims it with an
// atomic compare-and-swap and fills it; the kernel skips the bad element. The host looks at
// the record at every synchronisation point (reads to the host, synchronize()) and throws
// there, naming the op, the index and the bound — PyTorch's device-side assert, without
// poisoning the CUDA context.
#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "common.cuh"
#include "cuda_backend.h"
#include "errors.cuh"

namespace vlmoe {

namespace {
std::mutex g_mu;
KernelError* g_host[64] = {};
KernelError* g_dev[64] = {};

const char* op_name(int code) {
  switch (code) {
    case kErrIndexSelect: return "index_select";
    case kErrIndexAdd: return "index_add";
    case kErrGather: return "gather";
    case kErrScatterAdd: return "scatter_add";
    case kErrMoeRow: return "moe permute (row)";
    case kErrMoeExpert: return "moe_assign (expert)";
    case kErrCrossEntropyTarget: return "cross_entropy (target)";
    default: return "a kernel";
  }
}
}  // namespace

KernelError* cuda_error_record(int device) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (device < 0 || device >= 64) throw std::invalid_argument("cuda: device ordinal out of range");
  if (!g_dev[device]) {
    cu::set_device(device);
    void* h = nullptr;
    cu::check(cudaHostAlloc(&h, sizeof(KernelError), cudaHostAllocMapped), "cudaHostAlloc (kernel error record)");
    *static_cast<KernelError*>(h) = KernelError{};
    void* d = nullptr;
    cu::check(cudaHostGetDevicePointer(&d, h, 0), "cudaHostGetDevicePointer");
    g_host[device] = static_cast<KernelError*>(h);
    g_dev[device] = static_cast<KernelError*>(d);
  }
  return g_dev[device];
}

void cuda_raise_kernel_errors(int device) {
  KernelError* h;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    h = device >= 0 && device < 64 ? g_host[device] : nullptr;
  }
  if (!h) return;
  volatile KernelError* v = h;
  if (v->code == 0) return;
  const int code = v->code;
  const long long value = v->value, bound = v->bound;
  v->value = 0;
  v->bound = 0;
  v->code = 0;
  if (code == kErrMoeDuplicateRow)
    throw std::invalid_argument("moe permute (cuda:" + std::to_string(device) + "): row " + std::to_string(value) +
                                " is the target of two assignments (rows must be distinct; found by a kernel since the last synchronisation)");
  if (code == kErrCrossEntropyTarget)
    throw std::out_of_range("cross_entropy (cuda:" + std::to_string(device) + "): target " + std::to_string(value) + " is out of range for " +
                            std::to_string(bound) + " classes and is not ignore_index (found by a kernel since the last synchronisation; the row's loss and gradient were set to 0)");
  throw std::out_of_range(std::string(op_name(code)) + " (cuda:" + std::to_string(device) + "): index " + std::to_string(value) +
                          " is out of range for a dimension of size " + std::to_string(bound) +
                          " (found by a kernel since the last synchronisation; the element was skipped)");
}

}  // namespace vlmoe
