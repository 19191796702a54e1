#include "streams.h"

#include <cuda_runtime.h>

#include "common.cuh"

namespace vlmoe {
using cu::check;
using cu::set_device;
}  // namespace vlmoe

namespace vlmoe {

void* cuda_stream_create(int device) {
  set_device(device);
  int least = 0, greatest = 0;
  check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
  cudaStream_t s = nullptr;
  // communication first when both streams have work ready (as NCCL's own streams in torch)
  check(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, greatest), "cudaStreamCreateWithPriority");
  return s;
}

void cuda_stream_destroy(int device, void* stream) {
  if (!stream) return;
  set_device(device);
  cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

void* cuda_event_create(int device) {
  set_device(device);
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return e;
}

void cuda_event_destroy(int device, void* event) {
  if (!event) return;
  set_device(device);
  cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void cuda_event_record(int device, void* event, void* stream) {
  set_device(device);
  check(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}

void cuda_stream_wait_event(int device, void* stream, void* event) {
  set_device(device);
  check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0), "cudaStreamWaitEvent");
}

bool cuda_event_done(int device, void* event) {
  set_device(device);
  const cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (e == cudaErrorNotReady) return false;
  check(e, "cudaEventQuery");
  return true;
}

}  // namespace vlmoe
