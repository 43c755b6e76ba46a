"""Feedback that keeps hidden tests hidden (nbgrader issues #917, #1363).

``nbgrader generate_feedback`` renders the autograded notebook as it is: every hidden test verbatim,
``### BEGIN HIDDEN TESTS`` markers included, and IPython tracebacks that print the failing source
lines. :class:`HideHiddenTests` is a preprocessor of nbgrader's feedback pipeline
(``c.GenerateFeedback.preprocessors`` in ``nbgrader_config.py``) that runs on the notebook before
it is converted to HTML, so nothing of a hidden test reaches the HTML (cells, outputs, or the
notebook JSON some templates embed):

* the hidden region of a test cell is replaced by one comment line (visible tests in the same cell,
  and the student's own cells, stay as they are);
* an error in a cell with hidden tests is shown as its failure message only
  (``AssertionError: the stem is conv1 and its BatchNorm bn1``), not as a traceback;
* any output line of any cell that repeats a line of a hidden test is dropped (a traceback from a
  student's function called by a hidden test, a ``print`` in a test);
* the cell's points and pass/fail come from nbgrader's own ``GetGrades`` (unchanged).

``HideHiddenTests.full = True`` (``python -m instructor feedback --full``) releases the full
feedback, hidden tests included.
"""
from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Unicode

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# a source line in an IPython traceback: "---> 12 code", "     13 code", "File <...>:12", "Cell In[3], line 12"
TB_LINE = re.compile(r"^\s*(?:-*>\s*)?\d+\s(.*)$")
MIN_LEN = 6  # shorter hidden lines (")", "pass", "else:") are not secrets and would match anything


def failure_message(output) -> str:
    """What a failed test says: ``AssertionError: the stem is conv1 and its BatchNorm bn1`` (the
    exception's name alone when it has no message). Used for the feedback and the class analytics."""
    ename, evalue = output.get("ename", ""), output.get("evalue", "")
    return f"{ename}: {evalue}" if evalue else ename


def _norm(line: str) -> str:
    return " ".join(line.split())


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests from the feedback notebook; keep points, pass/fail and failure messages."""

    full = Bool(False, help="Release full feedback: hidden tests and tracebacks included").tag(config=True)
    begin = Unicode("BEGIN HIDDEN TESTS", help="Delimiter of the start of hidden tests").tag(config=True)
    end = Unicode("END HIDDEN TESTS", help="Delimiter of the end of hidden tests").tag(config=True)
    placeholder = Unicode("# (hidden tests: not shown in feedback)",
                          help="What replaces a hidden-test region in the feedback").tag(config=True)

    def _split(self, source: str) -> tuple[str, list[str]]:
        """``(source without hidden regions, hidden lines)``; an unterminated region hides the rest."""
        kept, hidden, inside = [], [], False
        for line in source.split("\n"):
            if self.begin in line:
                inside = True
                kept.append(re.match(r"\s*", line).group(0) + self.placeholder)
            elif self.end in line and inside:
                inside = False
            elif inside:
                hidden.append(line)
            else:
                kept.append(line)
        return "\n".join(kept), hidden

    def preprocess(self, nb, resources):
        if self.full:
            return nb, resources
        hidden_cells: set[int] = set()
        secrets: set[str] = set()
        for i, cell in enumerate(nb.cells):
            if self.begin not in cell.source:
                continue
            cell.source, hidden = self._split(cell.source)
            hidden_cells.add(i)
            secrets.update(s for s in map(_norm, hidden) if len(s) >= MIN_LEN)
        # a hidden line the student also wrote (e.g. "import torch") is not a secret
        visible = {_norm(ln) for c in nb.cells for ln in c.source.split("\n")}
        secrets -= visible
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            outputs = []
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    if i in hidden_cells:  # the failure message, not the failing source
                        out.traceback = [failure_message(out)]
                    else:
                        out.traceback = self._scrub(out.traceback, secrets)
                    out.evalue = "\n".join(self._scrub(out.evalue.split("\n"), secrets))
                elif out.output_type == "stream":
                    out.text = "\n".join(self._scrub(out.text.split("\n"), secrets))
                elif out.output_type in ("execute_result", "display_data"):
                    data = out.get("data", {})
                    for mime in list(data):
                        if isinstance(data[mime], str) and mime.startswith("text/"):
                            data[mime] = "\n".join(self._scrub(data[mime].split("\n"), secrets))
                outputs.append(out)
            cell.outputs = outputs
        nb.metadata.pop("celltoolbar", None)
        return nb, resources

    @staticmethod
    def _scrub(lines: list[str], secrets: set[str]) -> list[str]:
        """``lines`` (each may hold several lines) without any line that shows a hidden source line."""
        if not secrets:
            return list(lines)
        out = []
        for entry in lines:
            keep = []
            for line in entry.split("\n"):
                plain = ANSI.sub("", line)
                m = TB_LINE.match(plain)
                code = _norm(m.group(1)) if m else _norm(plain)
                if code in secrets or _norm(plain) in secrets or any(s in plain for s in secrets if len(s) >= 20):
                    keep.append("    (hidden test line not shown)" if m else "(hidden test output not shown)")
                    continue
                keep.append(line)
            out.append("\n".join(keep))
        return out

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources

