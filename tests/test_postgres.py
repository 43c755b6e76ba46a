"""The PostgreSQL gradebook, for real (issue #12, part 3): a PostgreSQL server started for the test
(Debian's ``postgresql`` package, which ``make system-packages`` installs, as ``make test`` does;
``initdb`` in a temporary folder as an unprivileged user, listening on 127.0.0.1 only, stopped at
the end), ``NBGRADER_DB_URL`` pointed at it, then release -> collect -> two concurrent parallel
autogrades (two grading machines) -> export on ``t0_mini``: the scores that the SQLite gradebook
gives the same students (``tests/test_parallel_autograde.py`` grades them on SQLite).

Skipped, with the reason, only where PostgreSQL is not installed.
"""
from __future__ import annotations

import csv
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.course import A, CLI, WRONG_MUL, build_mini, variant

# what the SQLite gradebook gives these students (tests/test_parallel_autograde.py: same notebooks)
EXPECTED = {"perfect": 6.0, "empty": 0.0, "wrong_mul": 3.0, "perfect2": 6.0}


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A throwaway PostgreSQL cluster owned by an unprivileged user (``postgres``, else ``nobody``)."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="pg-gradebook-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                break
            if self.user is None:
                raise RuntimeError("no unprivileged user (postgres, nobody) to run initdb as")
        os.chmod(self.dir, 0o700)

    def run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        full = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.user:
            full = ["runuser", "-u", self.user, "--", *full]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def start(self) -> str:
        self.run("initdb", "-D", str(self.data), "-U", "grader", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o",
                 f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off", "start")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "grader", "gradebook")
        return f"postgresql://grader@127.0.0.1:{self.port}/gradebook"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url():
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): `make system-packages` "
                    "installs Debian's postgresql, as root (`make test` does)")
    server = Server()
    try:
        yield server.start()
    finally:
        server.stop()


def make_class(course: Path) -> None:
    build_mini(course)
    sol = course / "solutions" / A / f"{A}.ipynb"
    inbox = course / "inbox"
    variant(sol, inbox / "perfect" / A / f"{A}.ipynb")
    variant(sol, inbox / "perfect2" / A / f"{A}.ipynb")
    variant(sol, inbox / "empty" / A / f"{A}.ipynb", {"add_impl": "raise NotImplementedError()",
                                                      "mul_impl": "raise NotImplementedError()",
                                                      "countdown_impl": "raise NotImplementedError()"})
    variant(sol, inbox / "wrong_mul" / A / f"{A}.ipynb", {"mul_impl": WRONG_MUL})


def cli(course: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CLI), "--course", str(course), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def term(course: Path, env: dict[str, str], machines: int = 1) -> tuple[dict[str, float], str]:
    """release -> collect -> autograde --jobs 2 -> export; the exported scores and the log. With
    ``machines`` = 2 the class is split in two lists graded at the same time by two CLI processes
    (what two grading machines sharing the course folder and the gradebook do)."""
    log = ""

    def wait(*procs: subprocess.Popen) -> None:
        nonlocal log
        for p in procs:
            out, _ = p.communicate(timeout=600)
            log += out
            assert p.returncode == 0, log

    wait(cli(course, env, "release"))
    wait(cli(course, env, "collect", str(course / "inbox")))
    if machines == 1:
        wait(cli(course, env, "autograde", "--jobs", "2"))
    else:
        students = sorted(EXPECTED)
        shares = [",".join(students[i::machines]) for i in range(machines)]
        wait(*[cli(course, env, "autograde", "--jobs", "2", "--students", share) for share in shares])
    wait(cli(course, env, "export", "--to", "grades.csv"))
    with (course / "grades.csv").open() as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == A}, log


def test_postgres_gradebook_end_to_end(postgres_url, tmp_path):
    t0 = time.perf_counter()
    pg_course = tmp_path / "pg"
    pg_course.mkdir()
    make_class(pg_course)
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_DB_URL"}
    pg_scores, log = term(pg_course, dict(env, NBGRADER_DB_URL=postgres_url), machines=2)
    assert not (pg_course / "gradebook.db").exists(), "the SQLite file was used instead of PostgreSQL"
    assert pg_scores == EXPECTED, log

    # the rows are in PostgreSQL: read them back (SQLAlchemy 2.1 maps postgresql:// to psycopg 3)
    from nbgrader.api import Gradebook

    with Gradebook(postgres_url, "finetuning-course") as gb:
        assert gb.engine.dialect.name == "postgresql"
        assert {s.id: gb.find_submission(A, s.id).code_score for s in gb.students} == EXPECTED
        assert sum(len(gb.find_submission(A, s).notebooks[0].grades) for s in EXPECTED) == 4 * len(EXPECTED)
    print(f"PostgreSQL end to end (after the server started) {time.perf_counter() - t0:.1f} s")
