// Philox4x32-10 counter-based generator (Salmon et al., 2011). Element i of a random op
// with (seed, offset) uses counter offset + i, so the numbers do not depend on threading,
// chunking or device: the same seed gives the same tensor on every machine, CPU or CUDA.
#pragma once
#include <cstdint>

#include "scalar_math.h"

namespace vlmoe {

struct Philox4 {
  uint32_t v[4];
};

VLMOE_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

VLMOE_HD Philox4 philox(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 (float) or 53 (double) random bits.
VLMOE_HD float uniform_f32(const Philox4& r) { return static_cast<float>(r.v[0] >> 8) * (1.0f / 16777216.0f); }
VLMOE_HD double uniform_f64(const Philox4& r) {
  uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11);
  return static_cast<double>(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}
// Standard normal by Box-Muller on two independent uniforms in (0, 1].
VLMOE_HD double normal_f64(const Philox4& r) {
  double u1 = (static_cast<double>(r.v[2]) + 1.0) * (1.0 / 4294967296.0);
  double u2 = static_cast<double>(r.v[3]) * (1.0 / 4294967296.0);
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(6.283185307179586476925 * u2);
}

}  // namespace vlmoe
