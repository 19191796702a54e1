// Device memory owned by the addon, named by integer handles.
//
// JavaScript holds handles, never pointers. A handle is valid until free(); a freed or
// unknown handle raises a clear error instead of touching memory. CPU buffers are 64-byte
// aligned. Live and peak bytes are tracked per device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vlmoe {

constexpr int kCpu = -1;  // device code of the host; CUDA devices are 0, 1, ...

struct Buffer {
  void* ptr = nullptr;
  size_t nbytes = 0;
  int device = kCpu;
  bool live = false;
  bool file = false;  // a mapping of an unlinked scratch file (storage_map_file), unmapped on free
};

struct MemStats {
  int64_t live = 0, peak = 0, allocs = 0;
  int64_t cached = 0;  // freed CPU bytes kept for reuse (not counted in live)
  int64_t file = 0;    // live bytes of file-backed CPU storages (not counted in live: the kernel pages them)
};

int32_t storage_alloc(int device, size_t nbytes);
void storage_free(int32_t handle);
// A zero-filled CPU storage of `nbytes` backed by a new file in directory `dir` (ZeRO-Infinity's
// NVMe offload, DeepSpeed's nvme_path): the file is created, sized and mapped shared, then
// unlinked at once, so nothing is left on disk when the process ends, however it ends. Its
// pages are the page cache's: the kernel writes them back and evicts them under memory
// pressure, so such storages can hold more than RAM. Counted in MemStats::file, not live.
// Throws std::runtime_error naming the directory and the system's reason.
int32_t storage_map_file(const std::string& dir, size_t nbytes);
// Throws std::invalid_argument naming the handle if it is not live.
const Buffer& storage_get(int32_t handle);
MemStats storage_stats(int device);  // kCpu or a CUDA ordinal
// The peak of `device` from now on starts at its live bytes (torch's reset_peak_memory_stats).
void storage_reset_peak(int device);
int storage_max_device();
// Returns every cached free CPU block to the system.
void storage_empty_cache();           // highest CUDA ordinal that ever allocated, or -1

}  // namespace vlmoe
