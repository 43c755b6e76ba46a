"""Autograde time with and without the sandbox, in one run (issue 19; goal: ratio <= 1.10):
``python benchmarks/bench_sandbox.py [--students 6] [--jobs N] [--repeats 1] [ASSIGNMENT ...]``.

On a temporary copy of the course: release every chapter, submit (a) one student's course (the
solutions) and (b) a class of generated students (perfect, empty, partly_wrong in turn), and autograde
each twice on identical copies: ``SANDBOX=0`` (kernels started as nbgrader does) and the default
(every kernel in bubblewrap). The runs alternate (none, sandbox, then sandbox, none for the class) so
that a change of machine load does not favour one side. Pinned to 2 cores like the other benchmarks.
Prints each wall time, the ratios, the load average, and checks that both gradebooks hold the same
grades.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from instructor import sandbox  # noqa: E402
from instructor.autograde import cmd_autograde  # noqa: E402
from instructor.course import Course  # noqa: E402
from instructor.demo import make_samples  # noqa: E402
from instructor.release import cmd_release  # noqa: E402
from instructor.report import grade_table  # noqa: E402

GOAL = 1.10


def timed(root: Path, mode: str, student: str | None, jobs: int | None) -> tuple[float, list]:
    course = Course(root)
    log = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(log):
        status = cmd_autograde(course, student=student, jobs=jobs, sandbox=mode)
    seconds = time.perf_counter() - start
    if status != 0:
        print(log.getvalue()[-3000:])
        raise SystemExit(f"autograde (SANDBOX={mode}) failed")
    iso = next((ln for ln in log.getvalue().splitlines() if ln.startswith("isolation:")), "?")
    print(f"  SANDBOX={mode}: {seconds:6.1f} s   ({iso[:60]}...)", flush=True)
    rows = sorted((r["student"], r["assignment"], r["auto"]) for r in grade_table(course))
    return seconds, rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("assignments", nargs="*", help="chapters (default: all)")
    p.add_argument("--students", type=int, default=6, help="students in the class")
    p.add_argument("--jobs", type=int, default=None, help="autograde --jobs (default: the cores)")
    p.add_argument("--repeats", type=int, default=1, help="pairs of runs per case (the ratio of the sums is printed)")
    p.add_argument("--cores", type=int, default=2, help="pin the benchmark to this many cores (0: all)")
    args = p.parse_args()
    why = sandbox.probe()
    if why:
        raise SystemExit(f"no sandbox here: {why}")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.cores and len(cpus) > args.cores:
        os.sched_setaffinity(0, cpus[:args.cores])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ["COURSE_PROFILE"] = "fast"
    load0 = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        shutil.copy(REPO / "nbgrader_config.py", base)
        for a in args.assignments or sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")):
            shutil.copytree(REPO / "solutions" / a, base / "solutions" / a, dirs_exist_ok=True)
        course = Course(base)
        with contextlib.redirect_stdout(io.StringIO()):
            if cmd_release(course) != 0:
                raise SystemExit("release failed")
        chapters = course.assignments()
        samples = Path(tmp) / "samples"
        make_samples(course, samples)
        kinds = sorted(p.name for p in samples.iterdir())
        cases = {"one student's course": ["bench"],
                 f"a class of {args.students}": [f"{kinds[i % len(kinds)]}{i:02d}" for i in range(args.students)]}
        for case_no, (case, students) in enumerate(cases.items()):
            print(f"{case}: {len(students)} student(s) x {len(chapters)} chapter(s), {cores} core(s), "
                  f"jobs {args.jobs or cores}", flush=True)
            totals = {"0": 0.0, "1": 0.0}
            grades = {}
            for rep in range(args.repeats):
                order = ["0", "1"] if (case_no + rep) % 2 == 0 else ["1", "0"]
                for mode in order:
                    root = Path(tmp) / f"c{case_no}-{rep}-{mode}"
                    shutil.copytree(base, root)
                    for i, s in enumerate(students):
                        src = samples / kinds[i % len(kinds)] if s != "bench" else base / "solutions"
                        shutil.copytree(src, root / "submitted" / s)
                    seconds, rows = timed(root, mode, students[0] if len(students) == 1 else None, args.jobs)
                    totals[mode] += seconds
                    grades.setdefault(mode, rows)
                    shutil.rmtree(root, ignore_errors=True)
            same = grades["0"] == grades["1"]
            ratio = totals["1"] / totals["0"]
            results[case] = ratio
            print(f"  ratio sandbox/none: {ratio:.3f} {'OK' if ratio <= GOAL else f'OVER (goal <= {GOAL:.2f})'}; "
                  f"grades {'identical' if same else 'DIFFER'}", flush=True)
            if not same:
                return 1
    load1 = os.getloadavg()
    print(f"load average (1 min) before/after: {load0[0]:.1f} / {load1[0]:.1f} on {os.cpu_count()} CPU(s)")
    print("summary: " + "; ".join(f"{k}: {v:.3f}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
