"""Due dates, extensions and the late penalty, for the whole term in one place.

``course_calendar.toml`` (course folder) holds every chapter's due date and the students'
extensions::

    [due]                                   # ISO 8601; without a time zone: UTC
    ch1_basics = 2027-02-12T23:59:00Z
    [extensions.alice]                      # nbgrader's Gradebook.grant_extension(minutes/hours/days/weeks)
    ch2_hotdog = { days = 3 }

``make release`` writes the due dates into the gradebook (nbgrader's ``Assignment.duedate``);
``make autograde`` writes them again and grants the extensions of the students it grades, before
nbgrader compares each submission's ``timestamp.txt`` with the due date (plus extension).

The penalty is nbgrader's: its ``AssignLatePenalties`` preprocessor asks a ``LateSubmissionPlugin``
for each late notebook. :class:`LatePenalty` adds a ``per_day`` method to nbgrader's ``none`` and
``zero``; ``nbgrader_config.py`` chooses one (``c.LatePenalty.penalty_method``).
"""
from __future__ import annotations

import datetime as dt
import math
import tomllib
import warnings
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from sqlalchemy.exc import SAWarning
from traitlets import Enum, Float

CALENDAR = "course_calendar.toml"
UNITS = ("minutes", "hours", "days", "weeks")


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-penalty plugin with one more method, ``per_day``: ``per_day`` of the notebook's
    score per started day late (a submission 1 s late loses one day's share), at most ``max_fraction``
    of it. The score is the one at autograding: the auto-graded points (written answers are graded
    later, by hand, and nbgrader does not recompute the penalty then)."""

    penalty_method = Enum(("none", "zero", "per_day"), default_value="none",
                          help="none: no penalty; zero: the score is 0; per_day: per_day of it per started day"
                          ).tag(config=True)
    per_day = Float(0.1, help="Fraction of the notebook's score taken per started day late").tag(config=True)
    max_fraction = Float(1.0, help="At most this fraction of the score is taken").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if self.penalty_method != "per_day":
            return super().late_submission_penalty(student_id, score, total_seconds_late)
        days = math.ceil(total_seconds_late / 86400)
        penalty = round(score * min(self.max_fraction, self.per_day * days), 2)
        self.log.warning("%s is %d day(s) late: penalty %s of %s", student_id, days, penalty, score)
        return penalty


def _utc(value, where: str) -> dt.datetime:
    """A naive UTC datetime (what nbgrader stores) from a TOML datetime or an ISO string."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SystemExit(f"{where}: {value!r} is not an ISO 8601 date and time (e.g. 2027-02-12T23:59:00Z)")
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(23, 59))
    if not isinstance(value, dt.datetime):
        raise SystemExit(f"{where}: {value!r} is not a date and time (e.g. 2027-02-12T23:59:00Z)")
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def load_calendar(root: Path, known: list[str] | None = None) -> tuple[dict[str, dt.datetime], dict]:
    """``(due dates, extensions)`` from ``root/course_calendar.toml``; ``({}, {})`` without the file.
    Unknown chapters and malformed entries are refused with the line to fix."""
    path = Path(root) / CALENDAR
    if not path.is_file():
        return {}, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SystemExit(f"{path}: {err}")
    due = {a: _utc(v, f"{path} [due] {a}") for a, v in data.get("due", {}).items()}
    extensions: dict[str, dict[str, dict[str, float]]] = {}
    for student, per in data.get("extensions", {}).items():
        for a, amount in per.items():
            where = f"{path} [extensions.{student}] {a}"
            if not isinstance(amount, dict) or not amount or set(amount) - set(UNITS):
                raise SystemExit(f"{where}: write the extension as {{ days = 3 }} (units: {', '.join(UNITS)})")
            extensions.setdefault(student, {})[a] = {k: float(v) for k, v in amount.items()}
    for a in [*due, *(a for per in extensions.values() for a in per)]:
        if known is not None and a not in known:
            raise SystemExit(f"{path}: unknown chapter {a!r} (chapters: {', '.join(known)})")
    return due, extensions


def apply_due_dates(course, assignments: list[str]) -> dict[str, dt.datetime]:
    """Write the calendar's due dates of ``assignments`` into the gradebook; returns them."""
    due, _ = load_calendar(course.root, course.assignments())
    chosen = {a: d for a, d in due.items() if a in assignments}
    if chosen:
        with course.gradebook() as gb:
            for a, d in chosen.items():
                gb.update_or_create_assignment(a, duedate=d)
    return chosen


def apply_extensions(course, pairs: list[tuple[str, str]]) -> list[str]:
    """Grant the calendar's extensions for the (student, assignment) ``pairs`` about to be graded
    (the submission row is made first: nbgrader keeps it and its extension). Returns report lines."""
    _, extensions = load_calendar(course.root, course.assignments())
    lines = []
    wanted = [(s, a, extensions[s][a]) for s, a in pairs if a in extensions.get(s, {})]
    if not wanted:
        return lines
    with course.gradebook() as gb, warnings.catch_warnings():
        # nbgrader's add_submission makes SQLAlchemy warn about autoflush ("not in session"): harmless
        warnings.simplefilter("ignore", SAWarning)
        for s, a, amount in wanted:
            gb.update_or_create_student(s)
            gb.update_or_create_submission(a, s)
            gb.grant_extension(a, s, **amount)
            lines.append(f"extension {s}/{a}: " + ", ".join(f"{v:g} {k}" for k, v in amount.items()))
    return lines
