// Fused scaled-dot-product attention on the CPU (semantics in kernels.h, AttentionArgs): the
// reference the CUDA kernel (cuda/attention.cu) mirrors. Sums and the online softmax run in
// float64 for float32 and float64 inputs alike.
//
// Forward: one query row at a time (rows in parallel), keys in tiles of kTile with the
// online-softmax recurrence (running max m, running sum l, accumulator rescaled by
// exp(m_old − m_new)) — no [Lq, Lk] matrix.
// Backward (FlashAttention-2, recomputing P from lse):
//   D_i = Σ_d dout_id·out_id,  p_ij = exp(s_ij − lse_i),  dp_ij = dout_i·v_j,
//   ds_ij = p_ij·(dp_ij − D_i),  dv_j = Σ_i p_ij·dout_i,  dk_j = scale·Σ_i ds_ij·q_i,
//   dq_i = scale·Σ_j ds_ij·k_j.
// dk/dv are owned by (b, h, key tile) tasks and dq by query-row tasks, so the passes run in
// parallel without atomics and the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../threadpool.h"
#include "kernels.h"

namespace vlmoe {
namespace VLMOE_CPU_NS {

namespace {

constexpr int64_t kTile = 32;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

template <class T>
struct View {
  const AttentionArgs& a;
  const T* q = static_cast<const T*>(a.q);
  const T* k = static_cast<const T*>(a.k);
  const T* v = static_cast<const T*>(a.v);

  // Scores of query row i of head bh against keys [j0, j1): s[j − j0]; −inf when masked.
  void scores(int64_t bh, int64_t i, int64_t j0, int64_t j1, double* s) const {
    const int64_t b = bh / a.H, h = bh % a.H;
    const T* qi = q + (bh * a.Lq + i) * a.D;
    const int64_t moff = a.mask ? b * a.mask_stride[0] + h * a.mask_stride[1] + i * a.mask_stride[2] : 0;
    for (int64_t j = j0; j < j1; ++j) {
      double& out = s[j - j0];
      if (a.causal && j > i) { out = kNegInf; continue; }
      if (a.mask && a.mask_bool && !static_cast<const bool*>(a.mask)[moff + j * a.mask_stride[3]]) { out = kNegInf; continue; }
      const T* kj = k + (bh * a.Lk + j) * a.D;
      double dot = 0;
      for (int64_t d = 0; d < a.D; ++d) dot += double(qi[d]) * double(kj[d]);
      out = a.scale * dot;
      if (a.mask && !a.mask_bool) out += double(static_cast<const T*>(a.mask)[moff + j * a.mask_stride[3]]);
    }
  }
  // The last key query row i can see, plus one.
  int64_t key_end(int64_t i) const { return a.causal ? std::min(a.Lk, i + 1) : a.Lk; }
};

template <class T, class L>
void attn_fwd(const AttentionArgs& a) {
  const View<T> vw{a};
  T* out = static_cast<T*>(a.out);
  L* lse = static_cast<L*>(a.lse);
  const int64_t rows = a.B * a.H * a.Lq;
  const int64_t work = std::max<int64_t>(1, a.Lk * (a.D + a.Dv));
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / work), [&](int64_t rb, int64_t re) {
    std::vector<double> acc(static_cast<size_t>(a.Dv)), s(static_cast<size_t>(kTile));
    for (int64_t r = rb; r < re; ++r) {
      const int64_t bh = r / a.Lq, i = r % a.Lq;
      std::fill(acc.begin(), acc.end(), 0.0);
      double m = kNegInf, l = 0;
      const int64_t jend = vw.key_end(i);
      for (int64_t j0 = 0; j0 < jend; j0 += kTile) {
        const int64_t j1 = std::min(jend, j0 + kTile);
        vw.scores(bh, i, j0, j1, s.data());
        double mt = kNegInf;
        for (int64_t j = j0; j < j1; ++j) mt = std::max(mt, s[j - j0]);
        if (mt == kNegInf) continue;  // every key of the tile masked: nothing to add
        const double mn = std::max(m, mt);
        const double alpha = std::exp(m - mn);  // m = −inf (first live tile): 0
        l *= alpha;
        for (int64_t d = 0; d < a.Dv; ++d) acc[d] *= alpha;
        for (int64_t j = j0; j < j1; ++j) {
          const double p = std::exp(s[j - j0] - mn);
          if (p == 0) continue;
          l += p;
          const T* vj = vw.v + (bh * a.Lk + j) * a.Dv;
          for (int64_t d = 0; d < a.Dv; ++d) acc[d] += p * double(vj[d]);
        }
        m = mn;
      }
      T* o = out + r * a.Dv;
      if (l == 0) {  // every key masked: zeros, lse −inf (softmax's rule)
        for (int64_t d = 0; d < a.Dv; ++d) o[d] = T(0);
        lse[r] = L(kNegInf);
      } else {
        const double inv = 1.0 / l;
        for (int64_t d = 0; d < a.Dv; ++d) o[d] = T(acc[d] * inv);
        lse[r] = L(m + std::log(l));
      }
    }
  });
}

template <class T, class L>
void attn_bwd(const AttentionArgs& a) {
  const View<T> vw{a};
  const T* out = static_cast<const T*>(a.out);
  const T* dout = static_cast<const T*>(a.dout);
  const L* lse = static_cast<const L*>(a.lse);
  T* dq = static_cast<T*>(a.dq);
  T* dk = static_cast<T*>(a.dk);
  T* dv = static_cast<T*>(a.dv);
  const int64_t BH = a.B * a.H, rows = BH * a.Lq;
  const int64_t work = std::max<int64_t>(1, a.Lk * (a.D + a.Dv));
  const int64_t row_grain = std::max<int64_t>(1, kElementwiseGrain / work);

  // Pass 1: D_i = dout_i · out_i.
  std::vector<double> delta(static_cast<size_t>(rows));
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, a.Dv)), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      double s = 0;
      for (int64_t d = 0; d < a.Dv; ++d) s += double(dout[r * a.Dv + d]) * double(out[r * a.Dv + d]);
      delta[size_t(r)] = s;
    }
  });

  // ds_ij for query row r = (bh, i) over keys [j0, j1) (0 where p = 0); s is scratch.
  auto dscores = [&](int64_t bh, int64_t i, int64_t j0, int64_t j1, double* s, double* p, double* ds) {
    const int64_t r = bh * a.Lq + i;
    const double li = double(lse[r]);
    vw.scores(bh, i, j0, j1, s);
    const T* go = dout + r * a.Dv;
    for (int64_t j = j0; j < j1; ++j) {
      const double sj = s[j - j0];
      if (li == kNegInf || sj == kNegInf) {
        p[j - j0] = ds[j - j0] = 0;
        continue;
      }
      const double pj = std::exp(sj - li);
      const T* vj = vw.v + (bh * a.Lk + j) * a.Dv;
      double dp = 0;
      for (int64_t d = 0; d < a.Dv; ++d) dp += double(go[d]) * double(vj[d]);
      p[j - j0] = pj;
      ds[j - j0] = pj * (dp - delta[size_t(r)]);
    }
  };

  // Pass 2: dk, dv per (b, h, key tile).
  const int64_t ktiles = (a.Lk + kTile - 1) / kTile;
  parallel_for(BH * ktiles, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, kTile * a.Lq * (a.D + a.Dv))), [&](int64_t tb, int64_t te) {
    std::vector<double> s(static_cast<size_t>(kTile)), p(static_cast<size_t>(kTile)), ds(static_cast<size_t>(kTile));
    std::vector<double> gk(static_cast<size_t>(kTile * a.D)), gv(static_cast<size_t>(kTile * a.Dv));
    for (int64_t t = tb; t < te; ++t) {
      const int64_t bh = t / ktiles, j0 = (t % ktiles) * kTile, j1 = std::min(a.Lk, j0 + kTile);
      std::fill(gk.begin(), gk.end(), 0.0);
      std::fill(gv.begin(), gv.end(), 0.0);
      // causal: rows above the tile's first key see none of its keys
      for (int64_t i = a.causal ? std::min(j0, a.Lq) : 0; i < a.Lq; ++i) {
        dscores(bh, i, j0, j1, s.data(), p.data(), ds.data());
        const T* qi = vw.q + (bh * a.Lq + i) * a.D;
        const T* go = dout + (bh * a.Lq + i) * a.Dv;
        for (int64_t j = j0; j < j1; ++j) {
          const double pj = p[j - j0], dsj = ds[j - j0] * a.scale;
          if (pj == 0) continue;
          double* gvj = gv.data() + (j - j0) * a.Dv;
          double* gkj = gk.data() + (j - j0) * a.D;
          for (int64_t d = 0; d < a.Dv; ++d) gvj[d] += pj * double(go[d]);
          for (int64_t d = 0; d < a.D; ++d) gkj[d] += dsj * double(qi[d]);
        }
      }
      for (int64_t j = j0; j < j1; ++j) {
        T* dkj = dk + (bh * a.Lk + j) * a.D;
        T* dvj = dv + (bh * a.Lk + j) * a.Dv;
        for (int64_t d = 0; d < a.D; ++d) dkj[d] = T(gk[size_t((j - j0) * a.D + d)]);
        for (int64_t d = 0; d < a.Dv; ++d) dvj[d] = T(gv[size_t((j - j0) * a.Dv + d)]);
      }
    }
  });

  // Pass 3: dq per query row.
  parallel_for(rows, row_grain, [&](int64_t rb, int64_t re) {
    std::vector<double> s(static_cast<size_t>(kTile)), p(static_cast<size_t>(kTile)), ds(static_cast<size_t>(kTile)), g(static_cast<size_t>(a.D));
    for (int64_t r = rb; r < re; ++r) {
      const int64_t bh = r / a.Lq, i = r % a.Lq;
      std::fill(g.begin(), g.end(), 0.0);
      const int64_t jend = vw.key_end(i);
      for (int64_t j0 = 0; j0 < jend; j0 += kTile) {
        const int64_t j1 = std::min(jend, j0 + kTile);
        dscores(bh, i, j0, j1, s.data(), p.data(), ds.data());
        for (int64_t j = j0; j < j1; ++j) {
          const double dsj = ds[j - j0];
          if (dsj == 0) continue;
          const T* kj = vw.k + (bh * a.Lk + j) * a.D;
          for (int64_t d = 0; d < a.D; ++d) g[d] += dsj * double(kj[d]);
        }
      }
      T* o = dq + r * a.D;
      for (int64_t d = 0; d < a.D; ++d) o[d] = T(a.scale * g[d]);
    }
  });
}

}  // namespace

void attention_forward(DType t, const AttentionArgs& a) {
  if (t == DType::f32) attn_fwd<float, float>(a);
  else if (t == DType::f64) attn_fwd<double, double>(a);
  else throw std::invalid_argument(std::string("attention: the CPU kernel takes float32 or float64, got ") + dtype_name(t));
}

void attention_backward(DType t, const AttentionArgs& a) {
  if (t == DType::f32) attn_bwd<float, float>(a);
  else if (t == DType::f64) attn_bwd<double, double>(a);
  else throw std::invalid_argument(std::string("attention_backward: the CPU kernel takes float32 or float64, got ") + dtype_name(t));
}

}  // namespace VLMOE_CPU_NS
}  // namespace vlmoe
