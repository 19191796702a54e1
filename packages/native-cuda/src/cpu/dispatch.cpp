#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels.h"

namespace vlmoe {

namespace {
CpuSimd detect() {
#if defined(__x86_64__)
  // VLMOE_SIMD=portable|avx2 caps the set (testing the narrower sets on wider hardware)
  const char* env = std::getenv("VLMOE_SIMD");
  const std::string cap = env ? env : "";
  if (!cap.empty() && cap != "portable" && cap != "avx2" && cap != "avx2-fma" && cap != "avx512")
    std::fprintf(stderr, "vlmoe: VLMOE_SIMD=%s is not one of portable, avx2, avx512; ignored\n", env);
  if (cap == "portable") return CpuSimd::kPortable;
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  if (avx512 && cap != "avx2" && cap != "avx2-fma") return CpuSimd::kAvx512;
  if (cap == "avx512") std::fprintf(stderr, "vlmoe: VLMOE_SIMD=avx512 but this CPU lacks AVX-512 F/DQ/BW/VL; using %s\n", avx2 ? "avx2" : "portable");
  return avx2 ? CpuSimd::kAvx2 : CpuSimd::kPortable;
#else
  return CpuSimd::kPortable;
#endif
}
const CpuSimd g_simd = detect();
}  // namespace

CpuSimd cpu_simd() { return g_simd; }
const char* cpu_simd_name() { return g_simd == CpuSimd::kAvx512 ? "avx512" : g_simd == CpuSimd::kAvx2 ? "avx2-fma" : "portable"; }

}  // namespace vlmoe
