// Standalone GEMM timing: builtin vs OpenBLAS (when compiled in), GFLOP/s.
//
// Usage: gemm_bench [--f64] [--reps N] [--trans]
//   --f64    double instead of float
//   --reps   timed repetitions per case and path (best is reported; default 7)
//   --trans  also run transA / transB variants of each case
// Both paths run with their default thread counts (the pool: hardware_concurrency or
// VLMOE_NUM_THREADS; OpenBLAS: OPENBLAS_NUM_THREADS or the core count). Each path gets a
// time-based warm-up and best-of-N timing. Paths are timed one after the other, with a
// pause between them: OpenBLAS's threads busy-wait after a call and would otherwise steal
// the second core from the builtin path (interleaving them halves the builtin numbers).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../../src/cpu/gemm.h"
#include "../../src/threadpool.h"

using namespace vlmoe;

namespace {

struct Case {
  int64_t M, N, K;
  bool ta, tb;
};

template <typename T>
void call(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C);
template <>
void call<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                 const float* B, float* C) {
  gemm_f32(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
}
template <>
void call<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* A,
                  const double* B, double* C) {
  gemm_f64(ta, tb, M, N, K, 1.0, A, ta ? M : K, B, tb ? K : N, 0.0, C, N);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename T>
void bench(const std::vector<Case>& cases, int reps) {
  const bool have_blas = gemm_openblas_available();
  std::printf("%-34s %12s %12s %8s\n", "case (C[MxN] = A[MxK] B[KxN])", "builtin", "openblas",
              "ratio");
  for (const Case& c : cases) {
    std::vector<T> A(c.M * c.K), B(c.K * c.N), C(c.M * c.N);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1, 1);
    for (auto& x : A) x = d(rng);
    for (auto& x : B) x = d(rng);
    const double flops = 2.0 * c.M * c.N * c.K;
    // Inner repetitions so one timed sample lasts >= ~20 ms.
    const int inner = std::max(1, int(2e-2 / (flops / 100e9)));
    double best[2] = {1e30, 1e30};
    const int npaths = have_blas ? 2 : 1;
    for (int p = 0; p < npaths; ++p) {
      gemm_set_force_builtin(p == 0);
      // OpenBLAS worker threads spin for a while after each call; give them time to park
      // so they do not steal a core from the pool while the builtin path is timed.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      // Warm-up for >= 0.2 s: packing buffers, page faults, thread wake-up, clock ramp.
      for (const double t0 = now_s(); now_s() - t0 < 0.2;)
        call<T>(c.ta, c.tb, c.M, c.N, c.K, A.data(), B.data(), C.data());
      for (int r = 0; r < reps; ++r) {
        const double t0 = now_s();
        for (int i = 0; i < inner; ++i)
          call<T>(c.ta, c.tb, c.M, c.N, c.K, A.data(), B.data(), C.data());
        best[p] = std::min(best[p], (now_s() - t0) / inner);
      }
    }
    gemm_set_force_builtin(false);
    char name[64];
    std::snprintf(name, sizeof name, "%lldx%lldx%lld%s%s", (long long)c.M, (long long)c.N,
                  (long long)c.K, c.ta ? " tA" : "", c.tb ? " tB" : "");
    const double g0 = flops / best[0] * 1e-9;
    if (have_blas) {
      const double g1 = flops / best[1] * 1e-9;
      std::printf("%-34s %12.1f %12.1f %8.2f\n", name, g0, g1, g0 / g1);
    } else {
      std::printf("%-34s %12.1f %12s %8s\n", name, g0, "-", "-");
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool f64 = false, trans = false;
  int reps = 7;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--f64")) f64 = true;
    else if (!std::strcmp(argv[i], "--trans")) trans = true;
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
  }
  std::printf("gemm_bench: %s, builtin simd=%s, pool threads=%d, openblas=%s, best of %d\n",
              f64 ? "f64" : "f32", gemm_simd_name(), num_threads(),
              gemm_openblas_available() ? "yes" : "no", reps);
  std::vector<Case> cases;
  const int64_t shapes[][3] = {{256, 256, 256},   {512, 512, 512},    {1024, 1024, 1024},
                               {2048, 2048, 2048}, {2048, 1024, 256}, {2048, 256, 1024}};
  for (const auto& s : shapes) {
    cases.push_back({s[0], s[1], s[2], false, false});
    if (trans) {
      cases.push_back({s[0], s[1], s[2], true, false});
      cases.push_back({s[0], s[1], s[2], false, true});
    }
  }
  if (f64) bench<double>(cases, reps);
  else bench<float>(cases, reps);
  return 0;
}
