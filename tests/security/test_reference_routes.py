"""No route to the reference: submissions of 01-corr2d that call, capture or reproduce it score nothing.

A red team found five routes that scored full marks while the checker ran in the student's
process. With the judge design, the process that runs student code holds no implementation of
convolution (the course's reference ops and checkers, scipy, scikit-image, torch are hidden), and
hidden cases come from the course secret, so every route fails, whatever trick it uses.
"""

import os
import pathlib
import shutil

import nbformat
import pytest

from conv_course.autograding import course
from conv_course.autograding.autograde import autograde

ROOT = pathlib.Path(__file__).resolve().parents[2]
A = "01-corr2d"
pytestmark = pytest.mark.skipif(not (ROOT / "solutions" / A).is_dir(), reason="no assignment 01 here")

ROUTES = {
    "default_argument": "def corr2d(image, kernel, stride=1, padding=0,\n"
                        "           _ref=__import__('conv_course.ops', fromlist=['corr2d']).corr2d):\n"
                        "    return _ref(image, kernel, stride, padding)\n",
    "unwrap_at_call": "def corr2d(image, kernel, stride=1, padding=0):\n    from conv_course import ops\n"
                      "    f = getattr(ops.corr2d, '__wrapped_reference__', ops.corr2d)\n"
                      "    return f(image, kernel, stride, padding)\n",
    "other_library": "def corr2d(image, kernel, stride=1, padding=0):\n    from scipy import ndimage\n"
                     "    import numpy as np\n    out = ndimage.correlate(np.pad(image, padding), kernel, mode='constant')\n"
                     "    kh, kw = kernel.shape\n    return out[kh // 2:out.shape[0] - (kh - 1) // 2:stride,\n"
                     "               kw // 2:out.shape[1] - (kw - 1) // 2:stride]\n",
    "live_objects": "import gc\n\ndef corr2d(image, kernel, stride=1, padding=0):\n"
                    "    for f in gc.get_objects():\n"
                    "        if callable(f) and getattr(f, '__module__', '') == 'conv_course.ops' and \\\n"
                    "                getattr(f, '__name__', '') == 'corr2d':\n"
                    "            return f(image, kernel, stride, padding)\n    return image\n",
    "hidden_cases": "from conv_course.grading.conv import check_corr2d\n\n"
                    "def corr2d(image, kernel, stride=1, padding=0):\n    return image\n",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("routes")
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions" / A, root / "solutions" / A)
    assert course.release(str(root), [A], quiet=True) == 0
    source = nbformat.read(root / "solutions" / A / f"{A}.ipynb", 4)
    for student, code in {"honest": None, **ROUTES}.items():
        nb = nbformat.from_dict(source)
        for cell in nb.cells:
            if code and cell.metadata.get("nbgrader", {}).get("grade_id") == "corr2d":
                cell.source = code
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{A}.ipynb")
    return autograde(str(root), A, jobs=2, progress=False)


def test_the_honest_student_gets_everything(graded):
    assert graded["honest"]["score"] == graded["honest"]["max_score"] == 5


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_route_to_the_reference_scores(graded, route):
    rec = graded[route]
    cells = {k.split("/")[-1]: v for k, v in rec["cells"].items()}
    assert rec["score"] == 1, cells  # conv_output_size, which every submission answers honestly
    assert all(c["by"] == "judge" for c in cells.values())
    assert all(c["verdict"] == "fail" for k, c in cells.items() if k.startswith("test_corr2d"))


def test_a_hidden_library_is_named_in_the_feedback(graded):
    detail = graded["other_library"]["cells"][f"{A}/test_corr2d_basic"]["detail"]
    assert "scipy is not available to student code while it is graded" in detail
