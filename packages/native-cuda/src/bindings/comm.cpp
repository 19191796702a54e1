// N-API bindings of the communicators (the shm and mpi backends of @vlmoe/parallel).
//
// commInitShm(name, rank, world, slotBytes, timeoutMs) / commInitMpi(timeoutMs) /
// commInitNccl(uniqueId, rank, world, device, timeoutMs) → id;
// commNewGroup(parent, ranks) (mpi) → id or −1 off the group; the collectives take the id,
// small integers, and tensor views in the argument block (handle, offset pairs), checked
// against their storages like every kernel's operands. Collectives block the caller, after
// every earlier async collective (commAllReduce / commReduceScatter with async = 1 return a ticket at once and runs
// on the communication thread, see async_queue.h; commWait(ticket)
// blocks until it ran and rethrows its error, commDone(ticket) polls).
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include <cstring>

#include "../comm/async_queue.h"
#include "../comm/communicator.h"
#include "../comm/mpi_comm.h"
#include "../comm/nccl_comm.h"
#include "../comm/nccl_loader.h"
#include "../comm/shm_communicator.h"
#include "../cuda/cuda_backend.h"
#include "../napi_library.h"
#include "common.h"

namespace vlmoe {
namespace {

std::vector<std::unique_ptr<Communicator>> g_comms;

Communicator& comm_nodrain(const Napi::CallbackInfo& info) {
  const int id = I(info, 0);
  if (id < 0 || id >= static_cast<int>(g_comms.size()) || !g_comms[id]) throw std::invalid_argument("comm: communicator " + std::to_string(id) + " is closed or was never opened");
  return *g_comms[id];
}

/** The communicator of a blocking call: every async collective queued before it runs first. */
Communicator& comm(const Napi::CallbackInfo& info) {
  Communicator& c = comm_nodrain(info);
  comm_queue().drain();
  return c;
}

// An async collective's fence (Communicator::mark_submitted) for the length of its job.
struct FenceScope {
  Communicator* c;
  FenceScope(Communicator* cp, void* fence) : c(cp) { c->run_after(fence); }
  ~FenceScope() { c->run_after(nullptr); }
};

bool is_async(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].IsNumber() && info[i].As<Napi::Number>().Int32Value() != 0; }

Napi::Value add(Napi::Env env, std::unique_ptr<Communicator> c) {
  g_comms.push_back(std::move(c));
  return Napi::Number::New(env, static_cast<double>(g_comms.size() - 1));
}

// A tensor operand of communicator c: on the CPU for shm and mpi, on c's CUDA device for nccl.
Operand data_block(Reader& r, const Communicator& c, DType t, int64_t n, const char* op) {
  Operand o = r.block(t, n);
  if (o.device != c.device()) {
    auto where = [](int d) { return d == kCpu ? std::string("the CPU") : "cuda:" + std::to_string(d); };
    throw std::invalid_argument(std::string(op) + ": the " + c.backend() + " backend of this group moves tensors on " + where(c.device()) + ", got one on " + where(o.device) +
                                (c.device() == kCpu ? " (nccl is for CUDA tensors)" : " (shm and mpi are for CPU tensors)"));
  }
  return o;
}

// commShmStats(id) → {mappedBytes, cmaBytes, stagedBytes, localBytes, mappings, mappedNowBytes}
// of a shm communicator (which path its all-to-alls took, shm.h).
Napi::Value CommShmStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Communicator& c = comm(info);
  const auto* shm = dynamic_cast<const ShmCommunicator*>(&c);
  if (!shm) throw std::invalid_argument(std::string("commShmStats: communicator ") + std::to_string(I(info, 0)) + " is " + c.backend() + ", not shm");
  const ShmComm::TransferStats s = shm->raw().transfer_stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("mappedBytes", static_cast<double>(s.mapped_bytes));
  o.Set("cmaBytes", static_cast<double>(s.cma_bytes));
  o.Set("stagedBytes", static_cast<double>(s.staged_bytes));
  o.Set("localBytes", static_cast<double>(s.local_bytes));
  o.Set("mappings", static_cast<double>(s.mappings));
  o.Set("mappedNowBytes", static_cast<double>(s.mapped_now_bytes));
  return o;
  VLMOE_CATCH(env)
}

Napi::Value CommInitShm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int rank = I(info, 1), world = I(info, 2);
  const double slot = info[3].As<Napi::Number>().DoubleValue(), timeout = info[4].As<Napi::Number>().DoubleValue();
  return add(env, std::make_unique<ShmCommunicator>(std::make_unique<ShmComm>(name, rank, world, static_cast<size_t>(slot), static_cast<int64_t>(timeout))));
  VLMOE_CATCH(env)
}

Napi::Value MpiAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), mpi_available()); }

Napi::Value NcclInfoJs(const Napi::CallbackInfo& info) { return library_info_js(info.Env(), nccl_info()); }

// ncclUniqueId() → 128 bytes (rank 0 makes it; the ranks share it over a CPU group)
Napi::Value NcclUniqueIdJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ncclUniqueId id{};
  const ncclResult_t r = nccl_api().GetUniqueId(&id);
  if (r != ncclSuccess) throw std::runtime_error(std::string("nccl: ncclGetUniqueId failed: ") + nccl_api().GetErrorString(r));
  Napi::Uint8Array a = Napi::Uint8Array::New(env, sizeof(id.internal));
  std::memcpy(a.Data(), id.internal, sizeof(id.internal));
  return a;
  VLMOE_CATCH(env)
}

// commInitNccl(uniqueId (Uint8Array of 128), rank, world, device, timeoutMs) → id
Napi::Value CommInitNccl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  ncclUniqueId id{};
  if (a.ByteLength() != sizeof(id.internal)) throw std::invalid_argument("commInitNccl: the unique id must be " + std::to_string(sizeof(id.internal)) + " bytes, got " + std::to_string(a.ByteLength()));
  std::memcpy(id.internal, a.Data(), sizeof(id.internal));
  const int rank = I(info, 1), world = I(info, 2), device = I(info, 3);
  const int64_t timeout = static_cast<int64_t>(info[4].As<Napi::Number>().DoubleValue());
  if (device < 0 || device >= cuda_device_count())
    throw std::invalid_argument("commInitNccl: device cuda:" + std::to_string(device) + " is not available (" + std::to_string(cuda_device_count()) + " CUDA device(s) visible" +
                                (cuda_compiled() ? "" : "; this build has no CUDA support") + ")");
  return add(env, std::make_unique<NcclComm>(id, rank, world, device, timeout));
  VLMOE_CATCH(env)
}

Napi::Value MpiInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  return add(env, std::make_unique<MpiComm>(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue())));
  VLMOE_CATCH(env)
}

// commNewGroup(parent, ranks[]): mpi only; −1 on ranks outside the new group.
Napi::Value MpiNewGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  auto* parent = dynamic_cast<MpiComm*>(&comm(info));
  if (!parent) throw std::invalid_argument("commNewGroup: only mpi communicators make subgroups natively");
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<int> ranks(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) ranks[i] = arr.Get(i).As<Napi::Number>().Int32Value();
  auto c = std::make_unique<MpiComm>(*parent, ranks);
  if (!c->member()) return Napi::Number::New(env, -1);
  return add(env, std::move(c));
  VLMOE_CATCH(env)
}

Napi::Value CommInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Communicator& c = comm(info);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, c.rank());
  a.Set(1u, c.world());
  return a;
  VLMOE_CATCH(env)
}

Napi::Value CommClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const int id = I(info, 0);
  comm_queue().drain();
  if (id >= 0 && id < static_cast<int>(g_comms.size())) g_comms[id].reset();
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value CommSetTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm(info).set_timeout(static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue()));
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value CommAbort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm_nodrain(info).abort(info[1].As<Napi::String>().Utf8Value());
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value CommBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm(info).barrier();
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commAllReduce(id, dtype, op, async): block: n, data → ticket when async
Napi::Value CommAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const bool async = is_async(info, 3);
  Communicator& c = async ? comm_nodrain(info) : comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int op = I(info, 2);
  if (op < 0 || op > 3) throw std::invalid_argument("allReduce: unknown reduce op " + std::to_string(op));
  Reader r("allReduce");
  const int64_t n = r.n();
  Operand d = data_block(r, c, t, n, "allReduce");
  if (async) {
    Communicator* cp = &c;
    void* ptr = d.ptr;
    void* fence = cp->mark_submitted();
    return Napi::Number::New(env, static_cast<double>(comm_queue().submit([cp, t, op, ptr, n, fence] {
      FenceScope f(cp, fence);
      cp->all_reduce(t, static_cast<ReduceOp>(op), ptr, n);
    })));
  }
  c.all_reduce(t, static_cast<ReduceOp>(op), d.ptr, n);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commBroadcast(id, dtype, root): block: n, data
Napi::Value CommBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Communicator& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  Reader r("broadcast");
  const int64_t n = r.n();
  Operand d = data_block(r, c, t, n, "broadcast");
  const int root = I(info, 2);
  if (root < 0 || root >= c.world()) throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is outside [0, " + std::to_string(c.world()) + ")");
  c.broadcast(t, d.ptr, n, root);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commAllGather(id, dtype): block: n, in (n), out (world·n)
// commAllGather(id, dtype, async): block: n, in (n), out (n · world) → ticket when async
Napi::Value CommAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const bool async = is_async(info, 2);
  Communicator& c = async ? comm_nodrain(info) : comm(info);
  DType t = dtype_from_int(I(info, 1));
  Reader r("allGather");
  const int64_t n = r.n();
  Operand in = data_block(r, c, t, n, "allGather"), out = data_block(r, c, t, n * c.world(), "allGather");
  if (async) {
    Communicator* cp = &c;
    const void* ip = in.ptr;
    void* optr = out.ptr;
    void* fence = cp->mark_submitted();
    return Napi::Number::New(env, static_cast<double>(comm_queue().submit([cp, t, ip, n, optr, fence] {
      FenceScope f(cp, fence);
      cp->all_gather(t, ip, n, optr);
    })));
  }
  c.all_gather(t, in.ptr, n, out.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commReduceScatter(id, dtype, op, async): block: world counts (elements per rank's block),
// in (Σ counts), out (counts[rank]) → ticket when async
Napi::Value CommReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const bool async = is_async(info, 3);
  Communicator& c = async ? comm_nodrain(info) : comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int op = I(info, 2);
  if (op < 0 || op > 3) throw std::invalid_argument("reduceScatter: unknown reduce op " + std::to_string(op));
  Reader r("reduceScatter");
  std::vector<int64_t> counts(c.world());
  int64_t total = 0;
  for (int j = 0; j < c.world(); ++j) {
    counts[j] = r.n();
    if (counts[j] < 0) throw std::invalid_argument("reduceScatter: negative count for rank " + std::to_string(j));
    total += counts[j];
  }
  Operand in = data_block(r, c, t, total, "reduceScatter"), out = data_block(r, c, t, counts[c.rank()], "reduceScatter");
  if (async) {
    Communicator* cp = &c;
    const void* ip = in.ptr;
    void* optr = out.ptr;
    void* fence = cp->mark_submitted();
    return Napi::Number::New(env, static_cast<double>(comm_queue().submit([cp, t, op, ip, optr, counts, fence] {
      FenceScope f(cp, fence);
      cp->reduce_scatter(t, static_cast<ReduceOp>(op), ip, counts.data(), optr);
    })));
  }
  c.reduce_scatter(t, static_cast<ReduceOp>(op), in.ptr, counts.data(), out.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commAllToAll(id, dtype): block: world send counts, world recv counts (elements), in, out
Napi::Value CommAllToAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Communicator& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  Reader r("allToAll");
  std::vector<int64_t> sb(c.world()), rb(c.world());
  int64_t ns = 0, nr = 0;
  for (int j = 0; j < c.world(); ++j) sb[j] = r.n(), ns += sb[j];
  for (int j = 0; j < c.world(); ++j) rb[j] = r.n(), nr += rb[j];
  Operand in = data_block(r, c, t, ns, "allToAll"), out = data_block(r, c, t, nr, "allToAll");
  c.all_to_all(t, in.ptr, sb.data(), out.ptr, rb.data());
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commSendRecv(id, dtype, peer, isRecv): block: n, data
Napi::Value CommSendRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  Communicator& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int peer = I(info, 2);
  const bool isRecv = I(info, 3) != 0;
  Reader r(isRecv ? "recv" : "send");
  const int64_t n = r.n();
  Operand d = data_block(r, c, t, n, isRecv ? "recv" : "send");
  if (peer < 0 || peer >= c.world() || peer == c.rank()) throw std::invalid_argument(std::string(isRecv ? "recv" : "send") + ": peer " + std::to_string(peer) + " must be another rank in [0, " + std::to_string(c.world()) + ")");
  if (isRecv) c.recv(t, d.ptr, n, peer);
  else c.send(t, d.ptr, n, peer);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// commWait(ticket): blocks until the async collective ran; rethrows its error.
Napi::Value CommWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm_queue().wait(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue()));
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value CommDone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  return Napi::Boolean::New(env, comm_queue().done(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue())));
  VLMOE_CATCH(env)
}

}  // namespace

void register_comm(Napi::Env env, Napi::Object exports) {
  exports.Set("commInitShm", Napi::Function::New(env, CommInitShm, "commInitShm"));
  exports.Set("commShmStats", Napi::Function::New(env, CommShmStats, "commShmStats"));
  exports.Set("commInitMpi", Napi::Function::New(env, MpiInit, "commInitMpi"));
  exports.Set("mpiAvailable", Napi::Function::New(env, MpiAvailable, "mpiAvailable"));
  exports.Set("ncclInfo", Napi::Function::New(env, NcclInfoJs, "ncclInfo"));
  exports.Set("ncclUniqueId", Napi::Function::New(env, NcclUniqueIdJs, "ncclUniqueId"));
  exports.Set("commInitNccl", Napi::Function::New(env, CommInitNccl, "commInitNccl"));
  exports.Set("commNewGroup", Napi::Function::New(env, MpiNewGroup, "commNewGroup"));
  exports.Set("commInfo", Napi::Function::New(env, CommInfo, "commInfo"));
  exports.Set("commClose", Napi::Function::New(env, CommClose, "commClose"));
  exports.Set("commSetTimeout", Napi::Function::New(env, CommSetTimeout, "commSetTimeout"));
  exports.Set("commAbort", Napi::Function::New(env, CommAbort, "commAbort"));
  exports.Set("commBarrier", Napi::Function::New(env, CommBarrier, "commBarrier"));
  exports.Set("commAllReduce", Napi::Function::New(env, CommAllReduce, "commAllReduce"));
  exports.Set("commBroadcast", Napi::Function::New(env, CommBroadcast, "commBroadcast"));
  exports.Set("commAllGather", Napi::Function::New(env, CommAllGather, "commAllGather"));
  exports.Set("commReduceScatter", Napi::Function::New(env, CommReduceScatter, "commReduceScatter"));
  exports.Set("commAllToAll", Napi::Function::New(env, CommAllToAll, "commAllToAll"));
  exports.Set("commSendRecv", Napi::Function::New(env, CommSendRecv, "commSendRecv"));
  exports.Set("commWait", Napi::Function::New(env, CommWait, "commWait"));
  exports.Set("commDone", Napi::Function::New(env, CommDone, "commDone"));
}

}  // namespace vlmoe
