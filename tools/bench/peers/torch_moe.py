"""PyTorch CPU peer for `npm run bench -- moe`: DeepSpeed's MoE layer as DeepSpeed writes it.

deepspeed/moe/sharded_moe.py (top1gating / top2gating, MOELayer) and experts.py, transcribed
with plain PyTorch ops (DeepSpeed itself is not installable here): dense [S, E, C] combine
weights and dispatch mask, dispatch `einsum("sec,sm->ecm")`, one FFN per expert over its
[C, M] capacity buffer (a Python loop over a ModuleList, as DeepSpeed's Experts), combine
`einsum("sec,ecm->sm")`. Timed forward + backward (loss = sum(output) + l_aux), with as many
threads as tools/bench/src/torch.ts sets (peer_common.py). Also times a dense FFN (d -> h -> d) on the same tokens.

Usage: torch_moe.py '<json args>'; prints one JSON object of seconds per step.
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import apply_threads

from torch_ops import best  # same timing loop as the ops peer (this folder is on sys.path)


def capacity(S, E, cf, k, min_capacity):
    return max(math.ceil(S / E * cf * k), min_capacity)


def top1gating(logits, cf, min_cap):
    S, E = logits.shape
    gates = F.softmax(logits, dim=1)
    C = capacity(S, E, cf, 1, min_cap)
    indices1_s = torch.argmax(gates, dim=1)
    mask1 = F.one_hot(indices1_s, num_classes=E)
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.float(), dim=0)
    l_aux = torch.sum(me * ce) * E
    locations1 = torch.cumsum(mask1, dim=0) - 1
    mask1 = mask1 * torch.lt(locations1, C)
    locations1_s = torch.sum(locations1 * mask1, dim=1)
    mask1_float = mask1.float()
    gates = gates * mask1_float
    locations1_sc = F.one_hot(locations1_s, num_classes=C).float()
    combine_weights = torch.einsum("se,sc->sec", gates, locations1_sc)
    dispatch_mask = combine_weights.bool()
    return l_aux, combine_weights, dispatch_mask


def top2gating(logits, cf, min_cap):
    S, E = logits.shape
    gates = F.softmax(logits, dim=1)
    C = capacity(S, E, cf, 2, min_cap)
    indices1_s = torch.argmax(gates, dim=1)
    mask1 = F.one_hot(indices1_s, num_classes=E)
    logits_except1 = logits.masked_fill(mask1.bool(), float("-inf"))
    indices2_s = torch.argmax(logits_except1, dim=1)
    mask2 = F.one_hot(indices2_s, num_classes=E)
    locations1 = torch.cumsum(mask1, dim=0) - 1
    locations2 = torch.cumsum(mask2, dim=0) - 1
    locations2 += torch.sum(mask1, dim=0, keepdim=True)
    me = torch.mean(gates, dim=0)
    ce = torch.mean(mask1.float(), dim=0)
    l_aux = torch.mean(me * ce) * E * E
    mask1 = mask1 * torch.lt(locations1, C)
    mask2 = mask2 * torch.lt(locations2, C)
    locations1_s = torch.sum(locations1 * mask1, dim=1)
    locations2_s = torch.sum(locations2 * mask2, dim=1)
    mask1_float = mask1.float()
    mask2_float = mask2.float()
    gates1_s = torch.einsum("se,se->s", gates, mask1_float)
    gates2_s = torch.einsum("se,se->s", gates, mask2_float)
    denom_s = torch.clamp(gates1_s + gates2_s, min=torch.finfo(gates1_s.dtype).eps)
    gates1_s = gates1_s / denom_s
    gates2_s = gates2_s / denom_s
    gates1 = torch.einsum("s,se->se", gates1_s, mask1_float)
    gates2 = torch.einsum("s,se->se", gates2_s, mask2_float)
    locations1_sc = F.one_hot(locations1_s, num_classes=C).float()
    locations2_sc = F.one_hot(locations2_s, num_classes=C).float()
    combine1_sec = torch.einsum("se,sc->sec", gates1, locations1_sc)
    combine2_sec = torch.einsum("se,sc->sec", gates2, locations2_sc)
    combine_weights = combine1_sec + combine2_sec
    dispatch_mask = combine_weights.bool()
    return l_aux, combine_weights, dispatch_mask


class DeepSpeedMoE(nn.Module):
    def __init__(self, d, h, E, k, cf, min_cap):
        super().__init__()
        self.wg = nn.Linear(d, E, bias=False)
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, d)) for _ in range(E)])
        self.E, self.k, self.cf, self.min_cap, self.d = E, k, cf, min_cap, d

    def forward(self, x):
        logits = self.wg(x.float())
        gating = top1gating if self.k == 1 else top2gating
        l_aux, combine_weights, dispatch_mask = gating(logits, self.cf, self.min_cap)
        dispatched = torch.einsum("sec,sm->ecm", dispatch_mask.type_as(x), x)
        chunks = dispatched.chunk(self.E, dim=0)
        outs = [expert(chunk) for chunk, expert in zip(chunks, self.experts)]
        expert_output = torch.cat(outs, dim=0)
        combined = torch.einsum("sec,ecm->sm", combine_weights.type_as(x), expert_output)
        return combined, l_aux


def main():
    args = json.loads(sys.argv[1])
    seen = apply_threads(args)
    torch.manual_seed(0)
    S, d, h = args["S"], args["d"], args["h"]
    out = {"torch_version": torch.__version__, **seen}
    x = torch.randn(S, d, requires_grad=True)

    def step(model, moe):
        for p in model.parameters():
            p.grad = None  # freed: PyTorch's caching allocator reuses it
        x.grad = None
        if moe:
            y, l_aux = model(x)
            (y.sum() + l_aux).backward()
        else:
            model(x).sum().backward()

    for E, k in args["cases"]:
        m = DeepSpeedMoE(d, h, E, k, args["cf"], args["minCapacity"])
        out[f"moe_E{E}_k{k}"] = best(lambda: step(m, True), reps=args.get("reps", 3), min_time=args.get("minTime", 0.5))
    dense = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, d))
    out["dense"] = best(lambda: step(dense, False), reps=args.get("reps", 3), min_time=args.get("minTime", 0.5))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
