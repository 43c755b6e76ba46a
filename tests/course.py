"""What the nbgrader tests share (imported by them and by ``conftest.py``'s session fixtures): the
instructor CLI run on a temporary copy of the course, the tiny ``t0_mini`` assignment and students'
notebooks made from a source notebook."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "instructor" / "cli.py"
A = "t0_mini"  # three autograded exercises worth 2 + 3 + 1 points and a written answer worth 2
WRONG_MUL = "def mul(a, b):\n    return a + b"
CHAPTERS = ["ch1_basics", "ch2_hotdog", "ch3_unfreezing", "ch4_compression", "ch5_recovery"]
PRESENT = [a for a in CHAPTERS if (REPO / "solutions" / a / f"{a}.ipynb").is_file()]
# every assignment in solutions/ (what `make release` releases)
ASSIGNMENTS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def run_cli(course: Path, *args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLI), "--course", str(course), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def build_mini(course: Path) -> None:
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(REPO / "tests" / "fixtures" / A, course / "solutions" / A)


def variant(src: Path, dest: Path, replace: dict[str, str] | None = None, drop: tuple[str, ...] = (),
            meta: dict[str, dict] | None = None) -> None:
    """A student's notebook: ``src`` with cells (by grade_id) replaced, dropped or their metadata edited."""
    nb = nbformat.read(str(src), as_version=4)
    cells = []
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in drop:
            continue
        if gid in (replace or {}):
            cell.source = replace[gid]
        if gid in (meta or {}):
            cell.metadata["nbgrader"].update(meta[gid])
        cells.append(cell)
    nb.cells = cells
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def source_points(course: Path, assignment: str = A) -> tuple[float, float]:
    """(auto-graded points, points graded by hand) of ``assignment``, read from its source notebooks
    (never hard-coded: chapters change their exercises)."""
    auto = hand = 0.0
    for path in sorted((course / "solutions" / assignment).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                if cell.cell_type == "code":
                    auto += float(meta.get("points", 0))
                else:
                    hand += float(meta.get("points", 0))
    return auto, hand
