"""Assignment 01 through real nbgrader: full marks, zero, and one wrong student per diagnosed bug.

Cells: test_output_size, test_corr2d_basic, test_corr2d_padding, test_corr2d_stride,
test_corr2d_edge (1 point each). All submissions are autograded in ONE nbgrader call.
"""

import csv
import re
import shutil

import pytest

from conv_course import cli
from conv_course.autograding import course
from conv_course.grading import conv

pytestmark = [pytest.mark.slow, pytest.mark.grading]

A = "01-corr2d"
CELLS = ["test_output_size", "test_corr2d_basic", "test_corr2d_padding", "test_corr2d_stride",
         "test_corr2d_edge"]


def corr2d_source(pad="np.pad(image, padding)", h_out="(padded.shape[0] - kh) // stride + 1",
                  w_out="(padded.shape[1] - kw) // stride + 1", extra_cols=0,
                  dtype="np.result_type(image, kernel)", step="stride", store="out[i, j]",
                  shape="(h_out, w_out + {extra})", kernel="kernel", head=""):
    """A student's corr2d written the way students write it, with one knob per bug."""
    return f'''
{head}
def corr2d(image, kernel, stride=1, padding=0):
    padded = {pad}
    kh, kw = kernel.shape
    h_out = {h_out}
    w_out = {w_out}
    out = np.zeros({shape.format(extra=extra_cols)}, dtype={dtype})
    for i in range(h_out):
        for j in range(w_out):
            patch = padded[i * {step}:i * {step} + kh, j * {step}:j * {step} + kw]
            {store} = (patch * {kernel}).sum()
    return out
'''


# Visible edge cases never have a (3, 1) kernel; the hidden ones do (asserted below).
HIDDEN_ONLY = corr2d_source(head="", store="out[i, j]").replace(
    "    return out", "    if kernel.shape == (3, 1):\n        out = out + 1.0\n    return out")

INFINITE_STRIDE = '''
def corr2d(image, kernel, stride=1, padding=0):
    padded = np.pad(image, padding)
    kh, kw = kernel.shape
    h_out = (padded.shape[0] - kh) // stride + 1
    w_out = (padded.shape[1] - kw) // stride + 1
    out = np.zeros((h_out, w_out), dtype=np.result_type(image, kernel))
    i = 0
    while i < h_out:            # rows advance by 1 // stride: 0 when stride > 1
        for j in range(w_out):
            out[i, j] = (padded[i * stride:i * stride + kh, j * stride:j * stride + kw] * kernel).sum()
        i += 1 // stride
    return out
'''

SUBMISSIONS = {
    "flipped": {"corr2d": corr2d_source(kernel="kernel[::-1, ::-1]")},
    "row_short": {"corr2d": corr2d_source(h_out="(padded.shape[0] - kh) // stride")},
    "column_long": {"corr2d": corr2d_source(extra_cols=1)},
    "stride_ignored": {"corr2d": corr2d_source(h_out="padded.shape[0] - kh + 1", w_out="padded.shape[1] - kw + 1",
                                               step="1")},
    "pad_one_side": {"corr2d": corr2d_source(pad="np.pad(image, ((padding, 0), (padding, 0)))")},
    "pad_twice": {"corr2d": corr2d_source(pad="np.pad(image, 2 * padding)  # 2P in total")},
    "swapped": {"corr2d": corr2d_source(shape="(w_out, h_out)", store="out[j, i]")},
    "truncated_and_no_plus_one": {
        "corr2d": corr2d_source(dtype="image.dtype"),
        "conv_output_size": "def conv_output_size(n, kernel_size, stride=1, padding=0):\n"
                            "    return (n + 2 * padding - kernel_size) // stride\n"},
    "reference": {"corr2d": "from scipy.signal import correlate2d\n\n"
                            "def corr2d(image, kernel, stride=1, padding=0):\n"
                            "    return correlate2d(np.pad(image, padding), kernel, mode='valid')[::stride, ::stride]\n"},
    "always_float64": {"corr2d": corr2d_source(dtype="np.float64")},
    "hidden_only": {"corr2d": HIDDEN_ONLY},
    "infinite_stride": {"corr2d": INFINITE_STRIDE},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "flipped": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "the kernel is flipped"}),
    "row_short": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "output is one row short"}),
    "column_long": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "output is one column long"}),
    "stride_ignored": ([1, 1, 1, 0, 1], {"test_corr2d_stride": "stride ignored"}),
    "pad_one_side": ([1, 1, 0, 1, 1], {"test_corr2d_padding": "padding on one side only"}),
    "pad_twice": ([1, 1, 0, 1, 1], {"test_corr2d_padding": "padding applied twice"}),
    "swapped": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "height and width are swapped"}),
    "truncated_and_no_plus_one": ([0, 1, 1, 1, 0], {"test_corr2d_edge": "integer truncation",
                                                    "test_output_size": "you forgot the + 1"}),
    "reference": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "scipy is not available to student code while it is graded"}),
    "always_float64": ([1, 1, 1, 1, 0], {"test_corr2d_edge": "returned dtype float64; expected float32 = "
                                                             "np.result_type(image, kernel)"}),
    "hidden_only": ([1, 1, 1, 1, 0], {}),
    "infinite_stride": ([1, 1, 1, 0, 1], {"test_corr2d_stride": "the per-cell limit"}),
}


@pytest.fixture(scope="module")
def graded(course_factory):
    # A student who deleted a test cell and an answer cell: graded, not crashed.
    return course_factory(A).grade_class(
        SUBMISSIONS, delete=["test_corr2d_padding", "conv_output_size"], timeout=8)


def test_solution_gets_full_marks(graded):
    r = graded.result("solution")
    assert r.scores == dict.fromkeys(CELLS, 1.0)
    assert r.max_total == 5


def test_untouched_release_gets_zero(graded):
    r = graded.result("untouched")
    assert r.total == 0 and set(r.scores) == set(CELLS)
    assert "not implemented yet" in r.text("test_corr2d_basic")


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_wrong_variant_gets_partial_score_and_diagnosis(graded, student):
    graded.result(student).check(CELLS, *EXPECTED[student])


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


def test_deleted_cells_are_graded_not_crashed(graded):
    r = graded.result("deleted_cells")
    assert set(r.scores) == set(CELLS)
    assert r.scores["test_output_size"] == 0  # its answer cell is gone
    assert r.scores["test_corr2d_padding"] == 1  # the test cell was put back and run
    assert r.total == 4


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
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == A}
    assert set(rows) == {"solution", "untouched", "deleted_cells", *SUBMISSIONS}
    assert float(rows["solution"]["score"]) == 5 and float(rows["untouched"]["score"]) == 0
    assert float(rows["stride_ignored"]["score"]) == 4 and float(rows["solution"]["max_score"]) == 5


def test_grades_csv_flags_what_the_trusted_recheck_disputed(graded):
    from conv_course.autograding import gradebook

    gradebook.write_flags(str(graded.root), A, {"stride_ignored": {"flags": ["cell stride: kernel 1, confirmed 0"]},
                                                "solution": {"flags": []}})
    try:
        assert course.export_grades(str(graded.root), "grades.csv", quiet=True) == 0
        with open(graded.root / "grades.csv") as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == A}
    finally:
        shutil.rmtree(graded.root / "trusted")
    assert rows["stride_ignored"]["flagged"] == "cell stride: kernel 1, confirmed 0"
    assert rows["solution"]["flagged"] == "" and rows["untouched"]["flagged"] == ""


def test_cli_names_an_unknown_assignment(graded, capsys):
    assert cli.main(["release", "99-nope", "--course-dir", str(graded.root)]) == 2
    err = capsys.readouterr().err
    assert "99-nope" in err and "01-corr2d" in err
