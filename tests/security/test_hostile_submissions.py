"""Each hostile submission scores what its honest work earned; nothing leaks, changes or survives."""

import glob
import json
import os
import sqlite3

import pytest
from attacks import EXPECTED, attacks
from tinycourse import POINTS

ALL = sorted(attacks("/x", 1))
FOOLING = ["patch_numpy", "shadow_np", "patch_checker", "checker_file", "patch_builtins", "transformer"]


@pytest.mark.parametrize("student", ALL)
def test_score_is_what_the_honest_work_earned(hostile_class, student):
    rec = hostile_class.records[student]
    assert rec["score"] == EXPECTED.get(student, 0), rec
    assert rec["max_score"] == POINTS


@pytest.mark.parametrize("student", FOOLING)
def test_tricks_that_fool_the_kernel_are_flagged(hostile_class, student):
    rec = hostile_class.records[student]
    kernel = sum(c["kernel"] for c in rec["cells"].values())
    assert kernel > 0, f"{student}: the attack no longer fools the kernel, so this test proves nothing"
    assert rec["status"] == "flagged" and rec["flags"], rec
    assert all(c["confirmed"] == 0 for c in rec["cells"].values())


def test_the_gradebook_holds_the_confirmed_scores(hostile_class):
    con = sqlite3.connect(os.path.join(hostile_class.root, "gradebook.db"))
    rows = dict(con.execute(
        "SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score)) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"))
    assert rows == {s: EXPECTED.get(s, 0) for s in ALL}


def test_every_submission_is_accounted_for(hostile_class):
    assert sorted(hostile_class.records) == ALL
    assert hostile_class.records["corrupt"]["status"] == "failed"
    graded = sorted(os.listdir(os.path.join(hostile_class.root, "autograded")))
    assert graded == [s for s in ALL if s != "corrupt"]


def test_course_files_are_unchanged(hostile_class):
    assert hostile_class.after == hostile_class.before


def _outputs(root, student):
    path = os.path.join(root, "autograded", student, "tiny", "tiny.ipynb")
    with open(path) as f:
        return json.dumps([c.get("outputs", []) for c in json.load(f)["cells"]])


def test_nothing_secret_leaks_into_outputs(hostile_class):
    out = _outputs(hostile_class.root, "reader")
    assert "DENIED" in out  # the attack ran
    for secret in ("BEGIN SOLUTION", "SQLite format", "READ /etc/shadow", "np.asarray(x) * k", "READ "):
        assert secret not in out


def test_writes_and_sql_updates_are_denied(hostile_class):
    assert "DENIED" in _outputs(hostile_class.root, "writer")
    assert "DENIED" in _outputs(hostile_class.root, "sqlwriter")
    assert hostile_class.records["alice"]["score"] == POINTS


def test_no_network(hostile_class):
    out = _outputs(hostile_class.root, "network")
    assert "CONNECTED" not in out and out.count("DENIED") == 3
    assert hostile_class.accepted == []


def test_limits_bound_memory_files_and_processes(hostile_class):
    assert "MemoryError" in _outputs(hostile_class.root, "alloc_10gb")
    assert "File too large" in _outputs(hostile_class.root, "big_file")
    assert "BlockingIOError" in _outputs(hostile_class.root, "fork_bomb") or \
        hostile_class.records["fork_bomb"]["score"] == 0


def test_no_process_survives_grading(hostile_class):
    assert "sleep 977" not in hostile_class.ps and "sleep 978" not in hostile_class.ps


def test_nothing_is_left_in_tmp(hostile_class):
    assert not glob.glob("/tmp/conv-course-grade-*") or all(
        os.stat(p).st_mtime < os.stat(hostile_class.root).st_mtime for p in glob.glob("/tmp/conv-course-grade-*"))
