"""The PyTorch peer of the GPU check (tools/gpu/check.sh), on the same GPU in the same run.

Times what tools/gpu/bench.mjs times, with the same shapes: torch.matmul (float32 with TF32
off — our default —, TF32, and bfloat16, which is the bar's unit), a copy and GELU over 256M
float32 elements (the memory ceiling and a memory-bound op), DeepSpeed's einsum MoE
(tools/bench/peers/torch_moe.py: dense [S, E, C] dispatch and combine) and an index-based
MoE (argsort by expert, one FFN per expert on its gathered rows, index_add back) forward +
backward, and the benchmark transformer's training step in eager mode
(tools/bench/peers/torch_train_step.py). Prints one JSON line.
Usage: python3 tools/gpu/torch_peer.py '{"quick": false}' (add "device": "cpu" with "quick" to check it without a GPU)
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench", "peers"))
from torch_moe import DeepSpeedMoE, capacity  # noqa: E402
from torch_train_step import Block  # noqa: E402


SYNC = [lambda: None]


def timeit(fn, warmup=3, iters=10):
    for _ in range(warmup):
        fn()
    SYNC[0]()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    SYNC[0]()
    return (time.perf_counter() - t0) / iters


class IndexMoE(nn.Module):
    """Top-k routing by indices: tokens sorted by expert, each expert's FFN on its own rows,
    outputs scattered back with the gate weights (capacity drops as DeepSpeed's first-C)."""

    def __init__(self, d, h, E, k, cf, min_cap):
        super().__init__()
        self.wg = nn.Linear(d, E, bias=False)
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, d)) for _ in range(E)])
        self.E, self.k, self.cf, self.min_cap = E, k, cf, min_cap

    def forward(self, x):
        S = x.shape[0]
        logits = self.wg(x)
        gates = F.softmax(logits, dim=1)
        top_w, top_e = gates.topk(self.k, dim=1)
        if self.k > 1:
            top_w = top_w / top_w.sum(dim=1, keepdim=True)
        me = gates.mean(0)
        ce = F.one_hot(top_e[:, 0], self.E).float().mean(0)
        l_aux = (me * ce).sum() * self.E
        C = capacity(S, self.E, self.cf, self.k, self.min_cap)
        flat_e = top_e.t().reshape(-1)  # queue order: choice rank, then token
        flat_s = torch.arange(S, device=x.device).repeat(self.k)
        flat_w = top_w.t().reshape(-1)
        order = torch.argsort(flat_e, stable=True)
        counts = torch.bincount(flat_e, minlength=self.E).tolist()
        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts):
            idx = order[start:start + min(n, C)]
            start += n
            if idx.numel() == 0:
                continue
            rows = flat_s[idx]
            y = self.experts[e](x.index_select(0, rows))
            out = out.index_add(0, rows, y * flat_w[idx, None])
        return out, l_aux


def main():
    a = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    quick = a.get("quick", False)
    dev = torch.device(a.get("device", "cuda"))  # "cpu" with "quick" checks this script without a GPU
    if dev.type == "cuda":
        SYNC[0] = torch.cuda.synchronize
    torch.manual_seed(0)
    out = {"torch_version": torch.__version__, "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"}

    # 1. GEMM
    shapes = {"sq": (128, 128, 128)} if quick else {"sq": (4096, 4096, 4096), "up": (16384, 1024, 4096), "down": (16384, 4096, 1024)}
    out["gemm"] = {}
    for name, (M, K, N) in shapes.items():
        r = {"M": M, "K": K, "N": N}
        for kind, dt, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            A = torch.randn(M, K, device=dev, dtype=dt)
            B = torch.randn(K, N, device=dev, dtype=dt)
            s = timeit(lambda: torch.matmul(A, B), iters=2 if quick else 20)
            r[kind + "_tflops"] = 2 * M * N * K / s / 1e12
            del A, B
        out["gemm"][name] = r
    torch.backends.cuda.matmul.allow_tf32 = False

    # 2. memory-bound
    n = 1 << 16 if quick else 256 * (1 << 20)
    x = torch.randn(n, device=dev)
    b = torch.randn(1 << 10, device=dev)
    xb = x.view(-1, 1 << 10)
    gelu = timeit(lambda: F.gelu(x))
    copy = timeit(lambda: x.clone())
    bias_gelu = timeit(lambda: F.gelu(xb + b))
    out["memory"] = {"n": n, "gelu_gbps": 8 * n / gelu / 1e9, "copy_gbps": 8 * n / copy / 1e9, "bias_gelu_gbps": 8 * n / bias_gelu / 1e9}
    del x, xb

    # 3. MoE layers, forward + backward
    S, d, h = (256, 64, 128) if quick else (16384, 1024, 4096)
    xm = torch.randn(S, d, device=dev, requires_grad=True)
    out["moe"] = {}
    for E, k in ((8, 1), (8, 2), (32, 1), (32, 2)):
        r = {}
        for name, cls in (("einsum", DeepSpeedMoE), ("index", IndexMoE)):
            m = cls(d, h, E, k, 1.0, 4).to(dev)

            def step():
                for p in m.parameters():
                    p.grad = None
                xm.grad = None
                y, l_aux = m(xm)
                (y.sum() + l_aux).backward()

            r[name + "_seconds"] = timeit(step, warmup=2, iters=2 if quick else 10)
            del m
        out["moe"][f"E{E}_k{k}"] = r
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    # 4. training step, eager
    model = nn.Sequential(*[Block(256, 4, 1024) for _ in range(4)]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    xt = torch.randn(16, 128, 256, device=dev)
    target = torch.randn(16, 128, 256, device=dev)

    def train():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(xt), target).backward()
        opt.step()

    out["train"] = {"seconds": timeit(train, warmup=3, iters=2 if quick else 20)}

    def train_bf16():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            loss = F.mse_loss(model(xt), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out["train"]["bf16_seconds"] = timeit(train_bf16, warmup=3, iters=2 if quick else 20)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
