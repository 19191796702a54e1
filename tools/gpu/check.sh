#!/usr/bin/env bash
# The GPU check (issue 9): one call on a lent GPU machine, after `bash tools/gpu/pack.sh`
# here and with `.gpu` carried. Unpacks the bundle, finds the machine's cuBLAS and NCCL (the
# ones its PyTorch uses), runs the CUDA test suites, then our benchmarks and the PyTorch peer
# on the same GPU, and prints the table last. Everything also lands in $OUT: tests.log,
# ours.json, torch.json, gpu.json, report.md.
# VLMOE_GPU_DRY=1 runs the same steps on the CPU at tiny sizes (checks the script itself).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/vlmoe-gpu-out}
mkdir -p "$OUT"
dry=${VLMOE_GPU_DRY:-0}
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

step "unpacking"
# (a dry run uses this checkout's own builds: unpacking would overwrite them)
if [ "$dry" != 1 ] && [ -f .gpu/bundle.tar.xz ]; then tar -xJf .gpu/bundle.tar.xz || exit 1; fi
[ -x .gpu/bin/node ] && export PATH="$PWD/.gpu/bin:$PATH"
node --version || { echo "no node"; exit 1; }
PY=${VLMOE_PYTHON:-python3}
[ "$dry" = 1 ] && PY=/usr/bin/python3
if [ "$dry" != 1 ]; then nvidia-smi -L; fi

step "the machine's cuBLAS and NCCL (PyTorch's)"
find_lib() {
  $PY - "$1" <<'PY' 2>/dev/null
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for pat in ("nvidia/*/lib/" + sys.argv[1], "nvidia/cu*/lib/" + sys.argv[1], "torch/lib/" + sys.argv[1]):
        hits = sorted(glob.glob(os.path.join(r, pat)))
        if hits:
            print(hits[-1]); sys.exit(0)
PY
}
lib=$(find_lib 'libcublas.so.*[0-9]'); [ -n "$lib" ] && export VLMOE_CUBLAS_LIB="$lib"
lib=$(find_lib 'libnccl.so.2'); [ -n "$lib" ] && export VLMOE_NCCL_LIB="$lib"
echo "VLMOE_CUBLAS_LIB=${VLMOE_CUBLAS_LIB:-} VLMOE_NCCL_LIB=${VLMOE_NCCL_LIB:-}"
node -e "const n=require('./packages/native-cuda/dist/index.js'); console.log(JSON.stringify({info: n.info(), cublas: n.native.cublasInfo(), nccl: n.native.ncclInfo()}).slice(0, 2000))"

step "CUDA test suites (device-parametrised; cpu and cuda:0)"
vitest() { node node_modules/vitest/vitest.mjs run --root "$@"; }
{
  vitest packages/native-cuda test/cuda.test.ts
  vitest packages/tensor test/device_ops.test.ts test/matmul.test.ts test/optim.test.ts test/memory.test.ts test/half.test.ts test/attention.test.ts test/cross_entropy.test.ts test/elementwise_device.test.ts test/moe_autocast.test.ts test/moe_gate.test.ts
  vitest packages/moe test/fused_gate.test.ts
  vitest packages/parallel test/init.test.ts
} 2>&1 | tee "$OUT/tests.log" | grep -E "✓|×|Tests|FAIL|Error|skipped" | tail -60

if [ "$dry" != 1 ]; then
  step "NCCL, world size 1"
  node -e "
    import('./packages/parallel/dist/index.js').then(async (P) => {
      const T = await import('./packages/tensor/dist/index.js');
      const pg = P.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1, name: '/vlmoe-gpu-check' });
      const t = T.toDevice(T.tensor([1, 2, 3]), 'cuda:0');
      pg.allReduce(t, 'sum'); pg.barrier();
      console.log('nccl allReduce (world 1):', Array.from(t.dataSync()).join(','), 'on', pg.device);
      pg.destroy();
    }).catch((e) => { console.log('nccl FAILED:', e.message); });" 2>&1 | tee -a "$OUT/tests.log"
fi

step "benchmarks: ours"
args='{"device":"cuda:0"}'; pargs='{}'
[ "$dry" = 1 ] && args='{"device":"cpu","quick":true}' && pargs='{"device":"cpu","quick":true}'
node tools/gpu/bench.mjs "$args" > "$OUT/ours.json" 2> "$OUT/ours.err" || { echo "ours FAILED:"; tail -20 "$OUT/ours.err"; }
step "benchmarks: PyTorch on the same device"
$PY tools/gpu/torch_peer.py "$pargs" > "$OUT/torch.json" 2> "$OUT/torch.err" || { echo "torch FAILED:"; tail -20 "$OUT/torch.err"; }

step "report"
node tools/gpu/report.mjs "$OUT/ours.json" "$OUT/torch.json" "$OUT/gpu.json" | tee "$OUT/report.md"
