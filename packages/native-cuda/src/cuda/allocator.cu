// The CUDA caching allocator (PyTorch's CUDACachingAllocator, reduced to one stream): no
// cudaMalloc / cudaFree per op. Requests are rounded to a size class — 512 B steps up to
// 1 MiB (the small pool), 2 MiB steps above — and freed blocks wait in per-(device, class)
// free lists for the next request of that class. Every kernel and copy runs on the device's
// one stream, in order, so a block freed while a kernel that uses it is still queued can be
// handed out again at once: the next user's work is queued behind it. When cudaMalloc fails
// the cache is returned to the driver and the allocation retried once; then the error names
// the size and what is held. VLMOE_CUDA_NO_CACHE=1 allocates and frees directly (for
// memory checkers).
#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_backend.h"

namespace vlmoe {

namespace {

constexpr size_t kSmall = size_t(1) << 20;

size_t size_class(size_t n) {
  if (n <= kSmall) return (n + 511) / 512 * 512;
  const size_t step = size_t(2) << 20;
  return (n + step - 1) / step * step;
}

struct Pool {
  std::unordered_map<size_t, std::vector<void*>> free;  // class -> blocks
  std::unordered_map<void*, size_t> live;               // block -> class
  size_t cached = 0, in_use = 0, reserved_peak = 0;
};

std::mutex g_mu;
std::map<int, Pool> g_pools;

bool caching() {
  static const bool on = [] {
    const char* e = std::getenv("VLMOE_CUDA_NO_CACHE");
    return !(e && e[0] == '1');
  }();
  return on;
}

void set_device(int device) {
  const cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA cudaSetDevice: ") + cudaGetErrorString(e));
}

void release_cached(int device, Pool& p) {
  set_device(device);
  for (auto& [cls, blocks] : p.free) {
    for (void* b : blocks) cudaFree(b);
    p.cached -= cls * blocks.size();
    blocks.clear();
  }
}

}  // namespace

void* cuda_alloc(int device, size_t nbytes) {
  std::lock_guard<std::mutex> lk(g_mu);
  Pool& p = g_pools[device];
  const size_t cls = size_class(nbytes ? nbytes : 1);
  if (caching()) {
    auto it = p.free.find(cls);
    if (it != p.free.end() && !it->second.empty()) {
      void* b = it->second.back();
      it->second.pop_back();
      p.cached -= cls;
      p.in_use += cls;
      p.live[b] = cls;
      return b;
    }
  }
  set_device(device);
  void* b = nullptr;
  cudaError_t e = cudaMalloc(&b, cls);
  if (e == cudaErrorMemoryAllocation && p.cached) {
    cudaGetLastError();  // clear it, give the cache back, try once more
    release_cached(device, p);
    e = cudaMalloc(&b, cls);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("CUDA out of memory on cuda:" + std::to_string(device) + ": " + std::to_string(cls) + " bytes requested, " + std::to_string(p.in_use) +
                             " bytes in use by tensors (" + cudaGetErrorString(e) + ")");
  }
  p.in_use += cls;
  if (p.in_use + p.cached > p.reserved_peak) p.reserved_peak = p.in_use + p.cached;
  p.live[b] = cls;
  return b;
}

void cuda_free(int device, void* b) {
  std::lock_guard<std::mutex> lk(g_mu);
  Pool& p = g_pools[device];
  auto it = p.live.find(b);
  if (it == p.live.end()) throw std::invalid_argument("cuda_free: pointer was not allocated on cuda:" + std::to_string(device));
  const size_t cls = it->second;
  p.live.erase(it);
  p.in_use -= cls;
  if (caching()) {
    p.free[cls].push_back(b);
    p.cached += cls;
    return;
  }
  set_device(device);
  cudaFree(b);
}

void cuda_empty_cache(int device) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_pools.find(device);
  if (it != g_pools.end()) release_cached(device, it->second);
}

CudaMemInfo cuda_mem_info(int device) {
  std::lock_guard<std::mutex> lk(g_mu);
  CudaMemInfo m;
  auto it = g_pools.find(device);
  if (it != g_pools.end()) m = CudaMemInfo{it->second.in_use, it->second.cached, it->second.reserved_peak};
  return m;
}

}  // namespace vlmoe
