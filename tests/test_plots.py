from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from helpers import plots  # noqa: E402


# --- unfreezing comparison (ch3) ---
def test_plot_mean_spread_draws_mean_curves_and_error_bars():
    ax, bx = plots.plot_mean_spread({"a": [[0.5, 0.7], [0.7, 0.9]], "b": [[0.6, 0.6]]})
    mean_a = ax.get_lines()[0].get_ydata()
    assert list(mean_a) == pytest.approx([0.6, 0.8])
    bars = [p.get_height() for p in bx.patches]
    assert bars == pytest.approx([0.8, 0.6])
    assert [t.get_text() for t in bx.get_xticklabels()] == ["a", "b"]
    assert bx.get_ylim()[0] < 0.7 and bx.get_ylim()[1] > 0.9  # the error bar of "a" (0.8 ± 0.1) is visible
