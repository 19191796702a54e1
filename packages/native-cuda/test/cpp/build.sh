#!/usr/bin/env bash
# Builds the standalone GEMM programs (no cmake, no node):
#   gemm_check  correctness of builtin / OpenBLAS against the reference
#   gemm_bench  builtin vs OpenBLAS f32 GFLOP/s
# Output goes to $OUT_DIR (default: test/cpp/build). No -march=native: the SIMD kernels
# use function target attributes and run-time CPU dispatch.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT_DIR="${OUT_DIR:-$HERE/build}"
CXX="${CXX:-g++}"
mkdir -p "$OUT_DIR"

CXXFLAGS=(-O3 -std=c++17 -Wall -Wextra -pthread)
LIBS=()
# OpenBLAS: use it when cblas.h is found (Debian puts it in the multiarch include dir).
for dir in /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu \
           /usr/include/openblas /usr/local/include; do
  if [[ -f "$dir/cblas.h" ]]; then
    CXXFLAGS+=(-DVLMOE_HAVE_OPENBLAS -I"$dir")
    LIBS+=(-lopenblas)
    echo "build.sh: OpenBLAS found ($dir/cblas.h)"
    break
  fi
done
if [[ ${#LIBS[@]} -eq 0 ]]; then echo "build.sh: OpenBLAS not found, builtin only"; fi

SRCS=("$ROOT/src/threadpool.cpp" "$ROOT/src/cpu/gemm.cpp" "$ROOT/src/cpu/gemm_builtin.cpp"
      "$ROOT/src/cpu/gemm_reference.cpp")

# Compile the library sources once, link both programs against the objects.
OBJS=()
PIDS=()
for src in "${SRCS[@]}"; do
  obj="$OUT_DIR/$(basename "${src%.cpp}").o"
  "$CXX" "${CXXFLAGS[@]}" -c "$src" -o "$obj" &
  PIDS+=($!)
  OBJS+=("$obj")
done
for pid in "${PIDS[@]}"; do wait "$pid"; done
for prog in gemm_check gemm_bench; do
  "$CXX" "${CXXFLAGS[@]}" "$HERE/$prog.cpp" "${OBJS[@]}" -o "$OUT_DIR/$prog" "${LIBS[@]}"
done
echo "build.sh: built $OUT_DIR/gemm_check $OUT_DIR/gemm_bench"
