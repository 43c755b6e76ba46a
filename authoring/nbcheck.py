"""Checks and sync for the course's source notebooks (``solutions/<a>/<a>.ipynb``).

The source notebooks are the single source of truth; instructors edit them in JupyterLab with
nbgrader's "Create Assignment" toolbar, or edit their jupytext twins ``solutions_py/<a>/<a>.py`` in
a text editor. Two commands::

    python -m authoring sync     # jupytext --sync every pair (the newer file wins), strip outputs
    python -m authoring check    # lint nbgrader metadata and check that every pair is in sync

``check`` exits 1 and prints one line per problem (``PATH: cell N (grade_id): what is wrong``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
TEXT = REPO / "solutions_py"
MARKERS = (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))


def source_notebooks(root: Path = SOLUTIONS) -> list[Path]:
    """``<root>/<a>/<a>.ipynb`` for every assignment folder."""
    return sorted(p for p in root.glob("*/*.ipynb") if p.stem == p.parent.name)


def twin(notebook: Path) -> Path:
    """The jupytext text twin of a source notebook."""
    return TEXT / notebook.parent.name / f"{notebook.stem}.py"


def _where(path: Path, i: int, cell) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"{path}: cell {i}" + (f" ({gid})" if gid else "")


def lint(path: Path) -> list[str]:
    """Problems with one source notebook's structure and nbgrader metadata (empty list: fine)."""
    problems: list[str] = []
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001  (any reading problem is reported, not raised)
        return [f"{path}: not a valid notebook ({err}); restore it with `git checkout -- {path}`"]
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append(f"{path}: kernelspec must be python3 (the course kernel)")
    ids = Counter()
    for i, cell in enumerate(nb.cells):
        where = _where(path, i, cell)
        src = cell.source
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"{where}: has outputs; commit notebooks without outputs (`python -m authoring sync`)")
        for begin, end in MARKERS:
            if src.count(begin) != src.count(end):
                problems.append(f"{where}: unbalanced {begin!r} / {end!r}")
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            for begin, _ in MARKERS:
                if begin in src:
                    problems.append(f"{where}: contains {begin!r} but is not an nbgrader cell")
            continue
        gid = meta.get("grade_id")
        if not gid:
            problems.append(f"{where}: nbgrader cell without a grade_id")
            continue
        ids[gid] += 1
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader schema_version must be 3")
        grade, solution, locked = meta.get("grade"), meta.get("solution"), meta.get("locked")
        if grade and not (isinstance(meta.get("points"), (int, float)) and meta["points"] > 0):
            problems.append(f"{where}: a graded cell needs points > 0")
        if solution and cell.cell_type == "code" and "### BEGIN SOLUTION" not in src:
            problems.append(f"{where}: an autograded answer cell needs ### BEGIN SOLUTION / ### END SOLUTION")
        if grade and not solution and cell.cell_type == "code" and not locked:
            problems.append(f"{where}: a test cell must be read-only (locked)")
        if "### BEGIN HIDDEN TESTS" in src and not (grade and not solution):
            problems.append(f"{where}: hidden tests belong in a graded test cell")
    for gid, n in ids.items():
        if n > 1:
            problems.append(f"{path}: grade_id {gid!r} is used {n} times; grade ids must be unique")
    return problems


def _cells(nb) -> list[tuple[str, str, dict]]:
    return [(c.cell_type, c.source.strip("\n"), c.metadata.get("nbgrader", {})) for c in nb.cells]


def pair_problems(path: Path) -> list[str]:
    """Differences between a source notebook and its text twin (cell type, source, nbgrader metadata)."""
    text = twin(path)
    if not text.exists():
        return [f"{path}: its text twin {text.relative_to(REPO)} is missing; run `python -m authoring sync`"]
    a = _cells(nbformat.read(str(path), as_version=4))
    b = _cells(jupytext.read(str(text)))
    if a == b:
        return []
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return [f"{path}: cell {i} differs from {text.relative_to(REPO)}; run `python -m authoring sync` "
                    "(the file you edited last wins)"]
    return [f"{path}: {len(a)} cells, {text.relative_to(REPO)} has {len(b)}; run `python -m authoring sync`"]


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts in place; True when the file changed."""
    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
    if changed:
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, str(tmp))
        tmp.replace(path)  # atomic: never a half-written notebook
    return changed


def sync() -> int:
    """Strip outputs, then ``jupytext --sync`` every pair (creates missing twins)."""
    notebooks = source_notebooks()
    for nb in notebooks:
        strip_outputs(nb)
    paths = [str(twin(nb)) if twin(nb).exists() and twin(nb).stat().st_mtime > nb.stat().st_mtime else str(nb)
             for nb in notebooks]
    return subprocess.call([sys.executable, "-m", "jupytext", "--sync", *paths], cwd=REPO)


def check() -> int:
    problems = [p for nb in source_notebooks() for p in lint(nb) + pair_problems(nb)]
    for p in problems:
        print(p)
    print(f"{len(source_notebooks())} source notebooks, {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["sync", "check"])
    args = parser.parse_args(argv)
    return sync() if args.command == "sync" else check()
