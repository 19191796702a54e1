// Finding a shared library that our build machines do not have (NCCL, cuBLAS) at run time.
#pragma once
#include <string>
#include <vector>

namespace vlmoe {

struct DynLib {
  void* handle = nullptr;  // dlopen handle, null when nothing loaded
  std::string path;        // what loaded
  std::string tried;       // every place tried and why it failed, one per line
};

// What a run-time library search found (cuBLAS, NCCL), as `cublasInfo()` / `ncclInfo()` report it.
struct LibraryInfo {
  bool available = false;
  int version = 0;     // the library's version code (e.g. NCCL_VERSION_CODE 22105 for 2.21.5)
  std::string path;    // the library that loaded
  std::string reason;  // why not, naming every place searched
};

// Tries, in order: the file named by env var `env_var` (when set), each of `sonames` on the
// loader path (LD_LIBRARY_PATH, ldconfig), $CUDA_HOME/lib64 and /usr/local/cuda/lib64, then
// the `nvidia/<pip_dir>/lib` and `nvidia/cu13/lib` folders of Python's site-packages and
// virtual environments under /opt (PyTorch's pip wheels).
// The library stays loaded for the life of the process.
DynLib load_cuda_library(const char* env_var, const std::vector<std::string>& sonames, const char* pip_dir);

}  // namespace vlmoe
