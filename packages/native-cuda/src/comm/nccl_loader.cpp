// NCCL, loaded at run time: the `nccl` process-group backend moves CUDA tensors, so it is
// only usable with the CUDA build (issue 9). Today this reports whether libnccl.so.2 can be
// loaded and its version, so users (and the GPU-machine checks) see what they would get.
#include <dlfcn.h>

#include <string>

#include "nccl_loader.h"

namespace vlmoe {

NcclInfo nccl_info() {
  NcclInfo info;
  void* lib = dlopen("libnccl.so.2", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    info.reason = std::string("NCCL is not installed or not on the library path (") + (e ? e : "dlopen failed") + ")";
    return info;
  }
  using GetVersion = int (*)(int*);
  auto get = reinterpret_cast<GetVersion>(dlsym(lib, "ncclGetVersion"));
  if (!get) {
    info.reason = "libnccl has no ncclGetVersion";
    dlclose(lib);
    return info;
  }
  int v = 0;
  if (get(&v) != 0) {
    info.reason = "ncclGetVersion failed";
    dlclose(lib);
    return info;
  }
  info.available = true;
  info.version = v;
  // kept loaded: the CUDA backend will resolve the collectives from it
  return info;
}

}  // namespace vlmoe
