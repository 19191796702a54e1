// A fixed pool of native worker threads shared by every CPU kernel.
//
// Sized once to the machine (std::thread::hardware_concurrency, or VLMOE_NUM_THREADS),
// workers wait for the next job spinning for VLMOE_SPIN_US microseconds (default 50; 0 = never)
// and then sleep on a condition variable (a long spin would starve everything else on a
// 2-core machine; none at all pays a futex round trip per op), and parallel_for runs small
// work inline on the caller so tiny ops never pay for a wake-up.
#pragma once
#include <cstdint>
#include <functional>

namespace vlmoe {

// Number of threads that parallel_for may use (workers + the calling thread).
int num_threads();
// Change the pool size (1 = run everything on the calling thread). Not thread-safe with
// respect to running kernels; call between ops.
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks covering [0, n). Runs inline when
// n <= grain or the pool has one thread. Chunks are at least `grain` long and, but for the
// last, a multiple of `align` (elementwise kernels pass 64 elements, so every chunk starts
// where the operand does, modulo a cache line, and only the op's last elements take the
// scalar tail). fn must not call parallel_for itself (nested calls run inline).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn, int64_t align = 1);

// Default grain for elementwise work, in elements: below this threading does not pay.
constexpr int64_t kElementwiseGrain = 32768;

}  // namespace vlmoe
