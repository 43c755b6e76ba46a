"""helpers.plots functions added for chapter 4: sweeps with mean and spread, per-layer sparsity."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from helpers import plots  # noqa: E402


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
