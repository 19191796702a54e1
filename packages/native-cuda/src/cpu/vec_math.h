// SIMD versions of the float32 polynomial math in scalar_math.h, written once over the vector
// types of vec.h (V8: AVX2 + FMA, V16: AVX-512F). GCC does not if-convert the scalar
// versions' selects into vector code, so the hot transcendental ops (exp, log, tanh, sigmoid,
// gelu, softmax's exp) use these explicitly. Same algorithms, constants and operation order
// as scalar_math.h, lane by lane, so every width gives the same bits and agrees with the
// scalar path to rounding.
#pragma once
#include <cmath>

#include "vec.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {
namespace vec {

template <class V>
inline V exp(V x) {
  const V hi = V::set1(88.72283172607421875f), lo = V::set1(-87.3365478515625f);  // hi: largest finite exp
  const V xc = V::min(V::max(x, lo), hi);
  const V n = V::floor(V::fmadd(xc, V::set1(1.44269504088896341f), V::set1(0.5f)));
  V r = V::fnmadd(n, V::set1(0.693359375f), xc);
  r = V::fmadd(n, V::set1(2.12194440e-4f), r);
  V p = V::set1(1.9875691500E-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507E-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073E-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894E-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459E-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201E-1f));
  V y = V::fmadd(p * r, r, r + V::set1(1.0f));
  y = V::ldexp(y, n);
  y = V::select(V::gt(x, hi), V::set1(INFINITY), y);
  y = V::select(V::lt(x, lo), V::zero(), y);
  return V::select(V::is_nan(x), x, y);
}

template <class V>
inline V log(V x) {
  const V tiny = V::set1(1.17549435e-38f);
  const typename V::Mask sub = V::both(V::gt(x, V::zero()), V::lt(x, tiny));
  const V xs = V::select(sub, x * V::set1(8388608.0f), x);
  V e, m;
  V::frexp(xs, e, m);
  const typename V::Mask small = V::lt(m, V::set1(0.707106781186547524f));
  const V ef = e - V::select(small, V::set1(1.0f), V::zero());
  m = (m + V::select(small, m, V::zero())) - V::set1(1.0f);
  const V z = m * m;
  V y = V::set1(7.0376836292E-2f);
  y = V::fmadd(y, m, V::set1(-1.1514610310E-1f));
  y = V::fmadd(y, m, V::set1(1.1676998740E-1f));
  y = V::fmadd(y, m, V::set1(-1.2420140846E-1f));
  y = V::fmadd(y, m, V::set1(1.4249322787E-1f));
  y = V::fmadd(y, m, V::set1(-1.6668057665E-1f));
  y = V::fmadd(y, m, V::set1(2.0000714765E-1f));
  y = V::fmadd(y, m, V::set1(-2.4999993993E-1f));
  y = V::fmadd(y, m, V::set1(3.3333331174E-1f));
  y = (y * m) * z;
  y = V::fmadd(ef, V::set1(-2.12194440e-4f), y);
  y = V::fmadd(z, V::set1(-0.5f), y);
  V r = V::fmadd(ef, V::set1(0.693359375f), m + y);
  r = V::select(sub, r - V::set1(15.9423851528787421f), r);
  r = V::select(V::eq(x, V::set1(INFINITY)), x, r);
  r = V::select(V::eq(x, V::zero()), V::set1(-INFINITY), r);
  r = V::select(V::lt(x, V::zero()), V::set1(NAN), r);
  return V::select(V::is_nan(x), x, r);
}

template <class V>
inline V tanh(V x) {
  const V a = V::abs(x);
  const V e = exp(a + a);
  const V r = V::set1(1.0f) - V::set1(2.0f) / (e + V::set1(1.0f));
  const V x2 = x * x;
  V t = V::fmadd(x2, V::set1(0.0218694885362f), V::set1(-0.0539682539683f));
  t = V::fmadd(t, x2, V::set1(0.133333333333f));
  t = V::fmadd(t, x2, V::set1(-0.333333333333f));
  t = V::fmadd(t, x2, V::set1(1.0f));
  t = t * x;
  const V res = V::select(V::lt(a, V::set1(0.125f)), t, V::copysign(r, x));
  return V::select(V::is_nan(x), x, res);
}

// Abramowitz & Stegun 7.1.26 for |x| ≥ 0.25 (absolute error ≤ 1.5e-7), its Taylor series below
template <class V>
inline V erf(V x) {
  const V a = V::abs(x);
  const V t = V::set1(1.0f) / V::fmadd(a, V::set1(0.3275911f), V::set1(1.0f));
  V p = V::set1(1.061405429f);
  p = V::fmadd(p, t, V::set1(-1.453152027f));
  p = V::fmadd(p, t, V::set1(1.421413741f));
  p = V::fmadd(p, t, V::set1(-0.284496736f));
  p = V::fmadd(p, t, V::set1(0.254829592f));
  const V r = V::fnmadd(p * t, exp(V::zero() - a * a), V::set1(1.0f));
  const V x2 = x * x;
  V ty = V::fmadd(x2, V::set1(-0.026866170645131252f), V::set1(0.11283791670955126f));
  ty = V::fmadd(ty, x2, V::set1(-0.37612638903183754f));
  ty = V::fmadd(ty, x2, V::set1(1.1283791670955126f));
  ty = ty * x;
  return V::select(V::lt(a, V::set1(0.25f)), ty, V::copysign(r, x));
}

template <class V>
inline V sigmoid(V x) {
  return V::set1(1.0f) / (V::set1(1.0f) + exp(V::zero() - x));
}

template <class V>
inline V gelu(V x) {
  const V e = erf(x * V::set1(0.70710678118654752440f));
  return (V::set1(0.5f) * x) * (V::set1(1.0f) + e);
}

template <class V>
inline V gelu_tanh(V x) {
  const V x3 = (x * x) * x;
  const V u = V::set1(0.79788456080286535588f) * V::fmadd(x3, V::set1(0.044715f), x);
  return (V::set1(0.5f) * x) * (V::set1(1.0f) + tanh(u));
}

// gelu'(x) · g
template <class V>
inline V gelu_backward(V g, V x) {
  const V cdf = V::set1(0.5f) * (V::set1(1.0f) + erf(x * V::set1(0.70710678118654752440f)));
  const V pdf = V::set1(0.39894228040143267794f) * exp(V::set1(-0.5f) * (x * x));
  return g * V::fmadd(x, pdf, cdf);
}

}  // namespace vec
}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
