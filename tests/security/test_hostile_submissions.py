"""Each hostile submission scores what its honest work earned; nothing leaks, changes or survives."""

import glob
import json
import os
import sqlite3

import pytest
from attacks import EXPECTED, REFUSED_NAMES, attacks
from tinycourse import CANARIES, POINTS

ALL = sorted(attacks("/x", 1))
FOOLING = ["patch_numpy", "shadow_np", "patch_checker", "checker_file", "patch_builtins", "transformer", "excepthook",
           "bundle_reader", "bundle_writer", "result_bomb"]
FAILED = ["corrupt", "nb_link", "dir_link"]  # no readable notebook: 0 points, with the reason


@pytest.mark.parametrize("student", ALL)
def test_score_is_what_the_honest_work_earned(hostile_class, student):
    rec = hostile_class.records[student]
    assert rec["score"] == EXPECTED.get(student, 0), rec
    assert rec["max_score"] == POINTS


@pytest.mark.parametrize("student", FOOLING)
def test_tricks_on_the_kernel_or_the_recheck_earn_nothing(hostile_class, student):
    rec = hostile_class.records[student]
    assert rec["score"] == 0 and rec["cells"], rec
    assert all(c["by"] == "judge" and c["verdict"] == "fail" for c in rec["cells"].values()), rec["cells"]


def test_an_oversized_result_is_refused_before_it_is_inflated(hostile_class):
    cells = hostile_class.records["result_bomb"]["cells"].values()
    assert any("could not be read back" in c["detail"] for c in cells), cells
    assert hostile_class.peak_kib < 3 << 20  # 200 MB per bomb x 12 were never inflated


def test_the_gradebook_holds_the_confirmed_scores(hostile_class):
    con = sqlite3.connect(os.path.join(hostile_class.root, "gradebook.db"))
    rows = dict(con.execute(
        "SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score)) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"))
    assert rows == {s: EXPECTED.get(s, 0) for s in ALL}


def test_every_submission_is_accounted_for(hostile_class):
    records = hostile_class.records
    refused = {name.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for name in REFUSED_NAMES}
    assert sorted(records) == sorted(ALL + list(refused))
    assert all(records[s]["status"] == "failed" for s in FAILED)
    assert all(records[s]["status"] == "refused" and records[s]["flags"] for s in refused)
    assert "not a readable notebook" in records["corrupt"]["flags"][0]
    assert "symbolic link" in records["dir_link"]["flags"][0] and "symbolic link" in records["nb_link"]["flags"][0]
    graded = sorted(os.listdir(os.path.join(hostile_class.root, "autograded")))
    assert graded == [s for s in ALL if s not in FAILED]


@pytest.mark.parametrize("student", ["tampered_points", "test_to_solution", "deleted_and_duplicated"])
def test_tampered_grading_cells_are_graded_from_the_release(hostile_class, student):
    rec = hostile_class.records[student]
    assert rec["max_score"] == POINTS and rec["score"] == POINTS  # nbgrader restores changed points itself
    if student != "tampered_points":
        assert any("graded from the released notebook with the student's answer cells scale" in n
                   for n in rec["notes"]), rec["notes"]


def test_links_and_special_files_are_refused_and_said(hostile_class):
    notes = hostile_class.records["linker"]["notes"]
    for name in ("sol.ipynb", "gradebook.db", "alice", "passwd", "up"):
        assert any(n.startswith(f"refused {name}: a symbolic link") for n in notes), notes
    assert any("pipe: a special file" in n for n in hostile_class.records["fifo"]["notes"])
    assert any("more than 1000 files" in n for n in hostile_class.records["many_files"]["notes"])
    folder = os.path.join(hostile_class.root, "autograded", "linker", "tiny")
    assert not any(os.path.islink(os.path.join(b, n)) for b, ds, fs in os.walk(folder) for n in ds + fs)


def _everything_shown(root, student):
    """What the student sees: the feedback page, and the outputs of the autograded notebook (whose
    test cells hold the hidden tests by nbgrader's design: that notebook stays with the instructor)."""
    parts = [_outputs(root, student)] if os.path.exists(os.path.join(root, "autograded", student)) else []
    for path in glob.glob(os.path.join(root, f"feedback/{glob.escape(student)}/tiny/*")):
        if os.path.isfile(path):
            with open(path, errors="replace") as f:
                parts.append(f.read())
    return "\n".join(parts)


@pytest.mark.parametrize("student", ALL)
def test_no_canary_reaches_any_student(hostile_class, student):
    shown = _everything_shown(hostile_class.root, student)
    for canary in CANARIES + ("SQLite format", "root:x:0:0"):
        assert canary not in shown, f"{canary} leaked to {student}"


def test_student_html_and_javascript_never_become_active(hostile_class):
    nb = _everything_shown(hostile_class.root, "script")
    assert "PWNED-HTML" in nb  # shown, as text
    assert "<script>window.PWNED" not in nb and "text/html" not in json.dumps(_outputs(hostile_class.root, "script"))
    assert "application/javascript" not in _outputs(hostile_class.root, "script")


@pytest.mark.parametrize("student", ["spam_cells", "display_updates"])
def test_output_is_capped_whatever_the_route(hostile_class, student):
    path = os.path.join(hostile_class.root, "autograded", student, "tiny", "tiny.ipynb")
    assert os.path.getsize(path) < 6 << 20
    assert "output truncated" in _outputs(hostile_class.root, student) or student == "display_updates"


def test_the_class_grades_in_bounded_time(hostile_class):
    assert hostile_class.wall < 600, hostile_class.wall


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
        hostile_class.records["fork_bomb"].get("note")  # the kernel stopped; the judged points still count


def test_no_process_survives_grading(hostile_class):
    assert "sleep 977" not in hostile_class.ps and "sleep 978" not in hostile_class.ps


def test_nothing_is_left_in_tmp(hostile_class):
    assert not glob.glob("/tmp/conv-course-grade-*") or all(
        os.stat(p).st_mtime < os.stat(hostile_class.root).st_mtime for p in glob.glob("/tmp/conv-course-grade-*"))
