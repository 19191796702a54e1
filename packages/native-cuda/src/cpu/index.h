#pragma once
#include <cstdint>

#include "../dtype.h"
#include "../iter.h"

namespace vlmoe {
// x viewed [outer, size, inner] (contiguous) -> out [outer, m, inner]: out[o, j, i] = x[o, idx[j], i].
void index_select(DType t, const void* x, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx,
                  int64_t m, void* out);
// out [outer, size, inner] += src [outer, m, inner] at rows idx (duplicates accumulate).
void index_add(DType t, void* out, int64_t outer, int64_t size, int64_t inner, DType it, const void* idx, int64_t m,
               const void* src);
// Iter over idx's shape with operands out, idx, x (x's stride along dim set to 0):
// out = x[..., idx, ...] along dim (x_dim_stride, x_dim_size bound the index).
void gather(DType t, DType it_dtype, Iter& it, int64_t x_dim_stride, int64_t x_dim_size);
// Iter over idx's shape with operands out (stride along dim 0), idx, src: out[..idx..] += src.
void scatter_add(DType t, DType it_dtype, Iter& it, int64_t out_dim_stride, int64_t out_dim_size);
}  // namespace vlmoe
