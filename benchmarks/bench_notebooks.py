"""Run time of each solution notebook in the fast profile (goal: < 60 s each, < 3 min together).

Run: ``python benchmarks/bench_notebooks.py [solutions/ch1_basics ...]``. ``BENCH_SAVE=DIR`` also writes
each executed notebook (outputs included) to ``DIR``, to read the figures it printed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ["COURSE_PROFILE"] = "fast"
    os.environ.setdefault("MPLBACKEND", "Agg")
    targets = [Path(a).resolve() for a in sys.argv[1:]] or sorted((REPO / "solutions").glob("*/"))
    total = 0.0
    for folder in targets:
        for path in sorted(Path(folder).glob("*.ipynb")):
            nb = nbformat.read(str(path), as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds = time.perf_counter() - start
            total += seconds
            if os.environ.get("BENCH_SAVE"):
                Path(os.environ["BENCH_SAVE"]).mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, str(Path(os.environ["BENCH_SAVE"]) / path.name))
            print(f"{path.relative_to(REPO)}: {seconds:6.1f} s {'OK' if seconds < 60 else 'SLOW (goal < 60 s)'}")
    print(f"all notebooks: {total:6.1f} s {'OK' if total < 180 else 'SLOW (goal < 180 s)'}")


if __name__ == "__main__":
    main()
