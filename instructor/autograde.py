"""``autograde``: what to grade, then ``nbgrader autograde`` one unit at a time or several at once.

What is graded is decided from the gradebook with nbgrader's own API (``NbGraderAPI.get_autograded_students``:
a submission is graded when its gradebook row has the timestamp of ``submitted/.../timestamp.txt`` and its
autograded notebooks exist), never from file modification times:

* a submission not graded yet is graded;
* a resubmission (a newer ``timestamp.txt`` than the graded one) is graded again and its grade replaced
  (hand grades of written answers are kept and flagged for review in formgrader); the report says so;
* an unchanged submission is kept (``--force`` regrades it).

The work is cut in units (:func:`grading_units`: a student, or one chapter of a student when there are
fewer students than jobs) and each unit runs through :func:`grade_unit`, the one place that invokes
nbgrader. ``--jobs 1`` runs the units one after the other; ``--jobs N`` runs N at a time, each in its own
nbgrader process (its own kernels, its own gradebook session).
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from instructor import sandbox as sandbox_module
from instructor.course import Course, check_submissions
from instructor.duedates import apply_due_dates, apply_extensions

Unit = tuple[str, list[str]]  # (student, assignments): one nbgrader process
CONTENTION = re.compile(r"database is locked|OperationalError|IntegrityError|could not serialize|"
                        r"Timeout waiting for execute reply|Kernel died")


def default_jobs() -> int:
    """Cores this process may use (the default number of students graded at once)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def backup_gradebook(course: Course) -> None:
    url = course.db_url
    if not url.startswith("sqlite:///"):
        return
    db = Path(url[len("sqlite:///"):])
    if db.is_file():
        with sqlite3.connect(db) as src, sqlite3.connect(str(db) + ".bak") as dst:
            src.backup(dst)


@dataclass
class Previous:
    """A submission's state in the gradebook before this run."""
    timestamp: object = None  # datetime or None
    score: float | None = None
    graded: bool = False  # nbgrader's API: the gradebook's timestamp is the submitted one


class Status:
    """Graded or not, per the gradebook and nbgrader's API (one NbGraderAPI for the run)."""

    def __init__(self, course: Course) -> None:
        self.course = course
        self.api = course.api()

    def graded(self, assignment: str) -> set[str]:
        students = self.api.get_autograded_students(assignment)
        folder = self.course.autograded
        names = self.course.notebooks_of(assignment)
        return {s for s in students if all((folder / s / assignment / f"{n}.ipynb").is_file() for n in names)}

    def previous(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Previous]:
        from nbgrader.api import MissingEntry

        graded = {a: self.graded(a) for a in sorted({a for _, a in pairs})}
        out = {}
        with self.course.gradebook() as gb:
            for s, a in pairs:
                try:
                    sub = gb.find_submission(a, s)
                except MissingEntry:
                    out[(s, a)] = Previous()
                    continue
                out[(s, a)] = Previous(sub.timestamp, float(sub.score), s in graded[a])
        return out


def grading_units(pairs: list[tuple[str, str]], jobs: int) -> list[Unit]:
    """How the work is split: one unit (one nbgrader process) per student, whose assignments run one
    after the other, when there are at least ``jobs`` students; otherwise one unit per (student,
    assignment), so that one student's chapters use all the jobs. The order is the course's."""
    by_student: dict[str, list[str]] = {}
    for s, a in pairs:
        by_student.setdefault(s, []).append(a)
    if len(by_student) >= jobs:
        return [(s, names) for s, names in sorted(by_student.items())]
    return [(s, [a]) for s, names in sorted(by_student.items()) for a in names]


def grade_unit(course: Course, unit: Unit, extra: list[str], timeout: float,
               threads: int | None = None) -> subprocess.CompletedProcess:
    """The one place that runs ``nbgrader autograde``: the unit's student, exactly the unit's
    assignments (``--force``: the caller chose them), within ``timeout`` seconds. A unit that covers
    every assignment folder the student has uses one nbgrader process (``*``); otherwise one per
    assignment, so that nothing outside the selection is touched."""
    s, names = unit
    have = {p.name for p in (course.submitted / s).iterdir() if p.is_dir()} if (course.submitted / s).is_dir() else set()
    globs = ["*"] if len(names) > 1 and set(names) == have else list(names)
    t_end = time.time() + timeout
    out, code, timed_out = "", 0, False
    for g in globs:
        r = course.nbgrader("autograde", g, f"--student={s}", "--force", *extra,
                            timeout=max(1.0, t_end - time.time()), threads=threads)
        out += r.stdout
        code = code or r.returncode
        if getattr(r, "timed_out", False):
            timed_out = True
            break
    result = subprocess.CompletedProcess(["nbgrader", "autograde", *globs, f"--student={s}"], code, out)
    result.timed_out = timed_out
    return result


def run_units(course: Course, units: list[Unit], extra: list[str], per_notebook: float, jobs: int,
              bad: dict, status: Status) -> None:
    """Grade ``units``, ``jobs`` at a time (1: one after the other). A unit whose nbgrader fails on the
    gradebook (SQLite busy), whose graded submission is missing from the gradebook, or whose cell
    timed out while sharing the cores, is graded again alone once the others are done. A unit stopped
    at its wall-clock limit loses the chapter that hung (scores 0, reported); its other chapters are
    graded again alone."""
    if not units:
        return
    with course.gradebook() as gb:  # the students once, before the writers (two units of one student
        for s in sorted({s for s, _ in units}):  # must not both insert the student)
            gb.update_or_create_student(s)
    by_chapter = len(units) > len({s for s, _ in units})

    def label(unit: Unit) -> str:
        s, names = unit
        return f"{s}/{names[0]}" if by_chapter else s

    def grade(unit: Unit):
        t0 = time.time()
        r = grade_unit(course, unit, extra, per_notebook * len(unit[1]), threads)
        return unit, r, time.time() - t0

    def settle(unit: Unit, r: subprocess.CompletedProcess, seconds: float, retry: list[Unit] | None) -> None:
        s, names = unit
        lost = [a for a in names if s not in status.graded(a)]
        print(f"autograde {label(unit)}: nbgrader ran {seconds:.1f} s" + (f", {len(lost)} not graded" if lost else ""),
              flush=True)
        if not lost:
            return
        if getattr(r, "timed_out", False):
            course.problem(f"{s}/{lost[0]}: grading took longer than {per_notebook * len(names):.0f} s "
                           "and was stopped; the other students are graded")
            shutil.rmtree(course.autograded / s / lost[0], ignore_errors=True)
            if retry is not None:
                retry.extend((s, [a]) for a in lost[1:])
            return
        if retry is not None and CONTENTION.search(r.stdout):
            retry.append(unit)
            return
        for a in lost:
            if (s, a) not in bad:
                course.problem(f"{s}/{a}: nbgrader could not grade it (see the log below); it scores 0")
        log = [ln for ln in r.stdout.splitlines() if "| ERROR]" in ln]
        if log:
            print("  nbgrader log (errors):\n" + "\n".join("    " + ln for ln in log[-10:]))

    workers = min(jobs, len(units))
    threads = max(1, default_jobs() // workers)  # each job gets its share of the cores
    retry: list[Unit] = []
    if workers == 1:
        for u in units:
            settle(*grade(u), retry)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for fut in as_completed([pool.submit(grade, u) for u in units]):
                settle(*fut.result(), retry)
    for unit in sorted(retry):  # one writer: what the gradebook refused under contention
        print(f"autograde {label(unit)}: gradebook busy or incomplete, or a cell timed out under load: "
              "graded again alone", flush=True)
        settle(*grade(unit), None)


def select_students(course: Course, student: str | None, students_list: list[str] | None) -> list[str] | None:
    """The students to grade (those with a folder in submitted/), or None after reporting a problem."""
    students = course.submitted_students()
    if student:
        students = [s for s in students if s == student]
        if not students:
            course.problem(f"no submission from student {student!r} in {course.submitted}")
            return None
    if students_list is not None:  # this grader's share of the class (several grading machines)
        for s in sorted(set(students_list) - set(students)):
            course.problem(f"no submission from student {s!r} in {course.submitted}")
        students = [s for s in students if s in set(students_list)]
        if not students:
            return None
    return students


def cmd_autograde(course: Course, assignments: list[str] | None = None, student: str | None = None,
                  force: bool = False, timeout: int | None = None, batch_timeout: float | None = None,
                  jobs: int | None = None, students_list: list[str] | None = None,
                  sandbox: str | None = None) -> int:
    """Autograde the selected students (all, ``student``, or ``students_list``) and assignments (all or
    some): new submissions and resubmissions, not unchanged ones (``force``: those too). ``jobs``
    (default: the cores) units at a time. nbgrader's per-cell timeout interrupts a cell that never ends
    and grades the rest; a wall-clock limit per notebook (``batch_timeout``, 900 s) stops a student
    whose kernel cannot be interrupted, and the others are still graded."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1 (got {jobs})")
    # each student kernel in bubblewrap unless SANDBOX=0 (instructor/sandbox.py, README: Security)
    if sandbox_module.activate(sandbox) is None:  # bubblewrap missing or unusable: how to install it was printed
        course.problems.append("autograde refused: no sandbox (SANDBOX=0 grades without one)")
        return 2
    try:
        return _grade(course, assignments, student, force, timeout, batch_timeout, jobs, students_list)
    finally:
        sandbox_module.deactivate()  # the caller's environment as it was


def _grade(course: Course, assignments: list[str] | None, student: str | None, force: bool,
           timeout: int | None, batch_timeout: float | None, jobs: int, students_list: list[str] | None) -> int:
    """:func:`cmd_autograde`'s work, once the isolation is chosen."""
    wanted = assignments or course.assignments()
    students = select_students(course, student, students_list)
    if students is None:
        return 1
    bad = check_submissions(course, students, wanted)
    # unreadable notebooks go to nbgrader too: it fails them alone (score 0) and grades the rest
    pairs = [(s, a) for s in students for a in wanted if any((course.submitted / s / a).glob("*.ipynb"))]
    missing = sorted({s for (s, a), why in bad.items() if why == "missing notebook"})
    if missing:  # they appear in the gradebook (and the export) with 0 points
        with course.gradebook() as gb:
            for s in missing:
                gb.update_or_create_student(s)
    status = Status(course)
    before = status.previous(pairs)
    todo, reasons = [], {}
    for s, a in pairs:
        prev = before[(s, a)]
        if prev.graded and not force:
            print(f"kept {s}/{a}: unchanged since it was graded ({_when(prev.timestamp)}; --force regrades)")
            continue
        if prev.score is not None and (course.autograded / s / a).is_dir():
            reasons[(s, a)] = ("regraded (--force)" if prev.graded else
                               f"resubmission ({_when(_submitted(course, s, a))}): replaces the grade of the "
                               f"one {_when(prev.timestamp)}, {prev.score:g} points")
        else:
            reasons[(s, a)] = "new"
        todo.append((s, a))
    if not todo:
        print("autograde: nothing to grade")
        return 1 if course.problems else 0
    apply_due_dates(course, sorted({a for _, a in todo}))
    for line in apply_extensions(course, todo):
        print(line)
    backup_gradebook(course)
    extra = [f"--Execute.timeout={timeout}"] if timeout else []
    started = time.time()
    run_units(course, grading_units(todo, jobs), extra, batch_timeout or 900, jobs, bad, status)
    report(course, todo, reasons)
    for line in sandbox_module.limit_events():  # a kernel hit a sandbox limit
        course.problem(line)
    audit(course, todo)
    print(f"autograde: {len(todo)} submission(s) in {time.time() - started:.1f} s, "
          f"{len(course.problems)} problem(s)")
    return 1 if course.problems else 0


def _when(ts) -> str:
    return f"submitted {ts:%Y-%m-%d %H:%M:%S} UTC" if ts is not None else "no submission time"


def _submitted(course: Course, s: str, a: str):
    from instructor.collect import read_timestamp

    return read_timestamp(course.submitted / s / a)


def report(course: Course, pairs: list[tuple[str, str]], reasons: dict) -> None:
    """One line per graded submission: its points (auto-graded, late penalty) and why it was graded."""
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        for s, a in pairs:
            try:
                sub = gb.find_submission(a, s)
            except MissingEntry:
                continue
            if not (course.autograded / s / a).is_dir():
                continue
            late = (f", {sub.total_seconds_late / 3600:.1f} h late, penalty {sub.late_submission_penalty:g}"
                    if sub.total_seconds_late > 0 else "")
            kept_hand = any(g.manual_score is not None for nb in sub.notebooks for g in nb.grades)
            hand = ", its hand grades kept, to review in formgrader" if reasons[(s, a)] != "new" and kept_hand else ""
            print(f"graded {s}/{a}: {sub.code_score:g}/{sub.max_code_score:g} auto-graded points{late} "
                  f"({reasons[(s, a)]}{hand})")


def audit(course: Course, pairs: list[tuple[str, str]]) -> dict:
    """The suspicious-code report (instructor/audit.py) for the submissions of ``pairs``: printed as
    ``SUSPICIOUS`` lines and merged into ``autograde_audit.json`` in the course folder."""
    from instructor.audit import audit_submissions, write_report

    report_ = audit_submissions(course.submitted, pairs)
    flagged = {k: v for k, v in report_.items() if v}
    for key, found in flagged.items():
        for f in found:
            print(f"SUSPICIOUS {key} [{f.cell}, line {f.line}]: {f.what}")
    write_report(report_, course.root / "autograde_audit.json")
    print(f"audit: {len(report_)} notebook(s) read, {len(flagged)} with suspicious code to review by hand"
          + (" (autograde_audit.json)" if flagged else ""))
    return flagged
