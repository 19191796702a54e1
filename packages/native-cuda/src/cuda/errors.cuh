// The kernel error record (errors.cu): device code reports the first bad index here.
#pragma once
#include <cuda_runtime.h>

namespace vlmoe {

struct KernelError {
  int code;  // 0: none
  int pad;
  long long value;
  long long bound;
};

enum KernelErrorCode : int { kErrIndexSelect = 1, kErrIndexAdd = 2, kErrGather = 3, kErrScatterAdd = 4, kErrMoeRow = 5, kErrMoeExpert = 6, kErrMoeDuplicateRow = 7, kErrCrossEntropyTarget = 8 };

// The device's record (mapped host memory), made on first use.
KernelError* cuda_error_record(int device);

__device__ __forceinline__ void report(KernelError* e, int code, long long value, long long bound) {
  if (atomicCAS(&e->code, 0, -1) == 0) {
    e->value = value;
    e->bound = bound;
    __threadfence_system();
    atomicExch(&e->code, code);
  }
}

}  // namespace vlmoe
