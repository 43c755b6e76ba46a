"""``demo``: a whole term replayed on a temporary copy of the course (the repository is not touched).

1. release, with due dates (a ``course_calendar.toml`` written for the demo: every chapter was due
   a day ago) and one extension (``extended``: 3 days);
2. collect a first round of submissions, each with its submission time (the files' times):
   ``ontime`` (the solutions, before the due date), ``late`` (the first exercise of each chapter left as
   its stub, 30 hours after the due date), ``resubmit`` (the untouched release, on time) and ``extended``
   (the solutions, a day late but within the extension);
3. autograde one student at a time (``--jobs 1``) the ``--students ontime,late,resubmit`` (``extended`` is
   left for later);
4. ``resubmit`` sends the solutions (still on time): collect again, autograde everyone: the resubmission
   is regraded and its grade replaced, ``extended`` is graded, the unchanged ones are kept;
5. written answers graded (here through nbgrader's gradebook API, as formgrader does): every written answer
   of ``ontime`` gets full points and of ``late`` half; ``resubmit``'s and ``extended``'s stay pending;
6. feedback, export (nbgrader's CSV, the LMS CSV and the grade table) and the class analytics (table, PNG).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from instructor.analytics import cmd_analytics
from instructor.autograde import cmd_autograde
from instructor.collect import cmd_collect
from instructor.course import Course
from instructor.release import cmd_feedback, cmd_release
from instructor.report import cmd_export


def make_samples(course: Course, folder: Path, assignments: list[str] | None = None) -> None:
    """Three sample students in submitted/ layout: perfect (the solutions), empty (the untouched
    release) and partly_wrong (the solutions with the first exercise of each chapter wrong)."""
    import nbformat

    for a in assignments or course.assignments():
        for name in course.notebooks_of(a):
            sol = course.source / a / f"{name}.ipynb"
            rel = course.release_dir / a / f"{name}.ipynb"
            for student, src in (("perfect", sol), ("empty", rel)):
                (folder / student / a).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, folder / student / a / f"{name}.ipynb")
            nb = nbformat.read(str(sol), as_version=4)
            for cell in nb.cells:  # break the first autograded answer: its stub raises NotImplementedError
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
                    cell.source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION",
                                         "raise NotImplementedError()", cell.source, flags=re.S)
                    break
            (folder / "partly_wrong" / a).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(folder / "partly_wrong" / a / f"{name}.ipynb"))


def _submit(samples: Path, kind: str, student: str, inbox: Path, when: dt.datetime) -> None:
    """``samples/kind`` as ``inbox/student``, its files dated ``when`` (what the LMS download records).
    Except in the untouched release (``empty``), every written answer says something."""
    import nbformat

    dest = inbox / student
    shutil.copytree(samples / kind, dest)
    for p in dest.rglob("*.ipynb") if kind != "empty" else []:
        nb = nbformat.read(str(p), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade"):
                cell.source = f"{student}'s answer: the hidden tests check cases the visible ones do not."
        nbformat.write(nb, str(p))
    t = when.replace(tzinfo=dt.timezone.utc).timestamp()
    for p in dest.rglob("*.ipynb"):
        os.utime(p, (t, t))


def grade_written(course: Course, student: str, fraction: float) -> int:
    """Give ``student``'s written answers ``fraction`` of their points, as a grader does in formgrader
    (nbgrader's gradebook API: ``manual_score``, ``needs_manual_grade``). Returns how many."""
    from nbgrader.api import MissingEntry

    n = 0
    with course.gradebook() as gb:
        for asg in gb.assignments:
            try:
                sub = gb.find_submission(asg.name, student)
            except MissingEntry:
                continue
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.cell_type == "markdown":
                        g.manual_score = round(fraction * g.max_score, 2)
                        g.needs_manual_grade = False
                        n += 1
        gb.db.commit()
    return n


def cmd_demo(course: Course, workdir: Path | None = None, keep: bool = False,
             assignments: list[str] | None = None) -> int:
    tmp = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix="course-demo-"))
    if tmp.is_dir() and any(tmp.iterdir()):
        if not (tmp / "course_calendar.toml").is_file():
            raise SystemExit(f"{tmp} is not empty and holds no earlier demo: choose another --workdir")
        shutil.rmtree(tmp)  # an earlier demo
    tmp.mkdir(parents=True, exist_ok=True)
    chosen = assignments or course.assignments()
    shutil.copy(course.root / "nbgrader_config.py", tmp / "nbgrader_config.py")
    for a in chosen:
        shutil.copytree(course.source / a, tmp / course.source.relative_to(course.root) / a)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    due = now - dt.timedelta(days=1)
    (tmp / "course_calendar.toml").write_text(
        "[due]\n" + "".join(f"{a} = {due:%Y-%m-%dT%H:%M:%S}Z\n" for a in chosen)
        + "\n[extensions.extended]\n" + "".join(f"{a} = {{ days = 3 }}\n" for a in chosen))
    demo = Course(tmp)
    t0 = time.time()
    print(f"== demo course in {tmp} (chapters: {', '.join(chosen)}; due {due:%Y-%m-%d %H:%M} UTC)")
    print("== 1. release, with the due dates of course_calendar.toml")
    status = cmd_release(demo, chosen)
    samples = tmp / "samples"
    make_samples(demo, samples, chosen)
    print("== 2. collect: ontime, late (30 h after the due date), resubmit (first try), extended (1 day late)")
    inbox = tmp / "inbox1"
    _submit(samples, "perfect", "ontime", inbox, due - dt.timedelta(hours=20))
    _submit(samples, "partly_wrong", "late", inbox, due + dt.timedelta(hours=30))
    _submit(samples, "empty", "resubmit", inbox, due - dt.timedelta(days=2))
    _submit(samples, "perfect", "extended", inbox, due + dt.timedelta(days=1))
    status |= cmd_collect(demo, inbox)
    print("== 3. autograde --jobs 1 --students ontime,late,resubmit")
    status |= cmd_autograde(demo, chosen, jobs=1, students_list=["ontime", "late", "resubmit"])
    print("== 4. resubmit sends the solutions (still on time): collect, autograde everyone")
    inbox = tmp / "inbox2"
    _submit(samples, "perfect", "resubmit", inbox, due - dt.timedelta(hours=1))
    status |= cmd_collect(demo, inbox)
    status |= cmd_autograde(demo, chosen)
    print("== 5. written answers graded (gradebook API): ontime full points, late half; the others pending")
    print(f"graded by hand: ontime {grade_written(demo, 'ontime', 1.0)} answer(s), "
          f"late {grade_written(demo, 'late', 0.5)} answer(s)")
    print("== 6. feedback")
    status |= cmd_feedback(demo, chosen)
    print("== 7. export")
    status |= cmd_export(demo, "grades.csv")
    print(f"-- {tmp / 'grades_lms.csv'}:")
    print((tmp / "grades_lms.csv").read_text().rstrip())
    print("== 8. analytics")
    status |= cmd_analytics(demo, chosen)
    print(f"== demo done in {time.time() - t0:.0f} s; {len(demo.problems)} problem(s)")
    if not keep and not workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return status
