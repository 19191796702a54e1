// Shared-memory communicator: the `shm` backend of @vlmoe/parallel's process groups.
//
// The ranks of one group are separate processes on one machine. Rank 0 creates a POSIX
// shared-memory segment (shm_open + mmap), the others attach to it by name; once all are
// attached rank 0 unlinks the name, so nothing is left in /dev/shm even if the job crashes.
// A group of one maps private memory instead: no name, so single-process jobs started side
// by side with the same name never collide.
//
// Segment: a header (per-rank arrival counters, pids, published split sizes) and, per rank,
// a staging slot and a result slot of `slot_bytes` each. A collective moves data in chunks
// of at most one slot: every rank copies its chunk into its own slot, all ranks meet at a
// sync point, each reads what it needs from the others' slots, and they meet again before a
// slot is reused. Reductions add in rank order 0..N−1, so every rank gets bitwise the same
// result. A sync point is a per-rank counter; waiters spin up to 100 µs (VLMOE_SHM_SPIN_US;
// mostly yielding the core), then sleep on a futex (woken only if asleep),
// waking every few milliseconds to check the deadline and whether the awaited ranks are
// still alive — a dead or stuck rank yields an error that names it, never a hang.
// All-to-all reads each sender's input directly when every rank may (probed at start;
// VLMOE_SHM_NO_CMA=1 turns it off), else goes through the slots. Directly means: from a
// mapping of the sender's block when the input lives in a shareable block (creating a group
// makes later CPU blocks shareable, ../shared_blocks.h) — mapped once, then a plain memcpy
// per call — and otherwise with process_vm_readv (one copy, but every page pinned per call).
// A receiver takes its senders' blocks in whichever order they announce.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../dtype.h"
#include "reduce_op.h"

namespace vlmoe {

constexpr int kShmMaxWorld = 64;

class ShmComm {
 public:
  // Creates (rank 0) or attaches to (others) the segment `name` (a POSIX shm name, "/…").
  // Waits up to timeout_ms for every rank to attach.
  ShmComm(const std::string& name, int rank, int world, size_t slot_bytes, int64_t timeout_ms);
  ~ShmComm();
  ShmComm(const ShmComm&) = delete;
  ShmComm& operator=(const ShmComm&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  void set_timeout(int64_t ms) { timeout_ms_ = ms; }

  void barrier();
  // In place over n elements of t.
  void all_reduce(DType t, ReduceOp op, void* data, int64_t n);
  void broadcast(void* data, int64_t bytes, int root);
  // out [world · bytes] ← every rank's in [bytes], in rank order.
  void all_gather(const void* in, int64_t bytes, void* out);
  // in [Σ counts] (consecutive blocks, counts[j] elements for rank j) → out [counts[rank]]:
  // the reduction over ranks of block `rank` (every rank passes the same counts).
  void reduce_scatter(DType t, ReduceOp op, const void* in, const int64_t* counts, void* out);
  // send_bytes[j]: bytes of `in` (consecutive blocks) for rank j; recv_bytes[j]: bytes `out`
  // receives from rank j (consecutive blocks). Checked against what the senders publish.
  void all_to_all(const void* in, const int64_t* send_bytes, void* out, const int64_t* recv_bytes);
  // Point-to-point, blocking until the peer has taken (send) or delivered (recv) the data.
  void send(const void* data, int64_t bytes, int dst);
  void recv(void* data, int64_t bytes, int src);
  // Marks this group failed: every rank waiting in it errors out at once.
  void abort(const std::string& why);

  // Bytes this rank's all-to-alls received by each path, and the peers' blocks it maps now.
  struct TransferStats {
    int64_t mapped_bytes = 0, cma_bytes = 0, staged_bytes = 0, local_bytes = 0;
    int64_t mappings = 0, mapped_now_bytes = 0;
  };
  TransferStats transfer_stats() const {
    TransferStats s = stats_;
    s.mappings = static_cast<int64_t>(maps_.size());
    s.mapped_now_bytes = static_cast<int64_t>(mapped_bytes_);
    return s;
  }

 private:
  struct Header;
  char* slot(int r) const;
  char* result(int r) const;
  // Announces this rank's arrival at the next sync point, then waits for `peers` (all when
  // null) to arrive there too.
  void sync(const char* what, const int* peers = nullptr, int npeers = 0);
  // Waits until *w reaches target (sync counters, point-to-point sequence numbers), failing
  // with a message naming `peer` if it exits or the timeout passes.
  // With `sleepers` (the word's sleeper count), the owner skips the wake-up call when nobody sleeps.
  void wait_word(std::atomic<uint32_t>* w, uint32_t target, int peer, const char* what, std::atomic<uint32_t>* sleepers = nullptr);
  // This rank reaches its next sync point / waits for `peer` to reach the current one.
  void arrive();
  void wait_arrival(int peer, const char* what);
  [[noreturn]] void fail(const std::string& msg);
  // Peer `peer`'s shareable block `id` (its descriptor fd, `bytes` long) mapped read-only
  // here, from the cache or mapped now; nullptr when it cannot be mapped (use CMA).
  const char* peer_block(int peer, uint64_t id, int fd, uint64_t bytes);

  std::string name_;
  int rank_, world_;
  size_t slot_bytes_, map_bytes_ = 0;
  int64_t timeout_ms_;
  int fd_ = -1;
  Header* h_ = nullptr;
  char* base_ = nullptr;
  uint32_t epoch_ = 0;    // sync points this rank has passed
  uint64_t ops_ = 0;      // collectives started (for messages)
  int64_t spin_us_ = 100;  // a wait spins this long before sleeping (VLMOE_SHM_SPIN_US)
  bool oversubscribed_ = false;  // more ranks than online CPUs: spin by yielding
  uint32_t p2p_seq_[kShmMaxWorld] = {};
  bool cma_ = false;  // every rank can read every other's memory (process_vm_readv)
  struct PeerMapping {
    int peer;
    uint64_t id;
    char* p;
    size_t bytes;
    uint64_t used;  // LRU clock
  };
  std::vector<PeerMapping> maps_;  // peers' blocks mapped here, bounded by map_cap_ bytes
  size_t mapped_bytes_ = 0, map_cap_ = 0;
  uint64_t use_clock_ = 0;
  bool map_failed_[kShmMaxWorld] = {};
  TransferStats stats_;  // opening a block of this peer failed once: CMA only
};

}  // namespace vlmoe
