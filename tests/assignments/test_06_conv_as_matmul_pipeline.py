"""Assignment 06 beyond its scores: the release students get, from the course graded from
a06_conv_as_matmul.py (the shared score tests are in test_assignments.py)."""

import pytest

import a06_conv_as_matmul as data


@pytest.fixture
def graded(graded_course):
    return graded_course(data)


def test_hidden_tests_are_not_in_the_release(graded):
    text = "\n".join(c.source for c in graded.release().cells)
    assert "hidden=True" not in text and "BEGIN SOLUTION" not in text and "cols.reshape(n, c * kh * kw" not in text
