"""nbgrader configuration for the fine-tuning course (instructor side).

Layout: source notebooks (solutions + hidden tests) in ``solutions/<assignment>/``; the student
release that ``nbgrader generate_assignment`` makes of them in ``notebooks/<assignment>/``.
"""
import os
import sys

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "finetuning-course"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"

ASSIGNMENTS = ["ch1_basics", "ch2_hotdog", "ch3_unfreezing", "ch4_compression", "ch5_recovery"]
c.CourseDirectory.db_assignments = [dict(name=a) for a in ASSIGNMENTS]

# Student code runs in the fast profile whatever the grader's environment says.
os.environ["COURSE_PROFILE"] = "fast"

# Each cell gets this many seconds in the fast profile; a cell that never ends is stopped.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Gradebook: SQLite in the course folder by default. For a JupyterHub course, use PostgreSQL:
# c.CourseDirectory.db_url = "postgresql://nbgrader:PASSWORD@db-host/finetuning"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
