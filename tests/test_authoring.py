"""Source notebooks are the single source of truth: nbgrader metadata is sound, no outputs are
committed, and each notebook's jupytext text twin (``solutions_py/``) carries the same cells."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from authoring import nbcheck

NOTEBOOKS = nbcheck.source_notebooks()


def test_every_chapter_has_a_source_notebook():
    assert [p.parent.name for p in NOTEBOOKS] == ["ch1_basics", "ch2_hotdog", "ch3_unfreezing",
                                                   "ch4_compression", "ch5_recovery"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_lints_clean(path):
    assert nbcheck.lint(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_text_twin_in_sync(path):
    assert nbcheck.pair_problems(path) == []


@pytest.fixture
def broken(tmp_path) -> Path:
    path = tmp_path / "ch1_basics.ipynb"
    shutil.copy(NOTEBOOKS[0], path)
    return path


def _edit(path: Path, fn) -> None:
    nb = nbformat.read(str(path), as_version=4)
    fn(nb)
    nbformat.write(nb, str(path))


def _graded(nb, solution: bool):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                and c.metadata["nbgrader"].get("solution") is solution and c.cell_type == "code"
                or (solution and c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"))


def test_lint_finds_duplicate_grade_ids(broken):
    def dup(nb):
        cells = [c for c in nb.cells if "nbgrader" in c.metadata]
        cells[1].metadata.nbgrader.grade_id = cells[0].metadata.nbgrader.grade_id
    _edit(broken, dup)
    assert any("used 2 times" in p for p in nbcheck.lint(broken))


def test_lint_finds_outputs_unlocked_tests_and_missing_points(broken):
    def spoil(nb):
        test = _graded(nb, solution=False)
        test.metadata.nbgrader.locked = False
        test.metadata.nbgrader.pop("points")
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    _edit(broken, spoil)
    problems = " | ".join(nbcheck.lint(broken))
    assert "has outputs" in problems and "locked" in problems and "points > 0" in problems


def test_lint_finds_solution_cell_without_markers(broken):
    def spoil(nb):
        impl = _graded(nb, solution=True)
        impl.source = impl.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    _edit(broken, spoil)
    assert any("BEGIN SOLUTION" in p for p in nbcheck.lint(broken))


def test_lint_reports_unreadable_notebook(tmp_path):
    bad = tmp_path / "x.ipynb"
    bad.write_text("{not json")
    assert "not a valid notebook" in nbcheck.lint(bad)[0]


def test_pair_check_detects_an_edit_on_one_side(tmp_path, monkeypatch):
    sol, text = tmp_path / "solutions", tmp_path / "solutions_py"
    (sol / "ch1_basics").mkdir(parents=True)
    (text / "ch1_basics").mkdir(parents=True)
    shutil.copy(NOTEBOOKS[0], sol / "ch1_basics")
    shutil.copy(nbcheck.twin(NOTEBOOKS[0]), text / "ch1_basics")
    monkeypatch.setattr(nbcheck, "TEXT", text)
    monkeypatch.setattr(nbcheck, "REPO", tmp_path)
    nb_path = sol / "ch1_basics" / "ch1_basics.ipynb"
    assert nbcheck.pair_problems(nb_path) == []
    _edit(nb_path, lambda nb: setattr(nb.cells[0], "source", nb.cells[0].source + "\nA new sentence."))
    assert "cell 0 differs" in nbcheck.pair_problems(nb_path)[0]
    (text / "ch1_basics" / "ch1_basics.py").unlink()
    assert "missing" in nbcheck.pair_problems(nb_path)[0]
