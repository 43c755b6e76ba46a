"""Instructor CLI: run a term of the course with nbgrader alone (a thin wrapper over nbgrader's CLI).

Every command runs nbgrader in the course folder (``--course``, default: this repository), so
``nbgrader_config.py`` there applies (course id, folders, gradebook, timeouts, fast profile, late
penalty) and ``course_calendar.toml`` gives the due dates and extensions::

    python -m instructor release [ASSIGNMENT ...]         # solutions/ -> notebooks/ (+ gradebook, due dates)
    python -m instructor collect FOLDER [--force]          # FOLDER/<student>/<assignment>/*.ipynb -> submitted/
    python -m instructor collect --zip ASSIGNMENT FILE...  # LMS downloads / zips -> nbgrader zip_collect
    python -m instructor autograde [ASSIGNMENT ...] [--student ID | --students a,b,@FILE] [--jobs N] [--force] [--timeout S]
    python -m instructor feedback [ASSIGNMENT ...] [--student ID] [--release] [--full]
    python -m instructor export [--to grades.csv]          # + grades_lms.csv (one row per student) + the table
    python -m instructor table                             # the grade table
    python -m instructor analytics [ASSIGNMENT ...]        # per exercise: mean, full points, failures (+ PNG)
    python -m instructor demo [--workdir DIR] [ASSIGNMENT ...]   # a whole term, replayed headless

Bad input never stops a batch: submissions that are not valid JSON, not notebooks, or lack a
notebook are reported (``PROBLEM ...`` lines) and the other students are graded; the SQLite gradebook
is backed up (``gradebook.db.bak``) before each autograde run. The exit status is 1 when a problem was
reported, 0 otherwise.

One module per command or concern: ``course`` (configuration, paths, running nbgrader, checks),
``duedates`` (calendar, extensions, late penalty), ``collect``, ``autograde``, ``release`` (assignments and
feedback), ``report`` (grade table, export), ``analytics``, ``demo``; this file is the argument parser.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script (python instructor/cli.py): the package is importable
    sys.path.insert(0, str(REPO))
if sys.path and Path(sys.path[0]).resolve() == REPO / "instructor":  # not our modules as top-level names
    sys.path.pop(0)

from instructor.course import Course  # noqa: E402


def parse_students(value: str | None) -> list[str] | None:
    """``a,b,c`` or ``@file`` (one student id a line, ``#`` comments) -> the list; ``None`` -> ``None``."""
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise SystemExit(f"--students {value}: cannot read {path} ({err.strerror})")
        ids = [ln.split("#", 1)[0].strip() for ln in lines]
    else:
        ids = [s.strip() for s in value.split(",")]
    ids = [s for s in ids if s]
    if not ids:
        raise SystemExit(f"--students {value}: no student id given")
    return ids


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--course", type=Path, default=REPO, help="course folder (default: this repository)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("release", help="solutions/ -> notebooks/ (nbgrader generate_assignment --force), due dates")
    s.add_argument("assignments", nargs="*")
    s = sub.add_parser("collect", help="copy submissions into submitted/ (with their submission time) and check them")
    s.add_argument("source", type=Path, help="folder <student>/<assignment>/*.ipynb, or files/zips with --zip")
    s.add_argument("--zip", metavar="ASSIGNMENT", help="use nbgrader zip_collect for this assignment")
    s.add_argument("--force", action="store_true", help="replace submissions already in submitted/, even newer ones")
    s = sub.add_parser("autograde", help="nbgrader autograde: new submissions and resubmissions")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--student")
    s.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    s.add_argument("--timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    s.add_argument("--batch-timeout", type=float, help="seconds per notebook before a student is stopped (900)")
    s.add_argument("--jobs", "-j", type=int, default=None,
                   help="students graded at once, each in its own nbgrader process (default: the number of cores)")
    s.add_argument("--students", help="grade only these students: a comma-separated list, or @FILE with one id "
                                      "a line (split a class across grading machines)")
    s.add_argument("--sandbox", metavar="0|1", help="1 (default): each student kernel in bubblewrap; "
                                                  "0: no sandbox (student code runs with your rights); env SANDBOX")
    s = sub.add_parser("feedback", help="nbgrader generate_feedback (HTML), --release: release_feedback")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--student")
    s.add_argument("--release", action="store_true")
    s.add_argument("--full", action="store_true", help="full feedback: hidden tests included (off by default)")
    s = sub.add_parser("export", help="nbgrader export to CSV, the LMS CSV, and the grade table")
    s.add_argument("--to", default="grades.csv")
    sub.add_parser("table", help="print the grade table from the gradebook")
    s = sub.add_parser("analytics", help="per exercise: mean score, full points, frequent failures (table, PNG)")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--png", default="analytics.png", help="where the plot goes (the table: same name, .csv)")
    s = sub.add_parser("demo", help="a whole term replayed on a temporary copy (see instructor/demo.py)")
    s.add_argument("assignments", nargs="*", help="chapters (default: all)")
    s.add_argument("--workdir", type=Path, help="keep the demo course here")
    s.add_argument("--keep", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    course = Course(args.course)
    if args.cmd == "release":
        from instructor.release import cmd_release
        return cmd_release(course, args.assignments)
    if args.cmd == "collect":
        from instructor.collect import cmd_collect
        return cmd_collect(course, args.source.resolve(), args.zip, args.force)
    if args.cmd == "autograde":
        from instructor.autograde import cmd_autograde
        return cmd_autograde(course, args.assignments, args.student, args.force, args.timeout, args.batch_timeout,
                             args.jobs, parse_students(args.students), args.sandbox)
    if args.cmd == "feedback":
        from instructor.release import cmd_feedback
        return cmd_feedback(course, args.assignments, args.student, args.release, args.full)
    if args.cmd == "export":
        from instructor.report import cmd_export
        return cmd_export(course, args.to)
    if args.cmd == "table":
        from instructor.report import print_table
        print_table(course)
        return 0
    if args.cmd == "analytics":
        from instructor.analytics import cmd_analytics
        return cmd_analytics(course, args.assignments, args.png)
    if args.cmd == "demo":
        from instructor.demo import cmd_demo
        return cmd_demo(course, args.workdir, args.keep, args.assignments)
    return 2


if __name__ == "__main__":
    sys.exit(main())
