// Row softmax / log-softmax, forward (with fused scale and mask) and backward.
// Rows are contiguous; statistics are kept in float64 for float32 inputs.
#include <cmath>
#include <limits>

#include "../threadpool.h"
#include "kernels.h"
#include "vec_math.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

namespace {

template <class T>
void softmax_rows(const SoftmaxArgs& a) {
  const int64_t rows = a.r.rows, cols = a.r.cols;
  const T* x = static_cast<const T*>(a.x);
  T* y = static_cast<T*>(a.y);
  const T scale = static_cast<T>(a.scale);
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, cols)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      // Scaled, masked scores go to y first.
      if (a.mask) {
        int64_t moff = 0, rem = r;
        for (int d = a.mask_ndim - 1; d >= 0; --d) {
          moff += (rem % a.row_shape[d]) * a.mask_stride[d];
          rem /= a.row_shape[d];
        }
        const int64_t ms = a.mask_col_stride;
        if (a.mask_bool) {
          const bool* m = static_cast<const bool*>(a.mask) + moff;
          for (int64_t j = 0; j < cols; ++j) yr[j] = m[j * ms] ? xr[j] * scale : -std::numeric_limits<T>::infinity();
        } else {
          const T* m = static_cast<const T*>(a.mask) + moff;
          for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * scale + m[j * ms];
        }
      } else {
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * scale;
      }
      // Row max with 8 independent lanes (a single running max does not vectorise).
      T lanes[8];
      for (int q = 0; q < 8; ++q) lanes[q] = -std::numeric_limits<T>::infinity();
      int64_t j0 = 0;
      for (; j0 + 8 <= cols; j0 += 8)
        for (int q = 0; q < 8; ++q) lanes[q] = yr[j0 + q] > lanes[q] ? yr[j0 + q] : lanes[q];
      T mx = -std::numeric_limits<T>::infinity();
      for (int q = 0; q < 8; ++q) mx = lanes[q] > mx ? lanes[q] : mx;
      for (; j0 < cols; ++j0) mx = yr[j0] > mx ? yr[j0] : mx;
      if (mx == -std::numeric_limits<T>::infinity()) {
        // Fully masked row: PyTorch gives NaN; we give a uniform zero row (log: -inf) so
        // padded queries do not poison the gradients.
        for (int64_t j = 0; j < cols; ++j) yr[j] = a.log ? -std::numeric_limits<T>::infinity() : T(0);
        continue;
      }
      double sum = 0;
      if (a.log) {
        for (int64_t j = 0; j < cols; ++j) sum += double(sm::exp_(T(yr[j] - mx)));
        const T lse = mx + T(std::log(sum));
        for (int64_t j = 0; j < cols; ++j) yr[j] = yr[j] - lse;
      } else {
        float accf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j = 0;
        if constexpr (sizeof(T) == 4) {
#if defined(VLMOE_HAVE_V8)
          // 8 lanes at every width: the same partial sums, so the same result, in every kernel set
          using vec::V8;
          V8 acc = V8::zero();
          const V8 vm = V8::set1(float(mx));
          for (; j + 8 <= cols; j += 8) {
            const V8 v = vec::exp(V8::load(reinterpret_cast<float*>(yr) + j) - vm);
            v.store(reinterpret_cast<float*>(yr) + j);
            acc = acc + v;
          }
          acc.store(accf);
#else
          for (; j + 8 <= cols; j += 8)
            for (int q = 0; q < 8; ++q) {
              T v = sm::exp_(T(yr[j + q] - mx));
              yr[j + q] = v;
              accf[q] += v;
            }
#endif
          sum = (double(accf[0]) + accf[1] + accf[2] + accf[3]) + (double(accf[4]) + accf[5] + accf[6] + accf[7]);
        }
        for (; j < cols; ++j) {
          T v = sm::exp_(T(yr[j] - mx));
          yr[j] = v;
          sum += double(v);
        }
        const T inv = T(1.0 / sum);
        for (int64_t q = 0; q < cols; ++q) yr[q] *= inv;
      }
    }
  });
}

template <class T>
void softmax_bwd_rows(RowArgs ra, bool log, const T* y, const T* g, T* dx) {
  const int64_t rows = ra.rows, cols = ra.cols;
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, cols)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* yr = y + r * cols;
      const T* gr = g + r * cols;
      T* dr = dx + r * cols;
      if (log) {
        // dx = g - exp(y) * sum(g) over the unmasked entries; masked entries (y = -inf, a
        // constant) get 0, so a fully masked row passes no gradient.
        constexpr T ninf = -std::numeric_limits<T>::infinity();
        double s = 0;
        for (int64_t j = 0; j < cols; ++j)
          if (yr[j] != ninf) s += double(gr[j]);
        const T st = T(s);
        for (int64_t j = 0; j < cols; ++j) dr[j] = yr[j] == ninf ? T(0) : gr[j] - sm::exp_(yr[j]) * st;
      } else {
        // dx = y * (g - sum(g * y))
        double s = 0;
        for (int64_t j = 0; j < cols; ++j) s += double(gr[j]) * double(yr[j]);
        const T st = T(s);
        for (int64_t j = 0; j < cols; ++j) dr[j] = yr[j] * (gr[j] - st);
      }
    }
  });
}

}  // namespace

void softmax_forward(DType t, const SoftmaxArgs& a) {
  dispatch_float(t, "softmax", [&](auto tag) { softmax_rows<decltype(tag)>(a); });
}

void softmax_backward(DType t, RowArgs r, bool log, const void* y, const void* g, void* dx) {
  dispatch_float(t, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    softmax_bwd_rows<T>(r, log, static_cast<const T*>(y), static_cast<const T*>(g), static_cast<T*>(dx));
  });
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
