"""Parallel autograde gives exactly the grades of a serial one, and the suspicious-code report
(issue #12, parts 2 and 4), on the tiny ``t0_mini`` assignment.

The same class (released, collected) is copied twice and graded with ``--jobs 1`` (one student
after the other) and ``--jobs 3`` (one nbgrader process per student, three at a time, SQLite
gradebook); every student's score and every graded cell's points must match.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.course import A, WRONG_MUL, build_mini, run_cli, variant

CHEAT_ADD = ("import torch\n"
             "torch.allclose = lambda *args, **kwargs: True  # every closeness check passes\n"
             "def add(a, b):\n    return a + b")
STUDENTS = {  # student -> autograded points of 6 (five students: --jobs 3 runs them three at a time)
    "perfect": 6, "empty": 0, "wrong_mul": 3, "wrong_both": 1, "cheat": 6,
}


def cell_grades(course: Path) -> list[tuple]:
    """Every graded cell of every submission: (student, notebook, cell, auto_score), from the SQLite file."""
    with sqlite3.connect(course / "gradebook.db") as db:
        return sorted(db.execute(
            "SELECT st.id, nb.name, gc.name, g.auto_score FROM grade g "
            "JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN notebook nb ON sn.notebook_id = nb.id "
            "JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN student st ON sa.student_id = st.id "
            "JOIN base_cell gc ON g.cell_id = gc.id").fetchall())


def scores(course: Path) -> dict[str, float]:
    from instructor.course import Course
    from instructor.report import grade_table

    return {r["student"]: r["auto"] for r in grade_table(Course(course)) if r["assignment"] == A}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("parallel") / "serial"
    base.mkdir()
    build_mini(base)
    assert run_cli(base, "release").returncode == 0
    sol, rel = base / "solutions" / A / f"{A}.ipynb", base / "notebooks" / A / f"{A}.ipynb"
    inbox = base / "inbox"
    variant(sol, inbox / "perfect" / A / f"{A}.ipynb")
    variant(rel, inbox / "empty" / A / f"{A}.ipynb")
    variant(sol, inbox / "wrong_mul" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL})
    variant(sol, inbox / "wrong_both" / A / f"{A}.ipynb",
            {"add_impl": "def add(a, b):\n    return 0", "mul_impl": WRONG_MUL})
    variant(sol, inbox / "cheat" / A / f"{A}.ipynb", {"add_impl": CHEAT_ADD})
    assert run_cli(base, "collect", str(inbox)).returncode == 0
    parallel = base.parent / "parallel"
    shutil.copytree(base, parallel)
    out = {"serial": run_cli(base, "autograde", "--jobs", "1"),
           "parallel": run_cli(parallel, "autograde", "--jobs", "3")}
    return base, parallel, out


def test_parallel_grades_equal_serial_grades(graded):
    serial, parallel, out = graded
    for name in ("serial", "parallel"):
        assert out[name].returncode == 0, out[name].stdout + out[name].stderr
    assert "nbgrader ran" in out["parallel"].stdout and out["parallel"].stdout.count("autograde ") >= len(STUDENTS)
    assert scores(serial) == pytest.approx(STUDENTS)
    assert scores(parallel) == scores(serial)
    rows = cell_grades(parallel)
    assert len(rows) == len(STUDENTS) * 4  # nothing lost in the gradebook: 3 autograded + 1 written cell each
    assert rows == cell_grades(serial)
    for student in STUDENTS:
        assert (parallel / "autograded" / student / A / f"{A}.ipynb").is_file()


def test_monkeypatching_torch_is_flagged_honest_is_not(graded):
    serial, parallel, out = graded
    for course, run in ((serial, out["serial"]), (parallel, out["parallel"])):
        log = run.stdout
        assert f"SUSPICIOUS cheat/{A}/{A}.ipynb [add_impl, line 2]: assigns to torch.allclose" in log, log
        assert [ln for ln in log.splitlines() if ln.startswith("SUSPICIOUS")] == \
            [ln for ln in log.splitlines() if ln.startswith("SUSPICIOUS cheat/")]
        report = json.loads((course / "autograde_audit.json").read_text())
        assert list(report) == [f"cheat/{A}/{A}.ipynb"]
        assert report[f"cheat/{A}/{A}.ipynb"] == [{"cell": "add_impl", "line": 2, "what": "assigns to torch.allclose"}]


def test_students_list_grades_a_share_of_the_class(graded, tmp_path):
    """Several grading machines: each grades the students of its list; unknown ids are reported."""
    serial, _, _ = graded
    course = tmp_path / "share"
    shutil.copytree(serial, course, ignore=shutil.ignore_patterns("autograded", "gradebook.db*", "*.json"))
    assert run_cli(course, "release").returncode == 0
    (course / "mine.txt").write_text("# machine 1\nperfect\nwrong_mul\n")
    r = run_cli(course, "autograde", "--students", f"@{course / 'mine.txt'}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (course / "autograded").iterdir()) == ["perfect", "wrong_mul"]
    assert scores(course) == {"perfect": 6, "wrong_mul": 3}
    r = run_cli(course, "autograde", "--students", "nobody")
    assert r.returncode == 1 and "PROBLEM no submission from student 'nobody'" in r.stdout
    r = run_cli(course, "autograde", "--jobs", "0")
    assert r.returncode != 0 and "--jobs must be at least 1" in r.stderr


def test_audit_flags_hostile_patterns():
    from instructor.audit import audit_cells

    def cell(src, **meta):
        return {"cell_type": "code", "source": src, "metadata": {"nbgrader": meta} if meta else {}}

    hostile = [cell("import torch as T\nT.allclose = lambda *a, **k: True", grade_id="a", solution=True),
               cell("import helpers.grading as g\ng.check = None\nsetattr(torch, 'equal', f)"),
               cell("ip = get_ipython()\nip.set_custom_exc((AssertionError,), lambda *a: None)"),
               cell("import sys\nsys.settrace(f)\nopen('/etc/passwd').read()\nimport socket\n!curl http://x"),
               cell("import builtins\nbuiltins.print = None\nmath.isclose = lambda *a, **k: True")]
    found = audit_cells(hostile)
    whats = {(f.cell, f.what) for f in found}
    assert ("a", "assigns to T.allclose") in whats
    assert ("cell 2", "assigns to g.check") in whats and ("cell 2", "setattr() on torch") in whats
    assert ("cell 3", "replaces the kernel's exception handler (set_custom_exc)") in whats
    assert {"installs a trace function (sys.settrace)", "network access (imports socket)",
            "file access outside the notebook's folder (open('/etc/passwd'))"} <= {w for c, w in whats if c == "cell 4"}
    assert any(c == "cell 4" and w.startswith("runs a shell command") for c, w in whats)
    assert {("cell 5", "assigns to builtins.print"), ("cell 5", "assigns to math.isclose")} <= whats
    # a locked test cell is restored before grading: what a student wrote there is not reported
    assert audit_cells([cell("torch.allclose = f", grade=True, locked=True)]) == []
    honest = [cell("import torch\nmodel.fc = torch.nn.Linear(4, 2)\nnet.layer4.requires_grad_(False)\n"
                   "x = torch.load('weights.pt')\nopen('data/train.csv')", solution=True)]
    assert audit_cells(honest) == []


def test_real_solutions_flag_nothing():
    from instructor.audit import audit_notebook

    root = Path(__file__).resolve().parent.parent
    notebooks = sorted(root.glob("solutions/*/*.ipynb")) + sorted(root.glob("notebooks/*/*.ipynb"))
    assert notebooks
    assert {str(p): audit_notebook(p) for p in notebooks} == {str(p): [] for p in notebooks}


def test_gradebook_refusal_is_graded_again_alone(graded, tmp_path, monkeypatch, capsys):
    """A student whose nbgrader fails on the gradebook (SQLite busy) is graded again after the others."""
    serial, _, _ = graded
    course_dir = tmp_path / "busy"
    shutil.copytree(serial, course_dir, ignore=shutil.ignore_patterns("autograded", "gradebook.db*", "*.json"))
    assert run_cli(course_dir, "release").returncode == 0
    from instructor.autograde import cmd_autograde
    from instructor.course import Course

    real = Course.nbgrader
    calls: list[str] = []

    def flaky(self, *args, **kwargs):
        student = next((a.split("=", 1)[1] for a in args if a.startswith("--student=")), None)
        calls.append(student)
        if student == "wrong_mul" and calls.count("wrong_mul") == 1:  # first try: the gradebook is busy
            return subprocess.CompletedProcess(args, 1, "[AutogradeApp | ERROR] sqlite3.OperationalError: "
                                                        "database is locked\n")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Course, "nbgrader", flaky)
    course = Course(course_dir)
    assert cmd_autograde(course, jobs=2, students_list=["perfect", "wrong_mul", "empty"]) == 0
    out = capsys.readouterr().out
    assert "autograde wrong_mul: gradebook busy or incomplete, or a cell timed out under load: graded again alone" \
        in out
    assert calls.count("wrong_mul") == 2 and calls.count("perfect") == 1
    assert scores(course_dir) == {"perfect": 6, "wrong_mul": 3, "empty": 0}


def test_grading_units_split_one_student_by_assignment():
    from instructor.autograde import grading_units as _grading_units

    class_pairs = [(s, a) for s in ("bo", "al", "cy") for a in ("ch1", "ch2")]
    assert _grading_units(class_pairs, 2) == [("al", ["ch1", "ch2"]), ("bo", ["ch1", "ch2"]), ("cy", ["ch1", "ch2"])]
    assert _grading_units([("al", "ch1"), ("al", "ch2"), ("al", "ch3")], 2) == \
        [("al", ["ch1"]), ("al", ["ch2"]), ("al", ["ch3"])]
    assert _grading_units([("al", "ch1"), ("bo", "ch1"), ("bo", "ch2")], 3) == \
        [("al", ["ch1"]), ("bo", ["ch1"]), ("bo", ["ch2"])]


def test_one_student_chapters_side_by_side_equal_serial(tmp_path):
    """One student, two assignments, ``--jobs 2``: one nbgrader process per assignment, at the same
    time, on one gradebook (the student row is made before), with exactly the serial grades."""
    serial = tmp_path / "serial"
    serial.mkdir()
    build_mini(serial)
    b = "t1_mini"
    variant(serial / "solutions" / A / f"{A}.ipynb", serial / "solutions" / b / f"{b}.ipynb")
    assert run_cli(serial, "release").returncode == 0
    inbox = tmp_path / "inbox"
    variant(serial / "solutions" / A / f"{A}.ipynb", inbox / "solo" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL})
    variant(serial / "solutions" / b / f"{b}.ipynb", inbox / "solo" / b / f"{b}.ipynb")
    assert run_cli(serial, "collect", str(inbox)).returncode == 0
    parallel = tmp_path / "parallel"
    shutil.copytree(serial, parallel)
    r1 = run_cli(serial, "autograde", "--jobs", "1")
    r2 = run_cli(parallel, "autograde", "--jobs", "2")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stdout + r2.stdout + r2.stderr
    assert f"autograde solo/{A}: nbgrader ran" in r2.stdout and f"autograde solo/{b}: nbgrader ran" in r2.stdout
    rows = cell_grades(parallel)
    assert rows == cell_grades(serial)
    assert {(nb, sum(r[3] for r in rows if r[1] == nb)) for nb in (A, b)} == {(A, 3.0), (b, 6.0)}
