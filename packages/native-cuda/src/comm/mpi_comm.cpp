// The `mpi` backend of @vlmoe/parallel's process groups: OpenMPI (any MPI-3 library) through
// the addon, built when CMake finds MPI. Ranks are started by mpirun and may span machines.
//
// Every collective is the non-blocking MPI-3 variant (MPI_Iallreduce, …) completed by
// polling MPI_Test against a deadline, so a stuck peer yields an error naming the operation
// and the timeout instead of a hang; MPI has no way to cancel a collective, so after a
// timeout the job is aborted (MPI_Abort), which is what mpirun does anyway when a rank dies.
#include "mpi_comm.h"

#ifdef VLMOE_HAVE_MPI
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <climits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vlmoe {
namespace {

bool g_inited = false;

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::b8: return MPI_UINT8_T;
    default: throw std::invalid_argument(std::string("mpi: dtype ") + dtype_name(t) + " is not supported");
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  return MPI_SUM;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(std::string("mpi ") + what + ": " + std::string(msg, len));
  }
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}


int to_int(int64_t v, const char* what) {
  if (v > INT32_MAX) throw std::invalid_argument(std::string("mpi ") + what + ": " + std::to_string(v) + " elements exceed MPI's int count; split the tensor");
  return static_cast<int>(v);
}

}  // namespace

bool mpi_available() { return true; }

struct MpiComm::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
};

MpiComm::MpiComm(int64_t timeout_ms) : impl_(new Impl), timeout_ms_(timeout_ms) {
  if (!g_inited) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "init");
      // MPI wants every process that initialised it to finalise it before exiting (else
      // mpirun reports an improper exit); runs before the communicators' destructors
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    g_inited = true;
  }
  check(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm), "comm_dup");
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &world_);
}

MpiComm::MpiComm(MpiComm& parent, const std::vector<int>& ranks) : impl_(new Impl), timeout_ms_(parent.timeout_ms_) {
  MPI_Group pg, ng;
  MPI_Comm_group(parent.impl_->comm, &pg);
  MPI_Group_incl(pg, static_cast<int>(ranks.size()), ranks.data(), &ng);
  // collective over the parent: every member gets the new communicator, others MPI_COMM_NULL
  check(MPI_Comm_create(parent.impl_->comm, ng, &impl_->comm), "comm_create");
  MPI_Group_free(&pg);
  MPI_Group_free(&ng);
  if (impl_->comm != MPI_COMM_NULL) {
    MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(impl_->comm, &rank_);
    MPI_Comm_size(impl_->comm, &world_);
  }
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && impl_->comm != MPI_COMM_NULL) MPI_Comm_free(&impl_->comm);
  delete impl_;
}

bool MpiComm::member() const { return impl_->comm != MPI_COMM_NULL; }

void MpiComm::wait(void* request, const char* what) {
  MPI_Request* req = static_cast<MPI_Request*>(request);
  const int64_t deadline = now_ms() + timeout_ms_;
  int done = 0;
  for (int spins = 0;; ++spins) {
    check(MPI_Test(req, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (now_ms() > deadline) {
      const std::string msg = std::string("mpi ") + what + " on rank " + std::to_string(rank_) + ": timed out after " + std::to_string(timeout_ms_) + " ms (a peer died or is stuck); aborting the job";
      std::fprintf(stderr, "%s\n", msg.c_str());
      MPI_Abort(MPI_COMM_WORLD, 70);
      throw std::runtime_error(msg);
    }
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void MpiComm::barrier() {
  MPI_Request r;
  check(MPI_Ibarrier(impl_->comm, &r), "barrier");
  wait(&r, "barrier");
}

void MpiComm::all_reduce(DType t, ReduceOp op, void* data, int64_t n) {
  MPI_Request r;
  check(MPI_Iallreduce(MPI_IN_PLACE, data, to_int(n, "allReduce"), mpi_type(t), mpi_op(op), impl_->comm, &r), "allReduce");
  wait(&r, "allReduce");
  if (op == ReduceOp::avg) scale_for_avg(t, data, n, 1.0 / world_);
}

void MpiComm::broadcast(DType t, void* data, int64_t n, int root) {
  MPI_Request r;
  check(MPI_Ibcast(data, to_int(n, "broadcast"), mpi_type(t), root, impl_->comm, &r), "broadcast");
  wait(&r, "broadcast");
}

void MpiComm::all_gather(DType t, const void* in, int64_t n, void* out) {
  MPI_Request r;
  check(MPI_Iallgather(in, to_int(n, "allGather"), mpi_type(t), out, to_int(n, "allGather"), mpi_type(t), impl_->comm, &r), "allGather");
  wait(&r, "allGather");
}

void MpiComm::reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) {
  std::vector<int> rc(world_);
  bool equal = true;
  for (int j = 0; j < world_; ++j) rc[j] = to_int(counts[j], "reduceScatter"), equal = equal && counts[j] == counts[0];
  MPI_Request r;
  if (equal) check(MPI_Ireduce_scatter_block(in, out, rc[0], mpi_type(t), mpi_op(op), impl_->comm, &r), "reduceScatter");
  else check(MPI_Ireduce_scatter(in, out, rc.data(), mpi_type(t), mpi_op(op), impl_->comm, &r), "reduceScatter");
  wait(&r, "reduceScatter");
  if (op == ReduceOp::avg) scale_for_avg(t, out, counts[rank_], 1.0 / world_);
}

void MpiComm::all_to_all(DType t, const void* in, const int64_t* send_counts, void* out, const int64_t* recv_counts) {
  std::vector<int> sc(world_), sd(world_), rc(world_), rd(world_);
  int64_t so = 0, ro = 0;
  for (int j = 0; j < world_; ++j) {
    sc[j] = to_int(send_counts[j], "allToAll"), sd[j] = to_int(so, "allToAll"), so += send_counts[j];
    rc[j] = to_int(recv_counts[j], "allToAll"), rd[j] = to_int(ro, "allToAll"), ro += recv_counts[j];
  }
  MPI_Request r;
  check(MPI_Ialltoallv(in, sc.data(), sd.data(), mpi_type(t), out, rc.data(), rd.data(), mpi_type(t), impl_->comm, &r), "allToAll");
  wait(&r, "allToAll");
}

void MpiComm::send(DType t, const void* data, int64_t n, int dst) {
  MPI_Request r;
  check(MPI_Isend(data, to_int(n, "send"), mpi_type(t), dst, 0, impl_->comm, &r), "send");
  wait(&r, "send");
}

void MpiComm::recv(DType t, void* data, int64_t n, int src) {
  MPI_Request r;
  check(MPI_Irecv(data, to_int(n, "recv"), mpi_type(t), src, 0, impl_->comm, &r), "recv");
  wait(&r, "recv");
}

void MpiComm::abort(const std::string& why) {
  std::fprintf(stderr, "mpi: rank %d aborts the job: %s\n", rank_, why.c_str());
  MPI_Abort(MPI_COMM_WORLD, 71);
  std::abort();
}

}  // namespace vlmoe

#else  // no MPI found at build time

#include <stdexcept>

namespace vlmoe {

bool mpi_available() { return false; }

[[noreturn]] static void no_mpi() {
  throw std::runtime_error("mpi: this build has no MPI (install libopenmpi-dev and rebuild @vlmoe/native-cuda)");
}

struct MpiComm::Impl {};
MpiComm::MpiComm(int64_t) { no_mpi(); }
MpiComm::MpiComm(MpiComm&, const std::vector<int>&) { no_mpi(); }
MpiComm::~MpiComm() {}
bool MpiComm::member() const { return false; }
void MpiComm::wait(void*, const char*) { no_mpi(); }
void MpiComm::barrier() { no_mpi(); }
void MpiComm::all_reduce(DType, ReduceOp, void*, int64_t) { no_mpi(); }
void MpiComm::broadcast(DType, void*, int64_t, int) { no_mpi(); }
void MpiComm::all_gather(DType, const void*, int64_t, void*) { no_mpi(); }
void MpiComm::reduce_scatter(DType, ReduceOp, const void*, const int64_t*, void*) { no_mpi(); }
void MpiComm::all_to_all(DType, const void*, const int64_t*, void*, const int64_t*) { no_mpi(); }
void MpiComm::send(DType, const void*, int64_t, int) { no_mpi(); }
void MpiComm::recv(DType, void*, int64_t, int) { no_mpi(); }
void MpiComm::abort(const std::string&) { no_mpi(); }

}  // namespace vlmoe

#endif
