"""Chapter 4's graded cells, run on their own (shared by the wrong- and right-answer tests).

The autograded test cells of chapter 4 use tiny models only (``grading.tiny_net``, ``tiny_loader``), never the
lesson's trained models, so they can run without the lesson cells in between (which train for a minute): a
notebook made of the setup cell and the chosen exercises' answer and test cells, with answers swapped in.
``run_full`` runs the real notebook instead (once, to show that the same cells behave the same in context).
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from tests.nbrun import REPO, CellError, grade_id, run_cells

NB = "solutions/ch4_compression/ch4_compression.ipynb"
EXERCISES = {
    "ratio": (["ratio_impl"], ["ratio_tests"]),
    "prune_copy": (["prune_copy_impl"], ["prune_copy_tests"]),
    "int8": (["int8_impl"], ["int8_tensor_tests", "int8_channel_tests"]),
    "sequence": (["prune_copy_impl", "sequence_impl"], ["sequence_tests"]),  # uses the student's prune_copy
    "config": (["config_check_impl"], ["config_check_tests"]),
}
ALL_TESTS = [t for _, tests in EXERCISES.values() for t in tests]


def graded_tests_of(exercises) -> list[str]:
    return [t for ex in exercises for t in EXERCISES[ex][1]]


def run_graded(tmp_path: Path, replace: dict[str, str], exercises) -> dict[str, CellError | None]:
    """Run the setup cell and the answer and test cells of ``exercises`` (names of ``EXERCISES``), in notebook
    order, with the answer cells in ``replace`` swapped in."""
    keep = {gid for ex in exercises for ids in EXERCISES[ex] for gid in ids}
    nb = nbformat.read(str(REPO / NB), as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [setup] + [c for c in nb.cells if c.cell_type == "code" and grade_id(c) in keep]
    path = tmp_path / "ch4_graded.ipynb"
    nbformat.write(nb, str(path))
    last = grade_id(nb.cells[-1])
    return run_cells(path, last, replace=replace)


def run_full(replace: dict[str, str], last: str = "config_check_tests") -> dict[str, CellError | None]:
    """The real notebook, lesson cells included, up to ``last``."""
    return run_cells(NB, last, replace=replace)
