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


# --- mean and spread over repeated runs ---
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of repeated measurements."""
    vals = [float(v) for v in values]
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return mean, std


def plot_mean_spread(runs: Mapping[str, Sequence[Sequence[float]]], ylabel: str = "validation accuracy"):
    """Repeated runs (e.g. seeds) of several methods: ``{method: [curve per run]}``, each curve one
    value per epoch. Left: the mean curve of each method with a band of ± one standard deviation;
    right: the mean of the last epoch as a bar with a ± one standard deviation error bar. The standard
    deviation is the sample one, as in :func:`mean_std` (0 for a single run). Returns the axes."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    finals, errs = [], []
    for name, curves in runs.items():
        mean, std = zip(*(mean_std(epoch) for epoch in zip(*curves)))  # per epoch, across runs
        x = range(1, len(mean) + 1)
        ax.plot(x, mean, marker="o", label=f"{name} (n={len(curves)})")
        ax.fill_between(x, [m - sd for m, sd in zip(mean, std)], [m + sd for m, sd in zip(mean, std)], alpha=0.2)
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


# --- error analysis ---
def confusion_matrix(labels: Sequence[int] | torch.Tensor, preds: Sequence[int] | torch.Tensor,
                     classes: Sequence[str], title: str = "", ax=None):
    """Counts of (actual, predicted) pairs as an annotated matrix: rows actual, columns predicted
    (fastai's ``plot_confusion_matrix``). Returns the axes; ``ax.images[0]`` holds the counts."""
    labels, preds = torch.as_tensor(labels).long(), torch.as_tensor(preds).long()
    k = len(classes)
    counts = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * k + 2.2, 1.2 * k + 1.4))
    ax.imshow(counts.numpy(), cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j].item()), ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), classes)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    if title:
        ax.set_title(title, fontsize=9)
    ax.figure.tight_layout()
    return ax


def show_worst(dataset: Sequence[Any], probs: torch.Tensor, labels: Sequence[int] | torch.Tensor,
               k: int = 8, classes: Sequence[str] | None = None, transform: Any = None,
               num_cols: int = 8, scale: float = 1.5):
    """The ``k`` items with the highest loss ``-log p(actual)``, worst first (fastai's
    ``plot_top_losses``): each titled "predicted/actual" and "loss/prob of actual".
    ``dataset[i][0]`` is the image; ``transform`` (e.g. ``data.denormalize``) is applied before showing."""
    labels = torch.as_tensor(labels).long()
    p_actual = probs[torch.arange(len(labels)), labels]
    losses = -torch.log(p_actual.clamp_min(1e-12))
    worst = torch.argsort(losses, descending=True)[:k].tolist()
    name = (lambda c: classes[c]) if classes is not None else str
    imgs, titles = [], []
    for i in worst:
        img = dataset[i][0]
        imgs.append(transform(img) if transform is not None else img)
        titles.append(f"{name(int(probs[i].argmax()))}/{name(int(labels[i]))}\n"
                      f"{losses[i].item():.2f}/{p_actual[i].item():.2f}")
    rows = max(1, -(-len(worst) // num_cols))
    return show_images(imgs, rows, min(num_cols, max(1, len(worst))), titles=titles, scale=scale)


# --- sweeps over repeated runs ---
def plot_sweep(results: Mapping[str, Mapping[float, Any]] | Mapping[float, Any],
               xlabel: str = "base learning rate", ylabel: str = "validation accuracy",
               logx: bool | None = None, chance: float | None = None):
    """``ylabel`` against ``xlabel``, one line per named sweep: ``{"fine-tuned": {lr: acc}}``, or
    ``{label: {x: [acc of each seed]}}`` for repeated runs, drawn as the mean with error bars of one
    standard deviation and each repeat as a faint dot. Points are sorted by x. ``logx`` (default:
    when every x is positive and they span a factor of 10 or more) uses a log axis; ``chance`` draws
    a dashed reference line. Returns the axes."""
    if results and not isinstance(next(iter(results.values())), Mapping):
        results = {"": results}  # type: ignore[dict-item]
    xs_all = [x for sweep in results.values() for x in sweep]
    if logx is None:
        logx = bool(xs_all) and min(xs_all) > 0 and max(xs_all) >= 10 * min(xs_all)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, sweep in results.items():
        xs = sorted(sweep)
        if all(isinstance(sweep[x], (int, float)) for x in xs):
            ax.plot(xs, [sweep[x] for x in xs], marker="o", label=name or None)
            continue
        stats = [mean_std(sweep[x] if isinstance(sweep[x], Sequence) else [sweep[x]]) for x in xs]
        bars = ax.errorbar(xs, [m for m, _ in stats], yerr=[sd for _, sd in stats], marker="o", capsize=3,
                           label=name or None)
        for x in xs:
            ys = list(sweep[x]) if isinstance(sweep[x], Sequence) else [sweep[x]]
            ax.scatter([x] * len(ys), ys, s=10, alpha=0.35, color=bars[0].get_color())
    if chance is not None:
        ax.axhline(chance, ls="--", color="gray", lw=1, label="chance")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if any(results) or chance is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return ax


# --- the fine-tuning diagram ---
def finetune_diagram(num_layers: int = 4):
    """d2l's fine-tuning figure: a source model (hidden layers + output layer) trained on the source
    data; the target model copies its hidden layers, gets a new randomly initialised output layer,
    and is trained on the target data. Returns the axes."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    fig, ax = plt.subplots(figsize=(7, 4.2))
    w, h, gap = 2.2, 0.42, 0.16
    xs, xt = 0.4, 4.4

    def box(x, y, text, color):
        ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)

    y0 = 0.9
    out_y = y0 + num_layers * (h + gap)
    for i in range(num_layers):
        y = y0 + i * (h + gap)
        box(xs, y, f"layer {i + 1}", "#c6dbef")
        box(xt, y, f"layer {i + 1} (copied)", "#c6dbef")
        ax.add_patch(FancyArrowPatch((xs + w, y + h / 2), (xt, y + h / 2), arrowstyle="->",
                                     mutation_scale=10, color="gray"))
    box(xs, out_y, "output layer (1,000 classes)", "#fdd0a2")
    box(xt, out_y, "new output layer (2 classes)", "#a1d99b")
    ax.text((xs + w + xt) / 2, y0 + (num_layers * (h + gap)) / 2 - 0.1, "copy\nparameters",
            ha="center", va="center", fontsize=8, color="dimgray",
            bbox=dict(facecolor="white", edgecolor="none"))
    ax.text(xt + w / 2, out_y + h + 0.12, "random init, trained from scratch", ha="center", fontsize=7)
    ax.text(xt + w + 0.1, y0 + (num_layers * (h + gap) - gap) / 2, "fine-\ntuned", va="center", fontsize=8)
    ax.text(xs + w / 2, out_y + h + 0.45, "source model", ha="center", fontsize=9, weight="bold")
    ax.text(xt + w / 2, out_y + h + 0.45, "target model", ha="center", fontsize=9, weight="bold")
    box(xs, 0.1, "source data (ImageNet)", "#f0f0f0")
    box(xt, 0.1, "target data (hotdogs)", "#f0f0f0")
    for x in (xs, xt):
        ax.add_patch(FancyArrowPatch((x + w / 2, 0.1 + h), (x + w / 2, y0), arrowstyle="->",
                                     mutation_scale=10, color="black"))
    ax.set_xlim(0, xt + w + 0.8)
    ax.set_ylim(0, out_y + h + 0.8)
    ax.axis("off")
    fig.tight_layout()
    return ax


# --- bars with error bars ---
def plot_seed_bars(values: Mapping[str, Sequence[float]], references: Mapping[str, float] | None = None,
                   ylabel: str = "test accuracy"):
    """Bar chart of the mean of each named list of repeated measurements (e.g. one accuracy per seed),
    with one sample standard deviation as error bar (none for a single value) and each value as a
    dot; ``references`` are drawn as labelled dashed horizontal lines. Returns the axes."""
    if not values or any(len(v) == 0 for v in values.values()):
        raise ValueError("plot_seed_bars needs at least one value for each name")
    names = list(values)
    means, errs = zip(*(mean_std(values[n]) for n in names))
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


# --- learning-rate finder ---
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
