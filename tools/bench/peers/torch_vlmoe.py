#!/usr/bin/python3
"""PyTorch twin of one VL-MoE pretraining step, for `npm run bench -- model`.

The model is packages/moe/test/fixtures/vlmo_twin.py (microsoft/unilm's VLMo modules with
DeepSpeed-MoE's names; its forward is tested equal to ours in float64 there), with its MoE
layers switched to training-mode DeepSpeed gating written the way a DeepSpeed user's model
runs it: softmax gates, `argmax` choices (the second from the logits with the first masked,
as top2gating), capacity max(ceil(S/E * cf * k), min_capacity) with locations by `cumsum`
(first choices first, then second choices), tokens past capacity dropped, top-2 weights
renormalised, balance loss l_aux (top1: E * sum(me * ce); top2: E * E * mean(me * ce)) and
router z-loss mean(logsumexp(logits)^2). Dispatch is either DeepSpeed's einsum
(`sec,sm->ecm`, an FFN per expert over its [C, d] buffer, `sec,ecm->sm`) or index gathers
(`index_select` of each expert's kept tokens, `index_add_` back) — the bench runs both and
keeps the faster.

The step is VLMo's (as our VLMoPretrainer): image-only and text-only passes -> ITC
(symmetric cross-entropy, logit scale clamped at log 100); the fused pass of the MLM-masked
text -> MLM cross-entropy on masked positions; one hard negative image per text and one text
per image drawn from the softmax of the ITC similarities (diagonal removed, inverse CDF of
given uniforms) -> three fused passes (positive, negative image, negative text) -> pooled ->
ITM cross-entropy; loss = w_itc ITC + w_itm ITM + w_mlm MLM + sum over passes and MoE layers
of (aux_w l_aux + z_w z). No dropout or stochastic depth (the bench sets dropPath 0 on both
sides). AdamW.

Modes:
  torch_vlmoe.py losses DIR      DIR: config.json (our VLMoConfig + "weights", "dispatch"),
                                 unilm.pth (our exportVlmoCheckpoint), io.pth (ids, mask,
                                 mlm_ids, mlm_labels, pixels, u: the 2B uniforms of the
                                 negative draw). Prints the losses as JSON (float64).
  torch_vlmoe.py '<json args>'   The benchmark: {config, batch, warmup, steps, threads,
                                 dispatch, lr}. Prints one JSON line with per-step ms,
                                 median_ms, peak_rss_mb, loss, tokens per step.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'packages', 'moe', 'test', 'fixtures'))
import vlmo_twin  # noqa: E402  (the forward twin)

from peer_common import apply_threads, time_steps  # noqa: E402

# the MoE losses of the current step, one (l_aux, z) per MoE layer call
MOE_LOSSES = []


def gating(logits, k, cf, min_cap):
    """DeepSpeed top1gating / top2gating without RTS or noise; returns per-token-and-expert
    weights [S, E] of kept assignments, the kept masks and locations per choice, C, l_aux, z."""
    S, E = logits.shape
    gates = F.softmax(logits, dim=1)
    C = max(math.ceil(S / E * cf * k), min_cap)
    mask1 = F.one_hot(torch.argmax(gates, dim=1), num_classes=E)
    masks = [mask1]
    if k == 2:
        masks.append(F.one_hot(torch.argmax(logits.masked_fill(mask1.bool(), float('-inf')), dim=1), num_classes=E))
    elif k != 1:
        raise ValueError('k must be 1 or 2')
    me = gates.mean(0)
    ce = mask1.to(gates.dtype).mean(0)
    l_aux = (me * ce).sum() * E if k == 1 else (me * ce).mean() * E * E
    locs = [torch.cumsum(masks[0], dim=0) - 1]
    if k == 2:
        locs.append(torch.cumsum(masks[1], dim=0) - 1 + masks[0].sum(0, keepdim=True))
    kept = [m * torch.lt(l, C) for m, l in zip(masks, locs)]
    g = [(gates * m.to(gates.dtype)).sum(1) for m in kept]
    if k == 2:
        denom = torch.clamp(g[0] + g[1], min=torch.finfo(gates.dtype).eps)
        g = [x / denom for x in g]
    z = torch.logsumexp(logits, dim=1).pow(2).mean()
    return g, kept, locs, C, l_aux, z


def train_moe_forward(self, x):
    """vlmo_twin.MOELayer.forward in training mode (bound onto every MoE layer)."""
    shape = x.shape
    t = x.reshape(-1, shape[-1])
    logits = self.gate.wg(t)
    g, kept, locs, C, l_aux, z = gating(logits, self.gate.k, self.cf, self.min_cap)
    MOE_LOSSES.append((l_aux, z))
    experts = self.experts.deepspeed_experts
    if self.dispatch == 'einsum':
        combine = 0
        for gj, mj, lj in zip(g, kept, locs):
            loc_s = (lj * mj).sum(1)
            combine = combine + torch.einsum('s,se,sc->sec', gj, mj.to(t.dtype), F.one_hot(loc_s, num_classes=C).to(t.dtype))
        dispatched = torch.einsum('sec,sm->ecm', combine.bool().to(t.dtype), t)
        out = torch.cat([ex(chunk) for chunk, ex in zip(dispatched.chunk(len(experts), dim=0), experts)], dim=0)
        return torch.einsum('sec,ecm->sm', combine, out).reshape(shape)
    out = torch.zeros_like(t)
    for gj, mj in zip(g, kept):
        for e, ex in enumerate(experts):
            rows = mj[:, e].nonzero().flatten()
            if rows.numel():
                out = out.index_add(0, rows, gj[rows, None] * ex(t.index_select(0, rows)))
    return out.reshape(shape)


def build(cfg, dispatch):
    c = vlmo_twin.resolved(cfg)
    model = vlmo_twin.VLMo(c)
    m = c['moe']
    for mod in model.modules():
        if isinstance(mod, vlmo_twin.MOELayer):
            mod.cf = m.get('capacityFactor', 1.0)
            mod.min_cap = m.get('minCapacity', 4)
            mod.dispatch = dispatch
            mod.forward = train_moe_forward.__get__(mod)
    return model, c


def hard_negatives(sim, u):
    """Our sampleHardNegatives: for text t an image from softmax(sim[:, t]) without t, for image i
    a text from softmax(sim[i, :]) without i, by inverse CDF of the uniforms u[:B], u[B:]."""
    B = sim.shape[0]

    def draw(rows, r):
        eye = torch.eye(B, dtype=torch.bool)
        p = torch.softmax(rows.masked_fill(eye, float('-inf')), dim=1)
        cdf = torch.cumsum(p, dim=1)
        j = torch.searchsorted(cdf, r[:, None].to(cdf.dtype), right=True).flatten()
        fallback = torch.where(torch.arange(B) == B - 1, B - 2, B - 1)
        return torch.where(j < B, j, fallback).clamp(max=B - 1)

    return draw(sim.t(), u[:B]), draw(sim, u[B:])


def step_losses(model, c, ids, mask, mlm_ids, mlm_labels, pixels, u, w):
    MOE_LOSSES.clear()
    B, L = ids.shape
    img = model.run(model.image(pixels), None, 'image')
    txt = model.run(model.text(ids), mask, 'text')
    ie = F.normalize(model.itc_image_proj(img[:, 0]), dim=-1)
    te = F.normalize(model.itc_text_proj(txt[:, 0]), dim=-1)
    scale = model.logit_scale.clamp(max=math.log(100)).exp()
    target = torch.arange(B)
    itc = 0.5 * (F.cross_entropy(ie @ te.t() * scale, target) + F.cross_entropy(te @ ie.t() * scale, target))

    def fused(i, m, p):
        co_mask = torch.cat([m, torch.ones(B, c['numPatches'] + 1, dtype=m.dtype)], dim=1)
        return model.run(torch.cat([model.text(i), model.image(p)], dim=1), co_mask, 'vl', L)

    f = fused(mlm_ids, mask, pixels)
    logits = model.mlm_score(f[:, :L])
    mlm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), mlm_labels.reshape(-1), ignore_index=-100)
    with torch.no_grad():
        img_for_text, text_for_img = hard_negatives(ie @ te.t(), u)
    pooled = torch.cat([model.pooler(fused(ids, mask, pixels)), model.pooler(fused(ids, mask, pixels[img_for_text])),
                        model.pooler(fused(ids[text_for_img], mask[text_for_img], pixels))], dim=0)
    labels = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(2 * B, dtype=torch.long)])
    itm = F.cross_entropy(model.itm_score(pooled), labels)
    m = c['moe']
    zero = torch.zeros((), dtype=itc.dtype)
    aux = sum((a for a, _ in MOE_LOSSES), zero)
    zl = sum((z for _, z in MOE_LOSSES), zero)
    moe = aux * m.get('auxLossWeight', 0.01) + zl * m.get('zLossWeight', 0.001) if m else zero
    loss = w.get('itc', 1) * itc + w.get('itm', 1) * itm + w.get('mlm', 0.25) * mlm + moe
    return loss, {'itc': itc.item(), 'itm': itm.item(), 'mlm': mlm.item(), 'moe': moe.item(), 'loss': loss.item()}


def losses(folder):
    with open(os.path.join(folder, 'config.json')) as fh:
        cfg = json.load(fh)
    w = cfg.pop('weights', {})
    dispatch = cfg.pop('dispatch', 'einsum')
    model, c = build(cfg, dispatch)
    model.double().train()
    model.load_state_dict(torch.load(os.path.join(folder, 'unilm.pth')), strict=True)
    io = torch.load(os.path.join(folder, 'io.pth'))
    with torch.no_grad():
        _, parts = step_losses(model, c, io['ids'], io['mask'], io['mlm_ids'], io['mlm_labels'], io['pixels'].double(), io['u'].double(), w)
    print(json.dumps(parts))


def bench(a):
    seen = apply_threads(a)
    torch.manual_seed(0)
    cfg = dict(a['config'])
    model, c = build(cfg, a.get('dispatch', 'einsum'))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.get('lr', 1e-4), weight_decay=0.01)
    B, L, V = a['batch'], c['maxTextLen'], c['vocabSize']
    ids = torch.randint(5, V, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    mlm_labels = torch.full((B, L), -100, dtype=torch.long)
    pick = torch.rand(B, L) < 0.15
    mlm_labels[pick] = ids[pick]
    mlm_ids = ids.masked_fill(pick, 3)
    pixels = torch.randn(B, 3, c['imageSize'], c['imageSize'])
    def step():
        opt.zero_grad(set_to_none=True)
        u = torch.rand(2 * B, dtype=torch.float64)
        loss, _ = step_losses(model, c, ids, mask, mlm_ids, mlm_labels, pixels, u, a.get('weights', {}))
        loss.backward()
        opt.step()
        return loss

    loss, timing = time_steps(step, a['warmup'], a['steps'])
    print(json.dumps({**timing, 'loss': float(loss), 'dispatch': a.get('dispatch', 'einsum'), 'torch_version': torch.__version__, **seen}))

if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'losses':
        losses(sys.argv[2])
    elif len(sys.argv) == 2:
        bench(json.loads(sys.argv[1]))
    else:
        print(__doc__)
        sys.exit(2)
