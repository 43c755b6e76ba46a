"""The course folder: nbgrader's configuration (loaded once), its paths, and running nbgrader there.

Paths come from nbgrader's own :class:`nbgrader.coursedir.CourseDirectory` built from the course's
``nbgrader_config.py``, so ``source_directory = "solutions"`` and friends mean exactly what they mean
to nbgrader. Loading the config executes ``nbgrader_config.py`` (it sets ``COURSE_PROFILE`` and
``COURSE_GRADING`` for the kernels nbgrader starts): :func:`load_config` does it once per course and
puts the calling process's environment and ``sys.path`` back as they were.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # nbgrader calls `alembic` etc. by name: keep the venv on PATH


def load_config(root: Path):
    """``nbgrader_config.py`` of ``root`` as a traitlets Config, without side effects on this process
    (the file sets environment variables for nbgrader's kernels and may extend ``sys.path``)."""
    from traitlets.config.loader import PyFileConfigLoader

    env, path = dict(os.environ), list(sys.path)
    try:
        return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    finally:
        if dict(os.environ) != env:
            os.environ.clear()
            os.environ.update(env)
        sys.path[:] = path


@dataclass
class Course:
    root: Path
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if not (self.root / "nbgrader_config.py").is_file():
            raise SystemExit(f"{self.root} has no nbgrader_config.py: not a course folder")

    # -- configuration and paths (nbgrader's CourseDirectory) ------------------------------------
    @cached_property
    def config(self):
        return load_config(self.root)

    @cached_property
    def coursedir(self):
        from nbgrader.coursedir import CourseDirectory

        config = self.config.copy()
        config.CourseDirectory.root = str(self.root)  # a copied course: its own folder, not the original's
        return CourseDirectory(config=config)

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id

    @property
    def source(self) -> Path:
        return self.root / self.coursedir.source_directory

    @property
    def release_dir(self) -> Path:
        return self.root / self.coursedir.release_directory

    @property
    def submitted(self) -> Path:
        return self.root / self.coursedir.submitted_directory

    @property
    def autograded(self) -> Path:
        return self.root / self.coursedir.autograded_directory

    @property
    def feedback_dir(self) -> Path:
        return self.root / self.coursedir.feedback_directory

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    def gradebook(self):
        """nbgrader's Gradebook for this course (always with the course id: no ``default_course`` row)."""
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)

    def api(self):
        """nbgrader's own NbGraderAPI over this course (what formgrader uses)."""
        from nbgrader.apps.api import NbGraderAPI

        return NbGraderAPI(coursedir=self.coursedir, config=self.config)

    def assignments(self) -> list[str]:
        """Assignments with a source notebook in the source folder, in order."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def notebooks_of(self, assignment: str) -> list[str]:
        """Notebook names (without .ipynb) a submission of ``assignment`` must contain."""
        folder = self.release_dir / assignment
        if not any(folder.glob("*.ipynb")):
            folder = self.source / assignment
        return sorted(p.stem for p in folder.glob("*.ipynb"))

    def submitted_students(self) -> list[str]:
        return sorted(p.name for p in self.submitted.iterdir() if p.is_dir()) if self.submitted.is_dir() else []

    # -- running nbgrader ----------------------------------------------------------------------
    def nbgrader(self, *args: str, timeout: float | None = None, quiet: bool = True,
                 threads: int | None = None) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in the course folder (its own process group, so a timeout kills the
        kernels it started too). ``threads`` caps the kernels' torch/OpenMP threads (parallel grading
        splits the cores between the jobs instead of oversubscribing them). Returns the completed
        process (stdout+stderr in ``.stdout``, ``.timed_out``)."""
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
    for student in course.submitted_students():
        if students and student not in students:
            continue
        sdir = course.submitted / student
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            a = adir.name
            if assignments and a not in assignments:
                continue
            if a not in known:
                course.problem(f"{student}/{a}: unknown assignment (known: {', '.join(known)}); ignored")
                continue
            for name in course.notebooks_of(a):
                nb = adir / f"{name}.ipynb"
                if not nb.exists():
                    others = ", ".join(p.name for p in adir.iterdir() if p.name != "timestamp.txt") or "nothing"
                    course.problem(f"{student}/{a}: notebook {name}.ipynb is missing (found: {others}); "
                                   "it scores 0")
                    bad[(student, a)] = "missing notebook"
                    continue
                reason = check_notebook(nb)
                if reason:
                    course.problem(f"{student}/{a}/{name}.ipynb {reason}; it scores 0 "
                                   "(fix the file and run autograde --force --student " f"{student})")
                    bad[(student, a)] = reason
    return bad
