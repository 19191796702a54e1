// N-API bindings of the communicators (the shm backend of @vlmoe/parallel's process groups).
//
// shmInit(name, rank, world, slotBytes, timeoutMs) → id; the collectives take the id, small
// integers, and tensor views in the argument block (handle, offset pairs), checked against
// their storages like every kernel's operands. Collectives block the calling thread.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../args.h"
#include "../napi_errors.h"
#include "shm.h"

namespace vlmoe {
namespace {

std::vector<std::unique_ptr<ShmComm>> g_comms;

int I(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

ShmComm& comm(const Napi::CallbackInfo& info) {
  const int id = I(info, 0);
  if (id < 0 || id >= static_cast<int>(g_comms.size()) || !g_comms[id]) throw std::invalid_argument("shm: communicator " + std::to_string(id) + " is closed or was never opened");
  return *g_comms[id];
}

Operand cpu_block(Reader& r, DType t, int64_t n, const char* op) {
  Operand o = r.block(t, n);
  if (o.device != kCpu) throw std::invalid_argument(std::string(op) + ": the shm backend moves CPU tensors only (use nccl for CUDA tensors)");
  return o;
}

Napi::Value ShmInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int rank = I(info, 1), world = I(info, 2);
  const double slot = info[3].As<Napi::Number>().DoubleValue(), timeout = info[4].As<Napi::Number>().DoubleValue();
  g_comms.push_back(std::make_unique<ShmComm>(name, rank, world, static_cast<size_t>(slot), static_cast<int64_t>(timeout)));
  return Napi::Number::New(env, static_cast<double>(g_comms.size() - 1));
  VLMOE_CATCH(env)
}

Napi::Value ShmClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const int id = I(info, 0);
  if (id >= 0 && id < static_cast<int>(g_comms.size())) g_comms[id].reset();
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value ShmSetTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm(info).set_timeout(static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue()));
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value ShmAbort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm(info).abort(info[1].As<Napi::String>().Utf8Value());
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value ShmBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  comm(info).barrier();
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmAllReduce(id, dtype, op): block: n, data
Napi::Value ShmAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int op = I(info, 2);
  if (op < 0 || op > 3) throw std::invalid_argument("allReduce: unknown reduce op " + std::to_string(op));
  Reader r("allReduce");
  const int64_t n = r.n();
  Operand d = cpu_block(r, t, n, "allReduce");
  c.all_reduce(t, static_cast<ReduceOp>(op), d.ptr, n);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmBroadcast(id, dtype, root): block: n, data
Napi::Value ShmBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  Reader r("broadcast");
  const int64_t n = r.n();
  Operand d = cpu_block(r, t, n, "broadcast");
  c.broadcast(d.ptr, n * static_cast<int64_t>(dtype_size(t)), I(info, 2));
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmAllGather(id, dtype): block: n, in (n), out (world·n)
Napi::Value ShmAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  Reader r("allGather");
  const int64_t n = r.n();
  Operand in = cpu_block(r, t, n, "allGather"), out = cpu_block(r, t, n * c.world(), "allGather");
  c.all_gather(in.ptr, n * static_cast<int64_t>(dtype_size(t)), out.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmReduceScatter(id, dtype, op): block: n, in (world·n), out (n)
Napi::Value ShmReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int op = I(info, 2);
  if (op < 0 || op > 3) throw std::invalid_argument("reduceScatter: unknown reduce op " + std::to_string(op));
  Reader r("reduceScatter");
  const int64_t n = r.n();
  Operand in = cpu_block(r, t, n * c.world(), "reduceScatter"), out = cpu_block(r, t, n, "reduceScatter");
  c.reduce_scatter(t, static_cast<ReduceOp>(op), in.ptr, n, out.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmAllToAll(id, dtype): block: world send counts, world recv counts (elements), in, out
Napi::Value ShmAllToAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int64_t es = static_cast<int64_t>(dtype_size(t));
  Reader r("allToAll");
  std::vector<int64_t> sb(c.world()), rb(c.world());
  int64_t ns = 0, nr = 0;
  for (int j = 0; j < c.world(); ++j) sb[j] = r.n(), ns += sb[j];
  for (int j = 0; j < c.world(); ++j) rb[j] = r.n(), nr += rb[j];
  Operand in = cpu_block(r, t, ns, "allToAll"), out = cpu_block(r, t, nr, "allToAll");
  for (int j = 0; j < c.world(); ++j) sb[j] *= es, rb[j] *= es;
  c.all_to_all(in.ptr, sb.data(), out.ptr, rb.data());
  return env.Undefined();
  VLMOE_CATCH(env)
}

// shmSendRecv(id, dtype, peer, isRecv): block: n, data
Napi::Value ShmSendRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  ShmComm& c = comm(info);
  DType t = dtype_from_int(I(info, 1));
  const int peer = I(info, 2);
  const bool isRecv = I(info, 3) != 0;
  Reader r(isRecv ? "recv" : "send");
  const int64_t n = r.n();
  Operand d = cpu_block(r, t, n, isRecv ? "recv" : "send");
  const int64_t bytes = n * static_cast<int64_t>(dtype_size(t));
  if (isRecv) c.recv(d.ptr, bytes, peer);
  else c.send(d.ptr, bytes, peer);
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_comm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmInit", Napi::Function::New(env, ShmInit, "shmInit"));
  exports.Set("shmClose", Napi::Function::New(env, ShmClose, "shmClose"));
  exports.Set("shmSetTimeout", Napi::Function::New(env, ShmSetTimeout, "shmSetTimeout"));
  exports.Set("shmAbort", Napi::Function::New(env, ShmAbort, "shmAbort"));
  exports.Set("shmBarrier", Napi::Function::New(env, ShmBarrier, "shmBarrier"));
  exports.Set("shmAllReduce", Napi::Function::New(env, ShmAllReduce, "shmAllReduce"));
  exports.Set("shmBroadcast", Napi::Function::New(env, ShmBroadcast, "shmBroadcast"));
  exports.Set("shmAllGather", Napi::Function::New(env, ShmAllGather, "shmAllGather"));
  exports.Set("shmReduceScatter", Napi::Function::New(env, ShmReduceScatter, "shmReduceScatter"));
  exports.Set("shmAllToAll", Napi::Function::New(env, ShmAllToAll, "shmAllToAll"));
  exports.Set("shmSendRecv", Napi::Function::New(env, ShmSendRecv, "shmSendRecv"));
}

}  // namespace vlmoe
