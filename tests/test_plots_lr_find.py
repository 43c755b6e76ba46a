"""helpers.plots.plot_lr_find draws the finder's curve on a log axis, with the chosen rate (MPLBACKEND=Agg).
(Separate from tests/test_plots.py, which other chapters add, to keep merges simple.)"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


# --- lr finder (ch1) ---
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
