"""Benchmark: the d2l-style input loop against the course's fast path, in one process.

Generates hotdog-shaped JPEG data (default: 2,000 training and 1,800 test images, each side
200-600 px; ``--small`` for a CPU smoke run), then trains the same ResNet-18 (2-class head, same
initial weights) with :func:`helpers.training.train`:

(a) d2l-style: ``ImageFolder`` + PIL transforms + ``DataLoader`` with workers, fp32;
(b) fast path: :func:`helpers.fastpath.decode_folder` once, :class:`~helpers.fastpath.TensorLoader`
    augmenting on the device; on CUDA also channels_last, bf16 autocast and cudnn.benchmark
    (``--compile`` adds ``torch.compile``, its compile time counted end to end).

Printed per path: steady-state training img/s (median of epochs 2..N), end-to-end seconds for N
epochs (dataset/decoding, training and the per-epoch test evaluation), the ratio b/a, and the
fraction of the compute floor (ResNet-18: 1.82 GFLOPs forward per 224 px image, x3 per training
step; peak rate = a large bf16 matmul on CUDA, fp32 on the CPU, measured in this run).
The fast profile (mini ResNet, 32 px, its generated mini hotdog set) is measured both ways too.

    python benchmarks/bench_fullpath.py                 # the full benchmark (GPU)
    python benchmarks/bench_fullpath.py --small         # a CPU smoke run (a few minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw

from helpers import data, fastpath, models, training
from helpers.profile import Profile, data_root, get_profile

FWD_GFLOPS_224 = 1.82  # ResNet-18, one 224x224 image, forward (multiply-adds counted as 2)


# ----------------------------------------------------------------------------- data
def _image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((8, 8, 3)) * 255).astype("uint8"))
    im = small.resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(6):  # a few edges, as in photos
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        draw.ellipse([x0, y0, x0 + rng.integers(10, w // 2 + 11), y0 + rng.integers(10, h // 2 + 11)],
                     fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    a = np.asarray(im).astype(np.int16) + rng.integers(-10, 11, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype("uint8"))


def generate(root: Path, n_train: int, n_test: int, lo: int, hi: int, workers: int) -> Path:
    """Hotdog layout (train|test x hotdog|not-hotdog), JPEG quality 90, sides uniform in lo..hi."""
    if (root / "done").exists():
        return root
    rng = np.random.default_rng(0)
    jobs = []
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n):
            cls = root / split / ("hotdog" if k % 2 == 0 else "not-hotdog")
            jobs.append((cls / f"{k:05d}.jpg", int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)),
                         len(jobs)))
    for split in ("train", "test"):
        for cls in ("hotdog", "not-hotdog"):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda j: _image(j[1], j[2], j[3]).save(j[0], quality=90), jobs))
    (root / "done").write_text("ok")
    return root


# ----------------------------------------------------------------------------- measurements
def peak_flops(device: torch.device) -> tuple[float, str]:
    """FLOP/s of a large matmul: bf16 8192^3 on CUDA, fp32 1024^3 on the CPU."""
    if device.type == "cuda":
        n, dtype, reps = 8192, torch.bfloat16, 50
    else:
        n, dtype, reps = 1024, torch.float32, 10
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t), f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} matmul {n}^3"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(name: str, make_loaders, net: torch.nn.Module, profile: Profile, epochs: int, fast: bool,
        compile_net: bool = False) -> dict:
    """Build loaders (timed), train ``epochs`` with the course loop; end-to-end includes both."""
    dev = profile.device
    cudnn = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = fast and dev.type == "cuda"
    _sync(dev)
    t0 = time.perf_counter()
    train_iter, test_iter = make_loaders()
    t_data = time.perf_counter() - t0
    net = net.to(dev)
    on_cuda = fast and dev.type == "cuda"
    if on_cuda:  # weights NHWC too (train() converts only the batches): no per-step layout change in cuDNN
        net = net.to(memory_format=torch.channels_last)
    if compile_net:
        net = torch.compile(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
    hist = training.train(net, train_iter, test_iter, opt, epochs, device=dev, progress=False,
                          amp=on_cuda, channels_last=on_cuda)
    _sync(dev)
    total = time.perf_counter() - t0
    torch.backends.cudnn.benchmark = cudnn
    rates = hist["examples_per_sec"]
    steady = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
    res = {"name": name, "data_s": t_data, "end_to_end_s": total, "steady_img_s": steady,
           "epoch_img_s": [round(r, 1) for r in rates], "valid_acc": hist.final["valid_acc"]}
    print(f"  {name:<28} data/decode {t_data:6.2f} s | steady {steady:9.1f} img/s | "
          f"end to end {total:7.2f} s | epochs {res['epoch_img_s']} | valid acc {res['valid_acc']:.3f}",
          flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="CPU smoke run: 64/32 images, 3 epochs, batch 16")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=1800)
    ap.add_argument("--min-side", type=int, default=200)
    ap.add_argument("--max-side", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the d2l-style loop")
    ap.add_argument("--decode-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model in the fast path")
    ap.add_argument("--skip-fast-profile", action="store_true")
    ap.add_argument("--data", type=Path, default=None, help="where to generate the images")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.small:
        args.n_train, args.n_test, args.epochs, args.batch_size = 64, 32, 3, 16
        args.workers = min(args.workers, 2)

    full = get_profile("full")
    full = dataclasses.replace(full, batch_size=args.batch_size, num_workers=args.workers)
    dev = full.device
    gpu = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"device: {gpu} | torch {torch.__version__} | torchvision {torchvision.__version__}")
    peak, how = peak_flops(dev)
    floor = peak / (3 * FWD_GFLOPS_224 * 1e9)
    print(f"peak: {peak / 1e12:.2f} TFLOP/s ({how}) -> compute floor {floor:,.0f} img/s for ResNet-18 "
          f"training at 224 px (3 x {FWD_GFLOPS_224} GFLOPs)")

    root = args.data or data_root() / (f"bench-hotdog-{args.n_train}-{args.n_test}-"
                                       f"{args.min_side}-{args.max_side}")
    t = time.perf_counter()
    generate(root, args.n_train, args.n_test, args.min_side, args.max_side, args.decode_workers)
    print(f"data: {root} ({args.n_train} train / {args.n_test} test JPEGs, "
          f"{args.min_side}-{args.max_side} px; ready in {time.perf_counter() - t:.1f} s)")

    torch.manual_seed(0)
    net0 = models.new_head(torchvision.models.resnet18(weights=None), 2)
    print(f"full profile: ResNet-18, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.workers} DataLoader workers (a), {args.decode_workers} decode threads (b)")

    def d2l_loaders():
        tr = data.image_folder(root / "train", data.train_transform(full))
        te = data.image_folder(root / "test", data.test_transform(full))
        return data.loaders(tr, te, full, args.batch_size)

    a = run("(a) d2l-style", d2l_loaders, copy.deepcopy(net0), full, args.epochs, fast=False)
    b = run("(b) fast path" + (" + compile" if args.compile else ""),
            lambda: fastpath.fast_loaders(full, root, args.batch_size, workers=args.decode_workers),
            copy.deepcopy(net0), full, args.epochs, fast=True, compile_net=args.compile)
    results = {"device": gpu, "peak_flops": peak, "peak_how": how, "floor_img_s": floor,
               "args": {k: str(v) for k, v in vars(args).items()}, "full": {"a": a, "b": b}}
    print(f"  ratio b/a: steady {b['steady_img_s'] / a['steady_img_s']:.2f}x, "
          f"end to end {a['end_to_end_s'] / b['end_to_end_s']:.2f}x | fraction of compute floor: "
          f"(a) {a['steady_img_s'] / floor:.4f}, (b) {b['steady_img_s'] / floor:.4f}")

    if not args.skip_fast_profile:
        fast = get_profile("fast")
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # as helpers.setup() does
        print(f"fast profile: mini ResNet, 32 px, {fast.device}, batch {fast.batch_size}, "
              f"{args.epochs} epochs")
        torch.manual_seed(0)
        mini0 = models.scratch_net(fast)
        fa = run("(a) fast profile, PIL", lambda: data.hotdog_loaders(fast)[::2], copy.deepcopy(mini0),
                 fast, args.epochs, fast=False)
        fb = run("(b) fast profile, fast path", lambda: fastpath.fast_loaders(fast, workers=2),
                 copy.deepcopy(mini0), fast, args.epochs, fast=True)
        torch.set_num_threads(threads)
        print(f"  ratio b/a: steady {fb['steady_img_s'] / fa['steady_img_s']:.2f}x, "
              f"end to end {fa['end_to_end_s'] / fb['end_to_end_s']:.2f}x")
        results["fast"] = {"a": fa, "b": fb}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
