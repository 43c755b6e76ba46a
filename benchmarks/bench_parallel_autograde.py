"""Serial vs parallel autograde of a class, in one run (issue #12): ``python
benchmarks/bench_parallel_autograde.py [--students 12] [--jobs 2] [ASSIGNMENT ...]``.

On a temporary copy of the course: release every chapter, make a class of generated students (a
mix of perfect: the solutions, empty: the untouched release, partly_wrong: the first exercise of
each chapter left as its stub), copy the course twice and autograde it with ``--jobs 1`` (one
student after the other, an nbgrader process each) and ``--jobs N`` (N students at a time, each in
its own nbgrader process). Pinned to 2 cores like the other benchmarks. Prints both wall times, the
ratio, the time per student, and checks that both gradebooks hold the same grades.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from instructor.autograde import cmd_autograde  # noqa: E402
from instructor.course import Course  # noqa: E402
from instructor.demo import make_samples  # noqa: E402
from instructor.release import cmd_release  # noqa: E402
from instructor.report import grade_table  # noqa: E402


def cpu_children() -> float:
    """CPU seconds (user + system) used by finished child processes: nbgrader and its kernels."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("assignments", nargs="*", help="chapters (default: all)")
    p.add_argument("--students", type=int, default=12)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--cores", type=int, default=2, help="pin the benchmark to this many cores (0: all)")
    args = p.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.cores and len(cpus) > args.cores:
        os.sched_setaffinity(0, cpus[:args.cores])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ["COURSE_PROFILE"] = "fast"
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        serial_root = Path(tmp) / "serial"
        serial_root.mkdir()
        shutil.copy(REPO / "nbgrader_config.py", serial_root)
        for a in args.assignments or sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")):
            shutil.copytree(REPO / "solutions" / a, serial_root / "solutions" / a, dirs_exist_ok=True)
        serial = Course(serial_root)
        if cmd_release(serial) != 0:
            return 1
        samples = Path(tmp) / "samples"
        make_samples(serial, samples)  # perfect, empty, partly_wrong
        kinds = sorted(p.name for p in samples.iterdir())
        for i in range(args.students):
            kind = kinds[i % len(kinds)]
            shutil.copytree(samples / kind, serial.submitted / f"{kind}{i:02d}")
        parallel_root = Path(tmp) / "parallel"
        shutil.copytree(serial_root, parallel_root)
        parallel = Course(parallel_root)
        chapters = serial.assignments()

        load0 = os.getloadavg()[0]
        c0, t0 = cpu_children(), time.perf_counter()
        s1 = cmd_autograde(serial, jobs=1)
        t_serial, cpu_serial = time.perf_counter() - t0, cpu_children() - c0
        c0, t0 = cpu_children(), time.perf_counter()
        s2 = cmd_autograde(parallel, jobs=args.jobs)
        t_parallel, cpu_parallel = time.perf_counter() - t0, cpu_children() - c0
        load1 = os.getloadavg()[0]
        rows1 = sorted((r["student"], r["assignment"], r["auto"]) for r in grade_table(serial))
        rows2 = sorted((r["student"], r["assignment"], r["auto"]) for r in grade_table(parallel))
    same = rows1 == rows2 and len(rows1) == args.students * len(chapters)
    n = args.students
    print(f"\nautograde {n} students x {len(chapters)} chapter(s), fast profile, {cores} core(s):")
    print(f"  serial   (--jobs 1): {t_serial:7.1f} s wall ({t_serial / n:.1f} s per student), "
          f"{cpu_serial:7.1f} CPU-s")
    print(f"  parallel (--jobs {args.jobs}): {t_parallel:7.1f} s wall ({t_parallel / n:.1f} s per student), "
          f"{cpu_parallel:7.1f} CPU-s")
    print(f"  load average (1 min) before/after: {load0:.1f}/{load1:.1f} on {os.cpu_count()} CPUs "
          "(a load above the core count means other processes share the cores: wall times are inflated)")
    print(f"  speed-up serial/parallel: {t_serial / t_parallel:.2f}x; grades identical: {same} "
          f"({len(rows1)} gradebook rows, {sum(r[2] for r in rows1):g} points in all)")
    return 0 if same and s1 == s2 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
