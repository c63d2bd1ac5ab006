"""`conv-course autograde`: parallel workers, one gradebook writer, the summary, Dask, the real assignment."""

import json
import os
import shutil
import sqlite3
import sys

import nbformat
import pytest

from conv_course.autograding import autograde as ag
from conv_course import cli
from conv_course.autograding import gradebook

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))
from tinycourse import ASSIGNMENT, HONEST, POINTS, WRONG, make_course, submit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.grading


def _scores(root):
    con = sqlite3.connect(os.path.join(root, "gradebook.db"))
    return dict(con.execute(
        "SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score)) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"))


STDERR = "import sys\ndef scale(x, k):\n    print('working...', file=sys.stderr)\n    return np.asarray(x) * k\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("course"), {
        "ann": HONEST, "ben": WRONG, "cat": HONEST.replace("* k", "* k * 1.0"),
        "dan": WRONG + "np.allclose = lambda *a, **k: True\n", "eve": STDERR}, timeout=10)
    return root


@pytest.fixture(scope="module")
def graded(course):
    return ag.autograde(course, ASSIGNMENT, jobs=2, progress=False)


def test_parallel_run_grades_everyone_and_writes_the_gradebook_once(course, graded):
    want = {"ann": POINTS, "ben": 0, "cat": POINTS, "dan": 0, "eve": POINTS}
    assert {s: r["score"] for s, r in graded.items()} == want
    assert _scores(course) == want
    for student in graded:
        assert os.path.exists(os.path.join(course, "autograded", student, ASSIGNMENT, f"{ASSIGNMENT}.ipynb"))


def test_every_cell_is_judged_outside_student_code(graded):
    cells = [c for r in graded.values() for c in r["cells"].values()]
    assert len(cells) == 5 * POINTS and all(c["by"] == "judge" for c in cells)
    assert graded["dan"]["status"] == "graded"  # the patch never reaches the checker: nothing to flag


def test_stderr_does_not_decide_a_grade(course, graded):
    assert graded["eve"]["score"] == POINTS
    nb = nbformat.read(os.path.join(course, "autograded", "eve", ASSIGNMENT, f"{ASSIGNMENT}.ipynb"), 4)
    streams = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    assert all(o["name"] != "stderr" for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
               for o in c.get("outputs", []) if o.get("output_type") == "stream") and streams is not None


def test_the_judges_message_is_the_cells_feedback(course, graded):
    nb = nbformat.read(os.path.join(course, "autograded", "ben", ASSIGNMENT, f"{ASSIGNMENT}.ipynb"), 4)
    errors = {c.metadata.nbgrader["grade_id"]: o for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
              for o in c.outputs if o.output_type == "error"}
    assert set(errors) == {"test_basic", "test_checker", "test_random"}
    assert errors["test_basic"]["evalue"] == "scale(arange(3), 2) is wrong"
    assert "hidden" not in json.dumps(nb).lower() or "HIDDEN TESTS" in json.dumps([c.source for c in nb.cells])


def test_summary_table_counts_and_says_what_was_judged(graded):
    table = ag.summary_table(graded)
    assert table.splitlines()[-1] == "graded 5, failed to run 0, flagged 0"
    assert f"test cells judged by the trusted re-check: {5 * POINTS} of {5 * POINTS}" in table


def test_regrading_is_idempotent_and_other_students_keep_their_grades(course, graded):
    submit(course, {"ben": HONEST})
    again = ag.autograde(course, ASSIGNMENT, jobs=1, students=["ben"], progress=False)
    assert again["ben"]["score"] == POINTS
    assert _scores(course) == {"ann": POINTS, "ben": POINTS, "cat": POINTS, "dan": 0, "eve": POINTS}
    kept = gradebook.load_records(course, ASSIGNMENT)
    assert sorted(kept) == ["ann", "ben", "cat", "dan", "eve"]  # a --student run merges, never overwrites


def _set_manual(root, student, gid, score):
    """What formgrader does when an instructor gives a cell a manual score."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{os.path.join(root, 'gradebook.db')}", "tiny-course") as gb:
        grade = gb.find_grade(gid, ASSIGNMENT, ASSIGNMENT, student)
        grade.manual_score, grade.needs_manual_grade = score, False
        gb.db.commit()


def test_review_decisions_survive_a_rerun_until_the_submission_changes(tmp_path):
    root = make_course(tmp_path, {"fay": WRONG})
    assert ag.autograde(root, ASSIGNMENT, progress=False)["fay"]["score"] == 0
    _set_manual(root, "fay", "test_basic", 1.0)  # the instructor's decision in formgrader
    again = ag.autograde(root, ASSIGNMENT, progress=False)
    assert again["fay"]["score"] == 1 and _scores(root)["fay"] == 1
    assert any("kept the manual scores" in n for n in again["fay"]["notes"])
    submit(root, {"fay": HONEST})
    changed = ag.autograde(root, ASSIGNMENT, progress=False)
    assert changed["fay"]["score"] == POINTS
    assert any("dropped: the submission changed" in n for n in changed["fay"]["notes"])


def test_nothing_to_grade_says_what_it_looked_for(tmp_path):
    root = make_course(tmp_path, {})
    with pytest.raises(ValueError, match="nothing to grade: no submissions folder"):
        ag.autograde(root, ASSIGNMENT, progress=False)
    submit(root, {"gus": HONEST})
    with pytest.raises(ValueError, match="nothing to grade: no submission of tiny for student"):
        ag.autograde(root, ASSIGNMENT, students=["nobody"], progress=False)


@pytest.mark.parametrize("sandbox", [False, True])
def test_a_broken_kernel_is_a_grader_error_not_a_zero(tmp_path, monkeypatch, sandbox):
    """The grading kernel (plain or sandboxed) dies before any student code runs."""
    from conv_course.autograding.sandbox_kernel import KERNEL_NAME

    (tmp_path / "course").mkdir()
    root = make_course(tmp_path / "course", {"hal": HONEST})
    spec = tmp_path / "jupyter" / "kernels" / (KERNEL_NAME if sandbox else "python3")
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["/bin/false"], "display_name": "broken",
                                                  "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    records = ag.autograde(root, ASSIGNMENT, sandbox=sandbox, progress=False)
    assert records["hal"]["status"] == "error" and "grader failure" in records["hal"]["flags"][0]
    assert "hal" not in _scores(root)  # nothing written as a score
    assert "grader errors 1 (not recorded; rerun them)" in ag.summary_table(records)
    assert "hal" not in gradebook.load_records(root, ASSIGNMENT)
    if not sandbox:
        assert cli.main(["autograde", ASSIGNMENT, "--no-sandbox", "--course-dir", root]) == 1


def test_bad_arguments_name_the_problem(course):
    with pytest.raises(ValueError, match="`jobs` must be >= 1; got 0"):
        ag.autograde(course, ASSIGNMENT, jobs=0)
    with pytest.raises(ValueError, match="unknown assignment 'nope'; solutions/ has tiny"):
        ag.autograde(course, "nope")
    with pytest.raises(ValueError, match="no nbgrader_config.py"):
        ag.autograde(os.path.join(course, "solutions"), ASSIGNMENT)
    assert not os.path.exists(os.path.join(course, "solutions", "gradebook.db"))


def test_cli_prints_the_summary(tmp_path, capsys):
    root = make_course(tmp_path, {"solo": HONEST})
    code = cli.main(["autograde", ASSIGNMENT, "--jobs", "1", "--course-dir", root])
    out = capsys.readouterr().out
    assert code == 0
    assert "graded 1, failed to run 0, flagged 0" in out and "per minute" in out


def test_cli_refuses_when_the_sandbox_is_unavailable(tmp_path, capsys, monkeypatch):
    from conv_course.autograding import sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    code = cli.main(["autograde", ASSIGNMENT, "--course-dir", str(tmp_path)])
    assert code == 2 and "refusing to run student code" in capsys.readouterr().err


def test_no_sandbox_is_an_explicit_opt_out(tmp_path, capsys):
    root = make_course(tmp_path, {"solo": HONEST})
    code = cli.main(["autograde", ASSIGNMENT, "--no-sandbox", "--course-dir", root])
    captured = capsys.readouterr()
    assert code == 0 and "WARNING --no-sandbox" in captured.err
    assert "graded 1" in captured.out


@pytest.mark.slow
def test_dask_cluster_runs_the_same_workers(tmp_path):
    from distributed import LocalCluster

    root = make_course(tmp_path, {"ann": HONEST, "ben": WRONG})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        records = ag.autograde(root, ASSIGNMENT, scheduler=cluster.scheduler_address, progress=False)
    assert {s: r["score"] for s, r in records.items()} == {"ann": POINTS, "ben": 0}
    assert _scores(root) == {"ann": POINTS, "ben": 0}


def _release_real(tmp_path, name):
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(os.path.join(ROOT, "solutions", name), tmp_path / "solutions" / name)
    (tmp_path / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.source_directory = "solutions"\n'
        'c.CourseDirectory.release_directory = "exercises"\nc.Execute.timeout = 30\n')
    cfg = ag.load_course_config(str(tmp_path))
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = name
    app = GenerateAssignment(coursedir=coursedir, config=cfg)
    app.log.setLevel("ERROR")
    app.start()
    return nbformat.read(tmp_path / "solutions" / name / f"{name}.ipynb", 4)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "solutions", "01-corr2d")), reason="no assignment 01")
def test_assignment_01_end_to_end(tmp_path):
    name = "01-corr2d"
    source = _release_real(tmp_path, name)
    released = nbformat.read(tmp_path / "exercises" / name / f"{name}.ipynb", 4)
    answers = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for student, flip in (("honest", False), ("flipped", True)):
        nb = nbformat.from_dict(released)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
                if flip and gid == "corr2d":
                    cell.source += "\n_c = corr2d\ncorr2d = lambda image, kernel, stride=1, padding=0: " \
                                   "_c(image, np.asarray(kernel)[::-1, ::-1], stride, padding)\n"
        folder = tmp_path / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
    records = ag.autograde(str(tmp_path), name, jobs=2, progress=False)
    total = records["honest"]["max_score"]
    assert records["honest"]["score"] == total and records["honest"]["status"] == "graded"
    assert records["flipped"]["score"] == 1 and records["flipped"]["status"] == "graded"
    assert all(c["by"] == "judge" for r in records.values() for c in r["cells"].values())


_REAL_GRADE = ag.grade_submission


def _dies_once(job):
    """A worker that is killed from outside (as the OOM killer would) the first time it grades `vic`."""
    marker = os.path.join(os.environ["CONV_COURSE_TEST_MARKERS"], job["student"])
    if job["student"] == "vic" and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return _REAL_GRADE(job)


def test_a_lost_worker_is_retried_and_fails_nobody(tmp_path, monkeypatch):
    root = make_course(tmp_path, {"uma": HONEST, "vic": HONEST, "wes": WRONG})
    (tmp_path / "markers").mkdir()
    monkeypatch.setenv("CONV_COURSE_TEST_MARKERS", str(tmp_path / "markers"))
    monkeypatch.setattr(ag, "grade_submission", _dies_once)
    records = ag.autograde(root, ASSIGNMENT, jobs=2, progress=False)
    assert os.path.exists(tmp_path / "markers" / "vic")  # the worker really died once
    assert {s: (r["status"], r["score"]) for s, r in records.items()} == {
        "uma": ("graded", POINTS), "vic": ("graded", POINTS), "wes": ("graded", 0)}
