// Random fills and dropout on the CPU, from the Philox stream (see philox.h).
#include <cmath>
#include <stdexcept>

#include "../philox.h"
#include "../threadpool.h"
#include "random.h"

namespace vlmoe {

void rand_uniform(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_float(t, "rand", [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(dst);
    parallel_for(n, 8192, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        Philox4 r = philox(seed, offset + uint64_t(i));
        double u = sizeof(T) == 4 ? double(uniform_f32(r)) : uniform_f64(r);
        T v = T(lo + (hi - lo) * u);
        d[i] = v < T(hi) ? v : T(lo);  // rounding must not reach hi
      }
    });
  });
}

void rand_normal(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_float(t, "randn", [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(dst);
    parallel_for(n, 8192, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] = T(mean + std * normal_f64(philox(seed, offset + uint64_t(i))));
    });
  });
}

void rand_int(DType t, void* dst, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high) {
  if (high <= low) throw std::invalid_argument("randint: high must be greater than low");
  const uint64_t range = uint64_t(high - low);
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(dst);
    parallel_for(n, 8192, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        Philox4 r = philox(seed, offset + uint64_t(i));
        uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
        d[i] = static_cast<T>(low + int64_t(bits % range));
      }
    });
  });
}

void dropout(DType t, const void* x, void* y, uint8_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  dispatch_float(t, "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(y);
    const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
    const float pf = float(p);
    parallel_for(n, 8192, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        bool keep = uniform_f32(philox(seed, offset + uint64_t(i))) >= pf;
        mask[i] = keep;
        ys[i] = keep ? xs[i] * scale : T(0);
      }
    });
  });
}

}  // namespace vlmoe
