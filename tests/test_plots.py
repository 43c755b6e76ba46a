"""helpers.plots: the figures show what their arguments say (MPLBACKEND=Agg)."""
from __future__ import annotations

import statistics

import matplotlib
import matplotlib.container

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers import plots  # noqa: E402


# --- (ch5) ---

def test_plot_mean_spread_bars_are_means_with_stdev_error_bars():
    values = {"a": [0.8, 0.9, 0.85], "b": [0.6]}
    ax = plots.plot_mean_spread(values, references={"baseline": 0.95})
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


def test_plot_mean_spread_rejects_empty_input():
    with pytest.raises(ValueError):
        plots.plot_mean_spread({})
    with pytest.raises(ValueError):
        plots.plot_mean_spread({"a": []})
