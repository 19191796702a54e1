#include "storage.h"

#include <cstdlib>
#include <map>
#include <new>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"

namespace vlmoe {

namespace {
std::vector<Buffer> g_buffers(1);  // handle 0 is never used
std::vector<int32_t> g_free;
MemStats g_cpu;
std::map<int, MemStats> g_cuda;

MemStats& stats_for(int device) { return device == kCpu ? g_cpu : g_cuda[device]; }
}  // namespace

int32_t storage_alloc(int device, size_t nbytes) {
  size_t rounded = ((nbytes ? nbytes : 1) + 63) / 64 * 64;
  void* p;
  if (device == kCpu) {
    p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
  } else {
    p = cuda_alloc(device, rounded);
  }
  int32_t h;
  if (!g_free.empty()) {
    h = g_free.back();
    g_free.pop_back();
  } else {
    h = static_cast<int32_t>(g_buffers.size());
    g_buffers.emplace_back();
  }
  g_buffers[h] = Buffer{p, nbytes, device, true};
  MemStats& s = stats_for(device);
  s.live += static_cast<int64_t>(nbytes);
  s.allocs += 1;
  if (s.live > s.peak) s.peak = s.live;
  return h;
}

const Buffer& storage_get(int32_t h) {
  if (h <= 0 || static_cast<size_t>(h) >= g_buffers.size() || !g_buffers[h].live)
    throw std::invalid_argument("storage handle " + std::to_string(h) + " is not live (freed or never allocated)");
  return g_buffers[h];
}

void storage_free(int32_t h) {
  const Buffer& b = storage_get(h);
  if (b.device == kCpu) std::free(b.ptr);
  else cuda_free(b.device, b.ptr);
  MemStats& s = stats_for(b.device);
  s.live -= static_cast<int64_t>(b.nbytes);
  g_buffers[h] = Buffer{};
  g_free.push_back(h);
}

MemStats storage_stats(int device) { return stats_for(device); }

int storage_max_device() { return g_cuda.empty() ? -1 : g_cuda.rbegin()->first; }

}  // namespace vlmoe
