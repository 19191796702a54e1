// bfloat16 / float16 on the CPU: casts between them and every other dtype, and fill (half.h
// does the rounding). Elements go through float (from float64: rounded to float first).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../half.h"
#include "../threadpool.h"
#include "gemm.h"
#include "half_ops.h"

namespace vlmoe {

namespace {

double load(const char* p, DType t) {
  switch (t) {
    case DType::f32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::f64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::i32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::i64: { int64_t v; std::memcpy(&v, p, 8); return double(v); }
    case DType::b8: return *reinterpret_cast<const uint8_t*>(p) ? 1.0 : 0.0;
    case DType::u8: return *reinterpret_cast<const uint8_t*>(p);
    case DType::bf16: { uint16_t v; std::memcpy(&v, p, 2); return bf16_to_f32(v); }
    case DType::f16: { uint16_t v; std::memcpy(&v, p, 2); return f16_to_f32(v); }
  }
  return 0;
}

void store(char* p, DType t, double v) {
  switch (t) {
    case DType::f32: { const float f = float(v); std::memcpy(p, &f, 4); return; }
    case DType::f64: std::memcpy(p, &v, 8); return;
    case DType::i32: { const int32_t x = int32_t(v); std::memcpy(p, &x, 4); return; }
    case DType::i64: { const int64_t x = int64_t(v); std::memcpy(p, &x, 8); return; }
    case DType::b8: *reinterpret_cast<uint8_t*>(p) = v != 0; return;
    case DType::u8: *reinterpret_cast<uint8_t*>(p) = uint8_t(int64_t(v)); return;
    case DType::bf16: { const uint16_t h = f32_to_bf16(float(v)); std::memcpy(p, &h, 2); return; }
    case DType::f16: { const uint16_t h = f32_to_f16(float(v)); std::memcpy(p, &h, 2); return; }
  }
}

}  // namespace

void half_cast(DType in, DType out, Iter& it) {
  it.coalesce();
  const size_t ei = dtype_size(in), eo = dtype_size(out);
  parallel_for(it.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    it.for_each_row(b, e, [&](char** p, int64_t n, const int64_t* s) {
      if (in == DType::f32 && out == DType::bf16 && s[0] == 1 && s[1] == 1) {
        const float* src = reinterpret_cast<const float*>(p[1]);
        uint16_t* dst = reinterpret_cast<uint16_t*>(p[0]);
        for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
        return;
      }
      if (in == DType::bf16 && out == DType::f32 && s[0] == 1 && s[1] == 1) {
        const uint16_t* src = reinterpret_cast<const uint16_t*>(p[1]);
        float* dst = reinterpret_cast<float*>(p[0]);
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
        return;
      }
      for (int64_t i = 0; i < n; ++i) store(p[0] + i * s[0] * int64_t(eo), out, load(p[1] + i * s[1] * int64_t(ei), in));
    });
  });
}

void half_fill(DType t, void* dst, int64_t n, double value) {
  const uint16_t h = t == DType::bf16 ? f32_to_bf16(float(value)) : f32_to_f16(float(value));
  std::fill(static_cast<uint16_t*>(dst), static_cast<uint16_t*>(dst) + n, h);
}

void half_to_f32(DType t, const void* src, float* dst, int64_t n) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    if (t == DType::bf16) for (int64_t i = b; i < e; ++i) dst[i] = bf16_to_f32(s[i]);
    else for (int64_t i = b; i < e; ++i) dst[i] = f16_to_f32(s[i]);
  });
}

void f32_to_half(DType t, const float* src, void* dst, int64_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    if (t == DType::bf16) for (int64_t i = b; i < e; ++i) d[i] = f32_to_bf16(src[i]);
    else for (int64_t i = b; i < e; ++i) d[i] = f32_to_f16(src[i]);
  });
}

void gemm_half_cpu(DType ab, DType ct, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA,
                   const void* B, int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC) {
  if (!is_half(ab)) throw std::invalid_argument(std::string("matmul: half-precision GEMM with operands of dtype ") + dtype_name(ab));
  if (ct != ab && ct != DType::f32) throw std::invalid_argument(std::string("matmul: a ") + dtype_name(ab) + " product goes to " + dtype_name(ab) + " or float32, not " + dtype_name(ct));
  if (batch == 0 || M == 0 || N == 0) return;
  auto wide = [&](const uint16_t* p) { return ab == DType::bf16 ? bf16_to_f32(*p) : f16_to_f32(*p); };
  // op(A) and op(B) widened to contiguous float32 ([M, K] and [K, N] per batch; a batch
  // stride of 0 — a broadcast operand — is widened once)
  const int64_t bA = sA == 0 ? 1 : batch, bB = sB == 0 ? 1 : batch;
  std::vector<float> af(static_cast<size_t>(bA * M * K)), bf(static_cast<size_t>(bB * K * N));
  const uint16_t* a = static_cast<const uint16_t*>(A);
  const uint16_t* b = static_cast<const uint16_t*>(B);
  for (int64_t q = 0; q < bA; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) af[(q * M + i) * K + k] = wide(a + q * sA + (ta ? k * lda + i : i * lda + k));
  for (int64_t q = 0; q < bB; ++q)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) bf[(q * K + k) * N + j] = wide(b + q * sB + (tb ? j * ldb + k : k * ldb + j));
  const int64_t sAf = sA == 0 ? 0 : M * K, sBf = sB == 0 ? 0 : K * N;
  if (ct == DType::f32) {
    gemm_batched_f32(batch, false, false, M, N, K, float(alpha), af.data(), K, sAf, bf.data(), N, sBf, float(beta), static_cast<float*>(C), ldc, sC);
    return;
  }
  // a half-precision C: computed in float32, rounded once
  std::vector<float> cf(static_cast<size_t>(batch * M * N), 0.f);
  uint16_t* c = static_cast<uint16_t*>(C);
  if (beta != 0)
    for (int64_t q = 0; q < batch; ++q)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) cf[(q * M + i) * N + j] = wide(c + q * sC + i * ldc + j);
  gemm_batched_f32(batch, false, false, M, N, K, float(alpha), af.data(), K, sAf, bf.data(), N, sBf, float(beta), cf.data(), N, M * N);
  for (int64_t q = 0; q < batch; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float v = cf[(q * M + i) * N + j];
        c[q * sC + i * ldc + j] = ct == DType::bf16 ? f32_to_bf16(v) : f32_to_f16(v);
      }
}

}  // namespace vlmoe
