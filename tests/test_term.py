"""A whole term as instructors live it (issue 18), on the tiny ``t0_mini`` course: one replay by
``python -m instructor demo`` (the ``term_demo`` fixture, tests/conftest.py) read by most tests, and
fast unit checks (calendar, late penalty, collect's timestamps, the configuration's side effects).

Points are never hard-coded: they are read from the source notebook (``minicourse.source_points``)."""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from tests.course import A, REPO, build_mini, source_points

from instructor.course import Course


def section(out: str, number: int) -> str:
    """The demo's output of step ``number`` (``== N. ...`` up to the next step)."""
    m = re.search(rf"^== {number}\. .*?(?=^== )", out, flags=re.S | re.M)
    assert m, out
    return m.group(0)


def submission(work: Path, student: str):
    from nbgrader.api import Gradebook

    gb = Gradebook(f"sqlite:///{work / 'gradebook.db'}", "finetuning-course")
    return gb, gb.find_submission(A, student)


def due_date(work: Path) -> dt.datetime:
    from instructor.duedates import load_calendar

    return load_calendar(work, [A])[0][A]


# ---------------------------------------------------------------------------------------------
# the replayed term


def test_resubmission_regraded_unchanged_kept(term_demo):
    work, out, _ = term_demo
    auto, _ = source_points(work)
    step4 = section(out, 4)
    assert f"kept ontime/{A}: unchanged since it was graded" in step4
    assert f"kept late/{A}: unchanged since it was graded" in step4
    assert "autograde ontime" not in step4 and "autograde late" not in step4  # not regraded
    m = re.search(rf"^graded resubmit/{A}: (\S+)/(\S+) auto-graded points \(resubmission .*replaces the grade "
                  rf"of the one submitted .*, 0 points", step4, flags=re.M)
    assert m, step4
    assert float(m.group(1)) == float(m.group(2)) == auto
    gb, sub = submission(work, "resubmit")
    with gb:
        assert sub.code_score == auto  # the old grade (0) replaced
        assert sub.timestamp == due_date(work) - dt.timedelta(hours=1)  # the resubmission's time


def test_late_penalty_applied_from_collected_file_time(term_demo):
    work, out, _ = term_demo
    from nbgrader.utils import parse_utc

    due = due_date(work)
    stamp = parse_utc((work / "submitted" / "late" / A / "timestamp.txt").read_text().strip())
    assert stamp == due + dt.timedelta(hours=30)  # the file's time in the download, not the collection time
    gb, late = submission(work, "late")
    with gb:
        assert late.timestamp == stamp and late.total_seconds_late == 30 * 3600
        # nbgrader_config.py: per_day = 10 % per started day: 30 h late = 2 days = 20 % of the score
        assert late.late_submission_penalty == pytest.approx(round(0.2 * late.code_score, 2))
        assert late.late_submission_penalty > 0
        for student in ("ontime", "resubmit", "extended"):  # extended: a day late, 3 days' extension
            sub = gb.find_submission(A, student)
            assert sub.total_seconds_late == 0 and sub.late_submission_penalty == 0, student
        assert gb.find_submission(A, "extended").extension == dt.timedelta(days=3)
    assert re.search(rf"graded late/{A}: .* 30\.0 h late, penalty ", section(out, 3))


def test_students_honoured_with_one_job(term_demo):
    work, out, _ = term_demo
    step3 = section(out, 3)
    graded = re.findall(rf"^graded (\w+)/{A}", step3, flags=re.M)
    assert sorted(graded) == ["late", "ontime", "resubmit"]
    runs = re.findall(r"^autograde (\w+): nbgrader ran", step3, flags=re.M)
    assert runs == ["late", "ontime", "resubmit"]  # one unit at a time, extended (not listed) untouched
    assert re.findall(rf"^graded (\w+)/{A}", section(out, 4), flags=re.M) == ["extended", "resubmit"]


def test_lms_csv_totals_equal_the_gradebook(term_demo):
    work, out, _ = term_demo
    auto, hand = source_points(work)
    with (work / "grades_lms.csv").open(newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert list(next(iter(rows.values())))[:5] == ["student_id", "last_name", "first_name", "email", A]
    assert set(rows) == {"ontime", "late", "resubmit", "extended"}
    gb, _ = submission(work, "late")
    with gb:
        for student, row in rows.items():
            sub = gb.find_submission(A, student)
            assert float(row["late_penalty"]) == sub.late_submission_penalty
            if sub.needs_manual_grade:  # written answers not graded yet: no total, never 0
                assert row[A] == "" and row["course_total"] == ""
                assert f"{A}: written answers not graded yet" in row["status"]
            else:
                assert float(row[A]) == pytest.approx(sub.score - sub.late_submission_penalty)
                assert float(row["course_total"]) == float(row[A])
    assert rows["ontime"][A] == f"{auto + hand:g}"  # full points, written answer graded in full
    assert rows["resubmit"][A] == rows["extended"][A] == ""
    # nbgrader's own CSV agrees (score = raw score - late penalty)
    with (work / "grades.csv").open(newline="") as f:
        nbg = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == A}
    for student, row in rows.items():
        if row[A]:
            assert float(row[A]) == pytest.approx(nbg[student])
    # the course's grade table shows the same totals
    table = section(out, 7)
    assert re.search(rf"^ontime\s+{auto:g}\+{hand:g}/{auto + hand:g}\s+{auto + hand:g}/{auto + hand:g}$", table,
                     flags=re.M), table
    assert re.search(rf"^extended\s+{auto:g}\+\?/{auto + hand:g}\s+{auto:g}\+\?/{auto + hand:g}$", table,
                     flags=re.M), table


def test_analytics_counts_on_the_class(term_demo):
    work, out, _ = term_demo
    from instructor.analytics import exercise_stats

    stats = {e["cell"]: e for e in exercise_stats(Course(work))}
    assert list(stats) == ["add_tests", "mul_tests", "countdown_tests", "why"]
    # 4 students; late's first exercise (add) is the stub: NotImplementedError, the others pass
    assert stats["add_tests"]["n"] == 4
    assert stats["add_tests"]["full"] == 0.75
    assert stats["add_tests"]["mean"] == pytest.approx(3 * stats["add_tests"]["points"] / 4)
    assert dict(stats["add_tests"]["failures"]) == {"NotImplementedError": 1}
    assert stats["mul_tests"]["full"] == 1.0 and not stats["mul_tests"]["failures"]
    # the written answer: graded for ontime (full) and late (half), pending for the two others
    why = stats["why"]
    assert why["kind"] == "written" and why["n"] == 2 and why["pending"] == 2
    assert why["mean"] == pytest.approx(0.75 * why["points"]) and why["full"] == 0.5
    png = work / "analytics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot -> {png}" in out
    assert re.search(r"^t0_mini/add_tests\s+auto\s+\S+\s+4\s+\S+\s+75%\s+NotImplementedError \(x1\)", out, flags=re.M)
    with (work / "analytics.csv").open(newline="") as f:
        assert [r["cell"] for r in csv.DictReader(f)] == list(stats)


def test_feedback_for_every_graded_student(term_demo):
    work, out, _ = term_demo
    assert sorted(p.parent.parent.name for p in work.glob(f"feedback/*/{A}/{A}.html")) == \
        ["extended", "late", "ontime", "resubmit"]


def courses(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return sorted(r[0] for r in con.execute("SELECT id FROM course"))


def test_reading_grades_adds_no_default_course_row(tmp_path):
    """The course's own readers open the gradebook with the course id. (nbgrader's autograde itself
    adds a ``default_course`` row: its SaveAutoGrades and AssignLatePenalties open ``Gradebook(db_url)``.)"""
    from instructor.analytics import exercise_stats
    from instructor.report import grade_table, lms_rows

    build_mini(tmp_path)
    course = Course(tmp_path)
    with course.gradebook() as gb:  # a fresh gradebook, as release makes it
        gb.update_or_create_assignment(A)
        gb.update_or_create_student("bo")
    grade_table(course), lms_rows(course), exercise_stats(course)
    assert courses(tmp_path / "gradebook.db") == ["finetuning-course"]


def test_reading_the_term_adds_no_course_row(term_demo):
    from instructor.analytics import exercise_stats
    from instructor.report import grade_table, lms_rows

    work = term_demo[0]
    before = courses(work / "gradebook.db")
    grade_table(Course(work)), lms_rows(Course(work)), exercise_stats(Course(work))
    assert courses(work / "gradebook.db") == before


# ---------------------------------------------------------------------------------------------
# fast checks


def test_loading_the_config_leaves_the_environment_alone(tmp_path):
    build_mini(tmp_path)
    env, path = dict(os.environ), list(sys.path)
    course = Course(tmp_path)
    config = course.config
    assert config.CourseDirectory.course_id == "finetuning-course"
    assert course.config is config  # loaded once
    assert dict(os.environ) == env and sys.path == path
    assert course.source == tmp_path.resolve() / "solutions" and course.release_dir.name == "notebooks"
    assert course.db_url == f"sqlite:///{tmp_path.resolve() / 'gradebook.db'}"


def test_calendar_is_read_and_bad_entries_are_refused(tmp_path):
    from instructor.duedates import load_calendar

    (tmp_path / "course_calendar.toml").write_text(
        '[due]\nch1 = 2027-02-12T23:59:00+01:00\nch2 = "2027-03-01T12:00:00"\n'
        '[extensions.alice]\nch2 = { days = 2, hours = 12 }\n')
    due, ext = load_calendar(tmp_path, ["ch1", "ch2"])
    assert due == {"ch1": dt.datetime(2027, 2, 12, 22, 59), "ch2": dt.datetime(2027, 3, 1, 12, 0)}
    assert ext == {"alice": {"ch2": {"days": 2.0, "hours": 12.0}}}
    with pytest.raises(SystemExit, match=r"unknown chapter 'ch2' \(chapters: ch1\)"):
        load_calendar(tmp_path, ["ch1"])
    (tmp_path / "course_calendar.toml").write_text('[extensions.bob]\nch1 = 3\n')
    with pytest.raises(SystemExit, match=r"\[extensions.bob\] ch1: write the extension as \{ days = 3 \}"):
        load_calendar(tmp_path, ["ch1"])
    (tmp_path / "course_calendar.toml").write_text('[due]\nch1 = "next friday"\n')
    with pytest.raises(SystemExit, match=r"\[due\] ch1: 'next friday' is not an ISO 8601 date"):
        load_calendar(tmp_path, ["ch1"])


def test_repository_calendar_names_the_chapters():
    from instructor.duedates import load_calendar

    chapters = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb"))
    due, _ = load_calendar(REPO, None)
    assert set(due) <= set(chapters) and due


def test_late_penalty_policy():
    from instructor.duedates import LatePenalty

    p = LatePenalty(penalty_method="per_day", per_day=0.1, max_fraction=0.5)
    assert p.late_submission_penalty("s", 10.0, 1) == 1.0  # 1 s late: one started day
    assert p.late_submission_penalty("s", 10.0, 86400 + 1) == 2.0
    assert p.late_submission_penalty("s", 10.0, 30 * 86400) == 5.0  # at most half
    assert LatePenalty(penalty_method="zero").late_submission_penalty("s", 7.0, 10) == 7.0
    assert LatePenalty().late_submission_penalty("s", 7.0, 10) is None  # nbgrader's default: none


def test_collect_writes_the_files_time_and_keeps_an_older_copy(tmp_path, capsys):
    from instructor.collect import collect_folder, read_timestamp

    build_mini(tmp_path)
    course = Course(tmp_path)

    def deliver(inbox: str, when: dt.datetime, text: str) -> None:
        nb = tmp_path / inbox / "bo" / A / f"{A}.ipynb"
        nb.parent.mkdir(parents=True)
        nb.write_text(text)
        t = when.replace(tzinfo=dt.timezone.utc).timestamp()
        os.utime(nb, (t, t))

    first, second = dt.datetime(2027, 1, 10, 9, 30), dt.datetime(2027, 1, 11, 8, 0)
    deliver("in1", first, "first")
    deliver("in2", second, "second")
    deliver("in3", first, "stale copy")
    collect_folder(course, tmp_path / "in1")
    dest = tmp_path / "submitted" / "bo" / A
    assert read_timestamp(dest) == first
    collect_folder(course, tmp_path / "in2")  # a resubmission: replaces
    assert read_timestamp(dest) == second and (dest / f"{A}.ipynb").read_text() == "second"
    students, kept = collect_folder(course, tmp_path / "in3")  # older: kept
    assert (students, kept) == (set(), 1) and (dest / f"{A}.ipynb").read_text() == "second"
    out = capsys.readouterr().out
    assert f"collect bo/{A}: resubmission, replaces the one of 2027-01-10 09:30:00" in out
    assert f"collect bo/{A}: not newer than the one in submitted/ (submitted 2027-01-11 08:00:00 UTC), kept" in out
    collect_folder(course, tmp_path / "in3", force=True)
    assert (dest / f"{A}.ipynb").read_text() == "stale copy" and read_timestamp(dest) == first
    assert not list((tmp_path / "submitted" / "bo").glob(".*"))  # no leftovers of the atomic replace


def test_serial_path_grades_exactly_the_selection(tmp_path, monkeypatch, capsys):
    """``--jobs 1`` with several students and one of several chapters: nbgrader is asked for exactly
    those (student, chapter) pairs, one unit at a time, through grade_unit (nbgrader itself is replaced
    by a recorder here; the real runs are in the term replay and tests/test_parallel_autograde.py)."""
    from instructor.autograde import cmd_autograde

    build_mini(tmp_path)
    b = "t1_mini"
    (tmp_path / "solutions" / b).mkdir()
    (tmp_path / "solutions" / b / f"{b}.ipynb").write_text((tmp_path / "solutions" / A / f"{A}.ipynb").read_text())
    for s in ("al", "bo", "cy"):
        for a in (A, b):
            (tmp_path / "submitted" / s / a).mkdir(parents=True)
            (tmp_path / "submitted" / s / a / f"{a}.ipynb").write_text(
                (tmp_path / "solutions" / a / f"{a}.ipynb").read_text())
    calls: list[tuple[str, ...]] = []

    def recorder(self, *args, **kwargs):
        calls.append(args)
        import subprocess
        return subprocess.CompletedProcess(args, 0, "")

    monkeypatch.setattr(Course, "nbgrader", recorder)
    status = cmd_autograde(Course(tmp_path), [A], jobs=1, students_list=["al", "cy"])
    assert calls == [("autograde", A, "--student=al", "--force"), ("autograde", A, "--student=cy", "--force")]
    assert status == 1  # the recorder graded nothing: reported, not silently dropped
    assert f"PROBLEM al/{A}: nbgrader could not grade it" in capsys.readouterr().out
    calls.clear()
    cmd_autograde(Course(tmp_path), None, jobs=1, students_list=["bo"])
    assert calls == [("autograde", "*", "--student=bo", "--force")]  # all of bo's chapters: one process
