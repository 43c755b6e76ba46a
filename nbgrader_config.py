"""nbgrader configuration for the fine-tuning course (instructor side, nbgrader 0.9.6).

Layout: source notebooks (solutions + hidden tests) in ``solutions/<assignment>/``; the student
release that ``nbgrader generate_assignment`` makes of them in ``notebooks/<assignment>/``;
``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db`` are created by the instructor
workflow (``python -m instructor``, ``make release|collect|autograde|feedback|export|demo``) and
are git-ignored.
"""
import os
import sys

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "finetuning-course"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"

# The course's assignments, in order. nbgrader 0.9 registers an assignment in the gradebook when
# it is generated (`make release`). Their due dates and the students' extensions are in
# course_calendar.toml (one place for the term): `make release` writes the due dates into the
# gradebook, `make autograde` grants the extensions before grading (instructor/duedates.py).
ASSIGNMENTS = ["ch1_basics", "ch2_hotdog", "ch3_unfreezing", "ch4_compression", "ch5_recovery"]

# Student code runs in the fast profile whatever the grader's environment says: kernels started
# by nbgrader (autograde, validate, generate_feedback) inherit this process's environment.
os.environ["COURSE_PROFILE"] = "fast"
# Lessons that repeat an experiment over several seeds run it once when grading (profile.seeds()).
os.environ["COURSE_GRADING"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

# Per-cell limit: every notebook runs in < 60 s in the fast profile, so no honest cell needs more
# than 120 s even on a slow grader. A cell that never ends is interrupted (KeyboardInterrupt in
# the kernel), reported as CellTimeoutError, and the rest of the notebook is still graded.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.raise_on_iopub_timeout = True
# The kernel is killed once the last cell has run, not asked to exit: every output is collected by
# then, and a kernel that trained a model spends ~2.5 s tearing down its heap before it exits
# (measured: ch1 autograded in 13.8 s graceful, 11.5 s immediate; the same grades).
c.Execute.shutdown_kernel = "immediate"

# Locked cells (tests, statements) are restored from the gradebook at autograding; a test cell a
# student deleted is put back too, so deleting a failing test gains nothing.
c.OverwriteCells.add_missing_cells = True

# Gradebook: SQLite in the course folder by default (git-ignored). When a JupyterHub course
# outgrows one machine, use PostgreSQL (psycopg 3, in requirements.txt; tested by tests/test_postgres.py):
# c.CourseDirectory.db_url = "postgresql://nbgrader:PASSWORD@db-host:5432/finetuning"
c.CourseDirectory.db_url = os.environ.get(
    "NBGRADER_DB_URL", "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db"))

# `nbgrader zip_collect` (LMS downloads in downloaded/<assignment>/archive/): files named
# <student>_<notebook>.ipynb, e.g. alice_ch1_basics.ipynb (student ids without "_").
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[^/_]+)_(?P<file_id>[^/]+\.ipynb)$"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback keeps hidden tests hidden (nbgrader #917): instructor/feedback.py's preprocessor runs
# between nbgrader's GetGrades and the HTML export. Each graded cell shows its points, pass/fail
# and failure message (the assertion's text); hidden-test source never reaches the HTML.
# Full feedback, hidden tests included: `python -m instructor feedback --full` (make feedback FULL=1),
# i.e. c.HideHiddenTests.full = True.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor  # noqa: E402

from nbgrader.plugins import LateSubmissionPlugin  # noqa: E402

try:
    from instructor.duedates import LatePenalty
    from instructor.feedback import HideHiddenTests
except ImportError:  # nbgrader run by hand in the repository: the instructor package is next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from instructor.duedates import LatePenalty
        from instructor.feedback import HideHiddenTests
    except ImportError as err:  # a copy without instructor/ (e.g. students'): validate works, feedback refuses
        _why = str(err)
        LatePenalty = LateSubmissionPlugin

        class HideHiddenTests(NbGraderPreprocessor):
            def preprocess(self, nb, resources):
                raise RuntimeError(f"instructor/feedback.py cannot be imported ({_why}): refusing to write "
                                   "feedback that would show the hidden tests")

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# Late submissions: nbgrader compares each submission's time (submitted/<student>/<chapter>/timestamp.txt,
# written by `make collect`) with the chapter's due date plus the student's extension, and asks this
# plugin for the penalty of each late notebook (nbgrader's AssignLatePenalties, at autograding).
# penalty_method: "none" (no penalty), "zero" (a late notebook scores 0) or "per_day": per_day of the
# notebook's score per started day late, at most max_fraction of it. The penalty is computed from the
# score at autograding (the auto-graded points; written answers graded later are not penalised).
c.AssignLatePenalties.plugin_class = LatePenalty
c.LatePenalty.penalty_method = "per_day"
c.LatePenalty.per_day = 0.10
c.LatePenalty.max_fraction = 1.0

# Autograding sandbox (issue 19, instructor/sandbox.py): `make autograde` sets COURSE_AUTOGRADE_SANDBOX
# for the nbgrader processes it starts; every student kernel then runs inside bubblewrap (no
# network, read-only course environment, writable: that student's autograded folder only), with
# resource limits. Other nbgrader commands (validate, the students' Validate button) are unchanged.
if os.environ.get("COURSE_AUTOGRADE_SANDBOX") == "bwrap":
    from instructor.sandbox import enable as _enable_sandbox  # instructor/ is importable: see above

    _enable_sandbox(c)
