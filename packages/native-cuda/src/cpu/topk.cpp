// Top-k along contiguous rows: values sorted (largest first when `largest`), ties broken by
// lower index, NaN counted as the largest value (PyTorch's order).
#include <algorithm>
#include <numeric>
#include <vector>

#include "../threadpool.h"
#include "kernels.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

void topk(DType t, RowArgs ra, int64_t k, bool largest, const void* xv, void* values, int64_t* indices) {
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(xv);
    T* vals = static_cast<T*>(values);
    const int64_t cols = ra.cols;
    parallel_for(ra.rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, cols)), [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx(static_cast<size_t>(cols));
      for (int64_t r = b; r < e; ++r) {
        const T* xr = x + r * cols;
        std::iota(idx.begin(), idx.end(), int64_t(0));
        auto before = [&](int64_t i, int64_t j) {
          T a = xr[i], c = xr[j];
          bool an = a != a, cn = c != c;  // NaN
          if (an || cn) {
            if (an && cn) return i < j;
            return largest ? an : cn;
          }
          if (a != c) return largest ? a > c : a < c;
          return i < j;
        };
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
        for (int64_t q = 0; q < k; ++q) {
          vals[r * k + q] = xr[idx[q]];
          indices[r * k + q] = idx[q];
        }
      }
    });
  });
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
