// Fused layer norm over the last dim: forward writes y, mean and rstd (kept for the
// backward); backward computes dx, and dweight/dbias reduced over rows with per-thread
// partial sums (float64) combined in a fixed order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../threadpool.h"
#include "kernels.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

namespace {

template <class T>
void ln_fwd(RowArgs ra, double eps, const T* x, const T* w, const T* b, T* y, T* mean, T* rstd) {
  const int64_t rows = ra.rows, cols = ra.cols;
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, cols)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      double s = 0;
      if constexpr (sizeof(T) == 4) {
        // 8 independent float lanes (vectorises), combined in double.
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8)
          for (int q = 0; q < 8; ++q) acc[q] += xr[j + q];
        s = (double(acc[0]) + acc[1] + acc[2] + acc[3]) + (double(acc[4]) + acc[5] + acc[6] + acc[7]);
        for (; j < cols; ++j) s += double(xr[j]);
      } else {
        for (int64_t j = 0; j < cols; ++j) s += xr[j];
      }
      const double mu = cols ? s / double(cols) : 0.0;
      double v = 0;
      const T muT = T(mu);
      if constexpr (sizeof(T) == 4) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8)
          for (int q = 0; q < 8; ++q) {
            float d = xr[j + q] - muT;
#if defined(__FMA__)
            acc[q] = __builtin_fmaf(d, d, acc[q]);  // explicit: GCC contracts this at 256 bits but not at 512
#else
            acc[q] += d * d;
#endif
          }
        v = (double(acc[0]) + acc[1] + acc[2] + acc[3]) + (double(acc[4]) + acc[5] + acc[6] + acc[7]);
        for (; j < cols; ++j) {
          double d = double(xr[j]) - mu;
          v += d * d;
        }
      } else {
        for (int64_t j = 0; j < cols; ++j) {
          double d = double(xr[j]) - mu;
          v += d * d;
        }
      }
      const double rs = 1.0 / std::sqrt(v / double(cols ? cols : 1) + eps);
      const T rsT = T(rs);
      if (w && b) {
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - muT) * rsT * w[j] + b[j];
      } else if (w) {
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - muT) * rsT * w[j];
      } else if (b) {
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - muT) * rsT + b[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - muT) * rsT;
      }
      if (mean) mean[r] = muT;
      if (rstd) rstd[r] = rsT;
    }
  });
}

template <class T>
void ln_bwd(RowArgs ra, const T* x, const T* w, const T* mean, const T* rstd, const T* g, T* dx, T* dw, T* db) {
  const int64_t rows = ra.rows, cols = ra.cols;
  const int nt = num_threads();
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(nt, rows * cols / kElementwiseGrain + 1));
  const bool need_wb = dw || db;
  std::vector<double> pw(need_wb ? size_t(chunks * cols) : 0, 0.0), pb(need_wb ? size_t(chunks * cols) : 0, 0.0);
  const int64_t csize = (rows + chunks - 1) / chunks;
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      double* cw = need_wb ? pw.data() + c * cols : nullptr;
      double* cbias = need_wb ? pb.data() + c * cols : nullptr;
      for (int64_t r = c * csize; r < std::min(rows, (c + 1) * csize); ++r) {
        const T* xr = x + r * cols;
        const T* gr = g + r * cols;
        const T mu = mean[r], rs = rstd[r];
        double s1 = 0, s2 = 0;  // mean(dxhat), mean(dxhat * xhat)
        for (int64_t j = 0; j < cols; ++j) {
          T xh = (xr[j] - mu) * rs;
          T dxh = w ? gr[j] * w[j] : gr[j];
          s1 += double(dxh);
          s2 += double(dxh) * double(xh);
          if (cw) {
            cw[j] += double(gr[j]) * double(xh);
            cbias[j] += double(gr[j]);
          }
        }
        if (dx) {
          const T m1 = T(s1 / double(cols)), m2 = T(s2 / double(cols));
          T* dr = dx + r * cols;
          for (int64_t j = 0; j < cols; ++j) {
            T xh = (xr[j] - mu) * rs;
            T dxh = w ? gr[j] * w[j] : gr[j];
            dr[j] = rs * (dxh - m1 - xh * m2);
          }
        }
      }
    }
  });
  if (need_wb) {
    for (int64_t j = 0; j < cols; ++j) {
      double sw = 0, sb = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        sw += pw[c * cols + j];
        sb += pb[c * cols + j];
      }
      if (dw) dw[j] = T(sw);
      if (db) db[j] = T(sb);
    }
  }
}

}  // namespace

void layernorm_forward(DType t, RowArgs r, double eps, const void* x, const void* w, const void* b, void* y,
                       void* mean, void* rstd) {
  dispatch_float(t, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    ln_fwd<T>(r, eps, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<T*>(y),
              static_cast<T*>(mean), static_cast<T*>(rstd));
  });
}

void layernorm_backward(DType t, RowArgs r, const void* x, const void* w, const void* mean, const void* rstd,
                        const void* g, void* dx, void* dw, void* db) {
  dispatch_float(t, "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    ln_bwd<T>(r, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
              static_cast<const T*>(rstd), static_cast<const T*>(g), static_cast<T*>(dx), static_cast<T*>(dw),
              static_cast<T*>(db));
  });
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
