"""The committed exercises/ equal a fresh `nbgrader generate_assignment` of every solutions/ assignment.

Fails when someone edits solutions/ without `make release`, or hand-edits exercises/.
"""

import json
import pathlib
import shutil

import pytest

from conv_course.autograding import course

ROOT = pathlib.Path(__file__).resolve().parents[2]


def normalise(path):
    """Notebook JSON without what does not matter to students: outputs, counts, versions, ids order."""
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        cell = {k: v for k, v in cell.items() if k not in ("execution_count", "outputs")}
        cell["source"] = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k not in ("trusted", "collapsed",
                                                                                          "scrolled", "execution")}
        cells.append(cell)
    meta = {"kernel": nb["metadata"].get("kernelspec", {}).get("name")}
    return {"cells": cells, "metadata": meta, "nbformat": nb["nbformat"]}


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release-sync")
    shutil.copy(ROOT / "nbgrader_config.py", tmp / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", tmp / "solutions")
    code = course.nbgrader(str(tmp), "generate_assignment", "*", "--force", "--no-db", "--log-level=WARN",
                           quiet=True)
    assert code == 0, "nbgrader generate_assignment failed (log above)"
    return tmp / "exercises"


def test_every_solution_has_a_committed_release():
    assert course.assignments(str(ROOT), "solutions") == course.assignments(str(ROOT), "exercises")


def test_exercises_equal_a_fresh_release(fresh_release):
    names = course.assignments(str(ROOT), "solutions")
    assert names, "no assignments under solutions/"
    stale = []
    for name in names:
        committed = ROOT / "exercises" / name / f"{name}.ipynb"
        fresh = fresh_release / name / f"{name}.ipynb"
        if not committed.exists() or normalise(committed) != normalise(fresh):
            stale.append(name)
    assert not stale, f"exercises/ out of date for {stale}: run `make release` and commit exercises/"


def test_normalise_sees_a_changed_source(fresh_release, tmp_path):
    name = course.assignments(str(ROOT), "solutions")[0]
    fresh = fresh_release / name / f"{name}.ipynb"
    nb = json.loads(fresh.read_text())
    nb["cells"][-1]["source"] = "edited by hand"
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb))
    assert normalise(edited) != normalise(fresh)
