#!/usr/bin/env python3
"""Writes the PyTorch parity vectors for smelt's trainer.

A tiny GPT-2 with smelt's parameter layout (trainer/params.go) is given
random weights (LayerNorm gains near 1, everything else non-zero so every
gradient is exercised) and one batch; PyTorch (Debian's python3-torch)
computes the mean cross-entropy loss and every parameter's gradient in
float64 from those float32 weights, then one torch.optim.AdamW step (weight
decay on matrices only) from the float32 weights and gradients.

Usage: parity.py OUT.bin [--seed N]
Format: one line of JSON (config, batch, tensor names and sizes, loss,
AdamW settings), then little-endian: inputs and targets as uint32 (B*T each),
params, grads, params after the AdamW step, each float32 in ParamNames order.
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
MATRICES = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}


def shapes(L, C, T, V):
    return {
        "wte": (V, C), "wpe": (T, C), "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C), "attprojw": (L, C, C), "attprojb": (L, C),
        "ln2w": (L, C), "ln2b": (L, C), "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
        "fcprojw": (L, C, 4 * C), "fcprojb": (L, C), "lnfw": (C,), "lnfb": (C,),
    }


def forward(P, idx, tgt, L, NH, C):
    B, T = idx.shape
    hs = C // NH
    x = P["wte"][idx] + P["wpe"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(L):
        h = F.layer_norm(x, (C,), P["ln1w"][l], P["ln1b"][l], 1e-5)
        qkv = h @ P["qkvw"][l].T + P["qkvb"][l]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, NH, hs).transpose(1, 2)
        k = k.view(B, T, NH, hs).transpose(1, 2)
        v = v.view(B, T, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ P["attprojw"][l].T + P["attprojb"][l]
        h = F.layer_norm(x, (C,), P["ln2w"][l], P["ln2b"][l], 1e-5)
        h = F.gelu(h @ P["fcw"][l].T + P["fcb"][l], approximate="tanh")
        x = x + h @ P["fcprojw"][l].T + P["fcprojb"][l]
    x = F.layer_norm(x, (C,), P["lnfw"], P["lnfb"], 1e-5)
    logits = x @ P["wte"].T
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1234
    L, NH, C, T, V, B = 2, 3, 24, 12, 80, 3
    g = torch.Generator().manual_seed(seed)
    P32 = {}
    for n, s in shapes(L, C, T, V).items():
        if n in ("ln1w", "ln2w", "lnfw"):
            P32[n] = 1 + 0.1 * torch.randn(s, generator=g)
        else:
            P32[n] = 0.1 * torch.randn(s, generator=g)
    idx = torch.randint(0, V, (B, T), generator=g)
    tgt = torch.randint(0, V, (B, T), generator=g)

    P64 = {n: t.double().requires_grad_(True) for n, t in P32.items()}
    loss = forward(P64, idx, tgt, L, NH, C)
    loss.backward()
    grads = {n: P64[n].grad.float() for n in NAMES}

    lr, b1, b2, eps, wd = 1e-3, 0.9, 0.95, 1e-8, 0.1
    S = {n: P32[n].clone().requires_grad_(True) for n in NAMES}
    for n in NAMES:
        S[n].grad = grads[n].clone()
    opt = torch.optim.AdamW([
        {"params": [S[n] for n in NAMES if n in MATRICES], "weight_decay": wd},
        {"params": [S[n] for n in NAMES if n not in MATRICES], "weight_decay": 0.0},
    ], lr=lr, betas=(b1, b2), eps=eps)
    opt.step()

    header = {
        "config": {"layers": L, "heads": NH, "width": C, "context": T, "vocab": V},
        "batch": B, "seq": T, "names": NAMES,
        "sizes": [P32[n].numel() for n in NAMES],
        "loss": loss.item(), "torch": torch.__version__, "seed": seed,
        "adamw": {"lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd},
    }
    with open(out, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        for t in (idx, tgt):
            f.write(struct.pack("<%dI" % t.numel(), *t.reshape(-1).tolist()))
        for group in (P32, grads, {n: S[n].detach() for n in NAMES}):
            for n in NAMES:
                t = group[n].float().reshape(-1)
                f.write(struct.pack("<%df" % t.numel(), *t.tolist()))


if __name__ == "__main__":
    main()
