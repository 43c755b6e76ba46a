"""The committed student release (notebooks/) is exactly what nbgrader makes of solutions/.

Fails when ``notebooks/<assignment>/`` differs from a fresh ``nbgrader generate_assignment`` of
``solutions/<assignment>/`` (normalised notebook JSON; only volatile metadata is ignored), or when a
released notebook contains solution code or hidden tests. Fix: ``make release`` and commit.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")
                     if p.stem == p.parent.name)
# metadata that editors and kernels change without changing the notebook
VOLATILE_CELL_META = {"execution", "ExecuteTime", "collapsed", "scrolled"}
VOLATILE_NB_META = {"widgets"}


def normalise(path: Path) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE_NB_META:
        nb.get("metadata", {}).pop(key, None)
    nb.get("metadata", {}).get("language_info", {}).pop("version", None)
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_META:
            cell.get("metadata", {}).pop(key, None)
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        for out in cell.get("outputs", []):
            if isinstance(out.get("text"), list):
                out["text"] = "".join(out["text"])
    return nb


@pytest.fixture(scope="module")
def fresh_release(released_course):
    """``nbgrader generate_assignment --force`` of every assignment into a temporary course copy
    (``released_course`` in conftest.py, shared with the other nbgrader tests)."""
    return released_course / "notebooks"


@pytest.mark.skipif(not ASSIGNMENTS, reason="no assignment in solutions/ yet")
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_matches_solutions(assignment, fresh_release):
    committed = REPO / "notebooks" / assignment
    assert committed.is_dir(), f"notebooks/{assignment}/ is missing: run `make release` and commit it"
    fresh = fresh_release / assignment
    names = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file())
    have = sorted(p.relative_to(committed).as_posix() for p in committed.rglob("*")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    assert have == names, f"notebooks/{assignment}/ has other files than the release: run `make release`"
    for name in names:
        if name.endswith(".ipynb"):
            assert normalise(committed / name) == normalise(fresh / name), (
                f"notebooks/{assignment}/{name} differs from `nbgrader generate_assignment` of "
                f"solutions/{assignment}/: run `make release` and commit")
        else:
            assert (committed / name).read_bytes() == (fresh / name).read_bytes(), name


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").rglob("*.ipynb")), ids=lambda p: p.name)
def test_release_has_no_solutions_or_hidden_tests(path):
    text = path.read_text(encoding="utf-8")
    for marker in ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"):
        assert marker not in text, f"{path.relative_to(REPO)} contains {marker!r}: never edit notebooks/ by hand"
    nb = json.loads(text)
    for cell in nb["cells"]:
        assert cell.get("outputs", []) == [], f"{path.relative_to(REPO)}: commit the release without outputs"
