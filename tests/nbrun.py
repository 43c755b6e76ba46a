"""Run (parts of) course notebooks in a real kernel, optionally with an answer cell replaced.

Used to prove that hidden tests fail the classic wrong answers::

    from tests.nbrun import run_until
    failed = run_until("solutions/ch3_unfreezing/ch3_unfreezing.ipynb", "unfreezer_tests",
                       replace={"unfreezer_impl": WRONG_SOURCE})
    assert failed["unfreezer_tests"]          # the wrong answer is caught
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def run_until(notebook: str | Path, last_grade_id: str, replace: dict[str, str] | None = None,
              timeout: int = 300) -> dict[str, bool]:
    """Execute the notebook's cells up to and including the cell ``last_grade_id`` (errors do not
    stop execution), with the sources of the cells named in ``replace`` swapped in. Returns
    ``{grade_id: raised}`` for every executed cell that has a grade id."""
    path = REPO / notebook
    nb = nbformat.read(str(path), as_version=4)
    ids = [grade_id(c) for c in nb.cells]
    if last_grade_id not in ids:
        raise KeyError(f"{notebook} has no cell with grade_id {last_grade_id!r}")
    for gid in replace or {}:
        if gid not in ids:
            raise KeyError(f"{notebook} has no cell with grade_id {gid!r}")
    nb.cells = nb.cells[: ids.index(last_grade_id) + 1]
    for cell in nb.cells:
        if grade_id(cell) in (replace or {}):
            cell.source = replace[grade_id(cell)]
    env_profile = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = "fast"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_profile is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = env_profile
    return {grade_id(c): any(o.get("output_type") == "error" for o in c.get("outputs", []))
            for c in nb.cells if c.cell_type == "code" and grade_id(c)}
