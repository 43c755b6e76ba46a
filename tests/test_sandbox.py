"""The autograde sandbox (issue 19, ``instructor/sandbox.py``): hostile submissions are contained.

One class on the tiny ``t0_mini`` assignment: two honest students are graded first, then one
autograde run (the default, parallel) grades every hostile submission together. Each hostile
student has ``add`` and ``countdown`` right (3 of 6 points) and puts its attack in the ``mul`` cell,
before a wrong ``mul``: whatever the attack does, 3 points is what the submission earned. Attacks
that probe the grader's files or network print ``ATTACK <what> failed: <exception> <message>``
(or ``SUCCEEDED``); attacks on resources raise, so that the sandbox reports them.

For every hostile submission: the course folder outside the hostile students' own ``autograded/``
folders is byte-identical before and after (the gradebook aside, which is compared row by row),
so are ``helpers/``, the virtual environment's torch and a stand-in for the grader's home; the honest
students' grades are intact; each hostile student gets exactly 3 points; each attack failed for the
reason the sandbox gives (no such file in the sandbox, read-only file system, connection refused,
the process limit, the memory limit, ...).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import sys
import threading
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests.course import A, REPO, WRONG_MUL, build_mini, run_cli, variant  # noqa: E402
from test_parallel_autograde import cell_grades, scores  # noqa: E402

sys.path.insert(0, str(REPO))
from instructor import sandbox  # noqa: E402

WHY_NOT = sandbox.probe()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no sandbox here: {WHY_NOT}")

CELL_TIMEOUT = 30  # the sleeper's cell; importing torch in a cell must fit on a loaded machine
ATTEMPT = '''def attempt(what, f):
    try:
        f()
        print("ATTACK", what, "SUCCEEDED")
    except BaseException as e:
        print("ATTACK", what, "failed:", type(e).__name__, e)
'''


def venv_torch() -> Path:
    return Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages" / \
        "torch" / "__init__.py"


def attacks(course: Path, home: Path, port: int) -> dict[str, str]:
    """student -> the code put before the wrong ``mul`` (the paths are the grader's real ones)."""
    return {
        "snoop": ATTEMPT + f'''import os
attempt("read_other_submitted", lambda: open("{course}/submitted/perfect/{A}/{A}.ipynb").read())
attempt("read_other_autograded", lambda: open("{course}/autograded/perfect/{A}/{A}.ipynb").read())
attempt("read_solutions", lambda: open("{course}/solutions/{A}/{A}.ipynb").read())
attempt("read_source", lambda: open("{REPO}/solutions_py/ch1_basics/ch1_basics.py").read())
attempt("read_release", lambda: open("{course}/notebooks/{A}/{A}.ipynb").read())
attempt("read_gradebook", lambda: open("{course}/gradebook.db", "rb").read())
attempt("read_git", lambda: open("{course}/.git/config").read())
attempt("read_ssh_key", lambda: open("{home}/.ssh/id_ed25519").read())
print("LISTING", sorted(os.listdir("{course}")))
''',
        "vandal": ATTEMPT + f'''import os, sqlite3, shutil
def rewrite_gradebook():
    db = sqlite3.connect("{course}/gradebook.db")
    db.execute("UPDATE grade SET auto_score = 100")
    db.commit()
attempt("rewrite_gradebook", rewrite_gradebook)
attempt("delete_gradebook", lambda: os.remove("{course}/gradebook.db"))
attempt("write_other_autograded", lambda: open("{course}/autograded/perfect/{A}/{A}.ipynb", "w").write("{{}}"))
attempt("create_other_autograded", lambda: os.makedirs("{course}/autograded/zz_other/{A}"))
attempt("delete_solutions", lambda: shutil.rmtree("{course}/solutions"))
attempt("write_helpers", lambda: open("{REPO}/helpers/grading.py", "a").write("# poisoned"))
attempt("write_venv", lambda: open("{venv_torch()}", "a").write("# poisoned"))
def write_ssh():
    os.makedirs("{home}/.ssh", exist_ok=True)
    open("{home}/.ssh/authorized_keys", "a").write("ssh-ed25519 EVIL")
attempt("write_ssh", write_ssh)
''',
        "network": ATTEMPT + f'''import socket
attempt("tcp_localhost", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
attempt("tcp_outside", lambda: socket.create_connection(("192.0.2.1", 80), timeout=3))
''',
        "killer": '''import os, time
print("PARENT", os.getppid())
os.kill(os.getppid(), 9)
time.sleep(1)
print("STILL ALIVE")
''',
        "forkbomb": "import os\nwhile True:\n    os.fork()\n",
        "hog": "memory = bytearray(50 * 2**30)\n",
        "flood": "for _ in range(1024):\n    print('x' * 2**20)\n",
        "flood_once": "import sys\nsys.stdout.write('y' * 2**30)\n",
        "bigfile": "with open('big.bin', 'wb') as f:\n    for _ in range(1024):\n        f.write(b'0' * 2**20)\n",
        "sleeper": "import time\ntime.sleep(10**6)\n",
        "patcher": "import torch\ntorch.allclose = lambda *args, **kwargs: True\n",
    }


HOSTILE_POINTS = 3.0  # add (2) and countdown (1); mul is wrong whatever the attack does
HONEST = {"perfect": 6.0, "wrong_mul": 3.0}
EXPECTED_FAILURES = {  # student -> {attack: exception the sandbox makes it fail with}
    "snoop": {"read_other_submitted": "FileNotFoundError", "read_other_autograded": "FileNotFoundError",
              "read_solutions": "FileNotFoundError", "read_source": "FileNotFoundError",
              "read_release": "FileNotFoundError", "read_gradebook": "FileNotFoundError",
              "read_git": "FileNotFoundError", "read_ssh_key": "FileNotFoundError"},
    "vandal": {"rewrite_gradebook": "OperationalError", "delete_gradebook": "OSError",
               "write_other_autograded": "FileNotFoundError", "create_other_autograded": "OSError",
               "delete_solutions": "FileNotFoundError", "write_helpers": "OSError", "write_venv": "OSError",
               "write_ssh": "OSError"},
    "network": {"tcp_localhost": "ConnectionRefusedError", "tcp_outside": "OSError"},
}
LIMITS = {"forkbomb": "process", "hog": "memory", "flood": "output", "flood_once": "output", "bigfile": "file size"}


def tree_hash(root: Path, skip=lambda rel: False) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.is_symlink() and not skip(rel):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Listener:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.accepted: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(addr)
            conn.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("sandbox")
    course, home = base / "course", base / "home"
    course.mkdir()
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY----- (a stand-in)\n")
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "migrated").write_text("")  # else Jupyter (the grader's side) writes it on first use
    (course / ".git").mkdir()
    (course / ".git" / "config").write_text("[core]\n\tbare = false\n")
    build_mini(course)
    assert run_cli(course, "release").returncode == 0
    sol, inbox = course / "solutions" / A / f"{A}.ipynb", course / "inbox"
    variant(sol, inbox / "honest" / "perfect" / A / f"{A}.ipynb")
    variant(sol, inbox / "honest" / "wrong_mul" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL})
    out = {"collect1": run_cli(course, "collect", str(inbox / "honest"))}
    out["honest"] = run_cli(course, "autograde")
    honest_cells = cell_grades(course)

    listener = Listener()
    for student, code in attacks(course, home, listener.port).items():
        variant(sol, inbox / "hostile" / student / A / f"{A}.ipynb", {"mul_impl": code + WRONG_MUL})
    out["collect2"] = run_cli(course, "collect", str(inbox / "hostile"))
    skip = lambda rel: rel.startswith(("gradebook.db", "autograde_audit.json", "autograded/", "submitted/"))  # noqa: E731
    before = {"course": tree_hash(course, skip), "autograded": tree_hash(course / "autograded"),
              "helpers": tree_hash(REPO / "helpers", lambda rel: "__pycache__" in rel),
              "torch": hashlib.sha256(venv_torch().read_bytes()).hexdigest(),
              "home": tree_hash(home), "submitted": tree_hash(course / "submitted")}
    env_home = os.environ.get("HOME")
    set_mpl = "MPLCONFIGDIR" not in os.environ
    os.environ.setdefault("MPLCONFIGDIR", str(sandbox._mpl_cache()))  # the grader's font cache, not the stand-in's
    os.environ["HOME"] = str(home)  # the grader's home, as the hostile kernels would know it
    try:
        out["hostile"] = run_cli(course, "autograde", "--timeout", str(CELL_TIMEOUT))
    finally:
        os.environ["HOME"] = env_home or ""
        if set_mpl:
            del os.environ["MPLCONFIGDIR"]
    listener.sock.close()
    after = {"course": tree_hash(course, skip),
             "autograded": tree_hash(course / "autograded", lambda rel: rel.split("/")[0] not in HONEST),
             "helpers": tree_hash(REPO / "helpers", lambda rel: "__pycache__" in rel),
             "torch": hashlib.sha256(venv_torch().read_bytes()).hexdigest(),
             "home": tree_hash(home), "submitted": tree_hash(course / "submitted")}
    return course, out, before, after, honest_cells, listener


def cell_output(course: Path, student: str, grade_id: str = "mul_impl") -> tuple[str, list]:
    nb = nbformat.read(str(course / "autograded" / student / A / f"{A}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    errors = [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]
    return text, errors


def test_autograde_says_which_isolation(graded):
    _, out, *_ = graded
    for run in ("honest", "hostile"):
        assert re.search(r"^isolation: bubblewrap \S+ per student kernel \(no network", out[run].stdout, re.M), \
            out[run].stdout


def test_course_and_grader_files_unchanged(graded):
    course, out, before, after, *_ = graded
    log = out["hostile"].stdout + out["hostile"].stderr
    assert after["course"] == before["course"], log  # solutions, release, config, .git, inbox
    assert after["submitted"] == before["submitted"]
    assert after["helpers"] == before["helpers"]
    assert after["home"] == before["home"]
    assert after["torch"] == before["torch"]
    assert after["autograded"] == before["autograded"]  # the honest students' graded notebooks
    assert not (course / "autograded" / "zz_other").exists()
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_honest_grades_intact_and_hostile_get_what_they_earned(graded):
    course, out, _, _, honest_cells, _ = graded
    log = out["hostile"].stdout + out["hostile"].stderr
    got = scores(course)
    assert {s: got[s] for s in HONEST} == HONEST
    assert [r for r in cell_grades(course) if r[0] in HONEST] == honest_cells
    hostile = {s: got.get(s) for s in attacks(course, course, 0)}
    assert hostile == {s: HOSTILE_POINTS for s in hostile}, log


@pytest.mark.parametrize("student", sorted(EXPECTED_FAILURES))
def test_each_attack_fails_for_the_sandboxs_reason(graded, student):
    course = graded[0]
    text, _ = cell_output(course, student)
    found = {what: ename or "SUCCEEDED" for what, ename in re.findall(r"^ATTACK (\S+) (?:failed: (\w+)|SUCCEEDED)",
                                                                    text, re.M)}
    assert found == EXPECTED_FAILURES[student], text
    if student == "vandal":  # read-only binds, and a read-only sandbox root
        assert "write_helpers failed: OSError [Errno 30] Read-only file system" in text, text
        assert "write_venv failed: OSError [Errno 30] Read-only file system" in text, text
        assert "rewrite_gradebook failed: OperationalError unable to open database file" in text, text
    if student == "network":
        assert "Connection refused" in text and "Network is unreachable" in text, text


def test_only_its_own_folder_is_visible(graded):
    text, _ = cell_output(graded[0], "snoop")
    assert "LISTING ['autograded']" in text, text  # the course folder holds only the mount point of its own


def test_no_connection_reached_the_server(graded):
    assert graded[5].accepted == []


def test_killing_the_parent_kills_nothing(graded):
    text, errors = cell_output(graded[0], "killer")
    assert "PARENT 1\n" in text and "STILL ALIVE" in text and not errors, (text, errors)


@pytest.mark.parametrize("student", sorted(LIMITS))
def test_resource_limits_stop_the_cell_and_are_reported(graded, student):
    course, out = graded[0], graded[1]
    text, errors = cell_output(course, student)
    if student.startswith("flood"):  # the kernel's stream drops what passes 8 MiB; the cell completes
        assert not errors and len(text) <= (8 << 20) + 200, (errors, len(text))
        assert text.endswith("[autograde sandbox] output limit reached: the rest of this notebook's output "
                             "is dropped\n"), text[-300:]
    else:
        ename = {"forkbomb": "BlockingIOError", "hog": "MemoryError", "bigfile": "OSError"}[student]
        assert errors and errors[0][0] == ename, (errors, text[:300])
    if student == "forkbomb":
        assert "Resource temporarily unavailable" in errors[0][1]
    if student == "bigfile":
        assert "File too large" in errors[0][1]
        assert (course / "autograded" / student / A / "big.bin").stat().st_size <= 256 << 20
    assert re.search(rf"^PROBLEM {student}/{A}/{A}\.ipynb hit the sandbox's {LIMITS[student]} limit", out["hostile"].stdout,
                     re.M), out["hostile"].stdout
    assert out["hostile"].returncode == 1


def test_sleeping_forever_is_interrupted(graded):
    _, errors = cell_output(graded[0], "sleeper")
    assert errors and errors[0][0] in ("CellTimeoutError", "KeyboardInterrupt"), errors


def test_monkeypatching_is_flagged_by_the_audit(graded):
    _, out, *_ = graded
    assert re.search(rf"SUSPICIOUS patcher/{A}/{A}\.ipynb \[mul_impl, line 2\]: .*torch\.allclose", out["hostile"].stdout), \
        out["hostile"].stdout
    report = json.loads((graded[0] / "autograde_audit.json").read_text())
    assert report[f"patcher/{A}/{A}.ipynb"]


# ---------------------------------------------------------------------------------------------
# refusing to grade without a sandbox


def test_refuses_without_bubblewrap_unless_sandbox_0(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    build_mini(course)
    (course / "submitted" / "alice" / A).mkdir(parents=True)
    (course / "submitted" / "alice" / A / f"{A}.ipynb").write_text((REPO / "tests" / "fixtures" / A / f"{A}.ipynb")
                                                                  .read_text())
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no bwrap on PATH
    env.pop("SANDBOX", None)
    import subprocess

    r = subprocess.run([sys.executable, str(REPO / "instructor" / "cli.py"), "--course", str(course), "autograde"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "PROBLEM autograde refused: bubblewrap (bwrap) is not installed" in r.stdout
    assert "sudo apt-get install bubblewrap" in r.stdout and "apparmor" in r.stdout and "SANDBOX=0" in r.stdout
    assert not (course / "autograded").exists()
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from instructor import sandbox; print(sandbox.activate('0'))", str(REPO)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.stdout.splitlines() == ["isolation: none (SANDBOX=0): student code runs with your rights, network "
                                     "included (README, Security)", "none"], r.stdout + r.stderr


def test_seccomp_program_is_well_formed():
    for machine in ("x86_64", "aarch64"):
        prog = sandbox.seccomp_filter(machine)
        assert prog is not None and len(prog) % 8 == 0 and len(prog) // 8 < 256
    assert sandbox.seccomp_filter("sparc64") is None
