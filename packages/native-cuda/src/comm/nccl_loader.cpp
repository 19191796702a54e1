// NCCL, loaded at run time. Our build machines have no NCCL headers or libraries, and GPU
// machines carry NCCL in different places (the CUDA toolkit's lib64, a distribution package,
// PyTorch's pip wheel nvidia-nccl-cu12), so the library is searched in this order:
//   1. VLMOE_NCCL_LIB (a file path), 2. libnccl.so.2 on the loader's path (LD_LIBRARY_PATH,
//   ldconfig), 3. CUDA_HOME / /usr/local/cuda lib64, 4. nvidia/nccl/lib of the Python
//   site-packages folders of the machine (pip wheels).
// Not found: the error lists every place tried.
#include "nccl_loader.h"

#include <dlfcn.h>

#include <stdexcept>

#include "../dynlib.h"

namespace vlmoe {

namespace {

struct Loaded {
  NcclApi api;
  std::string error;
};

Loaded load() {
  Loaded out;
  const DynLib dl = load_cuda_library("VLMOE_NCCL_LIB", {"libnccl.so.2"}, "nccl");
  void* lib = dl.handle;
  out.api.path = dl.path;
  if (!lib) {
    out.error = "NCCL (libnccl.so.2) was not found; searched:" + dl.tried + "\nset VLMOE_NCCL_LIB to the library's path";
    return out;
  }
  auto sym = [&](const char* name, bool required) -> void* {
    void* f = dlsym(lib, name);
    if (!f && required && out.error.empty()) out.error = std::string(out.api.path) + " has no " + name + " (NCCL too old? 2.7 or later is needed)";
    return f;
  };
  NcclApi& a = out.api;
  using GetVersion = ncclResult_t (*)(int*);
  auto get_version = reinterpret_cast<GetVersion>(sym("ncclGetVersion", true));
  a.GetUniqueId = reinterpret_cast<decltype(a.GetUniqueId)>(sym("ncclGetUniqueId", true));
  a.CommInitRank = reinterpret_cast<decltype(a.CommInitRank)>(sym("ncclCommInitRank", true));
  a.CommDestroy = reinterpret_cast<decltype(a.CommDestroy)>(sym("ncclCommDestroy", true));
  a.CommAbort = reinterpret_cast<decltype(a.CommAbort)>(sym("ncclCommAbort", true));
  a.CommGetAsyncError = reinterpret_cast<decltype(a.CommGetAsyncError)>(sym("ncclCommGetAsyncError", true));
  a.GetErrorString = reinterpret_cast<decltype(a.GetErrorString)>(sym("ncclGetErrorString", true));
  a.GetLastError = reinterpret_cast<decltype(a.GetLastError)>(sym("ncclGetLastError", false));
  a.AllReduce = reinterpret_cast<decltype(a.AllReduce)>(sym("ncclAllReduce", true));
  a.Broadcast = reinterpret_cast<decltype(a.Broadcast)>(sym("ncclBroadcast", true));
  a.AllGather = reinterpret_cast<decltype(a.AllGather)>(sym("ncclAllGather", true));
  a.ReduceScatter = reinterpret_cast<decltype(a.ReduceScatter)>(sym("ncclReduceScatter", true));
  a.Reduce = reinterpret_cast<decltype(a.Reduce)>(sym("ncclReduce", true));
  a.Send = reinterpret_cast<decltype(a.Send)>(sym("ncclSend", true));
  a.Recv = reinterpret_cast<decltype(a.Recv)>(sym("ncclRecv", true));
  a.GroupStart = reinterpret_cast<decltype(a.GroupStart)>(sym("ncclGroupStart", true));
  a.GroupEnd = reinterpret_cast<decltype(a.GroupEnd)>(sym("ncclGroupEnd", true));
  if (out.error.empty() && get_version(&a.version) != ncclSuccess) out.error = out.api.path + ": ncclGetVersion failed";
  if (out.error.empty() && a.version < 2700) out.error = out.api.path + ": NCCL version code " + std::to_string(a.version) + " is older than 2.7 (ncclSend / ncclRecv)";
  // kept loaded for the life of the process
  return out;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

NcclInfo nccl_info() {
  NcclInfo info;
  const Loaded& l = loaded();
  info.available = l.error.empty();
  info.version = l.api.version;
  info.path = l.api.path;
  info.reason = l.error;
  return info;
}

const NcclApi& nccl_api() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw std::runtime_error("nccl: " + l.error);
  return l.api;
}

}  // namespace vlmoe
