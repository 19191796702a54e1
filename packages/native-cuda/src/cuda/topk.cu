// Top-k along contiguous rows on CUDA (the CPU's order, cpu/topk.cpp: largest first when
// `largest`, ties by lower index, NaN counted largest). One thread per row selects k times
// the best element not taken yet — O(k·cols), right for the router's k ≤ 8 over E experts
// (the hot use); long rows with large k should sort instead.
#include <cuda_runtime.h>

#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

// whether (a, i) comes before (c, j)
template <class T>
__device__ __forceinline__ bool before(T a, int64_t i, T c, int64_t j, bool largest) {
  const bool an = a != a, cn = c != c;
  if (an || cn) {
    if (an && cn) return i < j;
    return largest ? an : cn;
  }
  if (a != c) return largest ? a > c : a < c;
  return i < j;
}

template <class T>
__global__ void k_topk(int64_t rows, int64_t cols, int64_t k, bool largest, const T* x, T* vals, int64_t* idx) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(blockDim.x) * gridDim.x) {
    const T* xr = x + r * cols;
    // the q-th pick is the best element that comes after pick q−1 in the order
    T pv = T(0);
    int64_t pi = -1;
    for (int64_t q = 0; q < k; ++q) {
      T bv = T(0);
      int64_t bi = -1;
      for (int64_t j = 0; j < cols; ++j) {
        const T v = xr[j];
        if (pi >= 0 && !before(pv, pi, v, j, largest)) continue;  // taken already
        if (bi < 0 || before(v, j, bv, bi, largest)) bv = v, bi = j;
      }
      vals[r * k + q] = bv;
      idx[r * k + q] = bi;
      pv = bv, pi = bi;
    }
  }
}

}  // namespace

void cuda_topk(int device, DType t, RowArgs r, int64_t k, bool largest, const void* x, void* values, int64_t* indices) {
  if (r.rows == 0 || k == 0) return;
  cu::set_device(device);
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    k_topk<T><<<cu::blocks_for(r.rows, 128), 128>>>(r.rows, r.cols, k, largest, static_cast<const T*>(x), static_cast<T*>(values), indices);
  });
  cu::launched("topk");
}

}  // namespace vlmoe
