"""``collect``: submissions into ``submitted/``, each with its submission time (``timestamp.txt``).

nbgrader decides lateness (and regrades a resubmission) from ``submitted/<student>/<chapter>/timestamp.txt``.
What is written there:

* folder collect (``FROM/<student>/<chapter>/``): a ``timestamp.txt`` already in the folder (nbgrader's
  exchange writes one) is kept; otherwise the newest modification time of the student's files **as they
  are in FROM** (unzip and ``cp -p`` keep the time the LMS recorded; a plain ``cp`` makes it the copy's time);
* zip collect (LMS downloads): the time in the file name when ``FileNameCollectorPlugin.named_regexp``
  has a ``timestamp`` group (nbgrader's own); otherwise the file's modification time in the download, or for
  a file inside a zip, the time the zip records for it (read as this machine's local time).

A submission already in ``submitted/`` is replaced by a newer one (a resubmission), kept when the
collected one is not newer, and always replaced with ``--force``.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import time
import zipfile
from pathlib import Path

from instructor.course import Course, check_submissions

STAMP = "timestamp.txt"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(" ")


def read_timestamp(folder: Path) -> dt.datetime | None:
    """The submission time in ``folder/timestamp.txt`` (naive UTC, as nbgrader reads it), or None."""
    from nbgrader.utils import parse_utc

    path = folder / STAMP
    if not path.is_file():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except (ValueError, OverflowError):
        return None


def submission_time(folder: Path) -> str:
    """What a collected folder's ``timestamp.txt`` says: its own one, else its newest file's time."""
    if (folder / STAMP).is_file() and read_timestamp(folder) is not None:
        return (folder / STAMP).read_text().strip()
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != STAMP]
    return _iso(max((p.stat().st_mtime for p in files), default=time.time()))


def _copy_submission(src: Path, dest: Path, stamp: str) -> None:
    """``src`` -> ``dest`` with ``timestamp.txt``; an existing ``dest`` is replaced only once the copy is
    complete (a failed copy leaves the old submission as it was)."""
    tmp = dest.with_name(f".{dest.name}.collecting")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    (tmp / STAMP).write_text(stamp + "\n")
    if dest.exists():
        old = dest.with_name(f".{dest.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)


def collect_folder(course: Course, source: Path, force: bool = False) -> tuple[set[str], int]:
    """FROM/<student>/<assignment>/* -> submitted/ (see the module's doc). Returns (students, kept)."""
    from nbgrader.utils import parse_utc

    if not source.is_dir():
        raise SystemExit(f"{source} is not a folder of <student>/<assignment>/ submissions")
    assignments = course.assignments()
    students: set[str] = set()
    kept = 0
    for sdir in sorted(p for p in source.iterdir() if p.is_dir()):
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            if adir.name not in assignments:
                course.problem(f"{sdir.name}/{adir.name}: unknown assignment; not collected")
                continue
            dest = course.submitted / sdir.name / adir.name
            stamp = submission_time(adir)
            old = read_timestamp(dest) if dest.exists() else None
            if dest.exists() and not force:
                if old is not None and parse_utc(stamp) <= old:
                    kept += 1
                    print(f"collect {sdir.name}/{adir.name}: not newer than the one in submitted/ "
                          f"(submitted {old:%Y-%m-%d %H:%M:%S} UTC), kept (--force replaces)")
                    continue
            _copy_submission(adir, dest, stamp)
            students.add(sdir.name)
            what = "resubmission, replaces the one of " + f"{old:%Y-%m-%d %H:%M:%S}" if old else "ok"
            print(f"collect {sdir.name}/{adir.name}: {what} (submitted {parse_utc(stamp):%Y-%m-%d %H:%M:%S} UTC)")
        for f in (p for p in sdir.iterdir() if p.is_file()):
            course.problem(f"{sdir.name}/{f.name}: a file outside an assignment folder; not collected")
    return students, kept


def _download_times(course: Course, files: list[Path]) -> dict[str, float]:
    """student id -> newest time of their files in an LMS download (plain files and zip members),
    matched with the course's ``FileNameCollectorPlugin.named_regexp`` as nbgrader matches them."""
    regexp = course.config.FileNameCollectorPlugin.get("named_regexp")
    if not regexp:
        return {}
    pattern = re.compile(regexp)
    times: dict[str, float] = {}

    def note(name: str, seconds: float) -> None:
        m = pattern.match(name)
        if m and m.groupdict().get("student_id"):
            s = m.group("student_id")
            times[s] = max(times.get(s, 0.0), seconds)

    for f in files:
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as z:
                for info in z.infolist():
                    if not info.is_dir():
                        note("/" + info.filename, time.mktime((*info.date_time, 0, 0, -1)))
        else:
            note(str(f.resolve()), f.stat().st_mtime)
    return times


def collect_zip(course: Course, source: Path, assignment: str) -> set[str]:
    """LMS downloads (files or zips named <student>_<notebook>.ipynb) -> ``nbgrader zip_collect``."""
    archive = course.root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    for f in files:
        shutil.copy2(f, archive / f.name)
    times = _download_times(course, files)
    t0 = time.time() - 1
    r = course.nbgrader("zip_collect", assignment, "--force")
    collected = {p.parent.parent.name for p in course.submitted.glob(f"*/{assignment}/*")
                 if p.stat().st_mtime >= t0}
    for st in sorted(collected):
        folder = course.submitted / st / assignment
        if read_timestamp(folder) is None:  # no time in the file name: the download's own time
            (folder / STAMP).write_text(_iso(times.get(st, time.time())) + "\n")
        print(f"collect {st}/{assignment}: ok (submitted {read_timestamp(folder):%Y-%m-%d %H:%M:%S} UTC)")
    for line in r.stdout.splitlines():
        if "Skipped" in line or "Invalid submission" in line or "did not match" in line:
            course.problem("zip_collect: " + line.split("]", 1)[-1].strip())
    if r.returncode != 0:
        course.problem(f"nbgrader zip_collect {assignment} failed:\n{r.stdout[-2000:]}")
    return collected


def cmd_collect(course: Course, source: Path, zip_assignment: str | None = None, force: bool = False) -> int:
    """Copy a folder in submitted/ layout (FROM/<student>/<assignment>/*) into submitted/, or hand LMS
    downloads (zips or <student>_<notebook>.ipynb files) to ``nbgrader zip_collect``; then check them."""
    kept = 0
    if zip_assignment:
        students = collect_zip(course, source, zip_assignment)
        assignments = [zip_assignment]
    else:
        students, kept = collect_folder(course, source, force)
        assignments = course.assignments()
    if students:
        check_submissions(course, sorted(students), assignments)
    elif not kept:
        course.problem(f"no submission collected from {source}")
    return 1 if course.problems else 0
