// Reduction operators of the communicators (the order matches @vlmoe/parallel's codes).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../dtype.h"

namespace vlmoe {

enum class ReduceOp : int { sum = 0, avg = 1, max = 2, min = 3 };

// 'avg' = sum, then this: data[i] *= s over n elements of a floating dtype.
inline void scale_for_avg(DType t, void* data, int64_t n, double s) {
  if (t == DType::f32) {
    float* p = static_cast<float*>(data);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(p[i] * s);
  } else if (t == DType::f64) {
    double* p = static_cast<double*>(data);
    for (int64_t i = 0; i < n; ++i) p[i] *= s;
  } else {
    throw std::invalid_argument(std::string("'avg' needs a floating dtype, got ") + dtype_name(t));
  }
}

}  // namespace vlmoe
