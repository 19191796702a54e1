#include "nccl_comm.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../cuda/cuda_backend.h"
#include "../cuda/streams.h"

namespace vlmoe {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::u8:
    case DType::b8: return ncclUint8;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
  }
  throw std::invalid_argument("nccl: unsupported dtype");
}

ncclRedOp_t nccl_op(ReduceOp op, DType t) {
  if (t == DType::b8 && op != ReduceOp::max && op != ReduceOp::min) throw std::invalid_argument("nccl: bool tensors reduce with 'max' or 'min' only");
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::avg:
      if (t != DType::f32 && t != DType::f64 && !is_half(t)) throw std::invalid_argument(std::string("nccl: 'avg' needs a floating dtype, got ") + dtype_name(t));
      return ncclAvg;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  throw std::invalid_argument("nccl: unknown reduce op");
}

size_t count(int64_t n) {
  if (n < 0) throw std::invalid_argument("nccl: negative element count");
  return static_cast<size_t>(n);
}

}  // namespace

NcclComm::NcclComm(const ncclUniqueId& id, int rank, int world, int device, int64_t timeout_ms)
    : api_(nccl_api()), rank_(rank), world_(world), device_(device), timeout_ms_(timeout_ms) {
  if (world < 1 || rank < 0 || rank >= world) throw std::invalid_argument("nccl: rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world) + ")");
  if (api_.version < 21000) throw std::runtime_error("nccl: version code " + std::to_string(api_.version) + " is older than 2.10 (needed for 'avg')");
  cuda_set_device(device);
  check(api_.CommInitRank(&comm_, world, id, rank), "ncclCommInitRank");
  scratch_ = cuda_alloc(device, 256);
  stream_ = cuda_stream_create(device);
  ready_ = cuda_event_create(device);
  done_ = cuda_event_create(device);
}

NcclComm::~NcclComm() {
  if (scratch_) {
    try {
      cuda_free(device_, scratch_);
    } catch (...) {
    }
  }
  if (comm_) {
    if (aborted_) api_.CommAbort(comm_);
    else api_.CommDestroy(comm_);
  }
  try {
    if (fence_) spare_events_.push_back(fence_);
    for (void* e : spare_events_) cuda_event_destroy(device_, e);
    cuda_event_destroy(device_, done_);
    cuda_event_destroy(device_, ready_);
    cuda_stream_destroy(device_, stream_);
  } catch (...) {
  }
}

void NcclComm::begin() {
  cuda_set_device(device_);
  if (fence_) {
    // an async collective: wait for the work queued when it was submitted, not for the
    // backward kernels JavaScript queued since (the overlap this stream exists for)
    cuda_stream_wait_event(device_, stream_, fence_);
  } else {
    cuda_event_record(device_, ready_, nullptr);
    cuda_stream_wait_event(device_, stream_, ready_);
  }
}

void* NcclComm::mark_submitted() {
  void* ev = nullptr;
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    if (!spare_events_.empty()) {
      ev = spare_events_.back();
      spare_events_.pop_back();
    }
  }
  if (!ev) ev = cuda_event_create(device_);
  cuda_event_record(device_, ev, nullptr);
  return ev;
}

void NcclComm::run_after(void* fence) {
  if (fence_) {
    // the stream's wait was enqueued already: the event may be recorded again (CUDA semantics)
    std::lock_guard<std::mutex> lock(events_mu_);
    spare_events_.push_back(fence_);
  }
  fence_ = fence;
}

void NcclComm::check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  std::string msg = std::string("nccl ") + what + " on rank " + std::to_string(rank_) + ": " + api_.GetErrorString(r);
  if (api_.GetLastError) {
    const char* last = api_.GetLastError(comm_);
    if (last && *last) msg += std::string(" (") + last + ")";
  }
  throw std::runtime_error(msg);
}

void NcclComm::finish(const char* what) {
  cuda_event_record(device_, done_, stream_);
  const int64_t deadline = now_ms() + timeout_ms_;
  for (int spins = 0;; ++spins) {
    if (cuda_event_done(device_, done_)) return;
    ncclResult_t async = ncclSuccess;
    check(api_.CommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) {
      aborted_ = true;
      api_.CommAbort(comm_);
      comm_ = nullptr;
      throw std::runtime_error(std::string("nccl ") + what + " on rank " + std::to_string(rank_) + " failed: " + api_.GetErrorString(async) + " (the communicator was aborted)");
    }
    if (now_ms() > deadline) {
      const std::string msg = std::string("nccl ") + what + " on rank " + std::to_string(rank_) + ": timed out after " + std::to_string(timeout_ms_) +
                              " ms (a peer died or is stuck); the communicator was aborted";
      std::fprintf(stderr, "%s\n", msg.c_str());
      aborted_ = true;
      api_.CommAbort(comm_);
      comm_ = nullptr;
      throw std::runtime_error(msg);
    }
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

#define VLMOE_NCCL_LIVE(what) \
  if (!comm_) throw std::runtime_error(std::string("nccl ") + what + ": the communicator was aborted by an earlier failure")

void NcclComm::barrier() {
  VLMOE_NCCL_LIVE("barrier");
  begin();
  check(api_.AllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, comm_, stream_), "barrier");
  finish("barrier");
}

void NcclComm::all_reduce(DType t, ReduceOp op, void* data, int64_t n) {
  VLMOE_NCCL_LIVE("allReduce");
  begin();
  check(api_.AllReduce(data, data, count(n), nccl_type(t), nccl_op(op, t), comm_, stream_), "allReduce");
  finish("allReduce");
}

void NcclComm::broadcast(DType t, void* data, int64_t n, int root) {
  VLMOE_NCCL_LIVE("broadcast");
  begin();
  check(api_.Broadcast(data, data, count(n), nccl_type(t), root, comm_, stream_), "broadcast");
  finish("broadcast");
}

void NcclComm::all_gather(DType t, const void* in, int64_t n, void* out) {
  VLMOE_NCCL_LIVE("allGather");
  begin();
  check(api_.AllGather(in, out, count(n), nccl_type(t), comm_, stream_), "allGather");
  finish("allGather");
}

void NcclComm::reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) {
  VLMOE_NCCL_LIVE("reduceScatter");
  const ncclDataType_t ty = nccl_type(t);  // before any group starts: these may throw
  const ncclRedOp_t ro = nccl_op(op, t);
  begin();
  bool equal = true;
  for (int j = 0; j < world_; ++j) equal = equal && counts[j] == counts[0];
  if (equal) {
    check(api_.ReduceScatter(in, out, count(counts[0]), ty, ro, comm_, stream_), "reduceScatter");
  } else {
    // uneven blocks: one ncclReduce per block, rooted at its owner, fused in a group
    const size_t es = dtype_size(t);
    const char* s = static_cast<const char*>(in);
    check(api_.GroupStart(), "reduceScatter (group start)");
    size_t off = 0;
    for (int j = 0; j < world_; ++j) {
      const ncclResult_t r = api_.Reduce(s + off * es, j == rank_ ? out : nullptr, count(counts[j]), ty, ro, j, comm_, stream_);
      if (r != ncclSuccess && r != ncclInProgress) {
        api_.GroupEnd();
        check(r, "reduceScatter");
      }
      off += count(counts[j]);
    }
    check(api_.GroupEnd(), "reduceScatter (group end)");
  }
  finish("reduceScatter");
}

void NcclComm::all_to_all(DType t, const void* in, const int64_t* send_counts, void* out, const int64_t* recv_counts) {
  VLMOE_NCCL_LIVE("allToAll");
  const ncclDataType_t ty = nccl_type(t);  // before the group starts: it may throw
  for (int j = 0; j < world_; ++j) (void)count(send_counts[j]), (void)count(recv_counts[j]);
  begin();
  const size_t es = dtype_size(t);
  const char* s = static_cast<const char*>(in);
  char* o = static_cast<char*>(out);
  size_t so = 0, ro = 0;
  check(api_.GroupStart(), "allToAll (group start)");
  for (int j = 0; j < world_; ++j) {
    ncclResult_t r = api_.Send(s + so * es, count(send_counts[j]), ty, j, comm_, stream_);
    if (r == ncclSuccess || r == ncclInProgress) r = api_.Recv(o + ro * es, count(recv_counts[j]), ty, j, comm_, stream_);
    if (r != ncclSuccess && r != ncclInProgress) {
      api_.GroupEnd();
      check(r, "allToAll");
    }
    so += count(send_counts[j]);
    ro += count(recv_counts[j]);
  }
  check(api_.GroupEnd(), "allToAll (group end)");
  finish("allToAll");
}

void NcclComm::send(DType t, const void* data, int64_t n, int dst) {
  VLMOE_NCCL_LIVE("send");
  begin();
  check(api_.Send(data, count(n), nccl_type(t), dst, comm_, stream_), "send");
  finish("send");
}

void NcclComm::recv(DType t, void* data, int64_t n, int src) {
  VLMOE_NCCL_LIVE("recv");
  begin();
  check(api_.Recv(data, count(n), nccl_type(t), src, comm_, stream_), "recv");
  finish("recv");
}

void NcclComm::abort(const std::string& why) {
  std::fprintf(stderr, "nccl: rank %d aborts its communicator: %s\n", rank_, why.c_str());
  if (comm_) {
    aborted_ = true;
    api_.CommAbort(comm_);
    comm_ = nullptr;
  }
}

}  // namespace vlmoe
