// The one interface of the communicators (shm, mpi, nccl) that the bindings drive: counts in
// elements. MpiComm and NcclComm implement it directly; ShmCommunicator adapts ShmComm (whose
// transport counts bytes).
#pragma once
#include <cstdint>
#include <string>

#include "../dtype.h"
#include "../storage.h"
#include "reduce_op.h"

namespace vlmoe {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  /** Where the tensors it moves live: kCpu (shm, mpi) or a CUDA ordinal (nccl). */
  virtual int device() const { return kCpu; }
  virtual const char* backend() const = 0;
  virtual void set_timeout(int64_t ms) = 0;
  virtual void barrier() = 0;
  virtual void all_reduce(DType t, ReduceOp op, void* data, int64_t n) = 0;
  virtual void broadcast(DType t, void* data, int64_t n, int root) = 0;
  virtual void all_gather(DType t, const void* in, int64_t n, void* out) = 0;
  // in: consecutive blocks of counts[j] elements for rank j; out: counts[rank] elements
  virtual void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) = 0;
  virtual void all_to_all(DType t, const void* in, const int64_t* send_counts, void* out, const int64_t* recv_counts) = 0;
  virtual void send(DType t, const void* data, int64_t n, int dst) = 0;
  virtual void recv(DType t, void* data, int64_t n, int src) = 0;
  virtual void abort(const std::string& why) = 0;
  // Async collectives on a device: mark_submitted() runs on the submitting thread and returns
  // a fence of the work queued so far (nullptr when the backend needs none); run_after(fence)
  // runs on the communication thread just before the collective, so it waits for exactly
  // that work, not for what was queued later; run_after(nullptr) after it (or on error).
  virtual void* mark_submitted() { return nullptr; }
  virtual void run_after(void*) {}
};

}  // namespace vlmoe
