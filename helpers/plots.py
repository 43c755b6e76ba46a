"""Plots: image grids, training curves, learning-rate schedules, compression trade-offs."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import torch


def show_images(imgs: Sequence[Any], num_rows: int, num_cols: int, titles: Sequence[str] | None = None,
                scale: float = 1.5):
    """A grid of PIL images or CHW tensors (d2l's ``show_images``). Returns the axes."""
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    axes = axes.flatten() if hasattr(axes, "flatten") else [axes]
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if torch.is_tensor(img):
            img = img.detach().cpu()
            img = img.permute(1, 2, 0).numpy() if img.dim() == 3 else img.numpy()
        ax.imshow(img)
        ax.axis("off")
        if titles:
            ax.set_title(titles[i], fontsize=8)
    for ax in list(axes)[len(imgs):]:
        ax.axis("off")
    fig.tight_layout()
    return axes


def plot_history(histories: Mapping[str, Any] | Any, metrics: Sequence[str] = ("train_loss", "train_acc", "valid_acc")):
    """Training curves: one panel per metric, one line per named history (``{"fine-tuned": h, ...}``)."""
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for ax, metric in zip(axes, metrics):
        for name, h in histories.items():
            ax.plot(h["epoch"], h[metric], marker="o", label=name or None)
        ax.set_xlabel("epoch")
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        if any(histories):
            ax.legend(fontsize=8)
    fig.tight_layout()
    return axes


def plot_lr(lrs: Mapping[str, Sequence[float]] | Sequence[float], xlabel: str = "step", log: bool = False):
    """Learning rate(s) against step: one line per named schedule or parameter group."""
    if not isinstance(lrs, Mapping):
        lrs = {"lr": lrs}
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, values in lrs.items():
        ax.plot(range(len(values)), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ax


def plot_tradeoff(rows: Sequence[Mapping[str, Any]], x: str, y: str = "accuracy", label: str = "method",
                  logx: bool = False):
    """Scatter of ``y`` against ``x`` (e.g. accuracy vs. size or sparsity), one labelled point per row."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        ax.scatter(r[x], r[y])
        ax.annotate(str(r[label]), (r[x], r[y]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return ax


# --- (ch5) ---

def plot_mean_spread(values: Mapping[str, Sequence[float]], references: Mapping[str, float] | None = None,
                     ylabel: str = "test accuracy"):
    """Bar chart of the mean of each named list of repeated measurements (e.g. one accuracy per seed),
    with one sample standard deviation as error bar (none for a single value) and each value as a
    dot; ``references`` are drawn as labelled dashed horizontal lines. Returns the axes."""
    import statistics

    if not values or any(len(v) == 0 for v in values.values()):
        raise ValueError("plot_mean_spread needs at least one value for each name")
    names = list(values)
    means = [sum(values[n]) / len(values[n]) for n in names]
    errs = [statistics.stdev(values[n]) if len(values[n]) > 1 else 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names)), 3.5))
    ax.bar(range(len(names)), means, yerr=errs, capsize=4, color="tab:blue", alpha=0.6)
    for i, n in enumerate(names):
        ax.scatter([i] * len(values[n]), values[n], color="black", s=10, zorder=3)
    for (label, y), style in zip((references or {}).items(), ("--", ":", "-.", (0, (5, 5)))):
        ax.axhline(y, color="gray", linestyle=style, label=f"{label} {y:.3f}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n({len(values[n])} seed{'s' if len(values[n]) > 1 else ''})" for n in names],
                       fontsize=8)
    ax.set_ylabel(ylabel)
    lows = [min(v) for v in values.values()] + list((references or {}).values())
    ax.set_ylim(max(0.0, min(lows) - 0.1), None)
    ax.grid(alpha=0.3, axis="y")
    if references:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return ax
