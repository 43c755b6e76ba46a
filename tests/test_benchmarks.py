"""The benchmark scripts run and print their figures (tiny sizes: this checks they work, not speed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    env = {**os.environ, "COURSE_PROFILE": "fast", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bench_training_prints_both_ratios():
    out = _run("benchmarks/bench_training.py", "--epochs", "1", "--repeats", "1", "--n", "64")
    for label in ("ratio course/bare, like for like", "ratio default/bare"):
        m = re.search(re.escape(label) + r"\s*:\s*([0-9.]+)", out)
        assert m and float(m.group(1)) > 0, out


def test_bench_fullpath_prints_both_paths_ratios_and_floor(tmp_path):
    out = _run("benchmarks/bench_fullpath.py", "--n-train", "8", "--n-test", "4", "--epochs", "2",
               "--batch-size", "4", "--workers", "0", "--decode-workers", "1", "--min-side", "64",
               "--max-side", "96", "--data", str(tmp_path / "bench-data"), "--json", str(tmp_path / "b.json"))
    assert "(a) d2l-style" in out and "(b) fast path" in out, out
    assert re.search(r"ratio b/a: steady [0-9.]+x, end to end [0-9.]+x \| fraction of compute floor", out), out
    assert "fast profile, fast path" in out and (tmp_path / "b.json").stat().st_size > 0
