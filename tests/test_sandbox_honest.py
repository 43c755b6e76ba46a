"""Honest work gets the same grades with and without the autograde sandbox (issue 19), on a real
chapter: ``ch3_unfreezing`` (it reads the generated data set, which the sandbox serves read-only
behind a private tmpfs). Two students (perfect: the solutions; partly_wrong: the first exercise left
as its stub; the untouched release's zero is ``test_instructor.py``'s, on every chapter), graded
with the sandbox and without it (``SANDBOX=0``), both
with ``--jobs 2`` (whose retry of a cell starved of CPU keeps a loaded machine from failing a run);
every graded cell's points must match. Serial vs parallel with the sandbox on is
``tests/test_parallel_autograde.py`` (sandboxed by default), PostgreSQL is ``tests/test_postgres.py``;
``benchmarks/bench_sandbox.py`` compares the grades of whole courses.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_instructor import REPO, run_cli  # noqa: E402
from test_parallel_autograde import cell_grades  # noqa: E402

sys.path.insert(0, str(REPO))
from instructor import sandbox  # noqa: E402
from instructor.course import Course  # noqa: E402
from instructor.demo import make_samples  # noqa: E402
from instructor.report import grade_table  # noqa: E402

CHAPTER = "ch3_unfreezing"
WHY_NOT = sandbox.probe()


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no sandbox here: {WHY_NOT}")
@pytest.mark.skipif(not (REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb").is_file(), reason=f"no {CHAPTER}")
def test_honest_grades_equal_with_and_without_sandbox(tmp_path):
    boxed = tmp_path / "sandboxed"
    boxed.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", boxed)
    shutil.copytree(REPO / "solutions" / CHAPTER, boxed / "solutions" / CHAPTER)
    assert run_cli(boxed, "release").returncode == 0
    make_samples(Course(boxed), tmp_path / "inbox")
    shutil.rmtree(tmp_path / "inbox" / "empty")
    assert run_cli(boxed, "collect", str(tmp_path / "inbox")).returncode == 0
    plain = tmp_path / "plain"
    shutil.copytree(boxed, plain)
    r_boxed = run_cli(boxed, "autograde", "--jobs", "2", timeout=1800)
    r_plain = run_cli(plain, "autograde", "--jobs", "2", "--sandbox", "0", timeout=1800)
    assert r_boxed.returncode == 0, r_boxed.stdout + r_boxed.stderr
    assert r_plain.returncode == 0, r_plain.stdout + r_plain.stderr
    assert "isolation: bubblewrap" in r_boxed.stdout and "isolation: none (SANDBOX=0)" in r_plain.stdout
    rows = {r["student"]: r for r in grade_table(Course(boxed))}
    assert rows["perfect"]["auto"] == rows["perfect"]["max_auto"] > 0, r_boxed.stdout
    assert 0 < rows["partly_wrong"]["auto"] < rows["perfect"]["auto"]
    grades = cell_grades(boxed)
    assert len(grades) >= 2 * 2 and grades == cell_grades(plain)
