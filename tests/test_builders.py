"""Each source notebook in solutions/ is exactly what its builder in scripts/ writes (no hand drift)."""
import importlib
from pathlib import Path

import pytest

from scripts.nbtools import write

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_matches_its_builder(assignment, tmp_path):
    cells = importlib.import_module(f"scripts.build_{assignment}").CELLS
    rebuilt = write(tmp_path / "nb.ipynb", cells).read_bytes()
    committed = (REPO / "solutions" / assignment / f"{assignment}.ipynb").read_bytes()
    assert rebuilt == committed, (
        f"solutions/{assignment} differs from scripts/build_{assignment}.py: edit the builder, run "
        f"`.venv/bin/python -m scripts.build_{assignment}`, then `make release`")
