"""Assignment 08 beyond its scores: what the graded notebooks of the course graded from
a08_train_a_cnn.py print (the shared score tests are in test_assignments.py)."""

import pytest

import a08_train_a_cnn as data


@pytest.fixture
def graded(graded_course):
    return graded_course(data)


def test_solution_reports_its_test_accuracy(graded):
    assert "test accuracy" in graded.result("solution").all_text()


def test_over_budget_training_is_stopped_before_the_cell_timeout(graded):
    text = graded.result("over_budget").all_text()
    assert "train_model was stopped after" in text   # in the try-it cell (seed 0) and test_target (seed 1)
    assert "TimeoutError" not in text                # no cell ran into the per-cell timeout
