"""Instructor CLI: run a term of the course with nbgrader alone (a thin wrapper over nbgrader's CLI).

Every command runs nbgrader in the course folder (``--course``, default: this repository), so
``nbgrader_config.py`` there applies (course id, folders, gradebook, timeouts, fast profile)::

    python -m instructor release [ASSIGNMENT ...]         # solutions/ -> notebooks/ (+ gradebook)
    python -m instructor collect FOLDER                    # FOLDER/<student>/<assignment>/*.ipynb -> submitted/
    python -m instructor collect --zip ASSIGNMENT FILE...  # LMS downloads / zips -> nbgrader zip_collect
    python -m instructor autograde [ASSIGNMENT ...] [--student ID | --students a,b,@FILE] [--jobs N] [--force] [--timeout S]
    python -m instructor feedback [ASSIGNMENT ...] [--student ID] [--release] [--full]
    python -m instructor export [--to grades.csv]
    python -m instructor demo [--workdir DIR]               # the headless main job

Bad input never stops a batch: submissions that are not valid JSON, not notebooks, or lack a
notebook are reported (``PROBLEM ...`` lines) and the other students are graded; the SQLite gradebook
is backed up (``gradebook.db.bak``) before each autograde run. The exit status is 1 when a problem was
reported, 0 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script (python instructor/cli.py): the package is importable
    sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent  # nbgrader calls `alembic` etc. by name: keep the venv on PATH


# ---------------------------------------------------------------------------------------------
# course folder, configuration, running nbgrader


@dataclass
class Course:
    root: Path
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if not (self.root / "nbgrader_config.py").is_file():
            raise SystemExit(f"{self.root} has no nbgrader_config.py: not a course folder")

    # -- configuration -------------------------------------------------------------------------
    @property
    def config(self):
        from traitlets.config.loader import PyFileConfigLoader

        env = os.environ.get("COURSE_PROFILE")
        try:
            return PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
        finally:  # loading the config forces the fast profile; keep this process's environment
            if env is None:
                os.environ.pop("COURSE_PROFILE", None)
            else:
                os.environ["COURSE_PROFILE"] = env

    def _dir(self, name: str, default: str) -> Path:
        value = self.config.CourseDirectory.get(name) or default
        return self.root / value

    @property
    def source(self) -> Path:
        return self._dir("source_directory", "source")

    @property
    def release_dir(self) -> Path:
        return self._dir("release_directory", "release")

    @property
    def submitted(self) -> Path:
        return self._dir("submitted_directory", "submitted")

    @property
    def autograded(self) -> Path:
        return self._dir("autograded_directory", "autograded")

    @property
    def feedback_dir(self) -> Path:
        return self._dir("feedback_directory", "feedback")

    @property
    def db_url(self) -> str:
        return self.config.CourseDirectory.get("db_url") or f"sqlite:///{self.root / 'gradebook.db'}"

    def assignments(self) -> list[str]:
        """Assignments with a source notebook in solutions/, in order."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def notebooks_of(self, assignment: str) -> list[str]:
        """Notebook names (without .ipynb) a submission of ``assignment`` must contain."""
        folder = self.release_dir / assignment
        if not any(folder.glob("*.ipynb")):
            folder = self.source / assignment
        return sorted(p.stem for p in folder.glob("*.ipynb"))

    # -- running nbgrader ----------------------------------------------------------------------
    def nbgrader(self, *args: str, timeout: float | None = None, quiet: bool = True,
                 threads: int | None = None) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in the course folder (its own process group, so a timeout kills the
        kernels it started too). ``threads`` caps the kernels' torch/OpenMP threads (parallel grading
        splits the cores between the jobs instead of oversubscribing them). Returns the completed
        process (stdout+stderr in ``.stdout``)."""
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COURSE_PROFILE="fast")
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)  # helpers.setup() respects it
        # nbgrader_config.py imports instructor.feedback (the feedback preprocessor): keep it importable
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env.setdefault("MPLBACKEND", "Agg")
        cmd = [sys.executable, "-m", "nbgrader", *args]
        proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            out += f"\n[instructor] nbgrader {' '.join(args)} killed after {timeout:.0f} s\n"
            result = subprocess.CompletedProcess(cmd, -9, out)
            result.timed_out = True
            return result
        result = subprocess.CompletedProcess(cmd, proc.returncode, out)
        result.timed_out = False
        if not quiet:
            print(out)
        return result

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"PROBLEM {text}", flush=True)


# ---------------------------------------------------------------------------------------------
# checking submissions


def check_notebook(path: Path) -> str | None:
    """``None`` if ``path`` is a readable notebook, else a one-line reason."""
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return f"cannot be read ({err})"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        return f"is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat.ValidationError, KeyError on non-notebook JSON, ...
        return f"is not a Jupyter notebook ({str(err).splitlines()[0][:120]})"
    return None


def check_submissions(course: Course, students: list[str] | None = None,
                      assignments: list[str] | None = None) -> dict[tuple[str, str], str]:
    """Check submitted/<student>/<assignment>/; report problems. Returns {(student, assignment): reason}
    for submissions that cannot be graded as they are."""
    bad: dict[tuple[str, str], str] = {}
    known = course.assignments()
    if not course.submitted.is_dir():
        return bad
    for sdir in sorted(p for p in course.submitted.iterdir() if p.is_dir()):
        if students and sdir.name not in students:
            continue
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            a = adir.name
            if assignments and a not in assignments:
                continue
            if a not in known:
                course.problem(f"{sdir.name}/{a}: unknown assignment (known: {', '.join(known)}); ignored")
                continue
            for name in course.notebooks_of(a):
                nb = adir / f"{name}.ipynb"
                if not nb.exists():
                    others = ", ".join(p.name for p in adir.iterdir()) or "nothing"
                    course.problem(f"{sdir.name}/{a}: notebook {name}.ipynb is missing (found: {others}); "
                                   "it scores 0")
                    bad[(sdir.name, a)] = "missing notebook"
                    continue
                reason = check_notebook(nb)
                if reason:
                    course.problem(f"{sdir.name}/{a}/{name}.ipynb {reason}; it scores 0 "
                                   "(fix the file and run autograde --force --student " f"{sdir.name})")
                    bad[(sdir.name, a)] = reason
    return bad


# ---------------------------------------------------------------------------------------------
# commands


def cmd_release(course: Course, assignments: list[str] | None = None) -> int:
    """``nbgrader generate_assignment --force`` for each assignment: solutions/ -> notebooks/."""
    status = 0
    for a in assignments or course.assignments():
        r = course.nbgrader("generate_assignment", a, "--force")
        ok = r.returncode == 0 and any((course.release_dir / a).glob("*.ipynb"))
        print(f"release {a}: {'ok' if ok else 'FAILED'} -> {(course.release_dir / a).relative_to(course.root)}")
        if not ok:
            course.problem(f"release of {a} failed:\n{r.stdout[-3000:]}")
            status = 1
    return status


def cmd_collect(course: Course, source: Path, zip_assignment: str | None = None,
                force: bool = False) -> int:
    """Copy a folder in submitted/ layout (SRC/<student>/<assignment>/*) into submitted/, or hand
    LMS downloads (zips or <student>_<notebook>.ipynb files) to ``nbgrader zip_collect``."""
    students: set[str] = set()
    kept = 0
    if zip_assignment:
        archive = course.root / "downloaded" / zip_assignment / "archive"
        archive.mkdir(parents=True, exist_ok=True)
        files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
        for f in files:
            shutil.copy2(f, archive / f.name)
        t0 = time.time() - 1
        r = course.nbgrader("zip_collect", zip_assignment, "--force")
        students = {p.parent.parent.name for p in course.submitted.glob(f"*/{zip_assignment}/*")
                    if p.stat().st_mtime >= t0}
        for st in sorted(students):
            print(f"collect {st}/{zip_assignment}: ok")
        for line in r.stdout.splitlines():
            if "Skipped" in line or "Invalid submission" in line or "did not match" in line:
                course.problem("zip_collect: " + line.split("]", 1)[-1].strip())
        if r.returncode != 0:
            course.problem(f"nbgrader zip_collect {zip_assignment} failed:\n{r.stdout[-2000:]}")
        assignments = [zip_assignment]
    else:
        if not source.is_dir():
            raise SystemExit(f"{source} is not a folder of <student>/<assignment>/ submissions")
        assignments = course.assignments()
        for sdir in sorted(p for p in source.iterdir() if p.is_dir()):
            for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
                if adir.name not in assignments:
                    course.problem(f"{sdir.name}/{adir.name}: unknown assignment; not collected")
                    continue
                dest = course.submitted / sdir.name / adir.name
                if dest.exists():
                    kept += 1
                    if not force:
                        print(f"collect {sdir.name}/{adir.name}: already in submitted/, kept (--force replaces)")
                        continue
                    shutil.rmtree(dest)
                shutil.copytree(adir, dest)
                students.add(sdir.name)
                print(f"collect {sdir.name}/{adir.name}: ok")
            for f in (p for p in sdir.iterdir() if p.is_file()):
                course.problem(f"{sdir.name}/{f.name}: a file outside an assignment folder; not collected")
    if students:
        check_submissions(course, sorted(students), assignments)
    elif not kept:
        course.problem(f"no submission collected from {source}")
    return 1 if course.problems else 0


def _backup_gradebook(course: Course) -> None:
    url = course.db_url
    if not url.startswith("sqlite:///"):
        return
    db = Path(url[len("sqlite:///"):])
    if db.is_file():
        with sqlite3.connect(db) as src, sqlite3.connect(str(db) + ".bak") as dst:
            src.backup(dst)


def _graded(course: Course, student: str, assignment: str, since: float) -> bool:
    names = course.notebooks_of(assignment)
    folder = course.autograded / student / assignment
    return bool(names) and all((folder / f"{n}.ipynb").is_file() and (folder / f"{n}.ipynb").stat().st_mtime >= since
                               for n in names)


def default_jobs() -> int:
    """Cores this process may use (the default number of students graded at once)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cmd_autograde(course: Course, assignments: list[str] | None = None, student: str | None = None,
                  force: bool = False, timeout: int | None = None, batch_timeout: float | None = None,
                  jobs: int | None = None, students_list: list[str] | None = None,
                  sandbox: str | None = None) -> int:
    """``nbgrader autograde`` over submitted/: all students (or one, or a list), all assignments (or some).

    ``jobs`` > 1 (default: the number of cores) grades that many students at once, each in its own
    nbgrader process (:func:`_autograde_parallel`); with fewer students than jobs (one late student,
    a regrade) their assignments are graded side by side instead. ``jobs`` = 1 runs one nbgrader
    process for the whole batch. nbgrader's own per-cell timeout interrupts a cell that never ends and grades the rest
    of the notebook; on top of that a wall-clock limit per notebook stops a student whose kernel cannot
    be interrupted, and the batch goes on with the others."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1 (got {jobs})")
    # -- sandbox (issue 19): each student kernel in bubblewrap unless SANDBOX=0 (instructor/sandbox.py) --
    from instructor import sandbox as _sandbox

    if _sandbox.activate(sandbox) is None:  # bubblewrap missing or unusable: printed how to install it
        course.problems.append("autograde refused: no sandbox (SANDBOX=0 grades without one)")
        return 2
    # -----------------------------------------------------------------------------------------------
    wanted = assignments or course.assignments()
    students = sorted(p.name for p in course.submitted.glob("*") if p.is_dir()) if course.submitted.is_dir() else []
    if student:
        students = [s for s in students if s == student]
        if not students:
            course.problem(f"no submission from student {student!r} in {course.submitted}")
            return 1
    if students_list is not None:  # this grader's share of the class (several grading machines)
        unknown = sorted(set(students_list) - set(students))
        for s in unknown:
            course.problem(f"no submission from student {s!r} in {course.submitted}")
        students = [s for s in students if s in set(students_list)]
        if not students:
            return 1
    bad = check_submissions(course, students, wanted)
    # unreadable notebooks go to nbgrader too: it fails them alone (score 0) and grades the rest
    pairs = [(s, a) for s in students for a in wanted if any((course.submitted / s / a).glob("*.ipynb"))]
    if not force:
        done = [(s, a) for s, a in pairs if (course.autograded / s / a).is_dir()]
        for s, a in done:
            print(f"kept {s}/{a}: already autograded (--force regrades)")
        pairs = [p for p in pairs if p not in done]
    missing = sorted({s for (s, a), why in bad.items() if why == "missing notebook"})
    if missing:  # they appear in the gradebook (and the export) with 0 points
        from nbgrader.api import Gradebook

        with Gradebook(course.db_url, course.config.CourseDirectory.get("course_id") or "default_course") as gb:
            for s in missing:
                gb.update_or_create_student(s)
    if not pairs:
        print("autograde: nothing to grade")
        return 1 if course.problems else 0
    _backup_gradebook(course)
    extra = [f"--Execute.timeout={timeout}"] if timeout else []
    per_notebook = batch_timeout or 900
    started = time.time()
    excluded: set[str] = set()
    todo = list(pairs)
    if jobs > 1 and len(pairs) > 1:
        _autograde_parallel(course, pairs, extra, force, per_notebook, jobs, bad, started)
        todo = []
    while todo:
        run_students = sorted({s for s, _ in todo} - excluded)
        run_assignments = sorted({a for _, a in todo})
        if not run_students:
            break
        # one nbgrader process for the whole batch (assignment / student globs), done pairs are skipped
        a_glob = run_assignments[0] if len(run_assignments) == 1 else "*"
        args = ["autograde", a_glob, *extra]
        if len(run_students) == 1:
            args.append(f"--student={run_students[0]}")
        if excluded:
            args.append(f"--CourseDirectory.student_id_exclude={','.join(sorted(excluded))}")
        if force:
            args.append("--force")
        limit = per_notebook * len([p for p in todo if p[0] not in excluded])
        t0 = time.time()
        r = course.nbgrader(*args, timeout=limit)
        todo_next = []
        for s, a in todo:
            if s in excluded:
                continue
            if a not in run_assignments:
                todo_next.append((s, a))
            elif _graded(course, s, a, started - 1):
                continue
            elif getattr(r, "timed_out", False):
                todo_next.append((s, a))
            else:
                if (s, a) not in bad:
                    course.problem(f"{s}/{a}: nbgrader could not grade it (see the log below); it scores 0")
        if getattr(r, "timed_out", False) and todo_next:
            # the first pair (nbgrader's order) not graded is the one that hung: drop that student
            s, a = sorted(todo_next, key=lambda p: (p[1], p[0]))[0] if a_glob != "*" else sorted(todo_next)[0]
            course.problem(f"{s}/{a}: grading took longer than {limit:.0f} s and was stopped; "
                           f"the other students are graded")
            shutil.rmtree(course.autograded / s / a, ignore_errors=True)
            excluded.add(s)
            force = False  # do not regrade what this run already graded
        todo = todo_next if getattr(r, "timed_out", False) else []
        print(f"autograde: nbgrader ran {time.time() - t0:.1f} s")
        if r.returncode not in (0, -9):
            log = [ln for ln in r.stdout.splitlines() if "| ERROR]" in ln]
            if log:
                print("  nbgrader log (errors):\n" + "\n".join("    " + ln for ln in log[-10:]))
    for s, a in pairs:
        if _graded(course, s, a, started - 1):
            print(f"graded {s}/{a}")
    for line in _sandbox.limit_events():  # issue 19: a kernel hit a sandbox limit
        course.problem(line)
    audit(course, pairs)
    print(f"autograde: {len(pairs)} submission(s) in {time.time() - started:.1f} s, "
          f"{len(course.problems)} problem(s)")
    return 1 if course.problems else 0


def audit(course: Course, pairs: list[tuple[str, str]]) -> dict:
    """The suspicious-code report (instructor/audit.py) for the submissions of ``pairs``: printed as
    ``SUSPICIOUS`` lines and merged into ``autograde_audit.json`` in the course folder."""
    from instructor.audit import audit_submissions, write_report

    report = audit_submissions(course.submitted, pairs)
    flagged = {k: v for k, v in report.items() if v}
    for key, found in flagged.items():
        for f in found:
            print(f"SUSPICIOUS {key} [{f.cell}, line {f.line}]: {f.what}")
    write_report(report, course.root / "autograde_audit.json")
    print(f"audit: {len(report)} notebook(s) read, {len(flagged)} with suspicious code to review by hand"
          + (" (autograde_audit.json)" if flagged else ""))
    return flagged


def _grading_units(pairs: list[tuple[str, str]], jobs: int) -> list[tuple[str, list[str]]]:
    """How a parallel autograde splits its work: one unit (one nbgrader process) per student, whose
    assignments run one after the other, when there are at least ``jobs`` students; otherwise one
    unit per (student, assignment), so that one student's chapters use all the jobs. Longest
    first is unknown, so the order is the course's (students, then assignments)."""
    by_student: dict[str, list[str]] = {}
    for s, a in pairs:
        by_student.setdefault(s, []).append(a)
    if len(by_student) >= jobs:
        return [(s, names) for s, names in sorted(by_student.items())]
    return [(s, [a]) for s, names in sorted(by_student.items()) for a in names]


def _autograde_parallel(course: Course, pairs: list[tuple[str, str]], extra: list[str], force: bool,
                        per_notebook: float, jobs: int, bad: dict, started: float) -> None:
    """Grade concurrently, ``jobs`` nbgrader processes at a time (:func:`_grading_units`: one per
    student, or one per assignment of a student when there are fewer students than jobs). Each has
    its own kernels and its own gradebook session: no state shared between students. A unit whose
    nbgrader fails on the gradebook (SQLite: ``database is locked`` after the busy timeout), whose
    graded submission is missing from the gradebook, or whose cell hit the per-cell timeout while
    sharing the cores, is graded again alone once the others are done (the same result as a serial
    run)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from nbgrader.api import Gradebook

    course_id = course.config.CourseDirectory.get("course_id") or "default_course"
    units = _grading_units(pairs, jobs)
    with Gradebook(course.db_url, course_id) as gb:  # tables, the course row and the students once,
        for s in sorted({s for s, _ in units}):      # before the writers (two units of one student
            gb.update_or_create_student(s)           # must not both insert the student)

    by_chapter = len(units) > len({s for s, _ in units})  # one student's chapters side by side

    def label(unit: tuple[str, list[str]]) -> str:
        s, names = unit
        return f"{s}/{names[0]}" if by_chapter else s

    def grade(unit: tuple[str, list[str]]) -> tuple[tuple[str, list[str]], subprocess.CompletedProcess, float]:
        s, names = unit
        args = ["autograde", names[0] if len(names) == 1 else "*", f"--student={s}", *extra]
        t0 = time.time()
        r = course.nbgrader(*(args + (["--force"] if force else [])), timeout=per_notebook * len(names),
                            threads=threads)
        return unit, r, time.time() - t0

    def settle(unit: tuple[str, list[str]], r: subprocess.CompletedProcess, seconds: float,
               retry: list[tuple[str, list[str]]] | None) -> None:
        s, names = unit
        lost = [a for a in names if not _graded(course, s, a, started - 1)]
        print(f"autograde {label(unit)}: nbgrader ran {seconds:.1f} s" + (f", {len(lost)} not graded" if lost else ""),
              flush=True)
        if not lost:
            return
        if getattr(r, "timed_out", False):
            course.problem(f"{s}/{lost[0]}: grading took longer than {per_notebook * len(names):.0f} s "
                           "and was stopped; the other students are graded")
            for a in lost:
                shutil.rmtree(course.autograded / s / a, ignore_errors=True)
            return
        # the gradebook refused a write, or a kernel starved of CPU by the other jobs missed the per-cell
        # timeout: grade this unit again alone, after the others
        if retry is not None and re.search(r"database is locked|OperationalError|IntegrityError|could not serialize|"
                                           r"Timeout waiting for execute reply|Kernel died", r.stdout):
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
    retry: list[tuple[str, list[str]]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in as_completed([pool.submit(grade, u) for u in units]):
            settle(*fut.result(), retry)
    # nothing lost: every notebook graded on disk has its submission in the gradebook
    from nbgrader.api import MissingEntry

    with Gradebook(course.db_url, course_id) as gb:
        for unit in units:
            s, names = unit
            if unit in retry:
                continue
            for a in names:
                if not _graded(course, s, a, started - 1):
                    continue
                try:
                    gb.find_submission(a, s)
                except MissingEntry:
                    retry.append(unit)
                    break
    for unit in sorted(retry):  # one writer: what the gradebook refused under contention
        print(f"autograde {label(unit)}: gradebook busy or incomplete, or a cell timed out under load: "
              "graded again alone", flush=True)
        force = True
        settle(*grade(unit), None)


def cmd_feedback(course: Course, assignments: list[str] | None = None, student: str | None = None,
                 release: bool = False, full: bool = False) -> int:
    """``nbgrader generate_feedback`` (HTML in feedback/<student>/<assignment>/), optionally
    ``nbgrader release_feedback`` (needs an exchange, i.e. JupyterHub). Hidden tests are kept out of
    the feedback (instructor/feedback.py); ``full`` releases them too."""
    for a in assignments or course.assignments():
        if not any(course.autograded.glob(f"*/{a}/*.ipynb")):
            continue
        args = ["generate_feedback", a, "--force"] + ([f"--student={student}"] if student else [])
        args += ["--HideHiddenTests.full=True"] if full else []
        r = course.nbgrader(*args)
        if r.returncode != 0:
            course.problem(f"generate_feedback {a} failed:\n{r.stdout[-2000:]}")
        if release:
            r = course.nbgrader("release_feedback", a, *([f"--student={student}"] if student else []))
            if r.returncode != 0:
                course.problem(f"release_feedback {a} failed (is an exchange configured?):\n{r.stdout[-1000:]}")
    html = sorted(course.feedback_dir.glob("*/*/*.html")) if course.feedback_dir.is_dir() else []
    for p in html:
        print(f"feedback {p.relative_to(course.root)}")
    return 1 if course.problems else 0


def grade_table(course: Course) -> list[dict]:
    """One row per (student, assignment) in the gradebook: auto-graded and total points."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(course.db_url) as gb:
        for st in sorted(gb.students, key=lambda s: s.id):
            for asg in sorted(gb.assignments, key=lambda a: a.name):
                try:
                    sub = gb.find_submission(asg.name, st.id)
                except MissingEntry:
                    rows.append(dict(student=st.id, assignment=asg.name, submitted=False, auto=0.0,
                                     max_auto=float(asg.max_code_score), score=0.0, max_score=float(asg.max_score)))
                    continue
                rows.append(dict(student=st.id, assignment=asg.name, submitted=True, auto=float(sub.code_score),
                                 max_auto=float(sub.max_code_score), score=float(sub.score),
                                 max_score=float(sub.max_score)))
    return rows


def print_table(course: Course) -> None:
    rows = grade_table(course)
    assignments = sorted({r["assignment"] for r in rows})
    students = sorted({r["student"] for r in rows})
    width = max([7] + [len(s) for s in students])
    print("auto-graded points per assignment (written answers are graded by hand in the formgrader):")
    print(f"{'student':<{width}} " + " ".join(f"{a:>16}" for a in assignments) + f" {'total':>9}")
    for s in students:
        cells, tot, mx = [], 0.0, 0.0
        for a in assignments:
            r = next(r for r in rows if r["student"] == s and r["assignment"] == a)
            cells.append(f"{r['auto']:g}/{r['max_auto']:g}" + ("" if r["submitted"] else " -"))
            tot, mx = tot + r["auto"], mx + r["max_auto"]
        print(f"{s:<{width}} " + " ".join(f"{c:>16}" for c in cells) + f" {f'{tot:g}/{mx:g}':>9}")


def cmd_export(course: Course, to: str = "grades.csv", show: bool = True) -> int:
    """``nbgrader export --to grades.csv`` (one row per student and assignment), then the table."""
    dest = Path(to) if Path(to).is_absolute() else course.root / to
    r = course.nbgrader("export", f"--to={dest}")
    if r.returncode != 0 or not dest.is_file():
        course.problem(f"nbgrader export failed:\n{r.stdout[-2000:]}")
        return 1
    with dest.open() as f:
        n = sum(1 for _ in csv.DictReader(f))
    print(f"export: {n} row(s) -> {dest}")
    if show:
        print_table(course)
    return 1 if course.problems else 0


# ---------------------------------------------------------------------------------------------
# the demo: a whole term, headless


def make_samples(course: Course, folder: Path) -> None:
    """Three sample students in submitted/ layout: perfect (the solutions), empty (the untouched
    release) and partly_wrong (the solutions with the first exercise of each chapter wrong)."""
    import nbformat

    for a in course.assignments():
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


def cmd_demo(course: Course, workdir: Path | None = None, keep: bool = False) -> int:
    """Copy the course to a temporary folder, release, collect three sample submissions, autograde,
    write feedback, export and print the grade table. The repository is left untouched."""
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="course-demo-"))
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", course.source.name):
        src = course.root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / name)
    demo = Course(tmp)
    t0 = time.time()
    print(f"== demo course in {tmp}\n== 1. release")
    status = cmd_release(demo)
    print("== 2. collect three sample submissions (perfect, empty, partly_wrong)")
    make_samples(demo, tmp / "incoming")
    status |= cmd_collect(demo, tmp / "incoming")
    print("== 3. autograde")
    status |= cmd_autograde(demo)
    print("== 4. feedback")
    status |= cmd_feedback(demo)
    print("== 5. export")
    status |= cmd_export(demo, "grades.csv")
    print(f"== demo done in {time.time() - t0:.0f} s; {len(demo.problems)} problem(s)")
    if not keep and not workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return status


# ---------------------------------------------------------------------------------------------


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--course", type=Path, default=REPO, help="course folder (default: this repository)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("release", help="solutions/ -> notebooks/ with nbgrader generate_assignment --force")
    s.add_argument("assignments", nargs="*")
    s = sub.add_parser("collect", help="copy submissions into submitted/ and check them")
    s.add_argument("source", type=Path, help="folder <student>/<assignment>/*.ipynb, or files/zips with --zip")
    s.add_argument("--zip", metavar="ASSIGNMENT", help="use nbgrader zip_collect for this assignment")
    s.add_argument("--force", action="store_true", help="replace submissions already in submitted/")
    s = sub.add_parser("autograde", help="nbgrader autograde (all students, or --student)")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--student")
    s.add_argument("--force", action="store_true", help="regrade submissions already autograded")
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
    s = sub.add_parser("export", help="nbgrader export to CSV and print the grade table")
    s.add_argument("--to", default="grades.csv")
    s = sub.add_parser("table", help="print the grade table from the gradebook")
    s = sub.add_parser("demo", help="a whole term on a temporary copy: release, grade 3 samples, feedback, table")
    s.add_argument("--workdir", type=Path, help="keep the demo course here")
    s.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    course = Course(args.course)
    if args.cmd == "release":
        return cmd_release(course, args.assignments)
    if args.cmd == "collect":
        return cmd_collect(course, args.source.resolve(), args.zip, args.force)
    if args.cmd == "autograde":
        return cmd_autograde(course, args.assignments, args.student, args.force, args.timeout, args.batch_timeout,
                             args.jobs, parse_students(args.students), args.sandbox)
    if args.cmd == "feedback":
        return cmd_feedback(course, args.assignments, args.student, args.release, args.full)
    if args.cmd == "export":
        return cmd_export(course, args.to)
    if args.cmd == "table":
        print_table(course)
        return 0
    if args.cmd == "demo":
        return cmd_demo(course, args.workdir, args.keep)
    return 2


if __name__ == "__main__":
    sys.exit(main())
