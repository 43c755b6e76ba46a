"""Authoring tools for the course notebooks (nbgrader source notebooks in ``solutions/``).

Build a notebook from cells with the right nbgrader metadata, written without outputs::

    from scripts.nbtools import md, code, solution, tests, written, answer, write
    write("solutions/ch1_basics/ch1_basics.ipynb", [
        md("# Title"), code("import helpers\\nprofile = helpers.setup()"),
        solution("def f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION", "f_impl"),
        tests("assert f(1) == 1\\n### BEGIN HIDDEN TESTS\\nassert f(2) == 2\\n### END HIDDEN TESTS",
              "f_tests", points=2),
        written("**Question (2 points).** Why ...?", "q1_text"), answer("q1", points=2),
    ])

``python -m scripts.nbtools strip PATH...`` removes outputs and execution counts in place.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SCHEMA = 3


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None,
          task: bool = False) -> dict:
    m = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA,
         "solution": solution, "task": task}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def md(text: str) -> nbformat.NotebookNode:
    """Plain prose (not part of grading)."""
    return new_markdown_cell(text.strip("\n"))


def code(src: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    """Plain code (not graded); ``tags`` e.g. ``["raises-exception"]``."""
    cell = new_code_cell(src.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def locked_md(text: str, grade_id: str) -> nbformat.NotebookNode:
    """Read-only prose, e.g. an exercise statement students must not edit."""
    return new_markdown_cell(text.strip("\n"), metadata=_meta(grade_id, grade=False, solution=False, locked=True))


def solution(src: str, grade_id: str) -> nbformat.NotebookNode:
    """Autograded answer cell: the part between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` is
    replaced by a stub in the release."""
    assert "### BEGIN SOLUTION" in src, "a solution cell needs ### BEGIN SOLUTION / ### END SOLUTION"
    return new_code_cell(src.strip("\n"), metadata=_meta(grade_id, grade=False, solution=True, locked=False))


def tests(src: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """Locked, graded test cell; ``### BEGIN HIDDEN TESTS`` .. ``### END HIDDEN TESTS`` are removed
    from the release and restored at autograding."""
    return new_code_cell(src.strip("\n"), metadata=_meta(grade_id, grade=True, solution=False, locked=True,
                                                         points=points))


def written(text: str, grade_id: str) -> nbformat.NotebookNode:
    """Locked statement of a manually graded question."""
    return locked_md(text, grade_id)


def answer(grade_id: str, points: float, text: str = "YOUR ANSWER HERE") -> nbformat.NotebookNode:
    """Manually graded written answer (markdown, ``grade`` + ``solution``)."""
    return new_markdown_cell(text, metadata=_meta(grade_id, grade=True, solution=True, locked=False,
                                                   points=points))


def write(path: str | Path, cells: list) -> Path:
    """Write a notebook (no outputs, Python 3 kernel) and validate it. Cell ids are derived from the
    position (and grade id), so rebuilding an unchanged notebook gives identical bytes."""
    for i, cell in enumerate(cells):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        cell["id"] = f"c{i:03d}" + (f"-{gid}" if gid else "")
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def strip(path: str | Path) -> None:
    """Remove outputs and execution counts in place."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, str(path))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "strip":
        for p in sys.argv[2:]:
            strip(p)
    else:
        print(__doc__)
