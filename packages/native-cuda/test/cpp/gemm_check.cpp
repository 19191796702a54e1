// Standalone correctness check for src/cpu/gemm*.cpp.
//
// Compares the builtin path (and OpenBLAS, when compiled in) against gemm_reference for many
// shapes, all four transpose combinations, padded leading dimensions, several alpha/beta
// pairs (beta = 0 with a NaN-filled C), f32 and f64, several thread counts and the strided
// batched entry points. Also checks that padding columns of C (ldc > N) are never written.
//
// Usage: gemm_check [--quick] [--no-subruns]
//   By default, after checking the micro-kernel this CPU selects, the program re-runs itself
//   with VLMOE_GEMM_SIMD=avx2 and =portable so the lower kernels are covered as well.
// Exit status 0 when everything matches, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../src/cpu/gemm.h"
#include "../../src/threadpool.h"

using namespace vlmoe;

namespace {

int g_failures = 0;
long g_checks = 0;
std::mt19937_64 g_rng(12345);

template <typename T>
struct Ops;
template <>
struct Ops<float> {
  static constexpr const char* name = "f32";
  static void ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float al, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float be, float* C, int64_t ldc) {
    gemm_reference_f32(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void builtin(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float al,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float be,
                      float* C, int64_t ldc) {
    gemm_builtin_f32(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void dispatch(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float al,
                       const float* A, int64_t lda, const float* B, int64_t ldb, float be,
                       float* C, int64_t ldc) {
    gemm_f32(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void batched(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      float al, const float* A, int64_t lda, int64_t sA, const float* B,
                      int64_t ldb, int64_t sB, float be, float* C, int64_t ldc, int64_t sC) {
    gemm_batched_f32(batch, ta, tb, M, N, K, al, A, lda, sA, B, ldb, sB, be, C, ldc, sC);
  }
};
template <>
struct Ops<double> {
  static constexpr const char* name = "f64";
  static void ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double al,
                  const double* A, int64_t lda, const double* B, int64_t ldb, double be,
                  double* C, int64_t ldc) {
    gemm_reference_f64(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void builtin(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double al,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double be,
                      double* C, int64_t ldc) {
    gemm_builtin_f64(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void dispatch(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double al,
                       const double* A, int64_t lda, const double* B, int64_t ldb, double be,
                       double* C, int64_t ldc) {
    gemm_f64(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc);
  }
  static void batched(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      double al, const double* A, int64_t lda, int64_t sA, const double* B,
                      int64_t ldb, int64_t sB, double be, double* C, int64_t ldc, int64_t sC) {
    gemm_batched_f64(batch, ta, tb, M, N, K, al, A, lda, sA, B, ldb, sB, be, C, ldc, sC);
  }
};

template <typename T>
void fill_random(std::vector<T>& v) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  for (auto& x : v) x = static_cast<T>(d(g_rng));
}

enum class Path { kBuiltin, kOpenblas };
const char* path_name(Path p) { return p == Path::kBuiltin ? "builtin" : "openblas"; }

struct AlphaBeta {
  double alpha, beta;
  bool nan_c;  // fill C with NaN before the call (only meaningful with beta == 0)
};

// Compares got vs want over the M x N block and checks the padding columns are untouched.
template <typename T>
bool compare(const char* what, Path path, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
             const AlphaBeta& ab, const std::vector<T>& got, const std::vector<T>& want,
             int64_t ldc, double tol, int64_t rows_total) {
  ++g_checks;
  double max_err = 0.0;
  int64_t bad_i = -1, bad_j = -1;
  for (int64_t i = 0; i < rows_total; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const T g = got[i * ldc + j], w = want[i * ldc + j];
      double err;
      if (j >= N) {
        // Padding: must be bit-identical (the sentinel, possibly NaN).
        err = (std::memcmp(&g, &w, sizeof(T)) == 0) ? 0.0 : std::numeric_limits<double>::infinity();
      } else {
        err = std::fabs(double(g) - double(w));
        if (!(err <= tol)) err = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
      }
      if (err > max_err) max_err = err, bad_i = i, bad_j = j;
    }
  }
  if (max_err <= tol) return true;
  ++g_failures;
  if (g_failures <= 30) {
    std::printf(
        "FAIL %s %s %s transA=%d transB=%d M=%lld N=%lld K=%lld alpha=%g beta=%g nanC=%d: "
        "max err %.3g > tol %.3g at (%lld,%lld) got %.9g want %.9g\n",
        what, Ops<T>::name, path_name(path), ta, tb, (long long)M, (long long)N, (long long)K,
        ab.alpha, ab.beta, ab.nan_c, max_err, tol, (long long)bad_i, (long long)bad_j,
        double(got[bad_i * ldc + bad_j]), double(want[bad_i * ldc + bad_j]));
  }
  return false;
}

template <typename T>
double tolerance(int64_t K, const AlphaBeta& ab, const std::vector<T>& A,
                 const std::vector<T>& B, const std::vector<T>& C0) {
  double ma = 0, mb = 0, mc = 0;
  for (T x : A) ma = std::max(ma, std::fabs(double(x)));
  for (T x : B) mb = std::max(mb, std::fabs(double(x)));
  if (ab.beta != 0)
    for (T x : C0) mc = std::max(mc, std::fabs(double(x)));
  const double eps = std::numeric_limits<T>::epsilon();
  return 4.0 * (double(K) + 1.0) * eps * ma * mb * std::fabs(ab.alpha) +
         4.0 * eps * std::fabs(ab.beta) * mc + 4.0 * std::numeric_limits<T>::min();
}

template <typename T>
void check_one(Path path, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const AlphaBeta& ab) {
  // Stored shapes and padded leading dimensions (extra columns catch stride mistakes).
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int64_t lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 2;
  std::vector<T> A(std::max<int64_t>(a_rows, 1) * lda), B(std::max<int64_t>(b_rows, 1) * ldb);
  std::vector<T> C0(M * ldc);
  fill_random(A);
  fill_random(B);
  if (ab.nan_c) {
    std::fill(C0.begin(), C0.end(), std::numeric_limits<T>::quiet_NaN());
  } else {
    fill_random(C0);
    for (int64_t i = 0; i < M; ++i)  // padding sentinel
      for (int64_t j = N; j < ldc; ++j) C0[i * ldc + j] = T(1234.5);
  }
  std::vector<T> want = C0, got = C0;
  const T alpha = T(ab.alpha), beta = T(ab.beta);
  Ops<T>::ref(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
  if (path == Path::kBuiltin) {
    Ops<T>::builtin(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
  } else {
    Ops<T>::dispatch(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(),
                     ldc);
  }
  compare("gemm", path, ta, tb, M, N, K, ab, got, want, ldc, tolerance(K, ab, A, B, C0), M);
}

template <typename T>
void check_batched(Path path, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                   const AlphaBeta& ab, bool broadcastA) {
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int64_t lda = a_cols + 1, ldb = b_cols + 2, ldc = N + 3;
  const int64_t sA = broadcastA ? 0 : a_rows * lda + 7, sB = b_rows * ldb + 3;
  const int64_t sC = M * ldc;  // tightly stacked C so padding checks cover every matrix
  std::vector<T> A((broadcastA ? 1 : batch) * std::max<int64_t>(sA, a_rows * lda));
  std::vector<T> B(batch * sB), C0(batch * sC);
  fill_random(A);
  fill_random(B);
  if (ab.nan_c) {
    std::fill(C0.begin(), C0.end(), std::numeric_limits<T>::quiet_NaN());
  } else {
    fill_random(C0);
    for (int64_t r = 0; r < batch * M; ++r)
      for (int64_t j = N; j < ldc; ++j) C0[r * ldc + j] = T(-77.25);
  }
  std::vector<T> want = C0, got = C0;
  const T alpha = T(ab.alpha), beta = T(ab.beta);
  for (int64_t b = 0; b < batch; ++b)
    Ops<T>::ref(ta, tb, M, N, K, alpha, A.data() + b * sA, lda, B.data() + b * sB, ldb, beta,
                want.data() + b * sC, ldc);
  gemm_set_force_builtin(path == Path::kBuiltin);
  Ops<T>::batched(batch, ta, tb, M, N, K, alpha, A.data(), lda, sA, B.data(), ldb, sB, beta,
                  got.data(), ldc, sC);
  compare("batched", path, ta, tb, M, N, K, ab, got, want, ldc, tolerance(K, ab, A, B, C0),
          batch * M);
}

template <typename T>
void run_all(Path path, bool quick) {
  gemm_set_force_builtin(path == Path::kBuiltin);
  const AlphaBeta configs[] = {{1.0, 0.0, true}, {0.5, 2.0, false}, {-1.0, 1.0, false}};
  const int64_t sizes[] = {1, 2, 7, 16, 17, 129};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    // Full cube over the small sizes.
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : sizes)
          for (const auto& ab : configs) {
            if (quick && ab.alpha == -1.0) continue;
            check_one<T>(path, ta, tb, M, N, K, ab);
          }
    // Shapes with a 1000 in them: a selection, not the cube.
    const int64_t big[][3] = {{1000, 17, 129}, {17, 1000, 129}, {129, 129, 1000},
                              {1000, 1000, 7},  {1000, 2, 1000}, {2, 1000, 1000},
                              {1, 1000, 16},    {1000, 1, 17},   {129, 1000, 129}};
    for (const auto& s : big)
      for (int c = 0; c < 2; ++c) check_one<T>(path, ta, tb, s[0], s[1], s[2], configs[c]);
    // Several cache blocks in every dimension (MC, NC, KC boundaries; threaded grid).
    if (!quick) check_one<T>(path, ta, tb, 150, 4300, 300, configs[1]);
  }
  // alpha == 0 and K == 0: C = beta * C without touching A/B.
  check_one<T>(path, false, false, 17, 33, 16, {0.0, 0.5, false});
  check_one<T>(path, false, false, 17, 33, 16, {0.0, 0.0, true});
  check_one<T>(path, true, true, 17, 33, 0, {1.0, 2.0, false});
  check_one<T>(path, false, true, 17, 33, 0, {1.0, 0.0, true});

  // Strided batched: small products (threaded over the batch) and big ones.
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    check_batched<T>(path, 9, ta, tb, 7, 17, 16, configs[0], false);
    check_batched<T>(path, 5, ta, tb, 16, 17, 129, configs[1], true);
    check_batched<T>(path, 3, ta, tb, 129, 200, 129, configs[1], false);
    check_batched<T>(path, 1, ta, tb, 2, 7, 1, configs[0], false);
    check_batched<T>(path, 0, ta, tb, 2, 7, 1, configs[0], false);
  }
  gemm_set_force_builtin(false);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, subruns = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--no-subruns")) subruns = false;
  }
  std::printf("gemm_check: simd=%s openblas=%s threads=%d\n", gemm_simd_name(),
              gemm_openblas_available() ? "yes" : "no", num_threads());

  const int default_threads = num_threads();
  // Thread counts: 1 (sequential driver), the default, and 4 (2 x 2 tile grid).
  const int thread_counts[] = {1, default_threads, 4};
  for (int ti = 0; ti < 3; ++ti) {
    const int nt = thread_counts[ti];
    if (ti == 1 && nt == 1) continue;
    set_num_threads(nt);
    const long before = g_checks;
    const int fails_before = g_failures;
    run_all<float>(Path::kBuiltin, quick || ti != 1);
    run_all<double>(Path::kBuiltin, quick || ti != 1);
    std::printf("  builtin threads=%d: %ld checks, %d failures\n", nt, g_checks - before,
                g_failures - fails_before);
  }
  set_num_threads(default_threads);
  // OpenBLAS does not depend on the builtin kernel choice: check it in the main run only.
  if (gemm_openblas_available() && subruns) {
    const long before = g_checks;
    const int fails_before = g_failures;
    run_all<float>(Path::kOpenblas, true);
    run_all<double>(Path::kOpenblas, true);
    std::printf("  openblas: %ld checks, %d failures\n", g_checks - before,
                g_failures - fails_before);
  }

  // Cover the lower micro-kernels too by re-running this binary with them forced.
  if (subruns && std::getenv("VLMOE_GEMM_SIMD") == nullptr) {
#if defined(__x86_64__)
    for (const char* simd : {"avx2", "portable"}) {
      if (std::string(simd) == "avx2" &&
          !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        continue;
      std::printf("-- re-running with VLMOE_GEMM_SIMD=%s\n", simd);
      std::fflush(stdout);
      const std::string cmd = std::string("VLMOE_GEMM_SIMD=") + simd + " '" + argv[0] +
                              "' --quick --no-subruns";
      if (std::system(cmd.c_str()) != 0) ++g_failures;
    }
#endif
  }

  if (g_failures) {
    std::printf("gemm_check: %d FAILURES (%ld checks)\n", g_failures, g_checks);
    return 1;
  }
  std::printf("gemm_check: all %ld checks passed\n", g_checks);
  return 0;
}
