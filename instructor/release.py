"""``release`` (assignments, with their due dates) and ``feedback``: what goes out to students."""
from __future__ import annotations

from instructor.course import Course
from instructor.duedates import apply_due_dates


def cmd_release(course: Course, assignments: list[str] | None = None) -> int:
    """``nbgrader generate_assignment --force`` for each assignment (solutions/ -> notebooks/), then the
    due dates of ``course_calendar.toml`` into the gradebook."""
    status = 0
    chosen = assignments or course.assignments()
    for a in chosen:
        r = course.nbgrader("generate_assignment", a, "--force")
        ok = r.returncode == 0 and any((course.release_dir / a).glob("*.ipynb"))
        print(f"release {a}: {'ok' if ok else 'FAILED'} -> {(course.release_dir / a).relative_to(course.root)}")
        if not ok:
            course.problem(f"release of {a} failed:\n{r.stdout[-3000:]}")
            status = 1
    for a, due in sorted(apply_due_dates(course, chosen).items()):
        print(f"due {a}: {due:%Y-%m-%d %H:%M} UTC")
    return status


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
