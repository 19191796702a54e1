// N-dimensional strided iteration shared by elementwise, reduction and indexing kernels.
//
// An Iter describes `nops` operands over one index space: operand k's element at
// multi-index i lives at base[k] + sum_d i[d] * stride[k][d] (strides in elements; stride 0
// broadcasts). `coalesce()` sorts nothing but merges adjacent dimensions that are
// contiguous for every operand and drops size-1 dimensions, so most calls end up with
// one flat dimension and hit the fast contiguous loops.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace vlmoe {

constexpr int kMaxDims = 12;
constexpr int kMaxOps = 5;

struct Iter {
  int ndim = 0;
  int nops = 0;
  int64_t shape[kMaxDims] = {};
  char* base[kMaxOps] = {};
  int elsize[kMaxOps] = {};
  int64_t stride[kMaxOps][kMaxDims] = {};  // in elements

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }

  void coalesce() {
    // Drop size-1 dims.
    int nd = 0;
    for (int d = 0; d < ndim; ++d) {
      if (shape[d] == 1) continue;
      shape[nd] = shape[d];
      for (int k = 0; k < nops; ++k) stride[k][nd] = stride[k][d];
      ++nd;
    }
    ndim = nd;
    if (ndim <= 1) return;
    // Merge dim d into d-1 when every operand steps through d-1 as a block of d.
    int out = 0;
    for (int d = 1; d < ndim; ++d) {
      bool mergeable = true;
      for (int k = 0; k < nops; ++k)
        if (stride[k][out] != stride[k][d] * shape[d]) { mergeable = false; break; }
      if (mergeable) {
        shape[out] *= shape[d];
        for (int k = 0; k < nops; ++k) stride[k][out] = stride[k][d];
      } else {
        ++out;
        shape[out] = shape[d];
        for (int k = 0; k < nops; ++k) stride[k][out] = stride[k][d];
      }
    }
    ndim = out + 1;
  }

  // Calls row(ptrs, n, inner_strides_in_elements) for each innermost row of the linear
  // range [begin, end) of the index space (row-major order). ptrs[k] points at element
  // of operand k where the row starts.
  template <class Row>
  void for_each_row(int64_t begin, int64_t end, Row&& row) const {
    switch (nops) {
      case 1: return rows_n<1>(begin, end, row);
      case 2: return rows_n<2>(begin, end, row);
      case 3: return rows_n<3>(begin, end, row);
      case 4: return rows_n<4>(begin, end, row);
      default: return rows_n<kMaxOps>(begin, end, row);
    }
  }

 private:
  // for_each_row with the operand count N fixed at compile time. Row start pointers are
  // computed once from the multi-index, then advanced incrementally: one add per operand per
  // row, one more per carried dimension. (Recomputing sum_d idx[d]·stride[k][d] per row over
  // runtime-sized arrays let GCC vectorise the bookkeeping with masked AVX-512 loads of arrays
  // just stored to; an add over rows of 32 floats ran at ~150 ns per row, 1/20 of memory speed.)
  template <int N, class Row>
  void rows_n(int64_t begin, int64_t end, Row& row) const {
    if (begin >= end) return;
    if (ndim == 0) {
      char* p[kMaxOps];
      for (int k = 0; k < N; ++k) p[k] = base[k];
      int64_t s[kMaxOps] = {};
      row(p, int64_t(1), s);
      return;
    }
    const int last = ndim - 1;
    const int64_t inner = shape[last];
    int64_t idx[kMaxDims];
    int64_t rem = begin;
    for (int d = last; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    int64_t s[kMaxOps] = {};
    int64_t step[kMaxOps];  // bytes per element along the last dimension
    char* cur[kMaxOps];
    for (int k = 0; k < N; ++k) {
      s[k] = stride[k][last];
      step[k] = s[k] * elsize[k];
      int64_t off = 0;
      for (int d = 0; d < ndim; ++d) off += idx[d] * stride[k][d];
      cur[k] = base[k] + off * elsize[k];
    }
    int64_t pos = begin;
    while (pos < end) {
      int64_t n = inner - idx[last];
      if (n > end - pos) n = end - pos;
      char* p[kMaxOps];
      for (int k = 0; k < N; ++k) p[k] = cur[k];
      row(p, n, s);
      pos += n;
      idx[last] += n;
      for (int k = 0; k < N; ++k) cur[k] += n * step[k];
      for (int d = last; d > 0 && idx[d] >= shape[d]; --d) {
        // wrap dimension d: back to its start, one step along d - 1
        for (int k = 0; k < N; ++k) cur[k] += (stride[k][d - 1] - shape[d] * stride[k][d]) * elsize[k];
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  }
};

}  // namespace vlmoe
