#!/usr/bin/env python3
"""PyTorch side of smelt's trainer benchmark.

Trains the same GPT-2 as smelt (trainer/testdata/parity.py's forward,
which matches smelt to 1e-6) on the issue's configuration: 4 layers, 4
heads, width 256, context 256, vocabulary 8192, batch 8 sequences, float32,
AdamW with weight decay on matrices, gradient clipping at 1.0, random
tokens. It times optimizer steps (best of --repeats timings of --steps steps)
at 1 and 2 threads and prints one line per
thread count and the best, e.g. best_tokens_per_s=3512.3 threads=1.

Usage: torch_bench.py [--steps N] [--threads 1,2] [--repeats R]
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata"))
from parity import NAMES, MATRICES, shapes, forward  # noqa: E402

L, NH, C, T, V, B = 4, 4, 256, 256, 8192, 8


def run(threads, steps, repeats):
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    P = {}
    for n, s in shapes(L, C, T, V).items():
        if n in ("ln1w", "ln2w", "lnfw"):
            P[n] = torch.ones(s)
        elif n.endswith("b"):
            P[n] = torch.zeros(s)
        else:
            P[n] = 0.02 * torch.randn(s, generator=g)
        P[n].requires_grad_(True)
    opt = torch.optim.AdamW([
        {"params": [P[n] for n in NAMES if n in MATRICES], "weight_decay": 0.1},
        {"params": [P[n] for n in NAMES if n not in MATRICES], "weight_decay": 0.0},
    ], lr=6e-4, betas=(0.9, 0.95), eps=1e-8)
    params = [P[n] for n in NAMES]

    def step():
        idx = torch.randint(0, V, (B, T), generator=g)
        tgt = torch.randint(0, V, (B, T), generator=g)
        opt.zero_grad(set_to_none=True)
        loss = forward(P, idx, tgt, L, NH, C)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, B * T * steps / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=1, help="report the best of this many timings")
    a = ap.parse_args()
    best, best_th = 0.0, 0
    for th in [int(x) for x in a.threads.split(",")]:
        tps = run(th, a.steps, a.repeats)
        print(f"torch {torch.__version__} threads={th} tokens_per_s={tps:.1f}", flush=True)
        if tps > best:
            best, best_th = tps, th
    print(f"best_tokens_per_s={best:.1f} threads={best_th}")


if __name__ == "__main__":
    main()
