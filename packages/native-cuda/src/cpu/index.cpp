// Indexing kernels: index_select / index_add (embedding forward and backward), gather and
// scatter_add. Every index is bounds-checked; the error names the bad value and position.
#include "index.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../threadpool.h"

namespace vlmoe {

namespace {

template <class I>
int64_t checked(const I* idx, int64_t j, int64_t size, const char* op) {
  int64_t v = static_cast<int64_t>(idx[j]);
  if (v < 0 || v >= size)
    throw std::out_of_range(std::string(op) + ": index " + std::to_string(v) + " at position " + std::to_string(j) +
                            " is out of range for a dimension of size " + std::to_string(size));
  return v;
}

template <class F>
void with_index_type(DType it, const char* op, F&& f) {
  if (it == DType::i64) f(int64_t{});
  else if (it == DType::i32) f(int32_t{});
  else throw std::invalid_argument(std::string(op) + ": indices must be int32 or int64, got " + dtype_name(it));
}

}  // namespace

void index_select(DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx,
                  int64_t m, void* out) {
  const size_t es = dtype_size(t);
  const size_t rowbytes = size_t(inner) * es;
  with_index_type(it, "index_select", [&](auto tag) {
    using I = decltype(tag);
    const I* ix = static_cast<const I*>(idx);
    for (int64_t j = 0; j < m; ++j) checked(ix, j, size, "index_select");
    const char* xs = static_cast<const char*>(x);
    char* os = static_cast<char*>(out);
    parallel_for(outer * m, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, inner)), [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) {
        int64_t o = q / m, j = q % m;
        std::memcpy(os + size_t(q) * rowbytes, xs + (size_t(o) * size_t(size) + size_t(ix[j])) * rowbytes, rowbytes);
      }
    });
  });
}

void index_add(DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m,
               const void* src) {
  with_index_type(it, "index_add", [&](auto itag) {
    using I = decltype(itag);
    const I* ix = static_cast<const I*>(idx);
    for (int64_t j = 0; j < m; ++j) checked(ix, j, size, "index_add");
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same<T, bool>::value) {
        throw std::invalid_argument("index_add: bool is not supported");
      } else {
        T* o = static_cast<T*>(out);
        const T* s = static_cast<const T*>(src);
        // Parallel over (outer, inner columns): each thread owns whole columns, so duplicate
        // indices never race and the summation order is fixed.
        const int64_t colblock = 64;
        const int64_t nblk = (inner + colblock - 1) / colblock;
        parallel_for(outer * nblk, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, m * colblock)), [&](int64_t b, int64_t e) {
          for (int64_t q = b; q < e; ++q) {
            int64_t ob = q / nblk, c0 = (q % nblk) * colblock, c1 = std::min(inner, c0 + colblock);
            for (int64_t j = 0; j < m; ++j) {
              T* orow = o + (ob * size + int64_t(ix[j])) * inner;
              const T* srow = s + (ob * m + j) * inner;
              for (int64_t c = c0; c < c1; ++c) orow[c] += srow[c];
            }
          }
        });
      }
    });
  });
}

void gather(DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size) {
  const size_t es = dtype_size(t);
  with_index_type(it_dtype, "gather", [&](auto itag) {
    using I = decltype(itag);
    const int64_t n = it.numel();
    parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
      it.for_each_row(b, e, [&](char** p, int64_t cnt, const int64_t* s) {
        for (int64_t j = 0; j < cnt; ++j) {
          const I* ip = reinterpret_cast<const I*>(p[1]) + j * s[1];
          int64_t v = static_cast<int64_t>(*ip);
          if (v < 0 || v >= x_dim_size)
            throw std::out_of_range("gather: index " + std::to_string(v) + " is out of range for a dimension of size " +
                                    std::to_string(x_dim_size));
          std::memcpy(p[0] + j * s[0] * es, p[2] + (j * s[2] + v * x_dim_stride) * es, es);
        }
      });
    });
  });
}

void scatter_add(DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size) {
  with_index_type(it_dtype, "scatter_add", [&](auto itag) {
    using I = decltype(itag);
    dispatch_dtype(t, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same<T, bool>::value) {
        throw std::invalid_argument("scatter_add: bool is not supported");
      } else {
        // Serial: duplicate indices accumulate in a fixed order.
        it.for_each_row(0, it.numel(), [&](char** p, int64_t cnt, const int64_t* s) {
          for (int64_t j = 0; j < cnt; ++j) {
            int64_t v = static_cast<int64_t>(*(reinterpret_cast<const I*>(p[1]) + j * s[1]));
            if (v < 0 || v >= out_dim_size)
              throw std::out_of_range("scatter_add: index " + std::to_string(v) +
                                      " is out of range for a dimension of size " + std::to_string(out_dim_size));
            T* o = reinterpret_cast<T*>(p[0]) + j * s[0] + v * out_dim_stride;
            *o += *(reinterpret_cast<const T*>(p[2]) + j * s[2]);
          }
        });
      }
    });
  });
}

}  // namespace vlmoe
