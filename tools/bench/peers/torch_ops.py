"""PyTorch CPU peer for tools/bench: times the same cases as our benchmark.

Usage: torch_ops.py <ops> '<json args>' ; prints one JSON object (seconds per call).
Runs at the thread setting tools/bench/src/torch.ts passes (peer_common.py: args.threads, null = default).
"""
import json
import sys
import time

import torch

from peer_common import apply_threads


def best(fn, reps=5, min_time=0.2, warmup=2):
    for _ in range(warmup):
        fn()
    b = float("inf")
    for _ in range(reps):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        b = min(b, el / n)
    return b


def ops(args):
    out = dict(apply_threads(args))
    a = torch.ones(1)
    b = torch.ones(1)
    out["add_1elem"] = best(lambda: a.add(b), min_time=0.3)
    n = args["n"]
    rows, cols = args["rows"], args["cols"]
    x = torch.randn(n)
    y = torch.randn(n)
    z = torch.empty(n)
    out["add"] = best(lambda: torch.add(x, y, out=z), reps=3)
    out["mul"] = best(lambda: torch.mul(x, y, out=z), reps=3)
    out["exp"] = best(lambda: torch.exp(x, out=z), reps=3)
    # out= variants everywhere, so PyTorch writes into a preallocated tensor as our cached
    # allocator lets us do (fresh 64 MB outputs would cost PyTorch page faults each call).
    out["gelu"] = best(lambda: torch._C._nn.gelu(x, out=z), reps=3)
    out["tanh"] = best(lambda: torch.tanh(x, out=z), reps=3)
    out["sum"] = best(lambda: x.sum(), reps=3)
    m = x.view(rows, cols)
    zm = z.view(rows, cols)
    out["softmax"] = best(lambda: torch.ops.aten._softmax.out(m, -1, False, out=zm), reps=3)
    w = torch.ones(cols)
    bias = torch.zeros(cols)
    mean = torch.empty(rows, 1)
    rstd = torch.empty(rows, 1)
    out["layer_norm"] = best(
        lambda: torch.ops.aten.native_layer_norm.out(m, [cols], w, bias, 1e-5, out0=zm, out1=mean, out2=rstd), reps=3)
    return out


def gemm(args):
    out = dict(apply_threads(args))
    for (M, N, K) in args["shapes"]:
        a = torch.randn(M, K)
        b = torch.randn(K, N)
        c = torch.empty(M, N)
        out[f"{M}x{N}x{K}"] = best(lambda: torch.matmul(a, b, out=c), reps=3)
    return out


if __name__ == "__main__":
    what = sys.argv[1]
    args = json.loads(sys.argv[2])
    res = {"ops": ops, "gemm": gemm}[what](args)
    res["torch_version"] = torch.__version__
    print(json.dumps(res))
