// MPI communicator: the `mpi` backend of @vlmoe/parallel (see mpi_comm.cpp). Built with MPI
// when CMake finds it (VLMOE_HAVE_MPI); otherwise every entry point throws a clear error and
// mpi_available() is false.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../dtype.h"
#include "communicator.h"
#include "reduce_op.h"

namespace vlmoe {

bool mpi_available();

class MpiComm final : public Communicator {
 public:
  // The world (MPI_Init on first use; ranks come from mpirun).
  explicit MpiComm(int64_t timeout_ms);
  // Collective over `parent`: a communicator of the parent ranks `ranks` (member() is false
  // on the other ranks).
  MpiComm(MpiComm& parent, const std::vector<int>& ranks);
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  bool member() const;
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  const char* backend() const override { return "mpi"; }
  void set_timeout(int64_t ms) override { timeout_ms_ = ms; }

  void barrier() override;
  void all_reduce(DType t, ReduceOp op, void* data, int64_t n) override;
  void broadcast(DType t, void* data, int64_t n, int root) override;
  void all_gather(DType t, const void* in, int64_t n, void* out) override;
  void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) override;
  void all_to_all(DType t, const void* in, const int64_t* send_counts, void* out, const int64_t* recv_counts) override;
  void send(DType t, const void* data, int64_t n, int dst) override;
  void recv(DType t, void* data, int64_t n, int src) override;
  // MPI cannot cancel a collective: aborts the whole job (MPI_Abort)
  [[noreturn]] void abort(const std::string& why) override;

 private:
  struct Impl;
  void wait(void* request, const char* what);
  Impl* impl_ = nullptr;
  int rank_ = 0, world_ = 1;
  int64_t timeout_ms_ = 120000;
};

}  // namespace vlmoe
