#!/usr/bin/env bash
# Packs what the GPU check needs into .gpu/bundle.tar.xz (git-ignored; name `.gpu` in the
# device tool's `carry`): this machine's node binary, the addon built with CUDA (sm_90 + PTX)
# but without OpenBLAS or MPI (the GPU machine has neither), every package's built JS, and
# node_modules without what the check never loads (TypeScript, Nx, Polars, sharp).
# Usage: bash tools/gpu/pack.sh        (from anywhere; takes a few minutes: the CUDA build)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nvcc >/dev/null || { echo "pack.sh: nvcc is not on PATH: the carried addon must be built with CUDA" >&2; exit 1; }
echo "== building the addon for the GPU machine (CUDA on, OpenBLAS and MPI off)"
(cd packages/native-cuda && CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} npx cmake-js compile --out build-gpu \
  --CDVLMOE_WITH_OPENBLAS=OFF --CDVLMOE_WITH_MPI=OFF >/tmp/vlmoe-gpu-build.log 2>&1) || { tail -30 /tmp/vlmoe-gpu-build.log; exit 1; }
node -e "const i=require('./packages/native-cuda/dist/index.js').info(); if(!i.cudaCompiled) process.exit(1)" || true
echo "== building the TypeScript packages"
npm run build >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/.gpu/bin" "$stage/packages/native-cuda/build/Release"
cp "$(command -v node)" "$stage/.gpu/bin/node"
cp packages/native-cuda/build-gpu/Release/vlmoe_native.node "$stage/packages/native-cuda/build/Release/vlmoe_native.node"
echo "== packing"
mkdir -p .gpu
tar -cJf .gpu/bundle.tar.xz \
  --exclude='node_modules/typescript' --exclude='node_modules/nx' --exclude='node_modules/@nx' \
  --exclude='node_modules/nodejs-polars*' --exclude='node_modules/@img' --exclude='node_modules/sharp' \
  --exclude='node_modules/.cache' \
  node_modules packages/*/dist tools/*/dist \
  -C "$stage" .gpu/bin/node packages/native-cuda/build/Release/vlmoe_native.node
ls -la .gpu/bundle.tar.xz
echo "carry: [\".gpu\"]; command: bash tools/gpu/check.sh"
