"""Assignment 04 through real nbgrader: kernels graded by behaviour, so different designs pass.

Cells: test_vertical_edge, test_blur, test_sharpen, test_diagonal.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.grading]

A = "04-student-kernels"
CELLS = ["test_vertical_edge", "test_blur", "test_sharpen", "test_diagonal"]

SUBMISSIONS = {
    # Other designs than the solution's: Prewitt 5x5, Gaussian 5x5, unsharp mask, a 3x3 diagonal.
    "other_designs": {
        "vertical_edge": "vertical_edge = np.array([[1, 1, 0, -1, -1]] * 5)",
        "blur": "g = np.exp(-np.arange(-2, 3) ** 2 / 2)\nblur = np.outer(g, g) / np.outer(g, g).sum()",
        "sharpen": "sharpen = 2 * np.pad(np.ones((1, 1)), 1) - np.ones((3, 3)) / 9",
        "diagonal": "diagonal = np.eye(3) - 1 / 3"},
    "horizontal_edge_and_unnormalised_blur": {
        "vertical_edge": "vertical_edge = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])",
        "blur": "blur = np.ones((3, 3))"},
    "laplacian_and_antidiagonal": {
        "sharpen": "sharpen = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])",
        "diagonal": "diagonal = np.fliplr(2 * np.eye(5) - 0.4)"},
}

EXPECTED = {
    "other_designs": ([1, 1, 1, 1], {}),
    "horizontal_edge_and_unnormalised_blur": ([0, 0, 1, 1], {
        "test_vertical_edge": "your kernel detects horizontal edges",
        "test_blur": "divide the kernel by its sum"}),
    "laplacian_and_antidiagonal": ([1, 1, 0, 0], {
        "test_sharpen": "that is an edge detector, not a sharpener",
        "test_diagonal": "finds the other diagonal"}),
}


@pytest.fixture(scope="module")
def graded(course_factory):
    return course_factory(A).grade_class(SUBMISSIONS)


def test_solution_gets_full_marks(graded):
    assert graded.result("solution").scores == dict.fromkeys(CELLS, 1.0)


def test_untouched_release_gets_zero(graded):
    r = graded.result("untouched")
    assert r.total == 0 and r.max_total == 4


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_student_gets_expected_scores_and_diagnosis(graded, student):
    graded.result(student).check(CELLS, *EXPECTED[student])
