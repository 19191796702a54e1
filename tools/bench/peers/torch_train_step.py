"""PyTorch CPU peer of `npm run bench -- train-step`.

The same model as tools/bench/src/train_step.ts: a pre-LN transformer encoder of `blocks`
blocks (d, heads, ffn, fp32), input [batch, seq, d], MSE loss against a fixed target,
AdamW, at the thread setting tools/bench/src/torch.ts passes (peer_common.py). Attention is written out (PyTorch 1.13 has no scaled_dot_product_attention).
Usage: torch_train_step.py '<json args>'; prints one JSON line:
{"ms": [...per-step ms...], "median_ms": x, "peak_rss_mb": y, "torch_version": ...}
"""
import json
import math
import sys

import torch
from torch import nn

from peer_common import apply_threads, time_steps


class Block(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x):
        B, L, D = x.shape
        h = self.ln1(x)
        qkv = self.qkv(h).reshape(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // self.heads)), dim=-1)
        ctx = (att @ v).permute(0, 2, 1, 3).reshape(B, L, D)
        x = x + self.proj(ctx)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


def main():
    a = json.loads(sys.argv[1])
    seen = apply_threads(a)
    torch.manual_seed(0)
    model = nn.Sequential(*[Block(a["d"], a["heads"], a["ffn"]) for _ in range(a["blocks"])])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    x = torch.randn(a["batch"], a["seq"], a["d"])
    target = torch.randn(a["batch"], a["seq"], a["d"])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        return loss

    loss, timing = time_steps(step, a["warmup"], a["steps"])
    print(json.dumps({**timing, "loss": float(loss), "torch_version": torch.__version__, **seen}))


if __name__ == "__main__":
    main()
