"""Assignment 07 beyond its scores: the feedback pages of the course graded from a07_backward.py
(the shared score tests are in test_assignments.py)."""

import html as html_lib
import re

import pytest

import a07_backward as data


@pytest.fixture
def graded(graded_course):
    return graded_course(data)


def test_feedback_hides_hidden_tests_and_solutions(graded):
    pages = graded.feedback()
    assert {"solution", "untouched", "kernel_not_rotated"} <= set(pages)
    solution_line = 'grad_w[:, :, u, v] = np.einsum("nohw,nchw->oc", grad_out, window)'
    for student, page in pages.items():
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", page))      # syntax highlighting splits tokens
        assert "HIDDEN TESTS" not in text and "hidden=True" not in text, student
        if student not in ("solution", "deleted_cells"):
            assert solution_line not in text, student
    assert "grad_x uses the kernel unrotated" in pages["kernel_not_rotated"]
