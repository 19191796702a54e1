// Builtin GEMM: GotoBLAS / BLIS-style blocked, packed, register-blocked, threaded.
//
// Loop nest for one thread's tile of C (rows [i0,i1), columns [j0,j1)):
//
//   for jc in columns, step NC          B panel  (KC x NC) -> packed, lives in L3
//     for pc in 0..K, step KC           rank-KC update
//       pack B[pc:pc+kc, jc:jc+nc] into NR-wide micro-panels
//       for ic in rows, step MC         A block  (MC x KC) -> packed, lives in L2
//         pack A[ic:ic+mc, pc:pc+kc] into MR-tall micro-panels
//         for jr in 0..nc, step NR      B micro-panel (KC x NR) stays in L1
//           for ir in 0..mc, step MR    A micro-panel streams from L2
//             micro-kernel: C[MR x NR] (+)= A_micro * B_micro, accumulators in registers
//
// Packing copies each operand once per block into a contiguous, 64-byte aligned buffer in
// exactly the order the micro-kernel reads it (k-major, MR or NR values per k). That is
// where transA / transB and the leading dimensions are dealt with, so the micro-kernels
// only ever see one layout. Edge micro-panels are zero padded; the kernel then runs on a
// full tile and only the valid part is written back.
//
// The SIMD micro-kernels are compiled with function-level target attributes and selected
// at run time (__builtin_cpu_supports), so the object runs on any x86-64 and no global
// -mavx2 / -march=native is needed; on other architectures only the portable kernel exists.
//
// Threading: C is cut into a grid of tm x tn tiles (tm * tn <= threads), one per thread,
// each computed independently with thread-local packing buffers. Cutting along the larger
// dimension keeps the duplicated packing small (each thread packs the whole of the other
// operand, which is O(K*N) against O(M*N*K/threads) flops).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "../threadpool.h"
#include "gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VLMOE_GEMM_X86 1
#else
#define VLMOE_GEMM_X86 0
#endif

#if defined(__GNUC__)
#define VLMOE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define VLMOE_ALWAYS_INLINE inline
#endif

namespace vlmoe {
namespace {

// ------------------------------------------------------------------------------------------
// Micro-kernels
//
// Contract: Ap holds kc groups of MR values (one column of the A micro-panel per k), Bp holds
// kc groups of NR values (one row of the B micro-panel per k), both 64-byte aligned.
//   C[i*ldc + j] = alpha * sum_k Ap[k*MR+i] * Bp[k*NR+j] + beta * C[i*ldc + j]
// for the full MR x NR tile; beta == 0 never reads C.
// ------------------------------------------------------------------------------------------

template <typename T>
using KernelFn = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha,
                          T beta);

// Portable kernel: plain loops over a small accumulator array; at -O3 the compiler
// vectorises the j loop with whatever the baseline ISA offers (SSE2 on x86-64, NEON on
// aarch64). MR x NR is chosen so the accumulators fit the 16 baseline vector registers.
template <typename T, int MR, int NR>
void kernel_portable(int64_t kc, const T* __restrict Ap, const T* __restrict Bp,
                     T* __restrict C, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = Ap + k * MR;
    const T* b = Bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MR; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
    }
  }
}

#if VLMOE_GEMM_X86
// Thin per-ISA vector wrappers so one kernel template serves float and double.
#define VLMOE_T512 __attribute__((target("avx512f"), always_inline))
#define VLMOE_T256 __attribute__((target("avx2,fma"), always_inline))

struct V512f {
  using T = float;
  using V = __m512;
  static constexpr int W = 16;
  static inline VLMOE_T512 V zero() { return _mm512_setzero_ps(); }
  static inline VLMOE_T512 V set1(T x) { return _mm512_set1_ps(x); }
  static inline VLMOE_T512 V load(const T* p) { return _mm512_load_ps(p); }
  static inline VLMOE_T512 V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static inline VLMOE_T512 void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
  static inline VLMOE_T512 V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline VLMOE_T512 V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};
struct V512d {
  using T = double;
  using V = __m512d;
  static constexpr int W = 8;
  static inline VLMOE_T512 V zero() { return _mm512_setzero_pd(); }
  static inline VLMOE_T512 V set1(T x) { return _mm512_set1_pd(x); }
  static inline VLMOE_T512 V load(const T* p) { return _mm512_load_pd(p); }
  static inline VLMOE_T512 V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static inline VLMOE_T512 void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
  static inline VLMOE_T512 V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static inline VLMOE_T512 V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};
struct V256f {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static inline VLMOE_T256 V zero() { return _mm256_setzero_ps(); }
  static inline VLMOE_T256 V set1(T x) { return _mm256_set1_ps(x); }
  static inline VLMOE_T256 V load(const T* p) { return _mm256_load_ps(p); }
  static inline VLMOE_T256 V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static inline VLMOE_T256 void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static inline VLMOE_T256 V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline VLMOE_T256 V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
struct V256d {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static inline VLMOE_T256 V zero() { return _mm256_setzero_pd(); }
  static inline VLMOE_T256 V set1(T x) { return _mm256_set1_pd(x); }
  static inline VLMOE_T256 V load(const T* p) { return _mm256_load_pd(p); }
  static inline VLMOE_T256 V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static inline VLMOE_T256 void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static inline VLMOE_T256 V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static inline VLMOE_T256 V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

// The SIMD kernel: MR rows x NV vectors of accumulators. Per k it loads NV vectors of B and
// broadcasts MR scalars of A, issuing MR*NV independent FMAs (enough to cover the FMA
// latency x throughput product on current cores). GCC only inlines the target-specific
// wrappers into a function compiled for the same target, so the body is stamped out once
// per target by this macro.
#define VLMOE_DEFINE_SIMD_KERNEL(NAME, TARGET)                                                \
  template <class S, int MR, int NV>                                                          \
  __attribute__((target(TARGET))) void NAME(int64_t kc, const typename S::T* __restrict Ap,  \
                                            const typename S::T* __restrict Bp,              \
                                            typename S::T* __restrict C, int64_t ldc,        \
                                            typename S::T alpha, typename S::T beta) {       \
    using V = typename S::V;                                                                  \
    constexpr int W = S::W;                                                                   \
    V acc[MR][NV];                                                                            \
    _Pragma("GCC unroll 64") for (int i = 0; i < MR; ++i)                                     \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();             \
    /* Warm the C tile while the k loop runs (it is only touched at the end). */              \
    _Pragma("GCC unroll 64") for (int i = 0; i < MR; ++i) {                                   \
      _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);                  \
      _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + NV * W - 1), _MM_HINT_T0);     \
    }                                                                                         \
    for (int64_t k = 0; k < kc; ++k) {                                                        \
      V b[NV];                                                                                \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) b[v] = S::load(Bp + v * W);        \
      _Pragma("GCC unroll 64") for (int i = 0; i < MR; ++i) {                                 \
        const V a = S::set1(Ap[i]);                                                           \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) acc[i][v] =                      \
            S::fmadd(a, b[v], acc[i][v]);                                                     \
      }                                                                                       \
      Ap += MR;                                                                               \
      Bp += NV * W;                                                                           \
    }                                                                                         \
    const V va = S::set1(alpha);                                                              \
    if (beta == typename S::T(0)) {                                                           \
      _Pragma("GCC unroll 64") for (int i = 0; i < MR; ++i)                                   \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v)                                  \
          S::storeu(C + i * ldc + v * W, S::mul(va, acc[i][v]));                              \
    } else {                                                                                  \
      const V vb = S::set1(beta);                                                             \
      _Pragma("GCC unroll 64") for (int i = 0; i < MR; ++i)                                   \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) {                                \
          typename S::T* c = C + i * ldc + v * W;                                             \
          S::storeu(c, S::fmadd(va, acc[i][v], S::mul(vb, S::loadu(c))));                    \
        }                                                                                     \
    }                                                                                         \
  }

VLMOE_DEFINE_SIMD_KERNEL(kernel_avx512, "avx512f")
VLMOE_DEFINE_SIMD_KERNEL(kernel_avx2, "avx2,fma")
#undef VLMOE_DEFINE_SIMD_KERNEL
#endif  // VLMOE_GEMM_X86

// ------------------------------------------------------------------------------------------
// Packing
// ------------------------------------------------------------------------------------------

enum class Isa { kAvx512, kAvx2, kPortable };
Isa isa();  // the kernel set in use (below; VLMOE_GEMM_SIMD caps it)

#if VLMOE_GEMM_X86
// 8 x 8 float transposes (AVX) for packing a transposed B (weights read as W^T, the
// backward's dx = dy W^T): 8 loads of 32 bytes, 24 shuffles, 8 stores, against 16 4 x 4 SSE
// transposes. dst[j * ldd + r] = src[r * ld + j]. (The same for the row-major A pack measured
// slower: its 8-row panels are short and the SSE loop it replaced was already cheap.)
__attribute__((target("avx"))) inline void transpose8x8(const float* src, int64_t ld, float* dst, int64_t ldd) {
  const __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
  const __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
  const __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
  const __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

// Packs op(A)[i0:i0+mc, p0:p0+kc] into ceil(mc/MR) micro-panels of kc x MR (k-major),
// zero padding the rows of the last panel past mc.
template <typename T, int MR>
void pack_A(int64_t mc, int64_t kc, const T* A, int64_t lda, bool transA, int64_t i0,
            int64_t p0, T* __restrict dst) {
  for (int64_t ir = 0; ir < mc; ir += MR, dst += MR * kc) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    if (!transA) {
      // Element (i, k) at A[i*lda + k]: MR row streams, each read sequentially.
      const T* src = A + (i0 + ir) * lda + p0;
      if (rows == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * lda + k];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          for (int r = 0; r < rows; ++r) dst[k * MR + r] = src[r * lda + k];
          for (int r = rows; r < MR; ++r) dst[k * MR + r] = T(0);
        }
      }
    } else {
      // A stored [K, M]: element (i, k) at A[k*lda + i]; MR contiguous values per k.
      const T* src = A + p0 * lda + i0 + ir;
      if (rows == MR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[k * lda + r];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          for (int r = 0; r < rows; ++r) dst[k * MR + r] = src[k * lda + r];
          for (int r = rows; r < MR; ++r) dst[k * MR + r] = T(0);
        }
      }
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into ceil(nc/NR) micro-panels of kc x NR (k-major),
// zero padding the columns of the last panel past nc.
template <typename T, int NR>
void pack_B(int64_t kc, int64_t nc, const T* B, int64_t ldb, bool transB, int64_t p0,
            int64_t j0, T* __restrict dst) {
  for (int64_t jr = 0; jr < nc; jr += NR, dst += NR * kc) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    if (!transB) {
      // Element (k, j) at B[k*ldb + j]: NR contiguous values per k.
      const T* src = B + p0 * ldb + j0 + jr;
      if (cols == NR) {
        for (int64_t k = 0; k < kc; ++k)
          for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[k * ldb + c];
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          for (int c = 0; c < cols; ++c) dst[k * NR + c] = src[k * ldb + c];
          for (int c = cols; c < NR; ++c) dst[k * NR + c] = T(0);
        }
      }
    } else {
      // B stored [N, K]: element (k, j) at B[j*ldb + k]; NR column streams read
      // sequentially, written with stride NR. Done in k chunks so the destination
      // chunk stays in L1 while the columns are scattered into it.
      const T* src = B + (j0 + jr) * ldb + p0;
#if VLMOE_GEMM_X86
      if constexpr (std::is_same_v<T, float> && NR % 8 == 0) {
        if (cols == NR && isa() != Isa::kPortable) {  // AVX2 or AVX-512 kernels imply AVX
          // 8 x 8 transposes, two k blocks of 8 back to back per group of 8 columns, so each
          // 64-byte source line is used whole while it is in L1 (column streams ldb apart
          // alias in L1 when ldb is a multiple of 4 KiB).
          int64_t k = 0;
          for (; k + 16 <= kc; k += 16)
            for (int c = 0; c < NR; c += 8) {
              transpose8x8(src + c * ldb + k, ldb, dst + k * NR + c, NR);
              transpose8x8(src + c * ldb + k + 8, ldb, dst + (k + 8) * NR + c, NR);
            }
          for (; k + 8 <= kc; k += 8)
            for (int c = 0; c < NR; c += 8) transpose8x8(src + c * ldb + k, ldb, dst + k * NR + c, NR);
          for (; k < kc; ++k)
            for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c * ldb + k];
          continue;
        }
      }
      if constexpr (std::is_same_v<T, float> && NR % 4 == 0) {
        if (cols == NR) {
          // 4 x 4 register transposes (SSE, baseline x86-64): 16-byte loads from 4 source
          // rows, 16-byte stores into 4 packed rows, instead of NR scalar scatters per k.
          int64_t k = 0;
          for (; k + 4 <= kc; k += 4) {
            for (int c = 0; c < NR; c += 4) {
              __m128 r0 = _mm_loadu_ps(src + (c + 0) * ldb + k), r1 = _mm_loadu_ps(src + (c + 1) * ldb + k);
              __m128 r2 = _mm_loadu_ps(src + (c + 2) * ldb + k), r3 = _mm_loadu_ps(src + (c + 3) * ldb + k);
              _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
              _mm_storeu_ps(dst + (k + 0) * NR + c, r0);
              _mm_storeu_ps(dst + (k + 1) * NR + c, r1);
              _mm_storeu_ps(dst + (k + 2) * NR + c, r2);
              _mm_storeu_ps(dst + (k + 3) * NR + c, r3);
            }
          }
          for (; k < kc; ++k)
            for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c * ldb + k];
          continue;
        }
      }
#endif
      constexpr int64_t KB = 64;
      for (int64_t kb = 0; kb < kc; kb += KB) {
        const int64_t ke = std::min(kc, kb + KB);
        for (int c = 0; c < cols; ++c) {
          const T* s = src + c * ldb;
          for (int64_t k = kb; k < ke; ++k) dst[k * NR + c] = s[k];
        }
        for (int c = cols; c < NR; ++c)
          for (int64_t k = kb; k < ke; ++k) dst[k * NR + c] = T(0);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// Thread-local packing buffers (64-byte aligned, grown on demand, reused across calls)
// ------------------------------------------------------------------------------------------

class AlignedBuffer {
 public:
  ~AlignedBuffer() { std::free(ptr_); }
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(ptr_);
      cap_ = (bytes + 4095) & ~size_t(4095);
      ptr_ = std::aligned_alloc(64, cap_);
      if (ptr_ == nullptr) {
        cap_ = 0;
        throw std::bad_alloc();
      }
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

struct PackBuffers {
  AlignedBuffer a, b;
};
thread_local PackBuffers tls_pack;

// Read-ahead set by gemm_prefetch_hint: cache lines [next, end) still to prefetch.
struct ReadAhead {
  const char* next = nullptr;
  const char* end = nullptr;
};
thread_local ReadAhead tls_ahead;

// Issues up to `lines` prefetches from the read-ahead (L2: the data is read by the next
// pack, not by this kernel, and must not push the panels this kernel reads out of L1).
VLMOE_ALWAYS_INLINE void read_ahead(ReadAhead& ra, int64_t lines) {
#if VLMOE_GEMM_X86
  for (; lines > 0 && ra.next < ra.end; --lines, ra.next += 64) _mm_prefetch(ra.next, _MM_HINT_T1);
#else
  (void)ra;
  (void)lines;
#endif
}

// ------------------------------------------------------------------------------------------
// Blocked driver
// ------------------------------------------------------------------------------------------

// Cache blocking, in elements. KC: depth of a rank-KC update; KC x NR (the B micro-panel)
// must sit in L1 together with a streaming A micro-panel. MC: rows of the packed A block,
// MC x KC sized to about half of L2. NC: columns of the packed B panel, KC x NC sized to a
// share of L3 (and large, so the A block is reused across many micro-panels).
struct Blocking {
  int64_t kc, mc, nc;
};

struct Args {
  bool transA, transB;
  int64_t M, N, K;
  int64_t lda, ldb, ldc;
};

// Splits [0, n) into `parts` nearly equal chunks of whole `unit`s; chunk t is [b, e).
inline void split_range(int64_t n, int64_t unit, int64_t parts, int64_t t, int64_t* b,
                        int64_t* e) {
  const int64_t units = (n + unit - 1) / unit;
  *b = std::min(n, (units * t / parts) * unit);
  *e = std::min(n, (units * (t + 1) / parts) * unit);
}

// Block size for a dimension of length n given a target block: split n into
// ceil(n / target) equal blocks, rounded up to a multiple of `unit`. Avoids a thin last
// block (e.g. K = 300 with KC = 256 becomes 2 x 152 instead of 256 + 44).
inline int64_t balanced_block(int64_t n, int64_t target, int64_t unit) {
  if (n <= target) return std::max<int64_t>(n, 1);
  const int64_t nblocks = (n + target - 1) / target;
  const int64_t b = (n + nblocks - 1) / nblocks;
  return (b + unit - 1) / unit * unit;
}

template <typename T, int MR, int NR>
struct Driver {
  KernelFn<T> kernel;
  Blocking blk;

  // C[i0:i1, j0:j1] on the calling thread.
  void run_tile(const Args& g, T alpha, const T* A, const T* B, T beta, T* C, int64_t i0,
                int64_t i1, int64_t j0, int64_t j1) const {
    const int64_t m = i1 - i0, n = j1 - j0;
    if (m <= 0 || n <= 0) return;
    const int64_t KC = balanced_block(g.K, blk.kc, 8);
    const int64_t MC = balanced_block(m, blk.mc, MR);
    const int64_t NC = balanced_block(n, blk.nc, NR);
    const int64_t mc_pad = (std::min(MC, m) + MR - 1) / MR * MR;
    const int64_t nc_pad = (std::min(NC, n) + NR - 1) / NR * NR;
    const int64_t kc_max = std::min(KC, g.K);
    T* Ap = static_cast<T*>(tls_pack.a.get(sizeof(T) * mc_pad * kc_max));
    T* Bp = static_cast<T*>(tls_pack.b.get(sizeof(T) * nc_pad * kc_max));
    alignas(64) T tmp[MR * NR];
    // Read-ahead (gemm_prefetch_hint) spread evenly over this tile's micro-kernel calls.
    ReadAhead& ra = tls_ahead;
    int64_t ahead_per_call = 0;
    if (ra.next < ra.end) {
      const int64_t calls = ((m + MR - 1) / MR) * ((n + NR - 1) / NR) * ((g.K + KC - 1) / KC);
      ahead_per_call = ((ra.end - ra.next) / 64 + calls - 1) / calls;
    }

    for (int64_t jc = j0; jc < j1; jc += NC) {
      const int64_t nc = std::min(NC, j1 - jc);
      for (int64_t pc = 0; pc < g.K; pc += KC) {
        const int64_t kc = std::min(KC, g.K - pc);
        // The first rank-KC update applies the caller's beta, later ones accumulate.
        const T beta_k = pc == 0 ? beta : T(1);
        pack_B<T, NR>(kc, nc, B, g.ldb, g.transB, pc, jc, Bp);
        for (int64_t ic = i0; ic < i1; ic += MC) {
          const int64_t mc = std::min(MC, i1 - ic);
          pack_A<T, MR>(mc, kc, A, g.lda, g.transA, ic, pc, Ap);
          // Macro-kernel: B micro-panel outer (stays in L1), A micro-panels inner.
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t cols = std::min<int64_t>(NR, nc - jr);
            const T* bp = Bp + jr * kc;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              const int64_t rows = std::min<int64_t>(MR, mc - ir);
              const T* ap = Ap + ir * kc;
              T* c = C + (ic + ir) * g.ldc + jc + jr;
              if (ahead_per_call) read_ahead(ra, ahead_per_call);
              if (rows == MR && cols == NR) {
                kernel(kc, ap, bp, c, g.ldc, alpha, beta_k);
              } else {
                // Edge tile: full tile into a scratch buffer, then the valid part.
                kernel(kc, ap, bp, tmp, NR, T(1), T(0));
                for (int64_t i = 0; i < rows; ++i) {
                  T* ci = c + i * g.ldc;
                  const T* ti = tmp + i * NR;
                  if (beta_k == T(0)) {
                    for (int64_t j = 0; j < cols; ++j) ci[j] = alpha * ti[j];
                  } else {
                    for (int64_t j = 0; j < cols; ++j) ci[j] = alpha * ti[j] + beta_k * ci[j];
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  void run(const Args& g, T alpha, const T* A, const T* B, T beta, T* C) const {
    // Threads: none for small products (a pool wake-up costs more than the work).
    const double flops = double(g.M) * double(g.N) * double(g.K);
    int nt = flops < 64.0 * 64.0 * 64.0 ? 1 : num_threads();
    const int64_t mb = (g.M + MR - 1) / MR, nb = (g.N + NR - 1) / NR;
    // Grid tm x tn, tm * tn <= nt. Prefer using every thread, then the split that packs
    // the least: a thread packs (M/tm)*K of A and K*(N/tn) of B.
    int best_tm = 1, best_tn = 1;
    double best_cost = 1e300;
    for (int tm = 1; tm <= nt; ++tm) {
      const int tn = nt / tm;
      if (tm > mb || tn > nb) continue;
      const double idle = double(nt - tm * tn);
      const double cost = idle * 1e30 + double(g.M) / tm + double(g.N) / tn;
      if (cost < best_cost) best_cost = cost, best_tm = tm, best_tn = tn;
    }
    const int tiles = best_tm * best_tn;
    if (tiles <= 1) {
      run_tile(g, alpha, A, B, beta, C, 0, g.M, 0, g.N);
      return;
    }
    parallel_for(tiles, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t i0, i1, j0, j1;
        split_range(g.M, MR, best_tm, t / best_tn, &i0, &i1);
        split_range(g.N, NR, best_tn, t % best_tn, &j0, &j1);
        run_tile(g, alpha, A, B, beta, C, i0, i1, j0, j1);
      }
    });
  }
};

template <typename T>
struct Impl {
  const char* name;
  void (*run)(const Args&, T, const T*, const T*, T, T*);
};

// Instantiates a driver for one kernel; the function pointer hides MR/NR from callers.
template <typename T, int MR, int NR, KernelFn<T> K>
void run_with(const Args& g, T alpha, const T* A, const T* B, T beta, T* C, Blocking blk) {
  Driver<T, MR, NR> d{K, blk};
  d.run(g, alpha, A, B, beta, C);
}

// Blocking choices per kernel, (KC, MC, NC) in elements. They target current x86 server
// cores (32-48 KiB L1d, 1-2 MiB L2, a large shared L3); throughput is flat within a few
// percent around them (measured on Zen 5: KC 256..1024 and MC 96..512 all land within
// noise, KC < 256 loses a little to the extra C read/write passes).
//  * AVX-512 f32, 8 x 32 tile (16 zmm accumulators; 6/8/12/14 rows were measured, 8 was
//    best; 12 and 14 lose to register pressure on the broadcast operands):
//    KC = 384: B micro-panel 384 x 32 x 4 B = 48 KiB (L1/L2), A micro-panel 12 KiB;
//    MC = 192: A block 192 x 384 x 4 B = 288 KiB (L2);
//    NC = 4096: B panel 384 x 4096 x 4 B = 6 MiB per thread (L3).
//  * AVX-512 f64, 8 x 16 tile: the same byte budgets (MC and NC halved).
//  * AVX2 6 x 16 f32 / 6 x 8 f64 (12 ymm accumulators, the classic Haswell shape):
//    KC = 256 keeps the B micro-panel (16 KiB) in a 32 KiB L1.
//  * Portable 4 x 8 f32 / 4 x 4 f64: sized for 16 SSE2 registers.
// Tuning hooks: VLMOE_GEMM_KC / _MC / _NC override these (benchmarking only).
int64_t env_int(const char* name) {
  const char* s = std::getenv(name);
  return s ? std::atoll(s) : 0;
}
Blocking with_env(Blocking b) {
  static const int64_t kc = env_int("VLMOE_GEMM_KC");
  static const int64_t mc = env_int("VLMOE_GEMM_MC");
  static const int64_t nc = env_int("VLMOE_GEMM_NC");
  if (kc > 0) b.kc = kc;
  if (mc > 0) b.mc = mc;
  if (nc > 0) b.nc = nc;
  return b;
}

// Rows of the AVX-512 tile (columns are two vectors: 32 f32 / 16 f64).
constexpr int kAvx512MR = 8;

#if VLMOE_GEMM_X86
void run_f32_avx512(const Args& g, float alpha, const float* A, const float* B, float beta,
                    float* C) {
  constexpr int MR = kAvx512MR;
  run_with<float, MR, 32, kernel_avx512<V512f, MR, 2>>(g, alpha, A, B, beta, C,
                                                       with_env({384, 192, 4096}));
}
void run_f64_avx512(const Args& g, double alpha, const double* A, const double* B,
                    double beta, double* C) {
  constexpr int MR = kAvx512MR;
  run_with<double, MR, 16, kernel_avx512<V512d, MR, 2>>(g, alpha, A, B, beta, C,
                                                        with_env({384, 96, 2048}));
}
void run_f32_avx2(const Args& g, float alpha, const float* A, const float* B, float beta,
                  float* C) {
  run_with<float, 6, 16, kernel_avx2<V256f, 6, 2>>(g, alpha, A, B, beta, C,
                                                   with_env({256, 144, 4096}));
}
void run_f64_avx2(const Args& g, double alpha, const double* A, const double* B, double beta,
                  double* C) {
  run_with<double, 6, 8, kernel_avx2<V256d, 6, 2>>(g, alpha, A, B, beta, C,
                                                   with_env({256, 72, 2048}));
}
#endif
void run_f32_portable(const Args& g, float alpha, const float* A, const float* B, float beta,
                      float* C) {
  run_with<float, 4, 8, kernel_portable<float, 4, 8>>(g, alpha, A, B, beta, C,
                                                      with_env({256, 128, 2048}));
}
void run_f64_portable(const Args& g, double alpha, const double* A, const double* B,
                      double beta, double* C) {
  run_with<double, 4, 4, kernel_portable<double, 4, 4>>(g, alpha, A, B, beta, C,
                                                        with_env({256, 128, 1024}));
}

Isa detect_isa() {
  // VLMOE_GEMM_SIMD=avx2|portable forces a lower kernel (testing on AVX-512 hardware).
  const char* force = std::getenv("VLMOE_GEMM_SIMD");
  const bool allow512 = !force || std::strcmp(force, "avx512") == 0;
  const bool allow256 = allow512 || std::strcmp(force, "avx2") == 0 ||
                        std::strcmp(force, "avx2-fma") == 0;
#if VLMOE_GEMM_X86
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (allow256 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return Isa::kAvx2;
#else
  (void)allow512;
  (void)allow256;
#endif
  return Isa::kPortable;
}

Isa isa() {
  static const Isa v = detect_isa();
  return v;
}

template <typename T>
const Impl<T>& impl();

template <>
const Impl<float>& impl<float>() {
  static const Impl<float> v = [] {
    switch (isa()) {
#if VLMOE_GEMM_X86
      case Isa::kAvx512: return Impl<float>{"avx512", run_f32_avx512};
      case Isa::kAvx2: return Impl<float>{"avx2-fma", run_f32_avx2};
#endif
      default: return Impl<float>{"portable", run_f32_portable};
    }
  }();
  return v;
}

template <>
const Impl<double>& impl<double>() {
  static const Impl<double> v = [] {
    switch (isa()) {
#if VLMOE_GEMM_X86
      case Isa::kAvx512: return Impl<double>{"avx512", run_f64_avx512};
      case Isa::kAvx2: return Impl<double>{"avx2-fma", run_f64_avx2};
#endif
      default: return Impl<double>{"portable", run_f64_portable};
    }
  }();
  return v;
}

// C = beta * C (beta == 0 writes zeros without reading C).
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      std::fill(c, c + N, T(0));
    } else if (beta != T(1)) {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

template <typename T>
void gemm_builtin(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                  int64_t ldc) {
  struct DropReadAhead {
    ~DropReadAhead() { tls_ahead = ReadAhead{}; }
  } drop;  // a hint serves this one call
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const Args g{transA, transB, M, N, K, lda, ldb, ldc};
  impl<T>().run(g, alpha, A, B, beta, C);
}

template <typename T>
void gemm_builtin_batched(int64_t batch, bool transA, bool transB, int64_t M, int64_t N,
                          int64_t K, T alpha, const T* A, int64_t lda, int64_t strideA,
                          const T* B, int64_t ldb, int64_t strideB, T beta, T* C,
                          int64_t ldc, int64_t strideC) {
  if (batch <= 0) return;
  const double flops = double(M) * double(N) * double(K);
  auto one = [&](int64_t b) {
    gemm_builtin<T>(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb,
                    beta, C + b * strideC, ldc);
  };
  // Big products thread internally; small ones are spread over the batch instead (a
  // gemm called inside parallel_for runs on its own thread, nested calls run inline).
  if (batch == 1 || flops >= 128.0 * 128.0 * 128.0) {
    for (int64_t b = 0; b < batch; ++b) one(b);
  } else {
    const int64_t grain = std::max<int64_t>(1, int64_t(32.0 * 32.0 * 32.0 / std::max(flops, 1.0)));
    parallel_for(batch, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) one(b);
    });
  }
}

}  // namespace

void gemm_builtin_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) {
  gemm_builtin<float>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_builtin_f64(bool transA, bool transB, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                      double* C, int64_t ldc) {
  gemm_builtin<double>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_builtin_batched_f32(int64_t batch, bool transA, bool transB, int64_t M, int64_t N,
                              int64_t K, float alpha, const float* A, int64_t lda,
                              int64_t strideA, const float* B, int64_t ldb, int64_t strideB,
                              float beta, float* C, int64_t ldc, int64_t strideC) {
  gemm_builtin_batched<float>(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb,
                              strideB, beta, C, ldc, strideC);
}

void gemm_builtin_batched_f64(int64_t batch, bool transA, bool transB, int64_t M, int64_t N,
                              int64_t K, double alpha, const double* A, int64_t lda,
                              int64_t strideA, const double* B, int64_t ldb, int64_t strideB,
                              double beta, double* C, int64_t ldc, int64_t strideC) {
  gemm_builtin_batched<double>(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb,
                               strideB, beta, C, ldc, strideC);
}

void gemm_prefetch_hint(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  tls_ahead = bytes && c ? ReadAhead{c, c + bytes} : ReadAhead{};
}

const char* gemm_simd_name() { return impl<float>().name; }

}  // namespace vlmoe
