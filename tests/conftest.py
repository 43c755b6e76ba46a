import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["COURSE_PROFILE"] = os.environ.get("COURSE_TEST_PROFILE", "fast")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/minicourse.py, tests/nbrun.py, ...


@pytest.fixture(autouse=True)
def _environment_unchanged(request):
    """Fail a test that leaves ``os.environ`` changed (it would leak into every later test and into
    nbval's kernels, e.g. COURSE_GRADING=1 from loading nbgrader_config.py). Use monkeypatch.setenv."""
    own = "PYTEST_CURRENT_TEST"  # pytest's own, changed at every phase
    before = {k: v for k, v in os.environ.items() if k != own}
    yield
    after = {k: v for k, v in os.environ.items() if k != own}
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        for k in changed:
            if k in before:
                os.environ[k] = before[k]
            else:
                del os.environ[k]
        pytest.fail(f"{request.node.nodeid} left os.environ changed ("
                    + ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed)
                    + "); use monkeypatch.setenv, or restore it", pytrace=False)


@pytest.fixture(scope="session")
def term_demo(tmp_path_factory):
    """A whole term replayed once on the tiny t0_mini course by ``python -m instructor demo``
    (instructor/demo.py: due dates, an on-time, a late, a resubmitted and an extended student,
    ``--jobs 1 --students``, written answers graded for two students, feedback, export, analytics).
    Returns (demo course folder, the demo's output, the source course folder)."""
    from tests.course import build_mini, run_cli

    src = tmp_path_factory.mktemp("term_src")
    build_mini(src)
    work = tmp_path_factory.mktemp("term") / "demo"
    r = run_cli(src, "demo", "--workdir", str(work), timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return work, r.stdout, src


# ---------------------------------------------------------------------------------------------
# Markers by what a test runs (pyproject.toml lists them; `make test-quick` deselects them all):
# kernel (starts Jupyter kernels or notebook processes), nbgrader (the nbgrader command line),
# browser (JupyterLab in headless Chromium), full_profile. Marked here per file so that a new
# test in these files is marked too; mark a new file's tests with `pytestmark = pytest.mark.kernel`.

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

MARKS_BY_FILE = {
    "test_instructor.py": ("nbgrader", "kernel"),
    "test_parallel_autograde.py": ("nbgrader", "kernel"),
    "test_postgres.py": ("nbgrader", "kernel"),
    "test_feedback.py": ("nbgrader", "kernel"),
    "test_release.py": ("nbgrader",),
    "test_browser.py": ("browser", "nbgrader", "kernel"),
    "test_lab.py": ("kernel",),
    "test_full_profile.py": ("kernel",),
    "test_isa.py": ("kernel",),
    "test_lesson.py": ("kernel",),
    "test_benchmarks.py": ("kernel",),
    "test_term.py": ("nbgrader", "kernel"),
    "test_sandbox.py": ("nbgrader", "kernel"),
    "test_sandbox_honest.py": ("nbgrader", "kernel"),
}


# Unit tests that train for long enough to dominate `make test-quick` (measured with --durations:
# these five were 69 % of its time); `slow` here, still run by `make test` and the AVX2 leg.
SLOW_TESTS = {
    "test_training.py::test_restore_best_returns_the_best_epoch_not_the_last",
    "test_training.py::test_cpu_convolutions_never_see_nhwc_whatever_channels_last_or_the_loader_says",
    "test_training.py::test_training_learns_and_history_is_complete",
    "test_training.py::test_schedulers_keep_discriminative_ratios_and_plateau_steps_on_accuracy",
    "test_compression.py::test_compression_never_moves_the_callers_model",
}


# `make test` runs on TEST_JOBS workers (pytest-xdist, `--dist loadgroup`). Each item gets a group that one
# worker runs: a notebook's nbval cells (they share one kernel, in order); the tests of a session
# fixture (built once per worker: they must all land on the same one); else the test file.
SESSION_GROUPS = {"released_course": "released-course", "graded_chapters": "released-course",
                  "term_demo": "term-demo"}


# Files whose tests are independent minutes-long runs: one group per test (their module fixture is
# cheap to build once per worker).
SPLIT_FILES = {"test_full_profile.py"}
# Rough seconds per group (`--durations=0`, 2 workers, summed per group, 2026-12-03): the longest
# groups are handed out first, so that no long group starts last while the other worker idles. Only
# the order matters; a group not listed counts as 0 (they are all short).
GROUP_SECONDS = {
    "released-course": 169, "file-test_full_profile-ch4_compression": 132, "file-test_parallel_autograde": 108,
    "nbval-ch5_recovery": 79, "file-test_sandbox": 69, "nbval-ch2_hotdog": 64,
    "file-test_full_profile-ch5_recovery": 63, "file-test_feedback": 61, "nbval-ch3_unfreezing": 60,
    "file-test_full_profile-ch2_hotdog": 44, "file-test_wrong_answers_ch3": 43, "file-test_instructor": 43,
    "file-test_sandbox_honest": 43, "file-test_benchmarks": 40, "nbval-ch4_compression": 38, "file-test_browser": 37,
    "file-test_wrong_answers_ch5": 28, "nbval-ch1_basics": 26, "file-test_wrong_answers_ch2": 25, "term-demo": 24,
}


def _xdist_group(item, path: Path) -> str:
    if path.suffix == ".ipynb":
        return f"nbval-{path.stem}"  # no "." or ":": xdist parses the name out of the node id
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in SESSION_GROUPS:
            return SESSION_GROUPS[fixture]
    if path.name in SPLIT_FILES and getattr(item, "callspec", None) is not None:
        return f"file-{path.stem}-{item.callspec.id}"
    return f"file-{path.stem}"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    groups = {}
    for item in items:
        path = Path(str(item.fspath))
        groups[item] = _xdist_group(item, path)
        item.add_marker(pytest.mark.xdist_group(groups[item]))
        if path.suffix == ".ipynb":  # nbval: a notebook executed in a kernel (its cells have no originalname)
            item.add_marker(pytest.mark.kernel)
            item.add_marker(pytest.mark.nbval)
            continue
        if f"{path.name}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        marks = MARKS_BY_FILE.get(path.name, ())
        if path.name.startswith("test_wrong_answers_") or path.name.startswith("test_right_answers_"):
            marks = ("kernel",)  # they run a chapter's cells in a kernel (tests/nbrun.py)
        for name in marks:
            item.add_marker(getattr(pytest.mark, name))
    items.sort(key=lambda it: -GROUP_SECONDS.get(groups[it], 0))  # stable: a group keeps its order


# ---------------------------------------------------------------------------------------------
# One released course and one autograded class, shared by every test that needs them (session
# scope): nbgrader's generate_assignment and autograde run once per test session, not per file.
# Tests copy them (shutil.copytree) before changing anything.


@pytest.fixture(scope="session")
def released_course(tmp_path_factory) -> Path:
    """A copy of the course (nbgrader_config.py, solutions/) with every chapter released by the
    instructor CLI (``nbgrader generate_assignment``) into its notebooks/. Do not modify: copy it."""
    from tests.course import ASSIGNMENTS, REPO, run_cli

    course = tmp_path_factory.mktemp("released_course")
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copy(REPO / "Makefile", course)  # `make formgrader` there (tests/test_browser.py)
    shutil.copytree(REPO / "solutions", course / "solutions")
    r = run_cli(course, "release", *ASSIGNMENTS)
    assert r.returncode == 0, r.stdout + r.stderr
    return course


@pytest.fixture(scope="session")
def graded_chapters(released_course, tmp_path_factory):
    """The released course with two students collected and autograded on every chapter: ``perfect``
    (the solutions) and ``empty`` (the untouched release). Returns the course folder and the
    autograde run (``subprocess.CompletedProcess``). Do not modify: copy it."""
    from tests.course import PRESENT, run_cli

    course = tmp_path_factory.mktemp("graded_chapters") / "course"
    shutil.copytree(released_course, course)
    for a in PRESENT:
        for student, folder in (("perfect", "solutions"), ("empty", "notebooks")):
            shutil.copytree(course / folder / a, course / "submitted" / student / a)
    return course, run_cli(course, "autograde", timeout=3000)
