// The shm transport (shm.h, byte counts) as a Communicator (element counts).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "communicator.h"
#include "shm.h"

namespace vlmoe {

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

}  // namespace vlmoe
