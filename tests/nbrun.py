"""Run (parts of) course notebooks in a real kernel, optionally with an answer cell replaced.

Used to prove that hidden tests fail the classic wrong answers::

    from tests.nbrun import run_until
    failed = run_until("solutions/ch3_unfreezing/ch3_unfreezing.ipynb", "unfreezer_tests",
                       replace={"unfreezer_impl": WRONG_SOURCE})
    assert failed["unfreezer_tests"]          # the wrong answer is caught

``run_cells`` returns *why* each graded cell failed, so a test can assert that the wrong answer was
caught by the right check (not by a ``NameError`` or by another exercise's failure)::

    errors = run_cells(NB, "unfreezer_tests", replace={"unfreezer_impl": WRONG_SOURCE})
    assert_caught(errors, "unfreezer_tests", "the head must be trainable from the first epoch")
    assert_passes(errors, ["freeze_tests", "warmup_tests"])   # and nothing else broke
"""
from __future__ import annotations

import atexit
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


@dataclass(frozen=True)
class CellError:
    """The error a cell raised: exception name and message (``evalue``)."""

    ename: str
    evalue: str

    def __str__(self) -> str:
        return f"{self.ename}: {self.evalue}"


# One kernel per test process, reused by every run: ``%reset -f`` empties the namespace between
# runs, so a run starts as a fresh kernel would, except that modules already imported stay in
# ``sys.modules`` (importing torch and the helpers again costs nothing: ~5 s of the ~8 s a fresh
# kernel takes to start and import). The first cell of every run resets what a run may leave behind
# and gives the kernel the caller's COURSE_* variables (e.g. COURSE_GRADING=1 set by a test), as a
# kernel started now would have.
_RESET = """\
%reset -f
import os as _os, torch as _torch, matplotlib.pyplot as _plt
_os.chdir({cwd!r})
[_os.environ.pop(_name) for _name in [n for n in _os.environ if n.startswith("COURSE_")]]
_os.environ.update({env!r})
_torch.set_grad_enabled(True)
_plt.close("all")
del _os, _torch, _plt"""
_KM: KernelManager | None = None


def _kernel() -> KernelManager:
    global _KM
    if _KM is None or not _KM.is_alive():
        _drop_kernel()
        env = {**os.environ, "COURSE_PROFILE": "fast"}
        _KM = KernelManager(kernel_name="python3")
        _KM.start_kernel(env=env, cwd=str(REPO))
    return _KM


def _drop_kernel() -> None:
    global _KM
    if _KM is not None:
        try:
            _KM.shutdown_kernel(now=True)
        except Exception:  # already dead
            pass
        _KM = None


atexit.register(_drop_kernel)


def run_cells(notebook: str | Path, last_grade_id: str, replace: dict[str, str] | None = None,
              timeout: int = 300) -> dict[str, CellError | None]:
    """Execute the notebook's cells up to and including the cell ``last_grade_id`` (errors do not
    stop execution), with the sources of the cells named in ``replace`` swapped in. Returns
    ``{grade_id: CellError or None}`` for every executed code cell that has a grade id."""
    path = REPO / notebook
    nb = nbformat.read(str(path), as_version=4)
    ids = [grade_id(c) for c in nb.cells]
    if last_grade_id not in ids:
        raise KeyError(f"{notebook} has no cell with grade_id {last_grade_id!r}")
    for gid in replace or {}:
        if gid not in ids:
            raise KeyError(f"{notebook} has no cell with grade_id {gid!r}")
    nb.cells = nb.cells[: ids.index(last_grade_id) + 1]
    for cell in nb.cells:
        if grade_id(cell) in (replace or {}):
            cell.source = replace[grade_id(cell)]
    env = {k: v for k, v in os.environ.items() if k.startswith("COURSE_")}
    env["COURSE_PROFILE"] = "fast"
    nb.cells.insert(0, nbformat.v4.new_code_cell(_RESET.format(cwd=str(path.parent), env=env)))
    km = _kernel()
    client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True)
    try:
        client.execute()
    except BaseException:  # a timeout or a dead kernel: never reuse that kernel
        _drop_kernel()
        raise
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    result: dict[str, CellError | None] = {}
    for c in nb.cells:
        if c.cell_type == "code" and grade_id(c):
            err = next((o for o in c.get("outputs", []) if o.get("output_type") == "error"), None)
            result[grade_id(c)] = CellError(err["ename"], err["evalue"]) if err else None
    return result


def assert_caught(errors: dict[str, CellError | None], test_id: str, message: str,
                  ename: str = "AssertionError") -> None:
    """The test cell ``test_id`` failed with ``ename`` whose message contains ``message`` (a regular
    expression, searched): the wrong answer was caught by the check meant for it."""
    err = errors.get(test_id)
    assert err is not None, f"{test_id} passed: the wrong answer was not caught"
    assert err.ename == ename and re.search(message, err.evalue), \
        f"{test_id} failed for another reason than expected ({ename}: /{message}/): {err}"


def assert_passes(errors: dict[str, CellError | None], test_ids: list[str] | tuple[str, ...]) -> None:
    """Each cell in ``test_ids`` ran without error."""
    failed = {t: str(errors[t]) for t in test_ids if errors.get(t) is not None}
    missing = [t for t in test_ids if t not in errors]
    assert not missing, f"not executed: {missing}"
    assert not failed, f"cells failed: {failed}"


def run_until(notebook: str | Path, last_grade_id: str, replace: dict[str, str] | None = None,
              timeout: int = 300) -> dict[str, bool]:
    """Like :func:`run_cells`, but only ``{grade_id: raised}``."""
    return {gid: err is not None for gid, err in run_cells(notebook, last_grade_id, replace, timeout).items()}
