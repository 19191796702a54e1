// NCCL communicator: the `nccl` backend of @vlmoe/parallel, for CUDA tensors. NCCL itself is
// loaded at run time (nccl_loader.h); the unique id is exchanged by the caller over a CPU
// process group (the store, as torch's TCPStore). Every collective is queued on the device's
// stream and then polled against the timeout: on expiry (a peer died or stalled) the
// communicator is aborted and the call throws, naming the rank — never a hang.
// The communicator's stream is its own (non-blocking, high priority; cuda/streams.h): a
// collective first waits for what the compute stream has queued (an event), then runs beside
// it, so an async all-reduce on the communication thread overlaps the rest of backward;
// completion is polled on an event recorded after it, never on the compute stream.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "../dtype.h"
#include "communicator.h"
#include "nccl_loader.h"
#include "reduce_op.h"

namespace vlmoe {

class NcclComm final : public Communicator {
 public:
  NcclComm(const ncclUniqueId& id, int rank, int world, int device, int64_t timeout_ms);
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int device() const override { return device_; }
  const char* backend() const override { return "nccl"; }
  void set_timeout(int64_t ms) override { timeout_ms_ = ms; }

  void barrier() override;
  void all_reduce(DType t, ReduceOp op, void* data, int64_t n) override;
  void broadcast(DType t, void* data, int64_t n, int root) override;
  void all_gather(DType t, const void* in, int64_t n, void* out) override;
  void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) override;
  void all_to_all(DType t, const void* in, const int64_t* send_counts, void* out, const int64_t* recv_counts) override;
  void send(DType t, const void* data, int64_t n, int dst) override;
  void recv(DType t, void* data, int64_t n, int src) override;
  void abort(const std::string& why) override;
  // An event recorded now on the compute stream (submitting thread), for run_after.
  void* mark_submitted() override;
  // The next collective's stream waits for `fence` (from mark_submitted) instead of for
  // everything queued on the compute stream when it starts; nullptr: done with it.
  void run_after(void* fence) override;

 private:
  void check(ncclResult_t r, const char* what);
  // Orders the communication stream after the work queued so far on the compute stream.
  void begin();
  // Waits for the collective just queued, against the timeout.
  void finish(const char* what);
  const NcclApi& api_;
  ncclComm_t comm_ = nullptr;
  int rank_, world_, device_;
  int64_t timeout_ms_;
  void* scratch_ = nullptr;  // one device word for barrier()
  void* stream_ = nullptr;   // the communication stream
  void* ready_ = nullptr;    // recorded on the compute stream before a collective
  void* done_ = nullptr;     // recorded on stream_ after it
  void* fence_ = nullptr;    // set by run_after for the collective about to run
  std::mutex events_mu_;
  std::vector<void*> spare_events_;  // fences to reuse (recorded again by mark_submitted)
  bool aborted_ = false;
};

}  // namespace vlmoe
