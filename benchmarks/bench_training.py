"""Throughput of the course's training loop against a bare PyTorch loop, same data and model.

Prints examples/s of each and their ratio (goal: course / bare >= 0.95), like for like (both with
NCHW batches), and the course loop with ``channels_last=True`` (its default: NHWC batches on CUDA only;
on the CPU batches stay NCHW since issue 9, so the two course figures should agree there). The data are in-memory
tensors shaped like the fast profile's batches, so the figure measures the loop itself, not JPEG
decoding. Runs are interleaved and the median of ``--repeats`` is reported.
Run: ``python benchmarks/bench_training.py [--epochs 3 --repeats 5]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import models, training
from helpers.profile import get_profile


def bare_loop(net, loader, opt, epochs):
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        for X, y in loader:
            out = net(X)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=1024)
    args = ap.parse_args()
    torch.set_num_threads(2)
    profile = get_profile("fast")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.n, 3, profile.image_size, profile.image_size, generator=g)
    y = torch.randint(0, 2, (args.n,), generator=g)
    loader = DataLoader(TensorDataset(X, y), batch_size=profile.batch_size, shuffle=False)
    base = models.finetune_net(profile)
    rates = {"bare": [], "course": [], "course_nhwc": []}
    warm = models.finetune_net(profile, source=base)  # untimed: first-call costs (allocator, oneDNN) hit no one
    bare_loop(warm, loader, torch.optim.SGD(warm.parameters(), lr=0.01), 1)
    for _ in range(args.repeats):
        for kind in ("bare", "course", "course_nhwc"):
            net = models.finetune_net(profile, source=base)
            opt = torch.optim.SGD(models.param_groups(net, 0.01, {"head": 10}), lr=0.01, momentum=0.9)
            start = time.perf_counter()
            if kind == "bare":
                bare_loop(net, loader, opt, args.epochs)
            else:
                training.train(net, loader, None, opt, args.epochs, progress=True,
                               channels_last=kind == "course_nhwc")
            rates[kind].append(args.n * args.epochs / (time.perf_counter() - start))
    bare, course, nhwc = (statistics.median(rates[k]) for k in ("bare", "course", "course_nhwc"))
    print(f"bare PyTorch loop, NCHW            : {bare:8.0f} examples/s (median of {args.repeats})")
    print(f"helpers.train, channels_last=False: {course:8.0f} examples/s (progress bar, history, accuracy on)")
    print(f"helpers.train, channels_last=True : {nhwc:8.0f} examples/s (NHWC on CUDA only)")
    print(f"ratio course/bare, like for like  : {course / bare:.3f}  (goal >= 0.95)")
    print(f"ratio default/bare                : {nhwc / bare:.3f}")


if __name__ == "__main__":
    main()
