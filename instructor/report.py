"""Grades out: the course's grade table and ``export`` (nbgrader's CSV and a CSV for the LMS).

Every figure comes from the gradebook (nbgrader's ``SubmittedAssignment``): auto-graded points
(``code_score``), points graded by hand in formgrader (written answers and tasks: ``score - code_score``),
nbgrader's late penalty, and whether a hand-graded answer still waits for a grade
(``needs_manual_grade``). A chapter whose written answers are not graded yet has no total: it is shown
as such (``pending``), never as 0.

The LMS file (``grades_lms.csv`` next to ``grades.csv``) has one row per student: ``student_id``, names,
e-mail, one column per chapter (its points after the late penalty; empty while written answers wait for a
grade; 0 when nothing was submitted), ``course_total`` (empty while anything is pending), ``late_penalty``
(points taken, all chapters) and ``status`` (what is pending or missing). Canvas ("Import" in the
Gradebook) and Moodle ("Import > CSV file") both read such a file: map ``student_id`` to the LMS's
student id / ID number and each chapter column to the assignment of that name; an empty cell is "no
grade", so nothing is overwritten with a 0.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from instructor.course import Course


def grade_table(course: Course) -> list[dict]:
    """One row per (student, assignment) in the gradebook, opened with the course id."""
    from nbgrader.api import MissingEntry

    rows = []
    with course.gradebook() as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
        for st in sorted(gb.students, key=lambda s: s.id):
            for asg in assignments:
                base = dict(student=st.id, last_name=st.last_name or "", first_name=st.first_name or "",
                            email=st.email or "", assignment=asg.name, max_auto=float(asg.max_code_score),
                            max_score=float(asg.max_score))
                base["max_hand"] = base["max_score"] - base["max_auto"]
                try:
                    sub = gb.find_submission(asg.name, st.id)
                except MissingEntry:
                    rows.append(dict(base, submitted=False, auto=0.0, hand=0.0, pending=False, penalty=0.0,
                                     score=0.0, late_seconds=0.0))
                    continue
                penalty = float(sub.late_submission_penalty or 0.0)
                rows.append(dict(base, submitted=True, auto=float(sub.code_score),
                                 hand=float(sub.score) - float(sub.code_score),
                                 pending=bool(sub.needs_manual_grade), penalty=penalty,
                                 score=float(sub.score) - penalty, late_seconds=float(sub.total_seconds_late)))
    return rows


def _num(x: float) -> str:
    return f"{x:g}"


def lms_rows(course: Course) -> tuple[list[str], list[dict]]:
    """The LMS table: (header, one dict per student)."""
    rows = grade_table(course)
    assignments = sorted({r["assignment"] for r in rows})
    header = ["student_id", "last_name", "first_name", "email", *assignments, "course_total", "late_penalty",
              "status"]
    out = []
    for s in sorted({r["student"] for r in rows}):
        mine = {r["assignment"]: r for r in rows if r["student"] == s}
        first = next(iter(mine.values()))
        line = dict(student_id=s, last_name=first["last_name"], first_name=first["first_name"],
                    email=first["email"])
        notes, total, penalty = [], 0.0, 0.0
        for a in assignments:
            r = mine[a]
            penalty += r["penalty"]
            if not r["submitted"]:
                line[a] = "0"
                notes.append(f"{a}: not submitted")
            elif r["pending"]:
                line[a] = ""
                notes.append(f"{a}: written answers not graded yet")
            else:
                line[a] = _num(r["score"])
                total += r["score"]
            if r["penalty"]:
                notes.append(f"{a}: late ({r['late_seconds'] / 3600:.1f} h), -{_num(r['penalty'])}")
        pending = any(mine[a]["submitted"] and mine[a]["pending"] for a in assignments)
        line.update(course_total="" if pending else _num(total), late_penalty=_num(penalty), status="; ".join(notes))
        out.append(line)
    return header, out


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    """Atomic: a reader (or a crash) never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, header)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def print_table(course: Course) -> None:
    """The grade table: per chapter ``auto+hand/max`` (``auto+?/max`` while written answers wait for a
    grade, ``-`` when not submitted, ``-P late`` for a late penalty), then the course total."""
    rows = grade_table(course)
    assignments = sorted({r["assignment"] for r in rows})
    students = sorted({r["student"] for r in rows})
    width = max([7] + [len(s) for s in students])
    print("points per chapter: auto-graded + graded by hand (? = written answers not graded yet), "
          "after the late penalty:")
    print(f"{'student':<{width}} " + " ".join(f"{a:>18}" for a in assignments) + f" {'total':>12}")
    for s in students:
        cells, tot, mx, pending = [], 0.0, 0.0, False
        for a in assignments:
            r = next(r for r in rows if r["student"] == s and r["assignment"] == a)
            mx += r["max_score"]
            if not r["submitted"]:
                cells.append(f"- /{_num(r['max_score'])}")
                continue
            hand = "?" if r["pending"] else _num(r["hand"])
            late = f" -{_num(r['penalty'])}" if r["penalty"] else ""
            cells.append(f"{_num(r['auto'])}+{hand}{late}/{_num(r['max_score'])}")
            pending |= r["pending"]
            tot += r["score"]
        total = f"{_num(tot)}{'+?' if pending else ''}/{_num(mx)}"
        print(f"{s:<{width}} " + " ".join(f"{c:>18}" for c in cells) + f" {total:>12}")


def cmd_export(course: Course, to: str = "grades.csv", show: bool = True) -> int:
    """``nbgrader export --to grades.csv`` (one row per student and assignment), the LMS file
    (``<name>_lms.csv``: one row per student), then the table."""
    dest = Path(to) if Path(to).is_absolute() else course.root / to
    r = course.nbgrader("export", f"--to={dest}")
    if r.returncode != 0 or not dest.is_file():
        course.problem(f"nbgrader export failed:\n{r.stdout[-2000:]}")
        return 1
    with dest.open() as f:
        n = sum(1 for _ in csv.DictReader(f))
    print(f"export: {n} row(s) -> {dest}")
    lms = dest.with_name(f"{dest.stem}_lms.csv")
    header, rows = lms_rows(course)
    write_csv(lms, header, rows)
    print(f"export: {len(rows)} student(s) -> {lms} (for the LMS)")
    if show:
        print_table(course)
    return 1 if course.problems else 0
