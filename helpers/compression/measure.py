"""Honest measurements: accuracy, non-zero weights, bytes on disk, latency, a comparison table."""
from __future__ import annotations

import io
import statistics
import time
import zlib
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from helpers.compression.pruning import clone, count_nonzero, make_permanent, sparsity
from helpers.profile import get_profile
from helpers.training import evaluate


def serialized_size(net: nn.Module, compress: bool = True) -> int:
    """Bytes of ``torch.save(state_dict)`` (of the permanent model if pruned), zlib-compressed when
    ``compress`` so that zeros take (almost) no room. Works for int8 models too."""
    if any(k.endswith("_mask") for k, _ in net.named_buffers()):
        net = make_permanent(net)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    raw = buf.getvalue()
    return len(zlib.compress(raw, 6)) if compress else len(raw)


def _device_of(net: nn.Module) -> torch.device:
    return next((p.device for p in net.parameters()), torch.device("cpu"))


def _smoke() -> bool:
    """A smoke run of the profile (``COURSE_MAX_EPOCHS``): time one pass, not ten (the full
    profile's ResNet-18 takes a second per pass on a CPU, and no figure of a smoke run means anything)."""
    return get_profile().smoke


def latency_ms(net: nn.Module, example_batch: torch.Tensor, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock time of one forward pass on ``example_batch`` on the **CPU** (inference
    mode), in ms: int8 models run on the CPU only, so every row of a comparison is timed there.
    A model on another device is timed on a CPU copy; ``net`` itself is never moved. In a smoke
    run (``COURSE_MAX_EPOCHS`` set) one pass after one warm-up pass is timed."""
    if _smoke():
        repeats, warmup = min(repeats, 1), min(warmup, 1)
    if _device_of(net).type != "cpu":
        net = clone(net).cpu()
    was_training = net.training
    net.eval()
    x = example_batch.cpu()
    if x.dim() == 4:
        x = x.contiguous()  # NCHW on the CPU, as in helpers.training (oneDNN#6035)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            net(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    net.train(was_training)
    return statistics.median(times)


def accuracy(net: nn.Module, eval_iter: Iterable) -> float:
    """Test accuracy (the course's :func:`helpers.training.evaluate`, on the model's device)."""
    return evaluate(net, eval_iter)[1]


def measure(net: nn.Module, eval_iter: Iterable, example_batch: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """One comparison row: accuracy (on the model's device), nonzero params, sparsity, size in
    bytes (zlib), latency (ms, on the CPU for every model: int8 runs there only). ``net`` is neither
    changed nor moved."""
    return {**extra, "accuracy": accuracy(net, eval_iter), "nonzero": count_nonzero(net),
            "sparsity": sparsity(net), "size_bytes": serialized_size(net),
            "latency_ms": latency_ms(net, example_batch)}


def format_table(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None) -> str:
    """A compact text table; ratios are relative to ``baseline`` (default: the first row). Each
    column is as wide as its widest entry, with two spaces between columns, so that ResNet-18's
    counts (11,177,538 non-zeros, megabytes, seconds) never run into their neighbours."""
    base = baseline or rows[0]
    header = ["method", "acc", "nonzero", "sparsity", "KB", "size x", "CPU ms"]
    body = [[str(r.get("method", "?")), f"{r['accuracy']:.3f}", f"{r['nonzero']:,}", f"{r['sparsity']:.2f}",
             f"{r['size_bytes'] / 1024:.1f}", f"{base['size_bytes'] / r['size_bytes']:.1f}x",
             f"{r['latency_ms']:.2f}"] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in [header, *body])


def print_table(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None) -> None:
    print(format_table(rows, baseline))


# --- latency comparison ---
def compare_latency(nets: Mapping[str, nn.Module], example_batch: torch.Tensor, repeats: int = 10,
                    rounds: int = 3, threads: int | None = 1) -> dict[str, float]:
    """Median forward time (ms, CPU) of each named model on ``example_batch``, measured in
    ``rounds`` interleaved rounds of ``repeats`` passes (a burst of load on a shared machine then
    hits every model alike), with ``threads`` CPU threads (default 1: less noise; ``None`` keeps
    the current setting, restored afterwards). The models must be on the CPU (int8 models are).
    A smoke run (``COURSE_MAX_EPOCHS`` set) measures one round."""
    if _smoke():
        rounds = 1
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        times: dict[str, list[float]] = {name: [] for name in nets}
        for _ in range(rounds):
            for name, net in nets.items():
                times[name].append(latency_ms(net, example_batch, repeats=repeats, warmup=1))
    finally:
        torch.set_num_threads(old)
    return {name: statistics.median(t) for name, t in times.items()}


# --- work per forward pass ---
def multiply_adds(net: nn.Module, example_batch: torch.Tensor) -> int:
    """Multiply-adds of the Conv2d and Linear layers in one forward pass of ``net`` on
    ``example_batch`` (on a CPU copy; float models): what the hardware computes, zeros included.
    Unstructured pruning leaves it unchanged; removing channels (:func:`prune_channels`) lowers it."""
    net = clone(net).cpu().eval()
    total = 0

    def count(m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += out.numel() * m.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            net(example_batch.cpu().contiguous())
    finally:
        for h in hooks:
            h.remove()
    return total
