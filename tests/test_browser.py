"""The course in a real browser (issue 18): headless Chromium (Debian's, under Selenium) drives
JupyterLab started as a person starts it (``make formgrader`` / ``make lab`` on 127.0.0.1, a free
port, Jupyter's token).

- The instructor grades a written answer in nbgrader's formgrader, and the grade reaches the
  gradebook and ``nbgrader export``'s CSV.
- A student opens a released chapter, answers an exercise, runs the chapter up to its visible test,
  sees it pass, and gets nbgrader's Validate report.

Screenshots go to ``build/screenshots/`` (printed; ``COURSE_SCREENSHOTS`` moves them), for a person to
look at. Skipped, with the reason, only where Chromium or its driver is not installed
(``make system-packages``, as root, installs them; ``make test`` does).
"""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.course import REPO
from tests.labserver import chromium, chromium_missing, lab, screenshot_dir, wait_for

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))]

CHAPTER = "ch1_basics"
WRITTEN = "lr_question"  # ch1's written answer, 3 points, graded by hand
COURSE_ID = "finetuning-course"


def shot(driver, name: str) -> Path:
    path = screenshot_dir() / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def click_menu(driver, menu: str, item: str) -> None:
    """JupyterLab's menu bar: ``menu`` > ``item``, by their labels."""
    from selenium.webdriver.common.by import By

    wait_for(f"menu {menu}", lambda: [m for m in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                                      if m.text == menu], 120)[0].click()
    wait_for(f"menu item {item}", lambda: [i for i in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
                                           if i.text == item], 30)[0].click()


def scroll_to(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.5)


def test_instructor_grades_a_written_answer_in_formgrader(graded_chapters, tmp_path):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    source, autograde = graded_chapters
    assert autograde.returncode == 0, autograde.stdout + autograde.stderr
    course = tmp_path / "course"
    shutil.copytree(source, course)  # the shared graded class stays as it is
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db, COURSE_ID) as gb:
        grade = gb.find_grade(WRITTEN, CHAPTER, CHAPTER, "perfect")
        assert grade.manual_score is None and grade.needs_manual_grade and grade.max_score == 3
        auto_before = gb.find_submission(CHAPTER, "perfect").score
        max_score = gb.find_submission(CHAPTER, "perfect").max_score

    with lab(course, "formgrader", tmp_path) as (base, token), chromium(tmp_path) as driver:
        driver.get(f"{base}/lab?token={token}")
        click_menu(driver, "Nbgrader", "Formgrader")
        frame = wait_for("the formgrader panel", lambda: driver.find_element(
            By.CSS_SELECTOR, "iframe[src$='/formgrader']"), 60)
        driver.switch_to.frame(frame)
        css = By.CSS_SELECTOR
        wait_for("Manage Students", lambda: driver.find_element(css, "a[href$='/formgrader/manage_students']"),
                 60).click()
        wait_for("student perfect", lambda: driver.find_element(css, "a[href$='/manage_students/perfect']"),
                 60).click()
        wait_for(f"perfect's {CHAPTER}", lambda: driver.find_element(
            css, f"a[href$='/manage_students/perfect/{CHAPTER}']"), 60).click()
        wait_for("the notebook's submission", lambda: driver.find_element(
            css, "a[href*='/formgrader/submissions/']"), 60).click()
        score = wait_for("the written answer's score box", lambda: driver.find_element(css, f"input.score#{WRITTEN}"),
                         120)
        comment = driver.find_element(css, f"textarea#{WRITTEN}-comment")
        scroll_to(driver, score)
        score.click()
        score.send_keys("2")
        scroll_to(driver, comment)  # the model answer and its rubric above can push it out of view
        comment.click()  # leaving the score box saves it (formgrader saves on change)
        comment.send_keys("(c) is right; (a) misses that the new head starts random.")
        scroll_to(driver, score)
        score.click()  # and leaving the comment saves the comment

        def saved():
            with Gradebook(db, COURSE_ID) as gb:
                g = gb.find_grade(WRITTEN, CHAPTER, CHAPTER, "perfect")
                c = gb.find_comment(WRITTEN, CHAPTER, CHAPTER, "perfect")
                return g.manual_score == 2 and c.manual_comment and (g.manual_score, c.manual_comment)

        got = wait_for("the grade in the gradebook", saved, 60)
        score.send_keys(Keys.TAB)
        time.sleep(1)
        driver.switch_to.default_content()
        shot(driver, "instructor_formgrader_written_answer.png")

    assert got == (2, "(c) is right; (a) misses that the new head starts random.")
    with Gradebook(db, COURSE_ID) as gb:
        sub = gb.find_submission(CHAPTER, "perfect")
        assert not sub.needs_manual_grade
        assert sub.score == auto_before + 2 and sub.max_score == max_score
    # nbgrader's own export (what `make export` wraps) carries it
    r = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", "export.csv"], cwd=course,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with (course / "export.csv").open() as f:
        rows = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(f)}
    assert float(rows["perfect", CHAPTER]["score"]) == auto_before + 2
    assert float(rows["perfect", CHAPTER]["max_score"]) == max_score
    assert float(rows["empty", CHAPTER]["score"]) == 0  # the other student is untouched


# a correct answer written differently from the solution (which loops over the parameters)
ANSWER = ["def freeze_all_but_head(net):\n", "net.requires_grad_(False)\n", "net.fc.requires_grad_(True)\n",
          "return net"]  # typed line by line: JupyterLab's editor indents after the ``def`` line itself


def test_student_runs_a_chapter_and_validates_it(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    course = tmp_path / "course"  # what a student has: the repository's release, Makefile and config
    (course / "notebooks").mkdir(parents=True)
    for name in ("Makefile", "nbgrader_config.py"):
        shutil.copy(REPO / name, course)
    shutil.copytree(REPO / "notebooks" / CHAPTER, course / "notebooks" / CHAPTER)
    path = course / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb"
    css = By.CSS_SELECTOR

    with lab(course, "lab", tmp_path) as (base, token), chromium(tmp_path) as driver:
        driver.get(f"{base}/lab/tree/{CHAPTER}/{CHAPTER}.ipynb?token={token}")
        cells = wait_for("the notebook's cells", lambda: [c for c in driver.find_elements(css, ".jp-Notebook .jp-Cell")
                                                          if "def freeze_all_but_head" in c.text], 180)
        exercise = cells[0]
        editor = exercise.find_element(css, ".cm-content")
        editor.click()
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
        for line in ANSWER:
            editor.send_keys(line)
        assert "raise NotImplementedError" not in exercise.text and "net.fc.requires_grad_(True)" in exercise.text
        test = exercise.find_element(By.XPATH, "following-sibling::div[contains(@class, 'jp-Cell')][1]")
        assert "freeze_head_tests" in test.get_attribute("innerHTML") or "freeze_all_but_head(" in test.text, \
            test.text[:300]  # the exercise's visible test cell
        test.find_element(css, ".jp-InputPrompt").click()
        click_menu(driver, "Run", "Run All Above Selected Cell")  # imports, model, the answer
        test.find_element(css, ".jp-InputPrompt").click()
        ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
        prompt = wait_for("the visible test to run", lambda: (
            p := test.find_element(css, ".jp-InputPrompt").text.strip()) not in ("", "[ ]:") and "*" not in p and p,
            300)
        errors = [e.text for e in driver.find_elements(css, "[data-mime-type='application/vnd.jupyter.stderr']")
                  if "Traceback" in e.text or "Error" in e.text]
        assert not errors, errors  # every cell up to the visible test ran; the test passed (no output)
        assert test.find_element(css, ".jp-Cell-outputWrapper").text.strip() == "", prompt
        scroll_to(driver, exercise)
        shot(driver, "student_visible_test_passes.png")
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()  # save

        wait_for("the Validate button", lambda: [b for b in driver.find_elements(
            css, ".jp-NotebookPanel-toolbar .jp-Toolbar-item") if b.text == "Validate"], 30)[0].click()
        report = wait_for("nbgrader's validation report", lambda: (
            t := driver.find_element(css, ".jp-Dialog").text) and "Validation Results" in t and "alidating" not in t
            and "failed" in t and t, 400)
        time.sleep(0.5)
        shot(driver, "student_validate_report.png")

    # the report names what is left to do, and not the exercise that was answered (its test passed)
    assert "NotImplementedError" in report and "finetune_param_groups(net, lr)" in report, report  # exercise 2
    assert "You did not provide a response" in report, report  # the written answer
    assert "write the freezing yourself" not in report, report  # exercise 1's test passed
    # the answer typed in the browser was saved to the student's notebook
    saved = nbformat.read(str(path), as_version=4)
    cell = next(c for c in saved.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "freeze_head_impl")
    assert "net.fc.requires_grad_(True)" in cell.source and "NotImplementedError" not in cell.source
