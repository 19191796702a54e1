// Shareable CPU blocks: host memory another process of the same job can map.
//
// Once a shm process group exists (shared_blocks_enable), CPU blocks of at least `min_bytes`
// are allocated from their own memfd (memfd_create + mmap MAP_SHARED) instead of the heap,
// as PyTorch's share_memory_() does for a tensor. A peer that receives one block's
// descriptor (pid, fd, id) maps it once through /proc/<pid>/fd/<fd> and from then on reads
// the tensor with a plain memcpy — no system call per transfer, where cross-memory attach
// (process_vm_readv, OpenMPI's single-copy path) pins every page on every call. The shm
// all-to-all uses this; every other path treats these blocks as ordinary memory.
//
// Ids are unique for the life of the process (never reused), so a peer's cached mapping of
// a block can never alias another block; a block the owner freed stays alive in a peer that
// still maps it until that peer evicts the mapping (bounded by its cache size).
// Cost: shmem pages are 4 KiB (transparent huge pages are off for shmem on most kernels),
// and their first touch faults 4 KiB at a time; the caching allocator above reuses blocks,
// so that is paid once (data-parallel training measured no slower). VLMOE_SHM_SHARE=0 turns
// sharing off.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vlmoe {

struct SharedBlockRef {
  int fd = -1;          // the owner's descriptor of the block's memfd
  uint64_t id = 0;      // unique per process, never reused
  uintptr_t base = 0;   // the block's address in the owner
  uint64_t bytes = 0;   // the block's mapped size
};

// Future CPU blocks of at least min_bytes become shareable (unless VLMOE_SHM_SHARE=0).
void shared_blocks_enable(size_t min_bytes);
// Whether a new block of `bytes` should be shareable (sharing on, big enough, and fewer live
// shareable blocks than half the process's descriptor limit).
bool shared_blocks_wanted(size_t bytes);
// A new shareable block of `bytes` (a multiple of the page size), or nullptr when the system
// refuses (no descriptors left, no memory): the caller falls back to private memory.
void* shared_block_alloc(size_t bytes);
// Unmaps and closes `p` if it is a shareable block's base; false when it is not one.
bool shared_block_release(void* p);
// Whether `p` is the base of a shareable block.
bool shared_block_is_base(const void* p);
// The shareable block containing address p, if any. Thread-safe (the communication thread
// asks while JavaScript allocates).
bool shared_block_find(const void* p, SharedBlockRef* out);

}  // namespace vlmoe
