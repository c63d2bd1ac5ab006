"""`conv-course autograde`: parallel workers, one gradebook writer, the summary, Dask, the real assignment."""

import os
import shutil
import sqlite3
import sys

import nbformat
import pytest

from conv_course import autograde as ag
from conv_course import cli, trusted

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "security"))
from tinycourse import ASSIGNMENT, HONEST, POINTS, WRONG, make_course, submit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.grading


def _scores(root):
    con = sqlite3.connect(os.path.join(root, "gradebook.db"))
    return dict(con.execute(
        "SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score)) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("course"), {
        "ann": HONEST, "ben": WRONG, "cat": HONEST.replace("* k", "* k * 1.0"),
        "dan": WRONG + "np.allclose = lambda *a, **k: True\n"}, timeout=10)
    return root


@pytest.fixture(scope="module")
def graded(course):
    return ag.autograde(course, ASSIGNMENT, jobs=2, progress=False)


def test_parallel_run_grades_everyone_and_writes_the_gradebook_once(course, graded):
    assert {s: r["score"] for s, r in graded.items()} == {"ann": POINTS, "ben": 0, "cat": POINTS, "dan": 0}
    assert _scores(course) == {"ann": POINTS, "ben": 0, "cat": POINTS, "dan": 0}
    for student in graded:
        assert os.path.exists(os.path.join(course, "autograded", student, ASSIGNMENT, f"{ASSIGNMENT}.ipynb"))


def test_disagreements_are_flagged_for_manual_review(course, graded):
    assert graded["dan"]["status"] == "flagged" and len(graded["dan"]["flags"]) == POINTS
    assert trusted.load_flags(course) == {("dan", ASSIGNMENT): graded["dan"]["flags"]}
    con = sqlite3.connect(os.path.join(course, "gradebook.db"))
    assert con.execute("SELECT COUNT(*) FROM grade WHERE needs_manual_grade = 1").fetchone()[0] == POINTS


def test_summary_table_counts_graded_failed_flagged(graded):
    table = ag.summary_table(graded)
    assert table.splitlines()[-1] == "graded 3, failed to run 0, flagged 1"
    assert "dan" in table and "re-check fail" in table


def test_regrading_is_idempotent_and_other_students_keep_their_grades(course, graded):
    submit(course, {"ben": HONEST})
    again = ag.autograde(course, ASSIGNMENT, jobs=1, students=["ben"], progress=False)
    assert again["ben"]["score"] == POINTS
    assert _scores(course) == {"ann": POINTS, "ben": POINTS, "cat": POINTS, "dan": 0}


def test_bad_arguments_name_the_problem(course):
    with pytest.raises(ValueError, match="`jobs` must be >= 1; got 0"):
        ag.autograde(course, ASSIGNMENT, jobs=0)
    with pytest.raises(ValueError, match="'nope' is not in the gradebook"):
        ag.autograde(course, "nope")


def test_cli_prints_the_summary(tmp_path, capsys):
    root = make_course(tmp_path, {"solo": HONEST})
    code = cli.main(["autograde", ASSIGNMENT, "--jobs", "1", "--course-dir", root])
    out = capsys.readouterr().out
    assert code == 0
    assert "graded 1, failed to run 0, flagged 0" in out and "per minute" in out


def test_cli_refuses_when_the_sandbox_is_unavailable(tmp_path, capsys, monkeypatch):
    from conv_course import sandbox

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
