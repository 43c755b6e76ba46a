"""Feedback keeps hidden tests hidden (issue #12, nbgrader #917): ``instructor feedback`` on the real
ch3 (seven hidden-test blocks), for a student who fails hidden tests and one who passes them.

No line of a hidden-test block and no ``BEGIN HIDDEN TESTS`` marker may appear anywhere in the HTML
(visible text, highlighted code, attributes, embedded JSON), while each failure message, the points
and the visible tests do. ``--full`` (the instructor's option) does show the hidden tests: the same
checks fail on it, which shows they can fail.
"""
from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "instructor" / "cli.py"
A = "ch3_unfreezing"
SOURCE = REPO / "solutions" / A / f"{A}.ipynb"

# the failing student: visible tests pass, hidden tests fail with these messages
WRONG = {
    "layer_groups_impl": 'def get_layer_groups(net):\n    return {"stem": [net.conv1, net.bn1], "layer1": [net.layer1], '
                         '"layer2": [net.layer2],\n            "layer3": [net.layer3], "layer4": [net.layer4], '
                         '"head": [net.fc]}',
}
# the groups written out for ResNet-18 pass the visible test and fail the hidden variant (deeper stem, 3 stages)
MESSAGES = ["derive the groups from net.named_children(): on a net with a deeper stem, three stages and a "
            "two-layer head your function raised AttributeError"]


def run_cli(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLI), "--course", str(course), *args], capture_output=True,
                          text=True, timeout=timeout)


def hidden_lines(nb_path: Path) -> list[str]:
    """Every line of every hidden-test block of the source notebook (whitespace-normalised) that is
    not already public, i.e. in the student's release (e.g. ``tiny = grading.tiny_net()``), and is
    long enough to be a secret (not ``)`` or ``else:``)."""
    nb = nbformat.read(str(nb_path), as_version=4)
    lines, inside = [], False
    for cell in nb.cells:
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside:
                lines.append(" ".join(line.split()))
    chapter = nb_path.stem
    release = nbformat.read(str(nb_path.parent.parent.parent / "notebooks" / chapter / f"{chapter}.ipynb"),
                            as_version=4)
    public = "\n".join(" ".join(ln.split()) for c in release.cells for ln in c.source.split("\n"))
    return [ln for ln in lines if len(ln) >= 6 and ln not in public]


def graded_points(nb_path: Path) -> dict[str, float]:
    """``{grade_id: points}`` of the autograded test cells of a source notebook."""
    nb = nbformat.read(str(nb_path), as_version=4)
    return {m["grade_id"]: float(m["points"]) for c in nb.cells
            if (m := c.metadata.get("nbgrader", {})).get("grade") and not m.get("solution")}


def html_views(page: str) -> list[str]:
    """The page as raw HTML, as text (tags removed, entities decoded, code highlighting undone), and
    with JSON string escapes decoded (an embedded notebook), all whitespace-normalised."""
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    views = [page, text, html.unescape(page)]
    try:
        views.append(json.loads('"' + html.unescape(page).replace('"', '\\"') + '"'))
    except ValueError:
        views.append(html.unescape(page).replace("\\n", "\n").replace('\\"', '"'))
    return [" ".join(v.split()) for v in views]


def leaks(page: str, secrets: list[str]) -> list[str]:
    views = html_views(page)
    found = [s for s in secrets if any(s in v for v in views)]
    return found + (["BEGIN HIDDEN TESTS"] if any("HIDDEN TESTS" in v for v in views) else [])


@pytest.fixture(scope="module")
def ch3_feedback(tmp_path_factory):
    if not SOURCE.is_file():
        pytest.skip(f"{SOURCE} is missing")
    course = tmp_path_factory.mktemp("feedback_course")
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions" / A, course / "solutions" / A)
    r = run_cli(course, "release", A)
    assert r.returncode == 0, r.stdout + r.stderr
    nb = nbformat.read(str(SOURCE), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in WRONG:
            cell.source = WRONG[gid]
    (course / "submitted" / "failing" / A).mkdir(parents=True)
    nbformat.write(nb, str(course / "submitted" / "failing" / A / f"{A}.ipynb"))
    shutil.copytree(course / "solutions" / A, course / "submitted" / "passing" / A)
    grade = run_cli(course, "autograde", A, "--jobs", "2")
    assert grade.returncode == 0, grade.stdout + grade.stderr
    pages = {}
    full = run_cli(course, "feedback", A, "--full")
    assert full.returncode == 0, full.stdout + full.stderr
    pages["full"] = (course / "feedback" / "failing" / A / f"{A}.html").read_text(encoding="utf-8")
    r = run_cli(course, "feedback", A)
    assert r.returncode == 0, r.stdout + r.stderr
    for student in ("failing", "passing"):
        pages[student] = (course / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8")
    return course, pages, hidden_lines(SOURCE)


def test_ch3_has_hidden_tests_to_protect(ch3_feedback):
    _, _, secrets = ch3_feedback
    assert SOURCE.read_text().count("BEGIN HIDDEN TESTS") == 7
    assert len(secrets) > 30 and any("the head is every child with parameters after the last stage" in s
                                     for s in secrets)


@pytest.mark.parametrize("student", ["failing", "passing"])
def test_feedback_has_no_hidden_test_line(ch3_feedback, student):
    _, pages, secrets = ch3_feedback
    assert leaks(pages[student], secrets) == []


def test_feedback_shows_failure_messages_points_and_visible_tests(ch3_feedback):
    _, pages, _ = ch3_feedback
    page = pages["failing"]
    text = html_views(page)[1]
    cell = html.unescape(re.sub(r"<[^>]+>", "", page)).split("Grade cell: layer_groups_tests")[1].split("In\xa0[")[0]
    for message in MESSAGES:
        assert f"AssertionError: {message}" in cell
    assert "Traceback" not in cell and "---->" not in cell  # the message, not the failing source lines
    # points per graded cell: layer_groups_tests failed, the other autograded cells passed
    points = graded_points(SOURCE)
    assert f"Score: 0.0 / {points.pop('layer_groups_tests'):.1f}" in text
    assert all(f"Score: {p:.1f} / {p:.1f}" in text for p in points.values())
    # visible tests and the student's own code stay
    assert 'assert groups["head"] == [tiny.fc] and groups["layer4"] == [tiny.layer4]' in text
    assert '"stem": [net.conv1, net.bn1], "layer1": [net.layer1]' in text
    assert "(hidden tests: not shown in feedback)" in text
    passing = html_views(pages["passing"])[1]
    assert "AssertionError:" not in passing  # no failure message (the visible tests do name AssertionError)
    assert all(f"Score: {p:.1f} / {p:.1f}" in passing for p in graded_points(SOURCE).values())


def test_full_feedback_is_an_explicit_option(ch3_feedback):
    """The instructor's --full: hidden tests and tracebacks are there (so the checks above can fail)."""
    _, pages, secrets = ch3_feedback
    found = leaks(pages["full"], secrets)
    assert "BEGIN HIDDEN TESTS" in found and len(found) > len(secrets) // 2


@pytest.mark.parametrize("chapter", ["ch5_recovery", "ch3_unfreezing"])
def test_preprocessor_removes_hidden_source_from_tracebacks_and_outputs(chapter):
    """Without executing anything: every test cell of a chapter gets a fabricated IPython traceback
    that prints its hidden lines (as a failing hidden test does) and a stream that echoes one; after
    HideHiddenTests and nbconvert's HTML export, no hidden line is left, the failure messages are."""
    from nbconvert import HTMLExporter

    sys.path.insert(0, str(REPO))
    from instructor.feedback import HideHiddenTests

    source = REPO / "solutions" / chapter / f"{chapter}.ipynb"
    if not source.is_file():
        pytest.skip(f"{source} is missing")
    nb = nbformat.read(str(source), as_version=4)
    messages = []
    for cell in nb.cells:
        if "BEGIN HIDDEN TESTS" not in cell.source:
            continue
        hidden = cell.source.split("BEGIN HIDDEN TESTS", 1)[1].split("\n")[1:4]
        frame = "\n".join(f"\x1b[0;32m{n:>6}\x1b[0m {line}" for n, line in enumerate(hidden, 20))
        message = f"{cell.metadata.nbgrader.grade_id} failed on purpose"
        messages.append(message)
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=hidden[0] + "\nordinary output\n"),
            nbformat.v4.new_output("error", ename="AssertionError", evalue=message,
                                   traceback=["\x1b[0;31m----------\x1b[0m", f"Cell In[7], line 21\n{frame}",
                                              f"\x1b[0;31mAssertionError\x1b[0m: {message}"])]
    assert len(messages) >= 5
    secrets = hidden_lines(source)
    full, _ = HTMLExporter(template_name="classic").from_notebook_node(
        HideHiddenTests(full=True).preprocess(copy.deepcopy(nb), {})[0])
    assert len(leaks(full, secrets)) > len(secrets) // 2  # what the check catches without the preprocessor
    nb, _ = HideHiddenTests().preprocess(nb, {})
    page, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    assert secrets and leaks(page, secrets) == []
    text = html_views(page)[1]
    for message in messages:
        assert f"AssertionError: {message}" in text
    assert "ordinary output" in text

