// AVX2/FMA versions of the float32 polynomial math in scalar_math.h, 8 lanes at a time.
// GCC does not if-convert the scalar versions' selects into vector code, so the hot
// transcendental ops (exp, log, tanh, sigmoid, gelu, softmax's exp) use these explicitly.
// Same algorithms and constants as scalar_math.h, so both paths agree to rounding.
#pragma once
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace vlmoe {
namespace v8 {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }

inline __m256 exp(__m256 x) {
  const __m256 hi = set1(88.72283172607421875f), lo = set1(-87.3365478515625f);  // hi: largest finite exp
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(xc, set1(1.44269504088896341f), set1(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, set1(0.693359375f), xc);
  r = _mm256_fmadd_ps(n, set1(2.12194440e-4f), r);
  __m256 p = set1(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, set1(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, set1(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, set1(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, set1(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, set1(5.0000001201E-1f));
  __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, set1(1.0f)));
  // 2^n applied in two halves so n = 128 (x near ln FLT_MAX) does not overflow the exponent.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
  y = _mm256_blendv_ps(y, set1(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

inline __m256 log(__m256 x) {
  const __m256 tiny = set1(1.17549435e-38f);
  __m256 sub = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_cmp_ps(x, tiny, _CMP_LT_OQ));
  __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, set1(8388608.0f)), sub);
  __m256i bits = _mm256_castps_si256(xs);
  __m256i e = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)), _mm256_set1_epi32(126));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
  __m256 small = _mm256_cmp_ps(m, set1(0.707106781186547524f), _CMP_LT_OQ);
  __m256 ef = _mm256_sub_ps(_mm256_cvtepi32_ps(e), _mm256_and_ps(small, set1(1.0f)));
  m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), set1(1.0f));
  __m256 z = _mm256_mul_ps(m, m);
  __m256 y = set1(7.0376836292E-2f);
  y = _mm256_fmadd_ps(y, m, set1(-1.1514610310E-1f));
  y = _mm256_fmadd_ps(y, m, set1(1.1676998740E-1f));
  y = _mm256_fmadd_ps(y, m, set1(-1.2420140846E-1f));
  y = _mm256_fmadd_ps(y, m, set1(1.4249322787E-1f));
  y = _mm256_fmadd_ps(y, m, set1(-1.6668057665E-1f));
  y = _mm256_fmadd_ps(y, m, set1(2.0000714765E-1f));
  y = _mm256_fmadd_ps(y, m, set1(-2.4999993993E-1f));
  y = _mm256_fmadd_ps(y, m, set1(3.3333331174E-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  y = _mm256_fmadd_ps(ef, set1(-2.12194440e-4f), y);
  y = _mm256_fmadd_ps(z, set1(-0.5f), y);
  __m256 r = _mm256_fmadd_ps(ef, set1(0.693359375f), _mm256_add_ps(m, y));
  r = _mm256_blendv_ps(r, _mm256_sub_ps(r, set1(15.9423851528787421f)), sub);
  r = _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, set1(INFINITY), _CMP_EQ_OQ));
  r = _mm256_blendv_ps(r, set1(-INFINITY), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
  r = _mm256_blendv_ps(r, set1(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

inline __m256 abs(__m256 x) { return _mm256_andnot_ps(set1(-0.0f), x); }
inline __m256 copysign(__m256 mag, __m256 sgn) {
  return _mm256_or_ps(abs(mag), _mm256_and_ps(sgn, set1(-0.0f)));
}

inline __m256 tanh(__m256 x) {
  __m256 a = abs(x);
  __m256 e = exp(_mm256_add_ps(a, a));
  __m256 r = _mm256_sub_ps(set1(1.0f), _mm256_div_ps(set1(2.0f), _mm256_add_ps(e, set1(1.0f))));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 t = _mm256_fmadd_ps(x2, set1(0.0218694885362f), set1(-0.0539682539683f));
  t = _mm256_fmadd_ps(t, x2, set1(0.133333333333f));
  t = _mm256_fmadd_ps(t, x2, set1(-0.333333333333f));
  t = _mm256_fmadd_ps(t, x2, set1(1.0f));
  t = _mm256_mul_ps(t, x);
  __m256 res = _mm256_blendv_ps(copysign(r, x), t, _mm256_cmp_ps(a, set1(0.125f), _CMP_LT_OQ));
  return _mm256_blendv_ps(res, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

inline __m256 erf(__m256 x) {
  __m256 a = abs(x);
  __m256 t = _mm256_div_ps(set1(1.0f), _mm256_fmadd_ps(a, set1(0.3275911f), set1(1.0f)));
  __m256 p = set1(1.061405429f);
  p = _mm256_fmadd_ps(p, t, set1(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, set1(1.421413741f));
  p = _mm256_fmadd_ps(p, t, set1(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, set1(0.254829592f));
  __m256 r = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), exp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a))), set1(1.0f));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 ty = _mm256_fmadd_ps(x2, set1(-0.026866170645131252f), set1(0.11283791670955126f));
  ty = _mm256_fmadd_ps(ty, x2, set1(-0.37612638903183754f));
  ty = _mm256_fmadd_ps(ty, x2, set1(1.1283791670955126f));
  ty = _mm256_mul_ps(ty, x);
  return _mm256_blendv_ps(copysign(r, x), ty, _mm256_cmp_ps(a, set1(0.25f), _CMP_LT_OQ));
}

inline __m256 sigmoid(__m256 x) {
  return _mm256_div_ps(set1(1.0f), _mm256_add_ps(set1(1.0f), exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 gelu(__m256 x) {
  __m256 e = erf(_mm256_mul_ps(x, set1(0.70710678118654752440f)));
  return _mm256_mul_ps(_mm256_mul_ps(set1(0.5f), x), _mm256_add_ps(set1(1.0f), e));
}

inline __m256 gelu_tanh(__m256 x) {
  __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  __m256 u = _mm256_mul_ps(set1(0.79788456080286535588f), _mm256_fmadd_ps(x3, set1(0.044715f), x));
  return _mm256_mul_ps(_mm256_mul_ps(set1(0.5f), x), _mm256_add_ps(set1(1.0f), tanh(u)));
}

// gelu'(x) * g
inline __m256 gelu_backward(__m256 g, __m256 x) {
  __m256 cdf = _mm256_mul_ps(set1(0.5f), _mm256_add_ps(set1(1.0f), erf(_mm256_mul_ps(x, set1(0.70710678118654752440f)))));
  __m256 pdf = _mm256_mul_ps(set1(0.39894228040143267794f), exp(_mm256_mul_ps(set1(-0.5f), _mm256_mul_ps(x, x))));
  return _mm256_mul_ps(g, _mm256_fmadd_ps(x, pdf, cdf));
}

}  // namespace v8
}  // namespace vlmoe
#endif
