// One interface over the communicators (shm, mpi, nccl) for the bindings: counts in elements.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "../dtype.h"
#include "../storage.h"
#include "mpi_comm.h"
#include "nccl_comm.h"
#include "reduce_op.h"
#include "shm.h"

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

class ShmCommunicator final : public Communicator {
 public:
  explicit ShmCommunicator(std::unique_ptr<ShmComm> c) : c_(std::move(c)) {}
  int rank() const override { return c_->rank(); }
  int world() const override { return c_->world(); }
  const char* backend() const override { return "shm"; }
  void set_timeout(int64_t ms) override { c_->set_timeout(ms); }
  void barrier() override { c_->barrier(); }
  void all_reduce(DType t, ReduceOp op, void* d, int64_t n) override { c_->all_reduce(t, op, d, n); }
  void broadcast(DType t, void* d, int64_t n, int root) override { c_->broadcast(d, n * es(t), root); }
  void all_gather(DType t, const void* in, int64_t n, void* out) override { c_->all_gather(in, n * es(t), out); }
  void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) override { c_->reduce_scatter(t, op, in, counts, out); }
  void all_to_all(DType t, const void* in, const int64_t* sc, void* out, const int64_t* rc) override {
    std::unique_ptr<int64_t[]> sb(new int64_t[c_->world()]), rb(new int64_t[c_->world()]);
    for (int j = 0; j < c_->world(); ++j) sb[j] = sc[j] * es(t), rb[j] = rc[j] * es(t);
    c_->all_to_all(in, sb.get(), out, rb.get());
  }
  void send(DType t, const void* d, int64_t n, int dst) override { c_->send(d, n * es(t), dst); }
  void recv(DType t, void* d, int64_t n, int src) override { c_->recv(d, n * es(t), src); }
  void abort(const std::string& why) override { c_->abort(why); }
  const ShmComm& raw() const { return *c_; }

 private:
  static int64_t es(DType t) { return static_cast<int64_t>(dtype_size(t)); }
  std::unique_ptr<ShmComm> c_;
};

// A communicator class C with the interface's collectives under the same names and
// element counts (MpiComm, NcclComm): forwarded as they are.
template <class C>
class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(std::unique_ptr<C> c) : c_(std::move(c)) {}
  C& raw() { return *c_; }
  int rank() const override { return c_->rank(); }
  int world() const override { return c_->world(); }
  void set_timeout(int64_t ms) override { c_->set_timeout(ms); }
  void barrier() override { c_->barrier(); }
  void all_reduce(DType t, ReduceOp op, void* d, int64_t n) override { c_->all_reduce(t, op, d, n); }
  void broadcast(DType t, void* d, int64_t n, int root) override { c_->broadcast(t, d, n, root); }
  void all_gather(DType t, const void* in, int64_t n, void* out) override { c_->all_gather(t, in, n, out); }
  void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) override { c_->reduce_scatter(t, op, in, counts, out); }
  void all_to_all(DType t, const void* in, const int64_t* sc, void* out, const int64_t* rc) override { c_->all_to_all(t, in, sc, out, rc); }
  void send(DType t, const void* d, int64_t n, int dst) override { c_->send(t, d, n, dst); }
  void recv(DType t, void* d, int64_t n, int src) override { c_->recv(t, d, n, src); }
  void abort(const std::string& why) override { c_->abort(why); }

 protected:
  std::unique_ptr<C> c_;
};

class MpiCommunicator final : public ForwardingCommunicator<MpiComm> {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  const char* backend() const override { return "mpi"; }
};

class NcclCommunicator final : public ForwardingCommunicator<NcclComm> {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  int device() const override { return c_->device(); }
  const char* backend() const override { return "nccl"; }
  void* mark_submitted() override { return c_->mark_submitted(); }
  void run_after(void* fence) override { c_->run_after(fence); }
};

}  // namespace vlmoe
