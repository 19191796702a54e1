#include "shared_blocks.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

namespace vlmoe {

namespace {
std::mutex g_mu;
std::map<uintptr_t, SharedBlockRef> g_blocks;  // by base address
std::atomic<size_t> g_min{0};                  // 0: off
std::atomic<size_t> g_live{0};                 // shareable blocks alive (one descriptor each)
size_t g_fd_budget = 0;                        // at most this many: half the descriptor limit
uint64_t g_next_id = 1;

bool allowed() {
  static const bool on = [] {
    const char* env = std::getenv("VLMOE_SHM_SHARE");
    return !(env && env[0] == '0');
  }();
  return on;
}
}  // namespace

void shared_blocks_enable(size_t min_bytes) {
  if (!allowed()) return;
  // one descriptor per block: let the process open as many as its hard limit allows
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // never take more than half of the descriptors: files, pipes and sockets need the rest
  // (past the budget, blocks are private again and move by cross-memory attach)
  const rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  g_fd_budget = lim == RLIM_INFINITY || lim > (rlim_t(1) << 20) ? size_t(1) << 19 : static_cast<size_t>(lim / 2);
  g_min.store(min_bytes < 4096 ? 4096 : min_bytes);
}

bool shared_blocks_wanted(size_t bytes) {
  const size_t m = g_min.load(std::memory_order_relaxed);
  return m != 0 && bytes >= m && g_live.load(std::memory_order_relaxed) < g_fd_budget;
}

void* shared_block_alloc(size_t bytes) {
  const int fd = memfd_create("vlmoe-block", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    return nullptr;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_blocks[reinterpret_cast<uintptr_t>(p)] = SharedBlockRef{fd, g_next_id++, reinterpret_cast<uintptr_t>(p), bytes};
  g_live.fetch_add(1);
  return p;
}

bool shared_block_release(void* p) {
  SharedBlockRef b;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_blocks.find(reinterpret_cast<uintptr_t>(p));
    if (it == g_blocks.end()) return false;
    b = it->second;
    g_blocks.erase(it);
  }
  munmap(p, b.bytes);
  close(b.fd);
  g_live.fetch_sub(1);
  return true;
}

bool shared_block_is_base(const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_blocks.count(reinterpret_cast<uintptr_t>(p)) != 0;
}

bool shared_block_find(const void* p, SharedBlockRef* out) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_blocks.upper_bound(a);
  if (it == g_blocks.begin()) return false;
  --it;
  if (a >= it->second.base + it->second.bytes) return false;
  *out = it->second;
  return true;
}

}  // namespace vlmoe
