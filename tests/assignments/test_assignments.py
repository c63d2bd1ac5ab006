"""Every assignment through real nbgrader, fed by its data module (a01_corr2d.py ... a09_fine_tune.py):
the solution gets full marks, the untouched release gets zero, each student in `EXPECTED` gets the
scores and diagnoses written there, and a student who deleted cells is graded, not crashed.

Each assignment is autograded by one nbgrader run for all its submissions (conftest.graded_course),
shared with the assignment's own tests in test_NN_<name>_pipeline.py.
"""

import pytest

import a01_corr2d
import a02_conv2d
import a03_channels
import a04_student_kernels
import a05_pooling
import a06_conv_as_matmul
import a07_backward
import a08_train_a_cnn
import a09_fine_tune
from conv_course.autograding import course

ASSIGNMENTS = [a01_corr2d, a02_conv2d, a03_channels, a04_student_kernels, a05_pooling, a06_conv_as_matmul,
               a07_backward, a08_train_a_cnn, a09_fine_tune]
STUDENTS = [pytest.param(data, student, id=f"{data.A}-{student}")
            for data in ASSIGNMENTS for student in sorted(data.EXPECTED)]
DELETING = [data for data in ASSIGNMENTS if data.DELETE]


def by_name(assignments):
    return pytest.mark.parametrize("data", assignments, ids=[data.A for data in assignments])


@pytest.fixture
def graded(graded_course, data):
    """The graded course of the assignment a test is parametrized with (`data`)."""
    return graded_course(data)


def test_every_assignment_has_its_data(repo_root):
    assert [data.A for data in ASSIGNMENTS] == course.assignments(str(repo_root), "solutions")


@by_name(ASSIGNMENTS)
def test_solution_gets_full_marks(graded, data):
    r = graded.result("solution")
    assert r.scores == data.POINTS
    assert r.max_scores == data.POINTS


@by_name(ASSIGNMENTS)
def test_untouched_release_gets_zero(graded, data):
    r = graded.result("untouched")
    assert set(r.scores) == set(data.CELLS) and r.max_scores == data.POINTS
    r.check(data.CELLS, [0] * len(data.CELLS), data.UNTOUCHED_TEXTS)


@pytest.mark.parametrize("data, student", STUDENTS)
def test_student_gets_expected_scores_and_diagnosis(graded, data, student):
    graded.result(student).check(data.CELLS, *data.EXPECTED[student], relative=data.RELATIVE)


@by_name(DELETING)
def test_deleted_cells_are_restored_and_graded(graded, data):
    r = graded.result("deleted_cells")
    assert set(r.scores) == set(data.CELLS)
    assert [r.scores[c] for c in data.CELLS] == data.DELETED_SCORES
