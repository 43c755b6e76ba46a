"""Plots draw what they say (checked on the artists, with the Agg backend)."""
from __future__ import annotations

import statistics

import matplotlib
import matplotlib.container

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import plots  # noqa: E402


# --- bars with error bars ---

def test_plot_seed_bars_are_means_with_stdev_error_bars():
    values = {"a": [0.8, 0.9, 0.85], "b": [0.6]}
    ax = plots.plot_seed_bars(values, references={"baseline": 0.95})
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.85, 0.6])
    bars = next(c for c in ax.containers if isinstance(c, matplotlib.container.BarContainer))
    (errorbar,) = bars.errorbar.lines[2]  # the vertical error segments
    segments = errorbar.get_segments()
    assert segments[0][1][1] - segments[0][0][1] == pytest.approx(2 * statistics.stdev(values["a"]))
    assert segments[1][1][1] - segments[1][0][1] == pytest.approx(0.0)  # one seed: no error bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a\n(3 seeds)", "b\n(1 seed)"]
    assert any(line.get_ydata()[0] == pytest.approx(0.95) for line in ax.get_lines())
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= 4  # every value
    plt.close("all")


def test_plot_seed_bars_rejects_empty_input():
    with pytest.raises(ValueError):
        plots.plot_seed_bars({})
    with pytest.raises(ValueError):
        plots.plot_seed_bars({"a": []})
# --- mean and spread over repeated runs ---
def test_plot_mean_spread_draws_mean_curves_and_error_bars():
    ax, bx = plots.plot_mean_spread({"a": [[0.5, 0.7], [0.7, 0.9]], "b": [[0.6, 0.6]]})
    mean_a = ax.get_lines()[0].get_ydata()
    assert list(mean_a) == pytest.approx([0.6, 0.8])
    bars = [p.get_height() for p in bx.patches]
    assert bars == pytest.approx([0.8, 0.6])
    assert [t.get_text() for t in bx.get_xticklabels()] == ["a", "b"]
    assert bx.get_ylim()[0] < 0.65 and bx.get_ylim()[1] > 0.94  # the error bar of "a" is visible
    # the spread is the sample standard deviation, as in mean_std: "a" ends at 0.8 ± 0.1414, "b" (one run) ± 0
    (lo_a, hi_a), (lo_b, hi_b) = [(seg[0][1], seg[1][1]) for seg in bx.containers[0].lines[2][0].get_segments()]
    assert (lo_a, hi_a) == pytest.approx((0.8 - 0.02 ** 0.5, 0.8 + 0.02 ** 0.5)) and lo_b == hi_b == pytest.approx(0.6)
    assert plots.mean_std([0.7, 0.9]) == pytest.approx((0.8, 0.02 ** 0.5))
    plt.close("all")
# --- error analysis ---
def test_confusion_matrix_counts_rows_actual_columns_predicted():
    ax = plots.confusion_matrix([0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 2, 2], ["a", "b", "c"])
    counts = ax.images[0].get_array()
    assert counts.tolist() == [[1, 2, 0], [0, 1, 1], [0, 0, 1]]
    assert [t.get_text() for t in ax.texts][:3] == ["1", "2", "0"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "actual"
    plt.close("all")


def test_show_worst_shows_the_highest_losses_first_with_their_images():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = torch.tensor([0, 0, 1, 0])  # losses: -log .9, -log .2, -log .4, -log .05
    dataset = [(torch.full((3, 4, 4), i / 10), int(labels[i])) for i in range(4)]
    axes = plots.show_worst(dataset, probs, labels, k=3, classes=["hotdog", "not-hotdog"])
    titles = [ax.get_title() for ax in axes[:3]]
    assert titles[0] == "not-hotdog/hotdog\n3.00/0.05", titles
    assert titles[1].startswith("not-hotdog/hotdog\n1.61") and titles[2].startswith("hotdog/not-hotdog\n0.92")
    shown = [float(ax.images[0].get_array().mean()) for ax in axes[:3]]
    assert shown == pytest.approx([0.3, 0.1, 0.2])  # items 3, 1, 2
    plt.close("all")


def test_show_worst_applies_the_transform_and_caps_k():
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    dataset = [(torch.zeros(3, 2, 2), 0), (torch.zeros(3, 2, 2), 1)]
    axes = plots.show_worst(dataset, probs, [0, 1], k=5, transform=lambda x: x + 1)
    assert len([ax for ax in axes if ax.images]) == 2
    assert axes[0].get_title().startswith("0/1")  # worst: item 1, predicted 0, no class names
    assert float(axes[0].images[0].get_array().mean()) == 1.0
    plt.close("all")


def test_plot_sweep_sorts_points_per_named_sweep_on_a_log_axis():
    ax = plots.plot_sweep({"fine-tuned": {0.1: 0.5, 0.01: 0.9, 0.05: 0.8}, "scratch": {0.1: 0.7}}, chance=0.5)
    lines = ax.get_lines()
    assert list(lines[0].get_xdata()) == [0.01, 0.05, 0.1] and list(lines[0].get_ydata()) == [0.9, 0.8, 0.5]
    assert list(lines[1].get_ydata()) == [0.7]
    assert ax.get_xscale() == "log" and list(lines[2].get_ydata()) == [0.5, 0.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fine-tuned", "scratch", "chance"]
    ax = plots.plot_sweep({1: 0.2, 2: 0.4}, logx=False)  # one unnamed sweep
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2] and ax.get_xscale() == "linear"
    plt.close("all")


# --- the fine-tuning diagram ---
def test_finetune_diagram_copies_every_layer_and_adds_a_new_output_layer():
    ax = plots.finetune_diagram(num_layers=3)
    texts = [t.get_text() for t in ax.texts]
    assert sum(t.startswith("layer") and "(copied)" in t for t in texts) == 3
    assert "new output layer (2 classes)" in texts and "output layer (1,000 classes)" in texts
    assert {"source model", "target model"} <= set(texts)
    assert len(ax.patches) == 3 * 2 + 2 + 2 + 3 + 2  # boxes, output layers, data, copy and data arrows
    plt.close("all")


# --- learning-rate finder ---
def test_plot_lr_find_log_x_curve_and_suggestion_line():
    lrs, losses = [1e-4, 1e-3, 1e-2, 1e-1], [0.7, 0.6, 0.3, 1.5]
    ax = plots.plot_lr_find(lrs, losses, suggestion=1e-3)
    assert ax.get_xscale() == "log"
    curve, marker = ax.get_lines()
    assert list(curve.get_xdata()) == lrs and list(curve.get_ydata()) == losses
    assert list(marker.get_xdata()) == pytest.approx([1e-3, 1e-3])  # a vertical line at the chosen rate
    assert "0.001" in ax.get_legend().get_texts()[0].get_text()
    plt.close("all")
    ax = plots.plot_lr_find(lrs, losses)
    assert len(ax.get_lines()) == 1 and ax.get_legend() is None
    plt.close("all")


# --- sweeps and per-layer sparsity ---
def test_mean_std():
    assert plots.mean_std([0.5]) == (0.5, 0.0)
    mean, std = plots.mean_std([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.2)


def test_plot_sweep_draws_means_with_error_bars():
    curves = {"pruned": {0.0: [0.9, 0.95], 0.9: [0.5, 0.8]}, "pruned + FT": {0.9: [0.85, 0.87]}}
    ax = plots.plot_sweep(curves, xlabel="sparsity", chance=0.5)
    lines = [c for c in ax.containers if hasattr(c, "lines")]  # one ErrorbarContainer per curve
    assert len(lines) == 2
    x, y = lines[0].lines[0].get_data()
    assert list(x) == [0.0, 0.9] and list(y) == pytest.approx([0.925, 0.65])
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"chance", "pruned", "pruned + FT"}
    assert ax.get_xlabel() == "sparsity"


def test_plot_layer_sparsity_one_bar_per_layer():
    ax = plots.plot_layer_sparsity({"conv1": 0.3, "layer4.0.conv2": 0.97, "fc": 0.1}, {"conv1": 432,
                                   "layer4.0.conv2": 147456, "fc": 256}, overall=0.9)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.3, 0.97, 0.1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "layer4.0.conv2", "fc"]
    assert "147,456" in [t.get_text() for t in ax.texts]
