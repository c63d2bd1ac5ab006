"""Phase 3 of autograding: one shared database engine per run; failed submissions score zero."""

import os
import sys

import pytest

from conv_course.autograding import gradebook

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))
from tinycourse import ASSIGNMENT, HONEST, POINTS, make_course  # noqa: E402

pytestmark = pytest.mark.grading


def test_one_engine_shares_an_engine_per_url_and_restores_nbgrader(tmp_path):
    import nbgrader.api as api

    original = api.create_engine
    url_a, url_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with gradebook.one_engine():
        assert api.create_engine(url_a) is api.create_engine(url_a)
        assert api.create_engine(url_a) is not api.create_engine(url_b)
    assert api.create_engine is original and "create_all" not in vars(api.Base.metadata)


def test_record_failed_gives_every_cell_zero_and_says_why(tmp_path):
    from nbgrader.api import Gradebook

    root = make_course(str(tmp_path), {"ann": HONEST})
    with Gradebook(f"sqlite:///{os.path.join(root, 'gradebook.db')}", "tiny-course") as gb:
        rec = gradebook.record_failed(gb, ASSIGNMENT, "ann", "no notebook submitted")
    assert rec["status"] == "failed" and rec["flags"] == ["failed to run: no notebook submitted"]
    assert rec["score"] == 0 and rec["max_score"] == POINTS
