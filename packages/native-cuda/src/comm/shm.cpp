#include "shm.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <emmintrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../shared_blocks.h"

namespace vlmoe {

namespace {

constexpr uint32_t kMagic = 0x564c4d53;  // "VLMS"
constexpr size_t kHeaderBytes = 128 << 10;

struct alignas(64) Counter {
  std::atomic<uint32_t> v;
  std::atomic<uint32_t> sleepers;  // waiters asleep on v's futex: the owner wakes only when > 0
};

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void futex_wait(std::atomic<uint32_t>* w, uint32_t expected, int ms) {
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* w) { syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

inline bool reached(uint32_t v, uint32_t target) { return static_cast<int32_t>(v - target) >= 0; }

// Whether process `pid` still runs (a zombie, exited but not yet reaped, counts as dead).
bool alive(int pid) {
  if (pid <= 0) return true;  // not attached yet: the attach wait has its own deadline
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t p = line.rfind(')');
  if (p == std::string::npos || p + 2 >= line.size()) return true;
  const char state = line[p + 2];
  return state != 'Z' && state != 'X';
}

size_t elsize(DType t) { return dtype_size(t); }

// Bytes moved by one rank (its all-to-all input plus output) past which the data cannot stay
// in the last-level cache. A constant, not sysconf's L3 size: virtual machines report the
// whole host socket's cache (320 MiB on our 2-core EPYC VMs, which have 32 MiB).
// VLMOE_SHM_STREAM_BYTES overrides it.
size_t stream_threshold() {
  static const size_t b = [] {
    const char* env = std::getenv("VLMOE_SHM_STREAM_BYTES");
    return env ? static_cast<size_t>(std::atoll(env)) : size_t(32) << 20;
  }();
  return b;
}

// A copy whose data cannot stay in the cache anyway: non-temporal (streaming) stores skip
// the read-for-ownership of every destination line, a third of a plain copy's memory
// traffic. (When the data would fit, a plain copy keeps it cached for the next reader.)
void copy_streaming(char* dst, const char* src, size_t n) {
  const size_t head = (16 - reinterpret_cast<uintptr_t>(dst) % 16) % 16;
  std::memcpy(dst, src, head);
  dst += head, src += head, n -= head;
  const size_t body = n / 64 * 64;
  for (size_t i = 0; i < body; i += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), d);
  }
  _mm_sfence();
  std::memcpy(dst + body, src + body, n - body);
}

template <typename T>
void reduce_into(ReduceOp op, T* out, const T* in, int64_t n) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg:
      for (int64_t i = 0; i < n; ++i) out[i] += in[i];
      break;
    case ReduceOp::max:
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] > out[i] || in[i] != in[i] ? in[i] : out[i];
      break;
    case ReduceOp::min:
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] < out[i] || in[i] != in[i] ? in[i] : out[i];
      break;
  }
}

void reduce_typed(DType t, ReduceOp op, void* out, const void* in, int64_t n) {
  switch (t) {
    case DType::f32: return reduce_into(op, static_cast<float*>(out), static_cast<const float*>(in), n);
    case DType::f64: return reduce_into(op, static_cast<double*>(out), static_cast<const double*>(in), n);
    case DType::i32: return reduce_into(op, static_cast<int32_t*>(out), static_cast<const int32_t*>(in), n);
    case DType::i64: return reduce_into(op, static_cast<int64_t*>(out), static_cast<const int64_t*>(in), n);
    default: throw std::invalid_argument(std::string("shm: reductions of ") + dtype_name(t) + " are not supported (float32, float64, int32, int64)");
  }
}


}  // namespace

struct ShmComm::Header {
  std::atomic<uint32_t> magic;
  int32_t world;
  uint64_t slot_bytes;
  std::atomic<int32_t> attached;
  std::atomic<int32_t> aborted;
  char abort_msg[512];
  std::atomic<int32_t> pid[kShmMaxWorld];
  Counter arrive[kShmMaxWorld];
  std::atomic<uint32_t> sent[kShmMaxWorld][kShmMaxWorld];   // [src][dst] chunks offered
  std::atomic<uint32_t> taken[kShmMaxWorld][kShmMaxWorld];  // [src][dst] chunks taken
  int64_t counts[kShmMaxWorld][kShmMaxWorld];               // all-to-all bytes [src][dst]
  uint64_t addr[kShmMaxWorld];                              // all-to-all input address per rank (CMA)
  int32_t blk_fd[kShmMaxWorld];                             // its shareable block (fd −1: none), ...
  uint64_t blk_id[kShmMaxWorld], blk_off[kShmMaxWorld], blk_bytes[kShmMaxWorld];  // ... id, input's offset, size
  int32_t cma_ok[kShmMaxWorld];                             // this rank can read its peer's memory
};

ShmComm::ShmComm(const std::string& name, int rank, int world, size_t slot_bytes, int64_t timeout_ms)
    : name_(name), rank_(rank), world_(world), slot_bytes_(slot_bytes / 64 * 64), timeout_ms_(timeout_ms) {
  if (world < 1 || world > kShmMaxWorld) throw std::invalid_argument("shm: world size " + std::to_string(world) + " is outside [1, " + std::to_string(kShmMaxWorld) + "]");
  if (rank < 0 || rank >= world) throw std::invalid_argument("shm: rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world) + ")");
  if (slot_bytes_ < 64 * static_cast<size_t>(world)) throw std::invalid_argument("shm: slot of " + std::to_string(slot_bytes) + " bytes is too small for " + std::to_string(world) + " ranks");
  if (name.empty() || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 200)
    throw std::invalid_argument("shm: segment name must look like '/name' (no other '/'), got '" + name + "'");
  static_assert(sizeof(Header) <= kHeaderBytes, "shm header too large");
  map_bytes_ = kHeaderBytes + 2 * slot_bytes_ * static_cast<size_t>(world);
  const int64_t deadline = now_ms() + timeout_ms;
  if (world == 1) {
    // nobody to share with: private memory, no name (single-process jobs started side by
    // side with the same MASTER_PORT would otherwise race for one segment name)
  } else if (rank == 0) {
    shm_unlink(name.c_str());  // a stale segment of a crashed job with the same name
    fd_ = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd_ < 0 && errno == EEXIST)
      throw std::runtime_error("shm: cannot create segment " + name + ": another job on this machine is creating it right now (same MASTER_ADDR / MASTER_PORT?): give each job its own MASTER_PORT");
    if (fd_ < 0) throw std::runtime_error("shm: cannot create segment " + name + ": " + std::strerror(errno));
    if (ftruncate(fd_, static_cast<off_t>(map_bytes_)) != 0) {
      const std::string err = std::strerror(errno);
      close(fd_);
      shm_unlink(name.c_str());
      throw std::runtime_error("shm: cannot size segment " + name + " to " + std::to_string(map_bytes_) + " bytes: " + err + " (is /dev/shm large enough? lower the slot size)");
    }
  } else {
    for (;;) {
      fd_ = shm_open(name.c_str(), O_RDWR, 0600);
      if (fd_ >= 0) {
        struct stat st {};
        if (fstat(fd_, &st) == 0 && static_cast<size_t>(st.st_size) == map_bytes_) break;
        close(fd_);
        fd_ = -1;
      }
      if (now_ms() > deadline) throw std::runtime_error("shm: rank " + std::to_string(rank) + " found no segment " + name + " of the expected size from rank 0 within " + std::to_string(timeout_ms) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  void* p = world == 1 ? mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                        : mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    const std::string err = std::strerror(errno);
    if (fd_ >= 0) close(fd_);
    if (rank == 0 && world > 1) shm_unlink(name.c_str());
    throw std::runtime_error("shm: cannot map segment " + name + ": " + err);
  }
  base_ = static_cast<char*>(p);
  h_ = reinterpret_cast<Header*>(base_);
  if (rank == 0) {
    // ftruncate zero-fills: every counter starts at 0
    h_->world = world;
    h_->slot_bytes = slot_bytes_;
    h_->magic.store(kMagic, std::memory_order_release);
  } else {
    while (h_->magic.load(std::memory_order_acquire) != kMagic) {
      if (now_ms() > deadline) throw std::runtime_error("shm: segment " + name + " was never initialised by rank 0");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (h_->world != world || h_->slot_bytes != slot_bytes_)
      throw std::runtime_error("shm: segment " + name + " was made for world " + std::to_string(h_->world) + ", slot " + std::to_string(h_->slot_bytes) +
                               " bytes; this rank expects world " + std::to_string(world) + ", slot " + std::to_string(slot_bytes_));
  }
  h_->pid[rank].store(static_cast<int32_t>(getpid()));
  h_->attached.fetch_add(1);
  while (h_->attached.load() < world) {
    if (h_->aborted.load()) fail(std::string("shm: group aborted while attaching: ") + h_->abort_msg);
    if (now_ms() > deadline) {
      std::string missing;
      for (int r = 0; r < world; ++r)
        if (h_->pid[r].load() == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      fail("shm: ranks " + missing + " did not attach to " + name + " within " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (rank == 0 && world > 1) shm_unlink(name.c_str());  // mapped by everyone: the name is no longer needed
  // Single-copy transfers (Linux cross-memory attach, as OpenMPI's vader uses): a receiver
  // reads the sender's buffer with process_vm_readv. Allowed between our own processes once
  // each lets any process trace it (Yama); probed here, used only if every rank can.
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  static const uint64_t probe = 0x5ca1ab1e5ca1ab1eULL;
  h_->addr[rank] = reinterpret_cast<uint64_t>(&probe);
  sync("attach");
  bool ok = true;
  if (world > 1) {
    const int peer = (rank + 1) % world;
    uint64_t got = 0;
    iovec local{&got, sizeof(got)}, remote{reinterpret_cast<void*>(h_->addr[peer]), sizeof(got)};
    ok = process_vm_readv(h_->pid[peer].load(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof(got)) && got == probe;
  }
  h_->cma_ok[rank] = ok ? 1 : 0;
  sync("attach");
  cma_ = std::getenv("VLMOE_SHM_NO_CMA") == nullptr;
  for (int r = 0; r < world; ++r) cma_ = cma_ && h_->cma_ok[r] == 1;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  oversubscribed_ = cpus > 0 && world > cpus;
  const char* spin = std::getenv("VLMOE_SHM_SPIN_US");
  spin_us_ = spin ? std::atoll(spin) : 100;
  if (cma_ && world > 1) {
    // from now on CPU blocks are memfd-backed, so peers can map what this rank sends
    const char* min = std::getenv("VLMOE_SHM_SHARE_MIN_BYTES");
    shared_blocks_enable(min ? static_cast<size_t>(std::atoll(min)) : size_t(64) << 10);
    const char* cap = std::getenv("VLMOE_SHM_MAP_CACHE_MB");
    map_cap_ = static_cast<size_t>(cap ? std::atoll(cap) : 1024) << 20;
  }
}

ShmComm::~ShmComm() {
  for (const PeerMapping& m : maps_) munmap(m.p, m.bytes);
  if (base_) munmap(base_, map_bytes_);
  if (fd_ >= 0) close(fd_);
}

char* ShmComm::slot(int r) const { return base_ + kHeaderBytes + slot_bytes_ * static_cast<size_t>(r); }
char* ShmComm::result(int r) const { return base_ + kHeaderBytes + slot_bytes_ * static_cast<size_t>(world_ + r); }

void ShmComm::fail(const std::string& msg) {
  int expected = 0;
  if (h_ && h_->aborted.compare_exchange_strong(expected, 1)) {
    std::snprintf(h_->abort_msg, sizeof(h_->abort_msg), "%s", msg.c_str());
    for (int r = 0; r < world_; ++r) futex_wake(&h_->arrive[r].v);
  }
  throw std::runtime_error(msg);
}

void ShmComm::abort(const std::string& why) {
  int expected = 0;
  if (h_->aborted.compare_exchange_strong(expected, 1)) {
    std::snprintf(h_->abort_msg, sizeof(h_->abort_msg), "rank %d aborted the group: %s", rank_, why.c_str());
    for (int r = 0; r < world_; ++r) futex_wake(&h_->arrive[r].v);
  }
}

const char* ShmComm::peer_block(int peer, uint64_t id, int fd, uint64_t bytes) {
  for (PeerMapping& m : maps_)
    if (m.peer == peer && m.id == id) {
      m.used = ++use_clock_;
      return m.p;
    }
  if (map_failed_[peer] || bytes > map_cap_) return nullptr;
  // the block's memfd, reopened through the owner's descriptor table (same user; the owner
  // keeps the block, and so the descriptor, alive until every reader has passed the
  // collective's last sync point)
  const std::string path = "/proc/" + std::to_string(h_->pid[peer].load()) + "/fd/" + std::to_string(fd);
  const int f = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0) {
    map_failed_[peer] = true;
    return nullptr;
  }
  struct stat st {};
  void* p = MAP_FAILED;
  if (fstat(f, &st) == 0 && static_cast<uint64_t>(st.st_size) >= bytes) p = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, f, 0);
  close(f);  // the mapping keeps the memory
  if (p == MAP_FAILED) {
    map_failed_[peer] = true;
    return nullptr;
  }
  // least recently used mappings go first; a freed block's pages live on while mapped here
  while (mapped_bytes_ + bytes > map_cap_ && !maps_.empty()) {
    auto lru = std::min_element(maps_.begin(), maps_.end(), [](const PeerMapping& a, const PeerMapping& b) { return a.used < b.used; });
    munmap(lru->p, lru->bytes);
    mapped_bytes_ -= lru->bytes;
    maps_.erase(lru);
  }
  maps_.push_back(PeerMapping{peer, id, static_cast<char*>(p), static_cast<size_t>(bytes), ++use_clock_});
  mapped_bytes_ += bytes;
  return static_cast<const char*>(p);
}

void ShmComm::wait_word(std::atomic<uint32_t>* w, uint32_t target, int peer, const char* what, std::atomic<uint32_t>* sleepers) {
  // Spin for up to spin_us_ — a few pauses, then yielding the core (the peer may be waiting
  // for it: more ranks than cores, or other work on the machine; pure spinning measured up to
  // 10x slower then) — before sleeping on the futex: a wake-up costs tens of microseconds on a
  // virtual machine, more than most copies between two sync points.
  // Liveness (a /proc read) is checked at most every 20 ms, so a healthy wait costs no
  // system calls beyond the futex.
  if (reached(w->load(std::memory_order_acquire), target)) return;
  const int64_t spin_end = now_us() + spin_us_;
  for (int i = 1;; ++i) {
    if (oversubscribed_ || i > 64) sched_yield();
    else _mm_pause();
    if (reached(w->load(std::memory_order_acquire), target)) return;
    if (i % 16 == 0 && now_us() > spin_end) break;
  }
  const int64_t start = now_ms(), deadline = start + timeout_ms_;
  int64_t next_check = start;
  for (;;) {
    const uint32_t v = w->load(std::memory_order_acquire);
    if (reached(v, target)) return;
    if (h_->aborted.load()) throw std::runtime_error(std::string("shm ") + what + " (collective #" + std::to_string(ops_) + "): " + h_->abort_msg);
    const int64_t now = now_ms();
    if (now >= next_check) {
      next_check = now + 20;
      const int pid = h_->pid[peer].load();
      if (!alive(pid))
        fail("shm " + std::string(what) + " (collective #" + std::to_string(ops_) + ") on rank " + std::to_string(rank_) + ": rank " + std::to_string(peer) +
             " (pid " + std::to_string(pid) + ") has exited");
      if (now > deadline)
        fail("shm " + std::string(what) + " (collective #" + std::to_string(ops_) + ") on rank " + std::to_string(rank_) + ": timed out after " +
             std::to_string(timeout_ms_) + " ms waiting for rank " + std::to_string(peer));
    }
    if (sleepers) {
      // announce the sleep, then look again: the owner either sees a sleeper and wakes us,
      // or stored before our second look (both sides sequentially consistent)
      sleepers->fetch_add(1);
      if (!reached(w->load(), target)) futex_wait(w, v, 5);
      sleepers->fetch_sub(1);
    } else {
      futex_wait(w, v, 5);
    }
  }
}

void ShmComm::arrive() {
  ++epoch_;
  Counter& c = h_->arrive[rank_];
  c.v.store(epoch_);  // sequentially consistent, paired with the sleepers' check
  if (c.sleepers.load() != 0) futex_wake(&c.v);
}

void ShmComm::wait_arrival(int peer, const char* what) { wait_word(&h_->arrive[peer].v, epoch_, peer, what, &h_->arrive[peer].sleepers); }

void ShmComm::sync(const char* what, const int* peers, int npeers) {
  arrive();
  if (peers) {
    for (int i = 0; i < npeers; ++i) wait_arrival(peers[i], what);
  } else {
    for (int r = 0; r < world_; ++r)
      if (r != rank_) wait_arrival(r, what);
  }
}

void ShmComm::barrier() {
  ++ops_;
  sync("barrier");
}

void ShmComm::all_reduce(DType t, ReduceOp op, void* data, int64_t n) {
  ++ops_;
  const int64_t es = static_cast<int64_t>(elsize(t));
  const int64_t per = static_cast<int64_t>(slot_bytes_) / es;
  char* d = static_cast<char*>(data);
  for (int64_t off = 0; off < n || (n == 0 && off == 0); off += per) {
    const int64_t c = std::min(per, n - off);
    if (c > 0) std::memcpy(slot(rank_), d + off * es, static_cast<size_t>(c * es));
    sync("allReduce");
    // my share [lo, hi) of this chunk, summed in rank order into my result slot
    const int64_t lo = c * rank_ / world_, hi = c * (rank_ + 1) / world_;
    if (hi > lo) {
      char* out = result(rank_) + lo * es;
      std::memcpy(out, slot(0) + lo * es, static_cast<size_t>((hi - lo) * es));
      for (int q = 1; q < world_; ++q) reduce_typed(t, op, out, slot(q) + lo * es, hi - lo);
      if (op == ReduceOp::avg) scale_for_avg(t, out, hi - lo, 1.0 / world_);
    }
    sync("allReduce");
    for (int q = 0; q < world_; ++q) {
      const int64_t qlo = c * q / world_, qhi = c * (q + 1) / world_;
      if (qhi > qlo) std::memcpy(d + (off + qlo) * es, result(q) + qlo * es, static_cast<size_t>((qhi - qlo) * es));
    }
    sync("allReduce");
    if (n == 0) break;
  }
}

void ShmComm::broadcast(void* data, int64_t bytes, int root) {
  ++ops_;
  if (root < 0 || root >= world_) throw std::invalid_argument("shm broadcast: root " + std::to_string(root) + " is outside [0, " + std::to_string(world_) + ")");
  char* d = static_cast<char*>(data);
  const int64_t per = static_cast<int64_t>(slot_bytes_);
  for (int64_t off = 0; off < bytes || (bytes == 0 && off == 0); off += per) {
    const int64_t c = std::min(per, bytes - off);
    if (rank_ == root && c > 0) std::memcpy(slot(root), d + off, static_cast<size_t>(c));
    sync("broadcast");
    if (rank_ != root && c > 0) std::memcpy(d + off, slot(root), static_cast<size_t>(c));
    sync("broadcast");
    if (bytes == 0) break;
  }
}

void ShmComm::all_gather(const void* in, int64_t bytes, void* out) {
  ++ops_;
  const char* s = static_cast<const char*>(in);
  char* o = static_cast<char*>(out);
  const int64_t per = static_cast<int64_t>(slot_bytes_);
  for (int64_t off = 0; off < bytes || (bytes == 0 && off == 0); off += per) {
    const int64_t c = std::min(per, bytes - off);
    if (c > 0) std::memcpy(slot(rank_), s + off, static_cast<size_t>(c));
    sync("allGather");
    if (c > 0)
      for (int q = 0; q < world_; ++q) std::memcpy(o + q * bytes + off, slot(q), static_cast<size_t>(c));
    sync("allGather");
    if (bytes == 0) break;
  }
}

void ShmComm::reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out) {
  ++ops_;
  const int64_t es = static_cast<int64_t>(elsize(t));
  const int64_t per = static_cast<int64_t>(slot_bytes_) / (es * world_);  // elements of each block per round
  std::vector<int64_t> displ(world_ + 1, 0);
  int64_t longest = 0;
  for (int r = 0; r < world_; ++r) {
    if (counts[r] < 0) throw std::invalid_argument("shm reduceScatter: negative count for rank " + std::to_string(r));
    displ[r + 1] = displ[r] + counts[r];
    longest = std::max(longest, counts[r]);
  }
  const char* s = static_cast<const char*>(in);
  char* o = static_cast<char*>(out);
  // round k: elements [k·per, (k+1)·per) of every block, block j at slot offset j·per
  for (int64_t off = 0; off < longest || (longest == 0 && off == 0); off += per) {
    for (int r = 0; r < world_; ++r) {
      const int64_t c = std::min(per, counts[r] - off);
      if (c > 0) std::memcpy(slot(rank_) + r * per * es, s + (displ[r] + off) * es, static_cast<size_t>(c * es));
    }
    sync("reduceScatter");
    const int64_t c = std::min(per, counts[rank_] - off);
    if (c > 0) {
      std::memcpy(o + off * es, slot(0) + rank_ * per * es, static_cast<size_t>(c * es));
      for (int q = 1; q < world_; ++q) reduce_typed(t, op, o + off * es, slot(q) + rank_ * per * es, c);
      if (op == ReduceOp::avg) scale_for_avg(t, o + off * es, c, 1.0 / world_);
    }
    sync("reduceScatter");
    if (longest == 0) break;
  }
}

void ShmComm::all_to_all(const void* in, const int64_t* send_bytes, void* out, const int64_t* recv_bytes) {
  ++ops_;
  for (int j = 0; j < world_; ++j) {
    if (send_bytes[j] < 0 || recv_bytes[j] < 0) throw std::invalid_argument("shm allToAll: negative split size for rank " + std::to_string(j));
    h_->counts[rank_][j] = send_bytes[j];
  }
  h_->addr[rank_] = reinterpret_cast<uint64_t>(in);
  SharedBlockRef blk;
  if (cma_ && shared_block_find(in, &blk)) {
    h_->blk_fd[rank_] = blk.fd;
    h_->blk_id[rank_] = blk.id;
    h_->blk_off[rank_] = reinterpret_cast<uintptr_t>(in) - blk.base;
    h_->blk_bytes[rank_] = blk.bytes;
  } else {
    h_->blk_fd[rank_] = -1;
  }
  if (cma_) {
    // announce this rank's input, then read each sender as soon as it has announced (no
    // global barrier first: with more ranks than cores the early ranks get going)
    arrive();
    char* o = static_cast<char*>(out);
    int64_t moved = 0;  // this rank's input and output: past the cache, stream
    for (int j = 0; j < world_; ++j) moved += send_bytes[j] + recv_bytes[j];
    const bool stream = static_cast<size_t>(moved) >= stream_threshold();
    std::vector<int64_t> roffs(world_ + 1, 0);
    for (int i = 0; i < world_; ++i) roffs[i + 1] = roffs[i] + recv_bytes[i];
    // sender i's block for me, one copy: from my own input, from a mapping of i's shareable
    // block, else with process_vm_readv
    auto take = [&](int i) {
      if (h_->counts[i][rank_] != recv_bytes[i])
        fail("shm allToAll (collective #" + std::to_string(ops_) + "): rank " + std::to_string(rank_) + " expects " + std::to_string(recv_bytes[i]) +
             " bytes from rank " + std::to_string(i) + ", which sends " + std::to_string(h_->counts[i][rank_]));
      const int64_t n = recv_bytes[i];
      if (n == 0) return;
      int64_t soff = 0;  // where sender i's block for me starts in its input
      for (int j = 0; j < rank_; ++j) soff += h_->counts[i][j];
      char* dst = o + roffs[i];
      const char* src = nullptr;
      if (i == rank_) {
        src = static_cast<const char*>(in) + soff;
        stats_.local_bytes += n;
      } else if (h_->blk_fd[i] >= 0 && h_->blk_off[i] + static_cast<uint64_t>(soff + n) <= h_->blk_bytes[i]) {
        if (const char* b = peer_block(i, h_->blk_id[i], h_->blk_fd[i], h_->blk_bytes[i])) {
          src = b + h_->blk_off[i] + soff;
          stats_.mapped_bytes += n;
        }
      }
      if (src) {
        if (stream) copy_streaming(dst, src, static_cast<size_t>(n));
        else std::memcpy(dst, src, static_cast<size_t>(n));
        return;
      }
      for (int64_t done = 0; done < n;) {
        iovec local{dst + done, static_cast<size_t>(n - done)};
        iovec remote{reinterpret_cast<void*>(h_->addr[i] + static_cast<uint64_t>(soff + done)), static_cast<size_t>(n - done)};
        const ssize_t got = process_vm_readv(h_->pid[i].load(), &local, 1, &remote, 1, 0);
        if (got <= 0) fail("shm allToAll on rank " + std::to_string(rank_) + ": reading rank " + std::to_string(i) + "'s buffer failed: " + std::strerror(errno));
        done += got;
      }
      stats_.cma_bytes += n;
    };
    // senders in staggered order (rank r reads r+1, r+2, … first, so no sender is read by
    // everyone at once), but whichever has announced first: with more ranks than cores a
    // descheduled sender does not hold up the copies that are ready. (Letting any rank make
    // any copy between two mapped blocks, or senders write with process_vm_writev, measured
    // slower: the copies then run on cores whose caches hold neither end.)
    std::vector<char> taken(world_, 0);
    for (int left = world_; left > 0;) {
      int pending = -1;
      for (int t = 0; t < world_; ++t) {
        const int i = (rank_ + t) % world_;
        if (taken[i]) continue;
        if (i != rank_ && !reached(h_->arrive[i].v.load(std::memory_order_acquire), epoch_)) {
          if (pending < 0) pending = i;
          continue;
        }
        take(i);
        taken[i] = 1;
        --left;
      }
      if (left > 0 && !reached(h_->arrive[pending].v.load(std::memory_order_acquire), epoch_)) wait_arrival(pending, "allToAll");
    }
    sync("allToAll");  // senders keep their input intact until every reader is done
    return;
  }
  sync("allToAll");
  for (int i = 0; i < world_; ++i)
    if (h_->counts[i][rank_] != recv_bytes[i])
      fail("shm allToAll (collective #" + std::to_string(ops_) + "): rank " + std::to_string(rank_) + " expects " + std::to_string(recv_bytes[i]) +
           " bytes from rank " + std::to_string(i) + ", which sends " + std::to_string(h_->counts[i][rank_]));
  // every rank derives the same number of rounds from the published sizes
  const int64_t sub = static_cast<int64_t>(slot_bytes_) / world_ / 64 * 64;
  int64_t rounds = 1;
  for (int i = 0; i < world_; ++i)
    for (int j = 0; j < world_; ++j) rounds = std::max(rounds, (h_->counts[i][j] + sub - 1) / sub);
  std::vector<int64_t> soff(world_ + 1, 0), roff(world_ + 1, 0);
  for (int j = 0; j < world_; ++j) soff[j + 1] = soff[j] + send_bytes[j], roff[j + 1] = roff[j] + recv_bytes[j];
  const char* s = static_cast<const char*>(in);
  char* o = static_cast<char*>(out);
  for (int64_t t = 0; t < rounds; ++t) {
    const int64_t base = t * sub;
    for (int j = 0; j < world_; ++j) {
      const int64_t c = std::min(sub, send_bytes[j] - base);
      if (c > 0) std::memcpy(slot(rank_) + j * sub, s + soff[j] + base, static_cast<size_t>(c));
    }
    sync("allToAll");
    for (int i = 0; i < world_; ++i) {
      const int64_t c = std::min(sub, recv_bytes[i] - base);
      if (c > 0) std::memcpy(o + roff[i] + base, slot(i) + rank_ * sub, static_cast<size_t>(c));
      if (c > 0) stats_.staged_bytes += c;
    }
    sync("allToAll");
  }
}

// Point-to-point through the sender's result slot (collectives never hold data there
// between calls): per chunk the sender bumps sent[src][dst] and waits for taken[src][dst].
void ShmComm::send(const void* data, int64_t bytes, int dst) {
  ++ops_;
  if (dst < 0 || dst >= world_ || dst == rank_) throw std::invalid_argument("shm send: bad destination rank " + std::to_string(dst));
  const char* d = static_cast<const char*>(data);
  const int64_t per = static_cast<int64_t>(slot_bytes_);
  std::atomic<uint32_t>* sent = &h_->sent[rank_][dst];
  std::atomic<uint32_t>* taken = &h_->taken[rank_][dst];
  for (int64_t off = 0; off < bytes || (bytes == 0 && off == 0); off += per) {
    const int64_t c = std::min(per, bytes - off);
    if (c > 0) std::memcpy(result(rank_), d + off, static_cast<size_t>(c));
    const uint32_t seq = ++p2p_seq_[dst];
    sent->store(seq, std::memory_order_release);
    futex_wake(sent);
    wait_word(taken, seq, dst, "send");
    if (bytes == 0) break;
  }
}

void ShmComm::recv(void* data, int64_t bytes, int src) {
  ++ops_;
  if (src < 0 || src >= world_ || src == rank_) throw std::invalid_argument("shm recv: bad source rank " + std::to_string(src));
  char* d = static_cast<char*>(data);
  const int64_t per = static_cast<int64_t>(slot_bytes_);
  std::atomic<uint32_t>* sent = &h_->sent[src][rank_];
  std::atomic<uint32_t>* taken = &h_->taken[src][rank_];
  for (int64_t off = 0; off < bytes || (bytes == 0 && off == 0); off += per) {
    const int64_t c = std::min(per, bytes - off);
    const uint32_t seq = taken->load(std::memory_order_relaxed) + 1;
    wait_word(sent, seq, src, "recv");
    if (c > 0) std::memcpy(d + off, result(src), static_cast<size_t>(c));
    taken->store(seq, std::memory_order_release);
    futex_wake(taken);
    if (bytes == 0) break;
  }
}

}  // namespace vlmoe
