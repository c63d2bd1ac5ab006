"""Assignment 01 through the rest of the pipeline: a failing check's traceback, feedback pages, the
grades CSV and the CLI, on the course graded from a01_corr2d.py (the shared score tests are in
test_assignments.py)."""

import csv
import re
import shutil

import pytest

import a01_corr2d as data
from conv_course import cli
from conv_course.autograding import course
from conv_course.grading import conv


@pytest.fixture
def graded(graded_course):
    return graded_course(data)


def test_failing_check_shows_its_message_first_without_checker_frames(graded):
    cell = next(c for c in graded.result("flipped").notebook.cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_corr2d_basic")
    error = next(o for o in cell.outputs if o.output_type == "error")
    traceback = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", "\n".join(error.traceback))
    assert traceback.startswith("AssertionError: wrong corr2d output for case"), traceback
    assert "the kernel is flipped" in traceback
    assert "conv_course/grading" not in traceback and "check_array" not in traceback, traceback


def test_hidden_only_failure_is_really_hidden():
    visible = [c["kernel"].shape for c in conv._corr2d_cases("edge", hidden=False)]
    hidden = [c["kernel"].shape for c in conv._corr2d_cases("edge", hidden=True)]
    assert (3, 1) not in visible and (3, 1) in hidden


def test_feedback_hides_hidden_tests_and_solutions(graded):
    pages = graded.feedback()
    assert {"solution", "untouched", "hidden_only", "infinite_stride"} <= set(pages)
    solution_line = "out[i, j] = np.sum(window * kernel)"
    for student, html in pages.items():
        assert "HIDDEN TESTS" not in html, student
        assert "hidden=True" not in html, student
        if student != "solution":
            assert solution_line not in html, student
    # A failing hidden test still shows the checker's message, but not the cell's hidden lines.
    assert "wrong corr2d output" in pages["hidden_only"]
    assert "traceback not shown" in pages["hidden_only"]
    assert "the per-cell limit" in pages["infinite_stride"]


def test_grades_csv_lists_every_student(graded):
    assert course.export_grades(str(graded.root), "grades.csv", quiet=True) == 0
    with open(graded.root / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == data.A}
    assert set(rows) == {"solution", "untouched", "deleted_cells", *data.SUBMISSIONS}
    assert float(rows["solution"]["score"]) == 5 and float(rows["untouched"]["score"]) == 0
    assert float(rows["stride_ignored"]["score"]) == 4 and float(rows["solution"]["max_score"]) == 5


def test_grades_csv_flags_what_the_trusted_recheck_disputed(graded):
    from conv_course.autograding import gradebook

    gradebook.write_flags(str(graded.root), data.A,
                          {"stride_ignored": {"flags": ["cell stride: kernel 1, confirmed 0"]}, "solution": {"flags": []}})
    try:
        assert course.export_grades(str(graded.root), "grades.csv", quiet=True) == 0
        with open(graded.root / "grades.csv") as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == data.A}
    finally:
        shutil.rmtree(graded.root / "trusted")
    assert rows["stride_ignored"]["flagged"] == "cell stride: kernel 1, confirmed 0"
    assert rows["solution"]["flagged"] == "" and rows["untouched"]["flagged"] == ""


def test_cli_names_an_unknown_assignment(graded, capsys):
    assert cli.main(["release", "99-nope", "--course-dir", str(graded.root)]) == 2
    err = capsys.readouterr().err
    assert "99-nope" in err and "01-corr2d" in err
