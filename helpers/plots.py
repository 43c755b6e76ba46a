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


# --- lr finder (ch1) ---

def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], suggestion: float | None = None):
    """The learning-rate finder's curve: smoothed training loss against the rate (log axis), with
    the chosen rate as a dashed vertical line. Returns the axes."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed)")
    if suggestion is not None:
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"chosen: {suggestion:.2g}")
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return ax
# --- unfreezing comparison (ch3) ---
def plot_mean_spread(runs: Mapping[str, Sequence[Sequence[float]]], ylabel: str = "validation accuracy"):
    """Repeated runs (e.g. seeds) of several methods: ``{method: [curve per run]}``, each curve one
    value per epoch. Left: the mean curve of each method with a band of ± one standard deviation;
    right: the mean of the last epoch as a bar with a ± one standard deviation error bar. Returns the axes."""
    import numpy as np

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    finals, errs = [], []
    for name, curves in runs.items():
        a = np.asarray(curves, dtype=float)
        mean, std = a.mean(0), a.std(0)
        x = np.arange(1, a.shape[1] + 1)
        ax.plot(x, mean, marker="o", label=f"{name} (n={len(a)})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        finals.append(mean[-1])
        errs.append(std[-1])
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bx.bar(range(len(finals)), finals, yerr=errs, capsize=6, color=[f"C{i}" for i in range(len(finals))])
    bx.set_xticks(range(len(finals)), list(runs), fontsize=8)
    bx.set_ylim(min(f - e for f, e in zip(finals, errs)) - 0.05, max(f + e for f, e in zip(finals, errs)) + 0.03)
    bx.set_title("last epoch, mean ± std", fontsize=9)
    bx.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return ax, bx


# --- (ch4) ---
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of repeated measurements."""
    vals = [float(v) for v in values]
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return mean, std


def plot_sweep(curves: Mapping[str, Mapping[float, Sequence[float]]], xlabel: str, ylabel: str = "accuracy",
               chance: float | None = None):
    """One line per named curve, ``{label: {x: [y of each repeat (seed)]}}``: the mean with error
    bars of one standard deviation over the repeats, each repeat as a faint dot. ``chance`` draws
    a dotted horizontal line (e.g. 0.5 for two balanced classes)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, points in curves.items():
        xs = sorted(points)
        stats = [mean_std(points[x]) for x in xs]
        line = ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", capsize=3,
                           label=label)
        for x in xs:
            ax.scatter([x] * len(points[x]), points[x], s=10, alpha=0.35, color=line[0].get_color())
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ax


def plot_layer_sparsity(sparsity: Mapping[str, float], sizes: Mapping[str, int] | None = None,
                        overall: float | None = None):
    """Bar chart of the fraction of zero weights in each layer (``{name: sparsity}``, e.g.
    ``compression.layer_sparsity``); ``sizes`` (weights per layer) label the bars, ``overall``
    draws the global sparsity as a dashed line."""
    names = list(sparsity)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(names)), 3.5))
    bars = ax.bar(range(len(names)), [sparsity[n] for n in names])
    if sizes is not None:
        ax.bar_label(bars, [f"{sizes[n]:,}" for n in names], fontsize=6, rotation=90, padding=2)
    if overall is not None:
        ax.axhline(overall, color="gray", linestyle="--", label=f"overall {overall:.0%}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("fraction of weights pruned")
    ax.set_ylim(0, 1.15 if sizes is not None else 1.0)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return ax
