"""The instructor workflow end to end, with the real nbgrader command line, on temporary copies of
the course (``instructor/cli.py``: release, collect, autograde, feedback, export).

Most checks use a small dedicated assignment (``t0_mini``: three autograded exercises worth
2 + 3 + 1 points and a written answer worth 2) graded in one batch of sample students; one run
over the real chapters checks that the solutions get every autograded point and the untouched
release gets none.
"""
from __future__ import annotations

import csv
import datetime
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.course import A, PRESENT, REPO, WRONG_MUL, build_mini, run_cli, variant  # noqa: F401

AUTO_MAX = 6.0  # 2 + 3 + 1
CELL_TIMEOUT = 5  # seconds per cell for the hanging student


EXPECTED = {  # student -> autograded points (of 6)
    "perfect": 6, "empty": 0,
    "wrong_mul": 3,  # mul (3 points) wrong, add and countdown right: loses exactly 3
    "hang": 5,  # countdown's cell never ends: interrupted, the rest graded, loses countdown's point
    "edit_locked": 3,  # mul wrong and its test cell emptied, add_tests' points edited: gains nothing
    "delete_locked": 3,  # mul wrong and its test cell deleted; add_tests deleted too (restored, passes)
    "badjson": 0, "missing": 0,
}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mini course, released, with a first student graded alone, then a batch of the others."""
    course = tmp_path_factory.mktemp("mini_course")
    build_mini(course)
    out = {"release": run_cli(course, "release")}
    sol, rel = course / "solutions" / A / f"{A}.ipynb", course / "notebooks" / A / f"{A}.ipynb"
    inbox1, inbox2 = course / "inbox1", course / "inbox2"
    variant(sol, inbox1 / "perfect" / A / f"{A}.ipynb")
    out["collect1"] = run_cli(course, "collect", str(inbox1))
    out["grade1"] = run_cli(course, "autograde", "--student", "perfect")
    out["score_perfect_before"] = table(course)["perfect"]

    variant(rel, inbox2 / "empty" / A / f"{A}.ipynb")
    variant(sol, inbox2 / "wrong_mul" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL})
    variant(sol, inbox2 / "hang" / A / f"{A}.ipynb", {"countdown_impl": "while True:\n    pass"})
    variant(sol, inbox2 / "edit_locked" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL, "mul_tests": "pass"},
            meta={"add_tests": {"points": 100}})
    variant(sol, inbox2 / "delete_locked" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL},
            drop=("mul_tests", "add_tests"))
    (inbox2 / "badjson" / A).mkdir(parents=True)
    (inbox2 / "badjson" / A / f"{A}.ipynb").write_text('{"cells": [ {"cell_type": "code", ')
    (inbox2 / "missing" / A).mkdir(parents=True)
    (inbox2 / "missing" / A / "notes.txt").write_text("I forgot the notebook")
    out["collect2"] = run_cli(course, "collect", str(inbox2))
    out["grade2"] = run_cli(course, "autograde", "--timeout", str(CELL_TIMEOUT))
    out["feedback"] = run_cli(course, "feedback")
    out["export"] = run_cli(course, "export", "--to", "grades.csv")
    return course, out


def table(course: Path) -> dict[str, float]:
    """Autograded points per student for the mini assignment, read from the gradebook."""
    from instructor.course import Course
    from instructor.report import grade_table

    return {r["student"]: r["auto"] for r in grade_table(Course(course)) if r["assignment"] == A}


def test_release_has_no_solutions_or_hidden_tests(mini):
    course, out = mini
    assert out["release"].returncode == 0, out["release"].stdout + out["release"].stderr
    text = (course / "notebooks" / A / f"{A}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "a * b" not in text
    assert "assert mul(2, 3) == 6" in text  # visible tests stay


def test_scores_per_student(mini):
    course, out = mini
    assert table(course) == pytest.approx(EXPECTED), out["grade2"].stdout


def test_solutions_full_points_and_release_zero(mini):
    scores = table(mini[0])
    assert scores["perfect"] == AUTO_MAX and scores["empty"] == 0


def test_one_wrong_answer_loses_exactly_its_points(mini):
    assert table(mini[0])["wrong_mul"] == AUTO_MAX - 3


def test_hanging_cell_is_interrupted_and_batch_goes_on(mini):
    course, out = mini
    nb = nbformat.read(str(course / "autograded" / "hang" / A / f"{A}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "countdown_impl")
    enames = {o.get("ename") for o in cell.outputs if o.output_type == "error"}
    assert enames & {"CellTimeoutError", "KeyboardInterrupt"}, cell.outputs
    # graded after the hanging one (alphabetical order): perfect and wrong_mul
    assert (course / "autograded" / "wrong_mul" / A / f"{A}.ipynb").is_file()
    assert table(course)["hang"] == AUTO_MAX - 1


def test_editing_or_deleting_locked_cells_gains_nothing(mini):
    course, _ = mini
    scores = table(course)
    assert scores["edit_locked"] == scores["delete_locked"] == scores["wrong_mul"]
    for student in ("edit_locked", "delete_locked"):
        nb = nbformat.read(str(course / "autograded" / student / A / f"{A}.ipynb"), as_version=4)
        by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        assert "assert mul(-2, 3) == -6" in by_id["mul_tests"].source  # restored, hidden tests included
        assert by_id["mul_tests"].metadata["nbgrader"]["points"] == 3
        assert by_id["add_tests"].metadata["nbgrader"]["points"] == 2
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "edit_locked").max_code_score == AUTO_MAX


def test_bad_submissions_are_reported_and_others_graded(mini):
    course, out = mini
    log = out["collect2"].stdout + out["grade2"].stdout
    assert re.search(r"PROBLEM badjson/t0_mini/t0_mini\.ipynb is not valid JSON", log), log
    assert re.search(r"PROBLEM missing/t0_mini: notebook t0_mini\.ipynb is missing \(found: notes\.txt\)", log), log
    assert out["grade2"].returncode == 1  # problems are reported in the exit status too
    for student in ("empty", "wrong_mul", "hang", "edit_locked", "delete_locked"):
        assert (course / "autograded" / student / A / f"{A}.ipynb").is_file(), student
    assert not (course / "autograded" / "badjson" / A / f"{A}.ipynb").exists()


def test_gradebook_keeps_everything_when_a_submission_fails(mini):
    course, out = mini
    assert out["score_perfect_before"] == AUTO_MAX
    assert table(course)["perfect"] == AUTO_MAX  # graded before the failing batch, still there
    assert (course / "gradebook.db.bak").is_file()
    # regrading the broken submission alone changes nobody else's grades
    before = table(course)
    r = run_cli(course, "autograde", "--student", "badjson", "--force")
    assert r.returncode == 1 and "badjson" in r.stdout
    assert table(course) == before


def test_feedback_for_every_graded_notebook(mini):
    course, out = mini
    assert out["feedback"].returncode == 0, out["feedback"].stdout
    graded = {p.parent.parent.name for p in course.glob(f"autograded/*/{A}/{A}.ipynb")}
    html = {p.parent.parent.name for p in course.glob(f"feedback/*/{A}/{A}.html")}
    assert graded == html == set(EXPECTED) - {"badjson", "missing"}
    text = (course / "feedback" / "wrong_mul" / A / f"{A}.html").read_text()
    assert "Score: 3.0 / 8.0" in text or "3.0 / 8.0" in text


def test_exported_csv_has_the_scores(mini):
    course, out = mini
    assert out["export"].returncode == 0, out["export"].stdout
    with (course / "grades.csv").open() as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == A}
    with (course / "grades_lms.csv").open() as f:
        lms = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(lms) == set(rows)
    assert set(rows) == set(EXPECTED) - {"missing"} or set(rows) == set(EXPECTED)
    for student, points in EXPECTED.items():
        if student in rows:  # written answers are not graded yet: score == autograded points
            assert float(rows[student]["score"]) == points, rows[student]
            assert float(rows[student]["max_score"]) == AUTO_MAX + 2
    assert "perfect" in out["export"].stdout  # the grade table is printed


def test_zip_collect(mini):
    course, _ = mini
    downloads = course / "lms"
    downloads.mkdir()
    shutil.copy(course / "notebooks" / A / f"{A}.ipynb", downloads / f"zed_{A}.ipynb")
    when = 1_800_000_000  # the time the LMS download gives the file (2027-01-15 08:00 UTC)
    os.utime(downloads / f"zed_{A}.ipynb", (when, when))
    (downloads / "readme.pdf").write_text("not a notebook")
    r = run_cli(course, "collect", "--zip", A, str(downloads))
    assert (course / "submitted" / "zed" / A / f"{A}.ipynb").is_file(), r.stdout
    # the submission time nbgrader reads for lateness: the file's time in the download
    from instructor.collect import read_timestamp

    assert read_timestamp(course / "submitted" / "zed" / A) == datetime.datetime(2027, 1, 15, 8, 0)
    assert f"collect zed/{A}: ok (submitted 2027-01-15 08:00:00 UTC)" in r.stdout


# ---------------------------------------------------------------------------------------------
# the real chapters: one run


@pytest.mark.skipif(not PRESENT, reason="no chapter in solutions/ yet")
def test_real_chapters_solutions_full_points_release_zero(graded_chapters):
    """The solutions get every autograded point and the untouched release none (the class that
    ``graded_chapters`` in conftest.py releases, collects and autogrades, shared with other tests)."""
    course, r = graded_chapters
    assert r.returncode == 0, r.stdout + r.stderr
    from instructor.course import Course
    from instructor.report import grade_table

    rows = grade_table(Course(course))
    for row in rows:
        assert row["max_auto"] > 0, row
        expected = row["max_auto"] if row["student"] == "perfect" else 0
        assert row["auto"] == expected, (row, r.stdout)
    assert {(r["student"], r["assignment"]) for r in rows} == {(s, a) for s in ("perfect", "empty") for a in PRESENT}
