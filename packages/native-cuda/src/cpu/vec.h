// Float32 SIMD vectors for the hand-written kernels: V8 (AVX2 + FMA, 8 lanes) and V16
// (AVX-512F, 16 lanes), each with the same small set of operations, so an algorithm is
// written once as a template over the vector type (vec_math.h) and compiled at every width
// its kernel set allows. Lane-wise operations give the same result at every width.
//
// Everything here lives in the kernel set's namespace (VLMOE_CPU_NS): the sets are compiled
// with different instruction-set flags, so no inline function may be shared between them.
#pragma once
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if !defined(VLMOE_CPU_NS)
#error "vec.h belongs to the per-instruction-set kernel files (see kernels.h)"
#endif

namespace vlmoe {
namespace VLMOE_CPU_NS {
namespace vec {

#if defined(__AVX2__) && defined(__FMA__)
#define VLMOE_HAVE_V8 1
// 8 float lanes; masks are all-ones / all-zeros lanes of a __m256.
struct V8 {
  using Reg = __m256;
  using Mask = __m256;
  static constexpr int kLanes = 8;
  Reg v;
  static V8 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  // non-temporal store (p 32-byte aligned): the line goes to memory without being read first
  void stream(float* p) const { _mm256_stream_ps(p, v); }
  static V8 set1(float x) { return {_mm256_set1_ps(x)}; }
  static V8 zero() { return {_mm256_setzero_ps()}; }
  friend V8 operator+(V8 a, V8 b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend V8 operator-(V8 a, V8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend V8 operator*(V8 a, V8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend V8 operator/(V8 a, V8 b) { return {_mm256_div_ps(a.v, b.v)}; }
  static V8 fmadd(V8 a, V8 b, V8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }   // a·b + c
  static V8 fnmadd(V8 a, V8 b, V8 c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; } // c − a·b
  static V8 min(V8 a, V8 b) { return {_mm256_min_ps(a.v, b.v)}; }
  static V8 max(V8 a, V8 b) { return {_mm256_max_ps(a.v, b.v)}; }
  static V8 floor(V8 a) { return {_mm256_floor_ps(a.v)}; }
  static V8 abs(V8 a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  // |mag| with the sign of sgn
  static V8 copysign(V8 mag, V8 sgn) {
    const __m256 s = _mm256_set1_ps(-0.0f);
    return {_mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(sgn.v, s))};
  }
  static Mask lt(V8 a, V8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ); }
  static Mask gt(V8 a, V8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ); }
  static Mask eq(V8 a, V8 b) { return _mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ); }
  static Mask is_nan(V8 a) { return _mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q); }
  static Mask both(Mask a, Mask b) { return _mm256_and_ps(a, b); }
  // m ? t : f, lane by lane
  static V8 select(Mask m, V8 t, V8 f) { return {_mm256_blendv_ps(f.v, t.v, m)}; }
  // y · 2^n for integral n (as floats) in [−254, 256], applied in two halves so neither factor
  // leaves the exponent range (n = 128 when x is near ln FLT_MAX in exp)
  static V8 ldexp(V8 y, V8 n) {
    const __m256i ni = _mm256_cvtps_epi32(n.v), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    y.v = _mm256_mul_ps(y.v, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
    return {_mm256_mul_ps(y.v, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)))};
  }
  // float32 bit patterns: the unbiased exponent + 1 (frexp's) and the mantissa scaled to [0.5, 1)
  static void frexp(V8 x, V8& e, V8& m) {
    const __m256i bits = _mm256_castps_si256(x.v);
    e = {_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)), _mm256_set1_epi32(126)))};
    m = {_mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)))};
  }
};
#endif

#if defined(__AVX512F__)
#define VLMOE_HAVE_V16 1
// 16 float lanes; masks are __mmask16 bit masks.
struct V16 {
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  Reg v;
  static V16 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void stream(float* p) const { _mm512_stream_ps(p, v); }  // p 64-byte aligned
  static V16 set1(float x) { return {_mm512_set1_ps(x)}; }
  static V16 zero() { return {_mm512_setzero_ps()}; }
  friend V16 operator+(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend V16 operator-(V16 a, V16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend V16 operator*(V16 a, V16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend V16 operator/(V16 a, V16 b) { return {_mm512_div_ps(a.v, b.v)}; }
  static V16 fmadd(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static V16 fnmadd(V16 a, V16 b, V16 c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
  static V16 min(V16 a, V16 b) { return {_mm512_min_ps(a.v, b.v)}; }
  static V16 max(V16 a, V16 b) { return {_mm512_max_ps(a.v, b.v)}; }
  static V16 floor(V16 a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)}; }
  static V16 abs(V16 a) { return {_mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32(int(0x80000000u)), _mm512_castps_si512(a.v)))}; }
  static V16 copysign(V16 mag, V16 sgn) {
    const __m512i s = _mm512_set1_epi32(int(0x80000000u));
    return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castps_si512(mag.v)), _mm512_and_si512(_mm512_castps_si512(sgn.v), s)))};
  }
  static Mask lt(V16 a, V16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
  static Mask gt(V16 a, V16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
  static Mask eq(V16 a, V16 b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ); }
  static Mask is_nan(V16 a) { return _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q); }
  static Mask both(Mask a, Mask b) { return Mask(a & b); }
  static V16 select(Mask m, V16 t, V16 f) { return {_mm512_mask_blend_ps(m, f.v, t.v)}; }
  static V16 ldexp(V16 y, V16 n) {
    const __m512i ni = _mm512_cvtps_epi32(n.v), n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    y.v = _mm512_mul_ps(y.v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23)));
    return {_mm512_mul_ps(y.v, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23)))};
  }
  static void frexp(V16 x, V16& e, V16& m) {
    const __m512i bits = _mm512_castps_si512(x.v);
    e = {_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff)), _mm512_set1_epi32(126)))};
    m = {_mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)))};
  }
};
#endif

// The widest vector of this kernel set (what the elementwise loops use).
#if defined(VLMOE_HAVE_V16)
using VWide = V16;
#elif defined(VLMOE_HAVE_V8)
using VWide = V8;
#endif

}  // namespace vec
}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
