// bfloat16 and float16 <-> float32, bit-exact and host/device (no CUDA or F16C headers):
// round to nearest even, NaN kept quiet, float16 overflow to ±inf, subnormals exact.
#pragma once
#include <cstdint>

#include "scalar_math.h"

namespace vlmoe {

// the project's bit casts (scalar_math.h), unsigned
VLMOE_HD uint32_t f32_bits(float f) { return static_cast<uint32_t>(sm::float_to_bits(f)); }
VLMOE_HD float bits_f32(uint32_t u) { return sm::bits_to_float(static_cast<int32_t>(u)); }

VLMOE_HD float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

VLMOE_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN stays NaN (quiet)
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

VLMOE_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);               // ±0
    const float v = float(man) * 5.9604644775390625e-8f;  // subnormal: man · 2^-24, exact
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

VLMOE_HD uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);                       // rounds to ≥ 65520: inf
  if (a < 0x38800000u) {                                                        // below 2^-14: subnormal or 0
    // value · 2^24 rounded to nearest even gives the subnormal mantissa
    const float scaled = bits_f32(a) * 16777216.0f;  // exact: a power-of-two scale
    uint32_t m = uint32_t(scaled);
    const float rem = scaled - float(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) ++m;
    return uint16_t(sign | m);  // m may reach 0x400: the smallest normal, encoded the same way
  }
  const uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);  // rebias and round
  return uint16_t(sign | (r >> 13));
}

}  // namespace vlmoe
