"""A tiny nbgrader course built on the fly: one assignment, one notebook, three 1-point test cells.

The hostile-submission suite and the autograde tests grade submissions of this course, so they
never depend on the real assignments (and stay fast): `make_course(root, {student: code})`.
"""

import json
import os
import sys
import textwrap

import nbformat

ASSIGNMENT = "tiny"
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "tiny-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.Execute.timeout = {timeout}
"""
# The instructor's answer and its tests; the checker lives in a module of the course (like
# conv_course.grading) and compares with numpy.allclose, which hostile code likes to patch.
SOLUTION = '''def scale(x, k):
    """Multiply the array `x` by the number `k`; returns an array of x's shape."""
    ### BEGIN SOLUTION
    # CANARY-SOLUTION-5d1e: the instructor's answer; no student output may ever contain this line
    return np.asarray(x) * k
    ### END SOLUTION'''
HONEST = "def scale(x, k):\n    return np.asarray(x) * k\n"
WRONG = "def scale(x, k):\n    return np.asarray(x) + k\n"
TESTS = {
    "test_basic": '''"""scale on a small vector (1 point)."""
assert np.allclose(scale(np.arange(3.0), 2.0), [0.0, 2.0, 4.0]), "scale(arange(3), 2) is wrong"
### BEGIN HIDDEN TESTS
# CANARY-HIDDEN-8b2c: hidden test source
assert np.allclose(scale(np.ones((2, 2)), -1.5), -1.5 * np.ones((2, 2)))
### END HIDDEN TESTS''',
    "test_checker": '''"""scale passes the course checker (1 point)."""
from tinycheck import check_scale
check_scale(scale)''',
    "test_random": '''"""scale on random matrices (1 point)."""
rng = np.random.default_rng(0)
for _ in range(3):
    x = rng.normal(size=(3, 4))
    assert np.allclose(scale(x, 3.0), 3.0 * x), "scale(x, 3) is wrong"''',
}


CHECKER = '''"""The tiny course's checker module, shipped beside the notebook (like conv_course.grading)."""
import numpy as np


def check_scale(scale):
    for k in (0.5, -2.0):
        x = np.linspace(-1.0, 1.0, 5)
        got = scale(x, k)
        if not np.allclose(got, k * x):
            raise AssertionError(f"scale(x, {k}) = {got}, expected {k * x}")
'''
POINTS = len(TESTS)
CANARIES = ("CANARY-SOLUTION-5d1e", "CANARY-HIDDEN-8b2c")


def _cell(kind, source, grade_id, points=None):
    meta = {"grade_id": grade_id, "locked": kind != "solution", "schema_version": 3,
            "solution": kind == "solution", "grade": kind == "test"}
    if kind == "test":
        meta["points"] = points
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def source_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [_cell("locked", "import numpy as np", "imports"), _cell("solution", SOLUTION, "scale")]
    nb.cells += [_cell("test", src, gid, 1) for gid, src in TESTS.items()]
    return nb


def make_course(root, submissions, timeout=10):
    """Create the course under `root`, release `tiny`, and submit `submissions`.

    Args:
        submissions: {student: code} (the code replaces the solution cell), or {student: bytes}
            (written verbatim as the .ipynb, e.g. corrupted JSON), or {student: list of str}
            (extra cells appended after the solution cell: code the student ran in between).
    Returns:
        the course root (str).
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from conv_course.autograding.autograde import load_course_config

    root = str(root)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    with open(os.path.join(root, "nbgrader_config.py"), "w") as f:
        f.write(CONFIG.format(timeout=timeout))
    src = os.path.join(root, "solutions", ASSIGNMENT)
    os.makedirs(src, exist_ok=True)
    nbformat.write(source_notebook(), os.path.join(src, f"{ASSIGNMENT}.ipynb"))
    with open(os.path.join(src, "tinycheck.py"), "w") as f:
        f.write(CHECKER)
    if not os.path.exists(os.path.join(root, "gradebook.db")):
        cfg = load_course_config(root)
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id = ASSIGNMENT
        app = GenerateAssignment(coursedir=coursedir, config=cfg)
        app.log.setLevel("ERROR")
        app.start()
    submit(root, submissions)
    return root


def submit(root, submissions):
    released = nbformat.read(os.path.join(root, "exercises", ASSIGNMENT, f"{ASSIGNMENT}.ipynb"), 4)
    for student, code in submissions.items():
        folder = os.path.join(root, "submitted", student, ASSIGNMENT)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{ASSIGNMENT}.ipynb")
        if isinstance(code, bytes):
            with open(path, "wb") as f:
                f.write(code)
            continue
        nb = nbformat.from_dict(json.loads(nbformat.writes(released)))
        extra = list(code) if isinstance(code, (list, tuple)) else []
        for i, cell in enumerate(nb.cells):
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "scale":
                cell.source = textwrap.dedent(extra.pop(0) if extra else code)
                nb.cells[i + 1:i + 1] = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in extra]
                break
        nbformat.write(nb, path)
