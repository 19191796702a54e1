#pragma once
#include <cstdint>

#include "../dtype.h"

namespace vlmoe {
void rand_uniform(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
void rand_normal(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
void rand_int(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
// y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) stored in mask (0/1).
void dropout(DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset);
}  // namespace vlmoe
