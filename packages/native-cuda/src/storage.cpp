#include "storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "cuda/cuda_backend.h"
#include "shared_blocks.h"

namespace vlmoe {

namespace {
// Caching of large CPU blocks. Fresh pages cost a fault each on first touch (very
// expensive in sandboxed VMs: a 4 MB tensor cost ~7 ms, 60x its kernel), so freed blocks of
// 64 KiB and more are kept in per-size free lists and reused; sizes are rounded to 1/8 of
// their power of two so reuse hits often and waste stays under 12.5%. The cache is bounded
// (cache_limit below) and emptied when an allocation fails.
//
// When a freed block does not fit, the cache makes room by evicting size classes nobody has
// used for kStaleOps cacheable allocations and frees (least recently used first), so it
// follows a job whose block sizes changed (a second model in the same process); a class in
// use is never evicted for another, so a working set larger than the cache keeps the part
// that is cached instead of churning it. Otherwise the freed block goes back to the system.
constexpr size_t kCacheMin = 64 << 10;
constexpr uint64_t kStaleOps = uint64_t(1) << 16;
struct FreeList {
  std::vector<void*> blocks;
  uint64_t last_use = 0;  // g_tick of the last allocation or free of this class
};
std::unordered_map<size_t, FreeList> g_cache;
size_t g_cached_bytes = 0;
uint64_t g_tick = 0;  // counts allocations and frees of cacheable (>= kCacheMin) blocks

MemStats g_cpu;  // live / peak bytes of CPU storages (storage_stats)
int64_t g_cpu_max_live = 0;  // the all-time peak (storage_reset_peak leaves it), for the cache's bound

// The cache's bound: VLMOE_CPU_CACHE_MB when set, else the larger of 2 GiB and the peak of
// live CPU bytes so far. A training step whose working set (activations held for backward)
// is larger than a fixed bound would otherwise return the excess to the system at every
// step and fault it back in at the next one (the small VL-MoE preset at batch 32 peaks at
// 3.9 GiB: with a 2 GiB bound a step spent ~1-2 s of its 3 s in the kernel zeroing fresh
// pages). Bounding by the peak keeps live + cached near the peak the job already reached.
size_t cache_limit() {
  static const long env_mb = [] {
    const char* env = std::getenv("VLMOE_CPU_CACHE_MB");
    if (!env) return -1L;
    const long mb = std::atol(env);
    return mb < 0 ? 0L : mb;
  }();
  if (env_mb >= 0) return static_cast<size_t>(env_mb) << 20;
  return std::max(size_t(2048) << 20, static_cast<size_t>(std::max<int64_t>(g_cpu_max_live, 0)));
}

constexpr size_t kHuge = 2 << 20;

bool poison_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("VLMOE_POISON");
    return env && env[0] == '1';
  }();
  return on;
}

bool thp_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("VLMOE_CPU_THP");
    return !(env && env[0] == '0');
  }();
  return on;
}

size_t size_class(size_t n) {
  if (n < kCacheMin) return (n + 63) / 64 * 64;
  if (n > (size_t(1) << 62)) throw std::bad_alloc();
  size_t p = 1;
  while (p < n) p <<= 1;
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

// Cache key of a block: its size class, with the low bit set for shareable blocks (size
// classes of cached blocks are multiples of 64), so the two kinds never stand in for each other.
size_t cache_key(size_t rounded, bool shared) { return rounded | (shared ? 1 : 0); }

void free_block(void* p, size_t key) {
  if (!(key & 1) || !shared_block_release(p)) std::free(p);
}

void* cpu_alloc(size_t rounded) {
  if (rounded >= kCacheMin) {
    const bool share = shared_blocks_wanted(rounded);
    FreeList& list = g_cache[cache_key(rounded, share)];
    list.last_use = ++g_tick;
    if (!list.blocks.empty()) {
      void* p = list.blocks.back();
      list.blocks.pop_back();
      g_cached_bytes -= rounded;
      return p;
    }
    if (share) {
      // a memfd block a peer process can map (shared_blocks.h); private memory when refused
      void* p = shared_block_alloc((rounded + 4095) / 4096 * 4096);
      if (!p) {
        storage_empty_cache();
        p = shared_block_alloc((rounded + 4095) / 4096 * 4096);
      }
      if (p) return p;
    }
  }
  // Blocks of 2 MiB and more are 2 MiB-aligned and backed by transparent huge pages (as
  // PyTorch's THP_MEM_ALLOC_ENABLE): 512× fewer page faults on first touch, fewer TLB misses,
  // and cross-memory-attach copies (the shm all-to-all, OpenMPI's) pin 2 MiB at a time.
  // VLMOE_CPU_THP=0 turns it off.
  const bool huge = rounded >= kHuge && thp_enabled();
  const size_t align = huge ? kHuge : 64;
  void* p = std::aligned_alloc(align, rounded);
  if (!p) {
    storage_empty_cache();
    p = std::aligned_alloc(align, rounded);
    if (!p) throw std::bad_alloc();
  }
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

// Frees cached blocks of stale size classes (oldest first, the oldest blocks of each class
// first) until `need` more bytes fit under the limit or no stale class is left.
void evict_stale(size_t need) {
  std::vector<std::pair<uint64_t, size_t>> stale;  // (last_use, key)
  for (auto& kv : g_cache)
    if (!kv.second.blocks.empty() && kv.second.last_use + kStaleOps < g_tick) stale.emplace_back(kv.second.last_use, kv.first);
  std::sort(stale.begin(), stale.end());
  for (const auto& entry : stale) {
    std::vector<void*>& blocks = g_cache[entry.second].blocks;
    const size_t bytes = entry.second & ~size_t(1);
    size_t n = 0;
    while (n < blocks.size() && g_cached_bytes + need > cache_limit()) {
      free_block(blocks[n++], entry.second);
      g_cached_bytes -= bytes;
    }
    blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(n));
    if (g_cached_bytes + need <= cache_limit()) return;
  }
}

void cpu_release(void* p, size_t rounded) {
  const size_t key = cache_key(rounded, rounded >= kCacheMin && shared_block_is_base(p));
  if (rounded >= kCacheMin && rounded <= cache_limit()) {
    FreeList& list = g_cache[key];
    list.last_use = ++g_tick;
    if (g_cached_bytes + rounded > cache_limit()) evict_stale(rounded);
    if (g_cached_bytes + rounded <= cache_limit()) {
      list.blocks.push_back(p);
      g_cached_bytes += rounded;
      return;
    }
  }
  free_block(p, key);
}

std::vector<Buffer> g_buffers(1);  // handle 0 is never used
std::vector<int32_t> g_free;
std::map<int, MemStats> g_cuda;

MemStats& stats_for(int device) { return device == kCpu ? g_cpu : g_cuda[device]; }
int32_t new_handle() {
  if (!g_free.empty()) {
    const int32_t h = g_free.back();
    g_free.pop_back();
    return h;
  }
  g_buffers.emplace_back();
  return static_cast<int32_t>(g_buffers.size() - 1);
}
size_t mapped_size(size_t nbytes) { return ((nbytes ? nbytes : 1) + 4095) / 4096 * 4096; }
}  // namespace

int32_t storage_alloc(int device, size_t nbytes) {
  if (nbytes > (size_t(1) << 52)) throw std::invalid_argument("alloc: " + std::to_string(nbytes) + " bytes is more than any device has");
  size_t rounded = device == kCpu ? size_class(nbytes ? nbytes : 1) : ((nbytes ? nbytes : 1) + 255) / 256 * 256;
  void* p;
  if (device == kCpu) {
    p = cpu_alloc(rounded);
  } else {
    p = cuda_alloc(device, rounded);
  }
  // Tests poison fresh memory (VLMOE_POISON=1: every byte 0xFF, a NaN in every float, -1 in
  // every integer) so a kernel that leaves output elements unwritten is caught.
  if (poison_enabled() && nbytes) {
    if (device == kCpu) std::memset(p, 0xFF, nbytes);
    else cuda_memset(device, p, 0xFF, nbytes);
  }
  const int32_t h = new_handle();
  g_buffers[h] = Buffer{p, nbytes, device, true};
  MemStats& s = stats_for(device);
  s.live += static_cast<int64_t>(nbytes);
  s.allocs += 1;
  if (s.live > s.peak) s.peak = s.live;
  if (device == kCpu && s.live > g_cpu_max_live) g_cpu_max_live = s.live;
  return h;
}

const Buffer& storage_get(int32_t h) {
  if (h <= 0 || static_cast<size_t>(h) >= g_buffers.size() || !g_buffers[h].live)
    throw std::invalid_argument("storage handle " + std::to_string(h) + " is not live (freed or never allocated)");
  return g_buffers[h];
}

int32_t storage_map_file(const std::string& dir, size_t nbytes) {
  if (nbytes > (size_t(1) << 52)) throw std::invalid_argument("mapFile: " + std::to_string(nbytes) + " bytes is more than any disk has");
  std::string path = dir + "/vlmoe-offload-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) throw std::runtime_error("cannot create a scratch file in '" + dir + "': " + std::strerror(errno));
  const size_t size = mapped_size(nbytes);
  // the blocks are allocated now (posix_fallocate), so a full disk is an error here rather
  // than a SIGBUS on some later write; ftruncate alone where the file system cannot
  int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == EOPNOTSUPP || err == EINVAL) err = ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
  void* p = err ? MAP_FAILED : mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED && !err) err = errno;
  unlink(path.c_str());
  close(fd);
  if (err) throw std::runtime_error("cannot back " + std::to_string(nbytes) + " bytes with a file in '" + dir + "': " + std::strerror(err));
  const int32_t h = new_handle();
  g_buffers[h] = Buffer{p, nbytes, kCpu, true, true};
  g_cpu.file += static_cast<int64_t>(nbytes);
  g_cpu.allocs += 1;
  return h;
}

void storage_free(int32_t h) {
  const Buffer& b = storage_get(h);
  if (b.file) {
    munmap(b.ptr, mapped_size(b.nbytes));
    g_cpu.file -= static_cast<int64_t>(b.nbytes);
    g_buffers[h] = Buffer{};
    g_free.push_back(h);
    return;
  }
  if (b.device == kCpu) cpu_release(b.ptr, size_class(b.nbytes ? b.nbytes : 1));
  else cuda_free(b.device, b.ptr);
  MemStats& s = stats_for(b.device);
  s.live -= static_cast<int64_t>(b.nbytes);
  g_buffers[h] = Buffer{};
  g_free.push_back(h);
}

MemStats storage_stats(int device) {
  MemStats s = stats_for(device);
  if (device == kCpu) s.cached = static_cast<int64_t>(g_cached_bytes);
  else s.cached = static_cast<int64_t>(cuda_mem_info(device).cached);
  return s;
}

void storage_reset_peak(int device) {
  MemStats& s = stats_for(device);
  s.peak = s.live;
}

void storage_empty_cache() {
  for (auto& kv : g_cache)
    for (void* p : kv.second.blocks) free_block(p, kv.first);
  g_cache.clear();
  g_cached_bytes = 0;
  for (auto& kv : g_cuda) cuda_empty_cache(kv.first);
}

int storage_max_device() { return g_cuda.empty() ? -1 : g_cuda.rbegin()->first; }

}  // namespace vlmoe
