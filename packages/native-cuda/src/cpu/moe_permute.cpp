#include "moe_permute.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../threadpool.h"

namespace vlmoe {
namespace {

// Rows of d elements per parallel chunk: aim for ~32K elements of work each.
int64_t row_grain(int64_t d) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(d, 1)); }

template <typename T>
void permute_impl(int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const T* w, const T* src, T* dst) {
  // inverse map: which assignment fills each row (−1: none) → a gather, each row written once
  std::vector<int64_t> inv(R, -1);
  for (int64_t a = 0; a < S * k; ++a)
    if (row[a] >= 0) inv[row[a]] = a;
  parallel_for(R, row_grain(d), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      T* o = dst + r * d;
      const int64_t a = inv[r];
      if (a < 0) {
        std::memset(o, 0, sizeof(T) * d);
        continue;
      }
      const T* x = src + (a / k) * d;
      if (w) {
        const T s = w[a];
        for (int64_t i = 0; i < d; ++i) o[i] = s * x[i];
      } else {
        std::memcpy(o, x, sizeof(T) * d);
      }
    }
  });
}

template <typename T>
void unpermute_impl(int64_t S, int64_t k, int64_t d, const int64_t* row, const T* w, const T* src, T* dst) {
  parallel_for(S, row_grain(d * k), [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      T* o = dst + s * d;
      bool first = true;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t a = s * k + j, r = row[a];
        if (r < 0) continue;
        const T* y = src + r * d;
        const T c = w ? w[a] : T(1);
        if (first) {
          for (int64_t i = 0; i < d; ++i) o[i] = c * y[i];
          first = false;
        } else {
          for (int64_t i = 0; i < d; ++i) o[i] += c * y[i];
        }
      }
      if (first) std::memset(o, 0, sizeof(T) * d);
    }
  });
}

template <typename T>
void weight_grad_impl(int64_t S, int64_t k, int64_t d, const int64_t* row, const T* dout, const T* y, T* dw) {
  parallel_for(S, row_grain(d * k), [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      const T* g = dout + s * d;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t a = s * k + j, r = row[a];
        if (r < 0) {
          dw[a] = T(0);
          continue;
        }
        const T* x = y + r * d;
        T acc = 0;
        for (int64_t i = 0; i < d; ++i) acc += g[i] * x[i];
        dw[a] = acc;
      }
    }
  });
}

void check_float(DType t, const char* op) {
  if (t != DType::f32 && t != DType::f64)
    throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(t) + " is not supported (use float32 or float64)");
}

}  // namespace

void moe_check_rows(int64_t S, int64_t k, int64_t R, const int64_t* row, const char* op) {
  std::vector<int64_t> seen(R, -1);
  for (int64_t a = 0; a < S * k; ++a) {
    const int64_t r = row[a];
    if (r < -1 || r >= R)
      throw std::out_of_range(std::string(op) + ": row " + std::to_string(r) + " of assignment " + std::to_string(a) + " (token " +
                              std::to_string(a / k) + ", choice " + std::to_string(a % k) + ") is outside [-1, " + std::to_string(R) + ")");
    if (r < 0) continue;
    if (seen[r] >= 0)
      throw std::invalid_argument(std::string(op) + ": assignments " + std::to_string(seen[r]) + " and " + std::to_string(a) +
                                  " both map to row " + std::to_string(r));
    seen[r] = a;
  }
}

void moe_permute(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) {
  check_float(t, "moe_permute");
  if (t == DType::f32) permute_impl(S, k, d, R, row, static_cast<const float*>(w), static_cast<const float*>(src), static_cast<float*>(dst));
  else permute_impl(S, k, d, R, row, static_cast<const double*>(w), static_cast<const double*>(src), static_cast<double*>(dst));
}

void moe_unpermute(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* w, const void* src, void* dst) {
  (void)R;
  check_float(t, "moe_unpermute");
  if (t == DType::f32) unpermute_impl(S, k, d, row, static_cast<const float*>(w), static_cast<const float*>(src), static_cast<float*>(dst));
  else unpermute_impl(S, k, d, row, static_cast<const double*>(w), static_cast<const double*>(src), static_cast<double*>(dst));
}

void moe_unpermute_weight_grad(DType t, int64_t S, int64_t k, int64_t d, int64_t R, const int64_t* row, const void* dout,
                               const void* y, void* dw) {
  (void)R;
  check_float(t, "moe_unpermute_weight_grad");
  if (t == DType::f32) weight_grad_impl(S, k, d, row, static_cast<const float*>(dout), static_cast<const float*>(y), static_cast<float*>(dw));
  else weight_grad_impl(S, k, d, row, static_cast<const double*>(dout), static_cast<const double*>(y), static_cast<double*>(dw));
}

}  // namespace vlmoe
