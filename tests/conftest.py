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
    from minicourse import build_mini, run_cli

    src = tmp_path_factory.mktemp("term_src")
    build_mini(src)
    work = tmp_path_factory.mktemp("term") / "demo"
    r = run_cli(src, "demo", "--workdir", str(work), timeout=1800)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return work, r.stdout, src
