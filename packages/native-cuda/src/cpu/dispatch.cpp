#include <cstdlib>
#include <string>

#include "kernels.h"

namespace vlmoe {

namespace {
bool detect_avx2() {
#if defined(__x86_64__)
  if (const char* env = std::getenv("VLMOE_SIMD")) {
    if (std::string(env) == "portable") return false;
  }
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
const bool g_avx2 = detect_avx2();
}  // namespace

bool cpu_uses_avx2() { return g_avx2; }
const char* cpu_simd_name() { return g_avx2 ? "avx2-fma" : "portable"; }

}  // namespace vlmoe
