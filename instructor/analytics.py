"""Class analytics after autograding: which exercise did the class not get?

Per graded cell (an exercise's tests, or a written answer) of every chapter: how many submissions were
graded, the mean score, the share with full points, and the most frequent failure messages (the text
of the failing assertion, as the feedback shows it: :func:`instructor.feedback.failure_message`, read
from the autograded notebooks). Points come from the gradebook; written answers not graded yet are
left out of their mean (and counted as ``pending``). Printed as a table, written as
``analytics.csv`` and plotted (``analytics.png``).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from instructor.course import Course
from instructor.feedback import failure_message


def exercise_stats(course: Course, assignments: list[str] | None = None) -> list[dict]:
    """One dict per graded cell, in notebook order: assignment, notebook, cell, points, kind (auto or
    written), n (graded submissions), pending, mean, full (share with full points), failures
    (Counter of failure messages)."""
    import nbformat

    stats: dict[tuple[str, str, str], dict] = {}
    with course.gradebook() as gb:
        for asg in sorted(gb.assignments, key=lambda a: a.name):
            if assignments and asg.name not in assignments:
                continue
            for nb in asg.notebooks:
                for cell in nb.grade_cells:
                    stats[(asg.name, nb.name, cell.name)] = dict(
                        assignment=asg.name, notebook=nb.name, cell=cell.name, points=float(cell.max_score),
                        kind="auto" if cell.cell_type == "code" else "written", scores=[], pending=0,
                        failures=Counter())
            for sub in gb.assignment_submissions(asg.name):
                for snb in sub.notebooks:
                    for g in snb.grades:
                        entry = stats.get((asg.name, snb.name, g.name))
                        if entry is None:
                            continue
                        if g.manual_score is None and g.auto_score is None:
                            entry["pending"] += 1
                        else:
                            entry["scores"].append(float(g.score))
                    path = course.autograded / sub.student.id / asg.name / f"{snb.name}.ipynb"
                    if not path.is_file():
                        continue
                    for c in nbformat.read(str(path), as_version=4).cells:
                        gid = c.metadata.get("nbgrader", {}).get("grade_id")
                        entry = stats.get((asg.name, snb.name, gid))
                        if entry is None or c.cell_type != "code":
                            continue
                        for out in c.get("outputs", []):
                            if out.output_type == "error":
                                entry["failures"][failure_message(out).splitlines()[0][:100]] += 1
    out = []
    for entry in stats.values():
        scores = entry.pop("scores")
        n = len(scores)
        entry.update(n=n, mean=sum(scores) / n if n else None,
                     full=sum(s >= entry["points"] for s in scores) / n if n else None)
        out.append(entry)
    return out


def format_table(stats: list[dict], top: int = 2) -> str:
    lines = [f"{'exercise':<34} {'kind':<7} {'points':>6} {'n':>3} {'mean':>6} {'full':>5}  most frequent failures"]
    for e in stats:
        name = f"{e['assignment']}/{e['cell']}"
        mean = "-" if e["mean"] is None else f"{e['mean']:.2f}"
        full = "-" if e["full"] is None else f"{e['full']:.0%}"
        fails = "; ".join(f"{m} (x{k})" for m, k in e["failures"].most_common(top))
        if e["pending"]:
            fails = f"{e['pending']} not graded yet" + (f"; {fails}" if fails else "")
        lines.append(f"{name:<34} {e['kind']:<7} {e['points']:>6g} {e['n']:>3} {mean:>6} {full:>5}  {fails}")
    return "\n".join(lines)


def plot(stats: list[dict], path: Path) -> Path:
    """Horizontal bars per exercise: mean score as a share of its points, and the share of students
    with full points. Saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [e for e in stats if e["n"]]
    labels = [f"{e['assignment']}/{e['cell']}" for e in shown]
    mean = [e["mean"] / e["points"] if e["points"] else 0 for e in shown]
    full = [e["full"] for e in shown]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 2.0))
    y = range(len(shown))
    ax.barh([i + 0.2 for i in y], mean, height=0.4, label="mean score (share of the points)")
    ax.barh([i - 0.2 for i in y], full, height=0.4, label="students with full points")
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share")
    ax.set_title(f"Exercises: what the class got ({max((e['n'] for e in shown), default=0)} submissions)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.0 / (len(shown) + 4)), ncol=2, fontsize=8,
              frameon=False)  # under the axis: never over a bar
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def cmd_analytics(course: Course, assignments: list[str] | None = None, png: str = "analytics.png") -> int:
    from instructor.report import write_csv

    stats = exercise_stats(course, assignments)
    if not stats:
        course.problem("analytics: no graded exercise in the gradebook (run make release and make autograde)")
        return 1
    print(format_table(stats))
    dest = Path(png) if Path(png).is_absolute() else course.root / png
    rows = [dict(e, failures="; ".join(f"{m} (x{k})" for m, k in e["failures"].most_common())) for e in stats]
    write_csv(dest.with_suffix(".csv"), list(rows[0]), rows)
    print(f"analytics: table -> {dest.with_suffix('.csv')}, plot -> {plot(stats, dest)}")
    return 0
