// GEMM on CUDA: cuBLAS when it loads (it is not on our build machines, so it is dlopen'ed at
// run time from the GPU machine's CUDA libraries, with our own declarations of the few entry
// points used), else our own tiled kernel. Row-major like the CPU GEMM (gemm.h): cuBLAS is
// column-major, so C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ by swapping the
// operands. float32 runs in full fp32 unless TF32 is allowed (VLMOE_CUDA_TF32=1, torch's
// allow_tf32), float64 in fp64. useBuiltinGemm(true) forces our kernel here as on the CPU.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "../cpu/gemm.h"
#include "../dynlib.h"
#include "../half.h"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

// cublas_api.h, as much as we use
using cublasHandle_t = struct cublasContext*;
using cublasStatus_t = int;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kDefaultMath = 0, kTf32Math = 3;
// library_types.h / cublas_api.h values
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14, kCompute32F = 68, kGemmDefault = -1;

struct Cublas {
  std::string path, error;
  int version = 0;
  cublasStatus_t (*Create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*SetStream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*SetMathMode)(cublasHandle_t, int) = nullptr;
  cublasStatus_t (*GetVersion)(cublasHandle_t, int*) = nullptr;
  cublasStatus_t (*Sgemm)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int, long long, const float*, int, long long, const float*, float*, int,
                          long long, int) = nullptr;
  cublasStatus_t (*Dgemm)(cublasHandle_t, int, int, int, int, int, const double*, const double*, int, long long, const double*, int, long long, const double*,
                          double*, int, long long, int) = nullptr;
  // cublasGemmStridedBatchedEx: mixed precision (bf16 / f16 in, f32 compute)
  cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, long long, const void*, int, int, long long, const void*,
                           void*, int, int, long long, int, int, int) = nullptr;
  cublasHandle_t handle[64] = {};
};

Cublas load() {
  Cublas c;
  const DynLib dl = load_cuda_library("VLMOE_CUBLAS_LIB", {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}, "cublas");
  if (!dl.handle) {
    c.error = "cuBLAS (libcublas.so.13/12/11) was not found; searched:" + dl.tried + "\nset VLMOE_CUBLAS_LIB to the library's path";
    return c;
  }
  c.path = dl.path;
  auto sym = [&](const char* name) -> void* {
    void* f = dlsym(dl.handle, name);
    if (!f && c.error.empty()) c.error = c.path + " has no " + name;
    return f;
  };
  c.Create = reinterpret_cast<decltype(c.Create)>(sym("cublasCreate_v2"));
  c.SetStream = reinterpret_cast<decltype(c.SetStream)>(sym("cublasSetStream_v2"));
  c.SetMathMode = reinterpret_cast<decltype(c.SetMathMode)>(sym("cublasSetMathMode"));
  c.GetVersion = reinterpret_cast<decltype(c.GetVersion)>(sym("cublasGetVersion_v2"));
  c.Sgemm = reinterpret_cast<decltype(c.Sgemm)>(sym("cublasSgemmStridedBatched"));
  c.Dgemm = reinterpret_cast<decltype(c.Dgemm)>(sym("cublasDgemmStridedBatched"));
  c.GemmEx = reinterpret_cast<decltype(c.GemmEx)>(sym("cublasGemmStridedBatchedEx"));
  return c;
}

std::mutex g_mu;

Cublas& cublas() {
  static Cublas c = load();
  return c;
}

// The device's cuBLAS handle (made on first use), or null when cuBLAS is unavailable.
cublasHandle_t handle_for(int device) {
  std::lock_guard<std::mutex> lk(g_mu);
  Cublas& c = cublas();
  if (!c.error.empty() || device < 0 || device >= 64) return nullptr;
  if (!c.handle[device]) {
    cuda_set_device(device);  // a handle belongs to the device current at its creation
    cublasHandle_t h = nullptr;
    if (c.Create(&h) != 0) {
      c.error = "cublasCreate failed on cuda:" + std::to_string(device);
      return nullptr;
    }
    c.SetStream(h, nullptr);
    const char* tf32 = std::getenv("VLMOE_CUDA_TF32");
    c.SetMathMode(h, tf32 && tf32[0] == '1' ? kTf32Math : kDefaultMath);
    c.GetVersion(h, &c.version);
    c.handle[device] = h;
  }
  return c.handle[device];
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Our own GEMM: 32×32 tiles of C per block of 32×8 threads (4 rows each), tiles of A and B
// staged through shared memory; batch along gridDim.z (looped past 65535).
constexpr int kTile = 32, kRows = 8;

template <class T>
__global__ void k_gemm(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, int64_t sA, const T* B, int64_t ldb,
                       int64_t sB, T beta, T* C, int64_t ldc, int64_t sC) {
  __shared__ T as[kTile][kTile + 1];
  __shared__ T bs[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* a = A + b * sA;
    const T* bb = B + b * sB;
    T* c = C + b * sC;
    T acc[kTile / kRows];
    for (int r = 0; r < kTile / kRows; ++r) acc[r] = T(0);
    for (int64_t k0 = 0; k0 < K; k0 += kTile) {
      for (int r = ty; r < kTile; r += kRows) {
        const int64_t m = m0 + r, k = k0 + tx;   // as[r][tx] = op(A)[m, k]
        as[r][tx] = (m < M && k < K) ? (ta ? a[k * lda + m] : a[m * lda + k]) : T(0);
        const int64_t kk = k0 + r, n = n0 + tx;  // bs[r][tx] = op(B)[kk, n]
        bs[r][tx] = (kk < K && n < N) ? (tb ? bb[n * ldb + kk] : bb[kk * ldb + n]) : T(0);
      }
      __syncthreads();
      for (int kk = 0; kk < kTile; ++kk) {
        const T bv = bs[kk][tx];
        for (int r = 0; r < kTile / kRows; ++r) acc[r] += as[ty + r * kRows][kk] * bv;
      }
      __syncthreads();
    }
    for (int r = 0; r < kTile / kRows; ++r) {
      const int64_t m = m0 + ty + r * kRows, n = n0 + tx;
      if (m < M && n < N) {
        T* out = c + m * ldc + n;
        *out = beta == T(0) ? alpha * acc[r] : alpha * acc[r] + beta * *out;
      }
    }
  }
}

template <class T>
void fallback(int device, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA, const void* B,
              int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC) {
  cuda_set_device(device);
  const int64_t gx = (N + kTile - 1) / kTile, gy = (M + kTile - 1) / kTile;
  if (gy > 65535) throw std::invalid_argument("matmul (cuda): M = " + std::to_string(M) + " is too large for the fallback kernel");
  dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(batch < 65535 ? batch : 65535));
  k_gemm<T><<<grid, dim3(kTile, kRows)>>>(batch, ta, tb, M, N, K, T(alpha), static_cast<const T*>(A), lda, sA, static_cast<const T*>(B), ldb, sB, T(beta),
                                          static_cast<T*>(C), ldc, sC);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA matmul kernel launch: ") + cudaGetErrorString(e));
}

}  // namespace

CublasInfo cuda_cublas_info() {
  Cublas& c = cublas();
  return CublasInfo{c.error.empty(), c.version, c.path, c.error};
}

void cuda_gemm(int device, DType t, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda, int64_t sA,
               const void* B, int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC, bool reference) {
  if (t != DType::f32 && t != DType::f64) throw std::invalid_argument(std::string("matmul (cuda): dtype ") + dtype_name(t) + " is not supported (float32, float64)");
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0 || alpha == 0) reference = true;  // no product to form: the kernel scales C (beta) by itself
  // useBuiltinGemm(true) (gemm_set_force_builtin) picks our own kernel on CUDA too
  cublasHandle_t h = reference || gemm_force_builtin() ? nullptr : handle_for(device);
  const bool ints = fits_int(M) && fits_int(N) && fits_int(K) && fits_int(lda) && fits_int(ldb) && fits_int(ldc) && fits_int(batch);
  if (h && ints) {
    cuda_set_device(device);
    Cublas& c = cublas();
    // row-major C[M,N] = op(A) op(B)  ⇔  column-major Cᵀ[N,M] = op(B)ᵀ op(A)ᵀ
    const int opB = tb ? kOpT : kOpN, opA = ta ? kOpT : kOpN;
    cublasStatus_t s;
    if (t == DType::f32) {
      const float al = float(alpha), be = float(beta);
      s = c.Sgemm(h, opB, opA, int(N), int(M), int(K), &al, static_cast<const float*>(B), int(ldb), sB, static_cast<const float*>(A), int(lda), sA, &be,
                  static_cast<float*>(C), int(ldc), sC, int(batch));
    } else {
      s = c.Dgemm(h, opB, opA, int(N), int(M), int(K), &alpha, static_cast<const double*>(B), int(ldb), sB, static_cast<const double*>(A), int(lda), sA, &beta,
                  static_cast<double*>(C), int(ldc), sC, int(batch));
    }
    if (s != 0) throw std::runtime_error("matmul (cuda): cuBLAS gemm failed with status " + std::to_string(s) + " (M=" + std::to_string(M) + ", N=" + std::to_string(N) + ", K=" + std::to_string(K) + ")");
    return;
  }
  // alpha == 0: no product; K = 0 makes the kernel only scale C (A and B are never read)
  const int64_t Kr = alpha == 0 ? 0 : K;
  if (t == DType::f32) fallback<float>(device, batch, ta, tb, M, N, Kr, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC);
  else fallback<double>(device, batch, ta, tb, M, N, Kr, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC);
}


namespace {

// Our own half-precision GEMM: the k_gemm tiling with operands widened to float on load and
// float accumulation; C stored as float32 (OutHalf = 0) or the operands' dtype.
template <bool BF16, int OUT>  // OUT: 0 float32, 1 same half type as the operands
__global__ void k_gemm_half(int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, int64_t lda, int64_t sA,
                            const uint16_t* B, int64_t ldb, int64_t sB, float beta, void* Cv, int64_t ldc, int64_t sC) {
  __shared__ float as[kTile][kTile + 1];
  __shared__ float bs[kTile][kTile + 1];
  auto wide = [](uint16_t h) { return BF16 ? bf16_to_f32(h) : f16_to_f32(h); };
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const uint16_t* a = A + b * sA;
    const uint16_t* bb = B + b * sB;
    float acc[kTile / kRows];
    for (int r = 0; r < kTile / kRows; ++r) acc[r] = 0.f;
    for (int64_t k0 = 0; k0 < K; k0 += kTile) {
      for (int r = ty; r < kTile; r += kRows) {
        const int64_t m = m0 + r, k = k0 + tx;
        as[r][tx] = (m < M && k < K) ? wide(ta ? a[k * lda + m] : a[m * lda + k]) : 0.f;
        const int64_t kk = k0 + r, n = n0 + tx;
        bs[r][tx] = (kk < K && n < N) ? wide(tb ? bb[n * ldb + kk] : bb[kk * ldb + n]) : 0.f;
      }
      __syncthreads();
      for (int kk = 0; kk < kTile; ++kk) {
        const float bv = bs[kk][tx];
        for (int r = 0; r < kTile / kRows; ++r) acc[r] += as[ty + r * kRows][kk] * bv;
      }
      __syncthreads();
    }
    for (int r = 0; r < kTile / kRows; ++r) {
      const int64_t m = m0 + ty + r * kRows, n = n0 + tx;
      if (m >= M || n >= N) continue;
      if (OUT == 0) {
        float* out = static_cast<float*>(Cv) + b * sC + m * ldc + n;
        *out = beta == 0.f ? alpha * acc[r] : alpha * acc[r] + beta * *out;
      } else {
        uint16_t* out = static_cast<uint16_t*>(Cv) + b * sC + m * ldc + n;
        const float v = beta == 0.f ? alpha * acc[r] : alpha * acc[r] + beta * wide(*out);
        *out = BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      }
    }
  }
}

}  // namespace

void cuda_gemm_half(int device, DType ab, DType ct, int64_t batch, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                    int64_t sA, const void* B, int64_t ldb, int64_t sB, double beta, void* C, int64_t ldc, int64_t sC, bool reference) {
  if (!is_half(ab)) throw std::invalid_argument("matmul (cuda): half-precision GEMM with operands of dtype " + std::string(dtype_name(ab)));
  if (ct != ab && ct != DType::f32) throw std::invalid_argument(std::string("matmul (cuda): a ") + dtype_name(ab) + " product goes to " + dtype_name(ab) + " or float32, not " + dtype_name(ct));
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0 || alpha == 0) reference = true;
  cublasHandle_t h = reference || gemm_force_builtin() ? nullptr : handle_for(device);
  const bool ints = fits_int(M) && fits_int(N) && fits_int(K) && fits_int(lda) && fits_int(ldb) && fits_int(ldc) && fits_int(batch);
  const int abType = ab == DType::bf16 ? kR16BF : kR16F, cType = ct == DType::f32 ? kR32F : abType;
  if (h && ints) {
    cuda_set_device(device);
    Cublas& c = cublas();
    const float al = float(alpha), be = float(beta);
    const cublasStatus_t st = c.GemmEx(h, tb ? kOpT : kOpN, ta ? kOpT : kOpN, int(N), int(M), int(K), &al, B, abType, int(ldb), sB, A, abType, int(lda), sA, &be, C,
                                       cType, int(ldc), sC, int(batch), kCompute32F, kGemmDefault);
    if (st != 0) throw std::runtime_error("matmul (cuda): cublasGemmStridedBatchedEx failed with status " + std::to_string(st));
    return;
  }
  cuda_set_device(device);
  const int64_t gx = (N + kTile - 1) / kTile, gy = (M + kTile - 1) / kTile;
  if (gy > 65535) throw std::invalid_argument("matmul (cuda): M = " + std::to_string(M) + " is too large for the fallback kernel");
  dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(batch < 65535 ? batch : 65535));
  const int64_t Kr = alpha == 0 ? 0 : K;
  const uint16_t* a = static_cast<const uint16_t*>(A);
  const uint16_t* b = static_cast<const uint16_t*>(B);
  const float al = float(alpha), be = float(beta);
  const dim3 blk(kTile, kRows);
  if (ab == DType::bf16) {
    if (ct == DType::f32) k_gemm_half<true, 0><<<grid, blk>>>(batch, ta, tb, M, N, Kr, al, a, lda, sA, b, ldb, sB, be, C, ldc, sC);
    else k_gemm_half<true, 1><<<grid, blk>>>(batch, ta, tb, M, N, Kr, al, a, lda, sA, b, ldb, sB, be, C, ldc, sC);
  } else {
    if (ct == DType::f32) k_gemm_half<false, 0><<<grid, blk>>>(batch, ta, tb, M, N, Kr, al, a, lda, sA, b, ldb, sB, be, C, ldc, sC);
    else k_gemm_half<false, 1><<<grid, blk>>>(batch, ta, tb, M, N, Kr, al, a, lda, sA, b, ldb, sB, be, C, ldc, sC);
  }
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA matmul (half) kernel launch: ") + cudaGetErrorString(e));
}

}  // namespace vlmoe
