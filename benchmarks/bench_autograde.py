"""Time to autograde one student's whole course in the fast profile on 2 cores (goal: < 45 s).

On a temporary copy of the course: release every chapter, submit the solutions as one student,
then time ``instructor/cli.py autograde --student bench`` with its default ``--jobs`` (the cores:
one nbgrader process per chapter, that many at a time; kernel start-up, every cell, hidden tests,
gradebook writes). ``BENCH_JOBS=1`` times the serial run (one nbgrader process for the course). Run: ``python benchmarks/bench_autograde.py [ASSIGNMENT ...]``.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from instructor.autograde import cmd_autograde  # noqa: E402
from instructor.course import Course  # noqa: E402
from instructor.release import cmd_release  # noqa: E402
from instructor.report import grade_table  # noqa: E402

GOAL_S = 45.0


def main() -> int:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) > 2:  # 2 cores, inherited by nbgrader and its kernels
        os.sched_setaffinity(0, cpus[:2])
    os.environ["COURSE_PROFILE"] = "fast"
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        root = Path(tmp)
        shutil.copy(REPO / "nbgrader_config.py", root)
        wanted = sys.argv[1:]
        for a in wanted or sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")):
            shutil.copytree(REPO / "solutions" / a, root / "solutions" / a, dirs_exist_ok=True)
        course = Course(root)
        if cmd_release(course) != 0:
            return 1
        chapters = course.assignments()
        for a in chapters:
            shutil.copytree(root / "solutions" / a, root / "submitted" / "bench" / a)
        start = time.perf_counter()
        jobs = int(os.environ["BENCH_JOBS"]) if os.environ.get("BENCH_JOBS") else None
        status = cmd_autograde(course, student="bench", jobs=jobs)
        seconds = time.perf_counter() - start
        rows = grade_table(course)
        auto = sum(r["auto"] for r in rows)
        max_auto = sum(r["max_auto"] for r in rows)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"autograde one student, {len(chapters)} chapter(s) ({', '.join(chapters)}), fast profile, "
          f"{cores} core(s), jobs {jobs or cores}: {seconds:.1f} s {'OK' if seconds < GOAL_S else f'SLOW (goal < {GOAL_S:.0f} s)'}; "
          f"{auto:g}/{max_auto:g} autograded points")
    return status


if __name__ == "__main__":
    sys.exit(main())
