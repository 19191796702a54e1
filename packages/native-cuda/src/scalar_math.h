// Scalar math used by CPU and CUDA kernels.
//
// float32 on the CPU uses branch-free polynomial versions of exp/log/erf (Cephes-style,
// within ~2 ulp) so that loops auto-vectorise; float64 always uses the C library (it is the
// reference precision for gradcheck). Device code uses CUDA's own intrinsics.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VLMOE_HD __host__ __device__ __forceinline__
#else
#define VLMOE_HD inline __attribute__((always_inline))
#endif

namespace vlmoe {
namespace sm {

VLMOE_HD float bits_to_float(int32_t b) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, 4);
  return f;
#endif
}
VLMOE_HD int32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int32_t b;
  std::memcpy(&b, &f, 4);
  return b;
#endif
}

// exp for float32: range reduction by ln2 (split in two parts), degree-6 polynomial.
// Results below FLT_MIN flush to 0 (x < -87.34); the scale 2^n is applied in two halves so
// that results up to FLT_MAX (x up to ln(FLT_MAX) = 88.7228) stay finite.
VLMOE_HD float fast_expf(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  const float hi = 88.72283172607421875f;  // largest float whose exp is finite
  const float lo = -87.3365478515625f;      // exp below this is subnormal: flushed to 0
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  // n = floor(t) by truncation and a correction (vectorises without SSE4.1's roundps).
  float t = xc * 1.44269504088896341f + 0.5f;
  float n = static_cast<float>(static_cast<int32_t>(t));
  n = n > t ? n - 1.0f : n;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  float y = p * r * r + r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);  // in [-126, 128]; 2^128 itself is not a float
  const int32_t n1 = ni >> 1, n2 = ni - n1;     // each in [-63, 64]
  y = (y * bits_to_float((n1 + 127) << 23)) * bits_to_float((n2 + 127) << 23);
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
#endif
}

// log for float32: mantissa in [sqrt(0.5), sqrt(2)), degree-9 polynomial (Cephes logf).
VLMOE_HD float fast_logf(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  // Subnormals are scaled by 2^23 first; zero, negatives, inf and NaN are selected at the end.
  bool sub = x > 0.0f && x < 1.17549435e-38f;
  float xs = sub ? x * 8388608.0f : x;
  int32_t bits = float_to_bits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  bool small = m < 0.707106781186547524f;
  float ef = static_cast<float>(e) - (small ? 1.0f : 0.0f);
  m = small ? (m + m - 1.0f) : (m - 1.0f);
  float z = m * m;
  float y = 7.0376836292E-2f;
  y = y * m - 1.1514610310E-1f;
  y = y * m + 1.1676998740E-1f;
  y = y * m - 1.2420140846E-1f;
  y = y * m + 1.4249322787E-1f;
  y = y * m - 1.6668057665E-1f;
  y = y * m + 2.0000714765E-1f;
  y = y * m - 2.4999993993E-1f;
  y = y * m + 3.3333331174E-1f;
  y = y * m * z;
  y += -2.12194440e-4f * ef;
  y += -0.5f * z;
  float r = m + y + 0.693359375f * ef;
  r = sub ? r - 15.9423851528787421f : r;  // log(2^23)
  r = x == INFINITY ? x : r;
  r = x == 0.0f ? -INFINITY : r;
  r = x < 0.0f ? NAN : r;
  return x != x ? x : r;
#endif
}

// erf for float32: Abramowitz & Stegun 7.1.26 refined (max abs error ~1.2e-7).
VLMOE_HD float fast_erff(float x) {
#if defined(__CUDA_ARCH__)
  return erff(x);
#else
  float a = std::fabs(x);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float r = 1.0f - p * t * fast_expf(-a * a);
  // Near 0 the formula loses relative precision: use the Taylor series there.
  float x2 = x * x;
  float taylor = x * (1.1283791670955126f + x2 * (-0.37612638903183754f + x2 * (0.11283791670955126f - x2 * 0.026866170645131252f)));
  float res = x < 0.0f ? -r : r;
  return a < 0.25f ? taylor : res;
#endif
}

VLMOE_HD float fast_tanhf(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  float a = std::fabs(x);
  float e = fast_expf(2.0f * a);
  float r = 1.0f - 2.0f / (e + 1.0f);
  float x2 = x * x;
  float taylor = x * (1.0f + x2 * (-0.333333333333f + x2 * (0.133333333333f + x2 * (-0.0539682539683f + x2 * 0.0218694885362f))));
  float res = x < 0.0f ? -r : r;
  res = a < 0.125f ? taylor : res;
  return x != x ? x : res;
#endif
}

VLMOE_HD float exp_(float x) { return fast_expf(x); }
VLMOE_HD double exp_(double x) { return ::exp(x); }
VLMOE_HD float log_(float x) { return fast_logf(x); }
VLMOE_HD double log_(double x) { return ::log(x); }
VLMOE_HD float erf_(float x) { return fast_erff(x); }
VLMOE_HD double erf_(double x) { return ::erf(x); }
VLMOE_HD float tanh_(float x) { return fast_tanhf(x); }
VLMOE_HD double tanh_(double x) { return ::tanh(x); }
VLMOE_HD float sqrt_(float x) { return ::sqrtf(x); }
VLMOE_HD double sqrt_(double x) { return ::sqrt(x); }
VLMOE_HD float pow_(float a, float b) { return ::powf(a, b); }
VLMOE_HD double pow_(double a, double b) { return ::pow(a, b); }
VLMOE_HD float floor_(float x) { return ::floorf(x); }
VLMOE_HD double floor_(double x) { return ::floor(x); }
VLMOE_HD float ceil_(float x) { return ::ceilf(x); }
VLMOE_HD double ceil_(double x) { return ::ceil(x); }
VLMOE_HD float round_(float x) { return ::nearbyintf(x); }
VLMOE_HD double round_(double x) { return ::nearbyint(x); }

}  // namespace sm
}  // namespace vlmoe
