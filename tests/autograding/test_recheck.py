"""The trusted re-check: record the instructor's calls, replay their arguments, let the checker judge outside."""

import json
import os
import sys

import nbformat
import numpy as np
import pytest

from conv_course.autograding import plaindata, recheck
from conv_course.autograding.execution import InfrastructureError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))
from tinycourse import HONEST, WRONG, source_notebook  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _student(code, extra=()):
    nb = source_notebook()
    for i, cell in enumerate(nb.cells):
        if cell.metadata["nbgrader"]["grade_id"] == "scale":
            cell.source = code
            nb.cells[i + 1:i + 1] = [nbformat.v4.new_code_cell(c) for c in extra]
            break
    return nb


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    from tinycourse import CHECKER

    work = tmp_path_factory.mktemp("plan")
    (work / "tinycheck.py").write_text(CHECKER)
    return recheck.build_plan(source_notebook(), str(work)), work


def _recheck(plan, nb, tmp_path, sandbox=False):
    from tinycourse import CHECKER

    p, _ = plan
    files = {"tinycheck.py": CHECKER.encode()}  # a submission's files beside its notebook
    return {gid: v.status for gid, v in recheck.recheck(p, nb, files, sandbox=sandbox, timeout=60).items()}


def test_plan_records_every_test_cell(plan):
    p, _ = plan
    assert set(p["cells"]) == {"test_basic", "test_checker", "test_random"}
    assert all(c["status"] == "ok" for c in p["cells"].values())
    assert len(p["cells"]["test_basic"]["calls"]) == 2  # visible + hidden
    assert len(p["cells"]["test_checker"]["calls"]) == 2 and len(p["cells"]["test_random"]["calls"]) == 3
    first = p["cells"]["test_basic"]["calls"][0]
    args = plaindata.decode(first["args"], p["arrays"])
    assert np.array_equal(args[0], np.arange(3.0)) and args[1] == 2.0
    assert np.array_equal(plaindata.decode(first["outcome"]["value"], p["arrays"]), [0.0, 2.0, 4.0])


def test_untraceable_cells_are_unverifiable(tmp_path):
    nb = source_notebook()
    nb.cells[1].source = "class Model:\n    pass\nanswer = 42\n### BEGIN SOLUTION\n### END SOLUTION"
    nb.cells[2].source = "assert isinstance(Model(), Model)"
    nb.cells[3].source = "assert 1 + 1 == 2"
    nb.cells[4].source = "assert answer == 42"
    p = recheck.build_plan(nb, str(tmp_path))
    status = {gid: (c["status"], c["reason"]) for gid, c in p["cells"].items()}
    assert status["test_basic"][0] == "unverifiable" and "class" in status["test_basic"][1]
    assert status["test_checker"] == ("unverifiable", "the test calls nothing the student defines")
    assert status["test_random"][0] == "ok" and p["cells"]["test_random"]["values"]


def test_honest_work_passes_and_wrong_work_fails(plan, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert set(_recheck(plan, _student(HONEST), tmp_path / "a").values()) == {"pass"}
    assert set(_recheck(plan, _student(WRONG), tmp_path / "b").values()) == {"fail"}


def test_patches_made_by_student_code_do_not_reach_the_comparison(plan, tmp_path):
    nb = _student(WRONG + "\nimport numpy\nnumpy.allclose = lambda *a, **k: True\n"
                  "import builtins\nbuiltins.isinstance = lambda *a: True\n",
                  ["get_ipython().input_transformers_post.append(lambda lines: ['pass'])"])
    assert set(_recheck(plan, nb, tmp_path, sandbox=True).values()) == {"fail"}


def test_exceptions_and_missing_functions_fail(plan, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    raising = _recheck(plan, _student("def scale(x, k):\n    raise ValueError('no')\n"), tmp_path / "a")
    missing = _recheck(plan, _student("def other(x, k):\n    return x\n"), tmp_path / "b")
    assert set(raising.values()) == {"fail"} and set(missing.values()) == {"fail"}


def test_an_exit_costs_only_the_cells_it_hits(plan, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    top_level = _recheck(plan, _student(HONEST, ["import os\nos._exit(0)"]), tmp_path / "a", sandbox=True)
    assert set(top_level.values()) == {"pass"}  # the exit hits an ungraded cell; the replay goes on after it
    code = "import os\ndef scale(x, k):\n    if np.ndim(x) == 2:\n        os._exit(0)\n    return np.asarray(x) * k\n"
    in_test = recheck.recheck(plan[0], _student(code), sandbox=True, timeout=60)
    assert in_test["test_basic"].status == "fail" and "ended the Python process" in in_test["test_basic"].detail
    assert in_test["test_checker"].status == "pass"


def test_expected_exceptions_must_be_raised(tmp_path):
    nb = source_notebook()
    nb.cells[2].source = ("try:\n    scale(np.ones(2), 'k')\nexcept TypeError:\n    pass\n"
                          "else:\n    raise AssertionError('should raise TypeError')")
    p = recheck.build_plan(nb, str(tmp_path))
    assert p["cells"]["test_basic"]["calls"][0]["outcome"]["types"][0] == "UFuncTypeError"
    lenient = _student("def scale(x, k):\n    return np.asarray(x) * float(k) if not isinstance(k, str) else x\n")
    verdicts = recheck.recheck(p, lenient, sandbox=False)
    assert verdicts["test_basic"].status == "fail" and "should raise" in verdicts["test_basic"].detail


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "solutions", "01-corr2d", "01-corr2d.ipynb")),
                    reason="assignment 01 not in this checkout")
def test_assignment_01_flipped_kernel_fails_only_corr2d(tmp_path):
    source = nbformat.read(os.path.join(ROOT, "solutions", "01-corr2d", "01-corr2d.ipynb"), 4)
    p = recheck.build_plan(source, str(tmp_path))
    assert p["cells"] and all(c["status"] == "ok" for c in p["cells"].values())
    flipped = nbformat.from_dict(source)
    for cell in flipped.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "corr2d":
            cell.source += "\n_c = corr2d\ncorr2d = lambda image, kernel, stride=1, padding=0: " \
                           "_c(image, np.asarray(kernel)[::-1, ::-1], stride, padding)\n"
    got = {gid: v.status for gid, v in recheck.recheck(p, flipped, sandbox=True).items()}
    assert got.pop("test_output_size") == "pass"
    assert set(got.values()) == {"fail"}


def test_new_roots_lists_what_to_import_again_in_order():
    before = {"numpy", "torch"}
    after = dict.fromkeys(["numpy", "torch", "torch._dynamo.utils", "torch._dynamo", "scipy.linalg", "scipy",
                           "json"])
    from conv_course.autograding._replay import new_roots

    assert new_roots(before, after) == ["torch._dynamo", "scipy", "json"]


def test_plan_lists_the_modules_the_notebook_imported(tmp_path):
    nb = source_notebook()
    nb.cells[2].source += "\nimport fractions"
    p = recheck.build_plan(nb, str(tmp_path))
    assert "numpy" in p["modules"] and "fractions" in p["modules"]
    assert not any(m.startswith(("__", "conv_course.autograding._replay")) for m in p["modules"])


def test_cached_plan_is_reused_until_the_source_changes(tmp_path, monkeypatch):
    from tinycourse import CHECKER

    src = tmp_path / "source"
    src.mkdir()
    nbformat.write(source_notebook(), str(src / "tiny.ipynb"))
    (src / "tinycheck.py").write_text(CHECKER)
    cache = tmp_path / "plans"
    first = recheck.cached_plan(str(src), "tiny", str(cache))
    built = []
    real_build = recheck.build_plan
    monkeypatch.setattr(recheck, "build_plan", lambda *a, **k: built.append(1) or real_build(*a, **k))
    again = recheck.cached_plan(str(src), "tiny", str(cache))
    assert built == [] and again["cells"] == first["cells"] and again["modules"] == first["modules"]
    assert all(np.array_equal(a, b) for a, b in zip(again["arrays"], first["arrays"]))
    (src / "tinycheck.py").write_text(CHECKER + "\n# a changed checker\n")
    recheck.cached_plan(str(src), "tiny", str(cache))
    assert built == [1] and len(list((cache / "tiny").glob("*.json"))) == 1


def test_the_sandbox_never_receives_an_expected_value(plan, tmp_path):
    """The replay job holds the arguments of each call and nothing of the instructor's results."""
    p, _ = plan
    job, arrays = recheck._replay_job(p, _student(HONEST), list(p["cells"]), list(p["cells"]), set())
    text = json.dumps(job)
    assert "outcome" not in text and "value" not in text.replace('"values"', "")
    expected = [plaindata.decode(c["outcome"]["value"], p["arrays"]) for cell in p["cells"].values()
                for c in cell["calls"]]
    for want in expected:  # no array of the job equals an expected result (2 * arange(3), ...)
        assert not any(a.shape == np.shape(want) and np.allclose(a, want) and not np.allclose(want, 0)
                       for a in arrays if a.size > 1)


def test_the_judge_keeps_partial_credit_of_one_wrong_element(tmp_path):
    """A cell checks what its checker checks: a tuple with one wrong element fails only that cell."""
    nb = source_notebook()
    nb.cells[1].source = ("def pair(x):\n    ### BEGIN SOLUTION\n    return x * 2, x + 1\n    ### END SOLUTION")
    nb.cells[2].source = "assert np.allclose(pair(np.ones(3))[0], 2), 'first element'"
    nb.cells[3].source = "assert np.allclose(pair(np.ones(3))[1], 2), 'second element'"
    nb.cells[4].source = "assert len(pair(np.ones(2))) == 2"
    p = recheck.build_plan(nb, str(tmp_path))
    student = nbformat.from_dict(nb)
    student.cells[1].source = "def pair(x):\n    return x * 2, x - 1\n"
    verdicts = recheck.recheck(p, student, sandbox=False)
    assert {g: v.status for g, v in verdicts.items()} == {"test_basic": "pass", "test_checker": "fail",
                                                          "test_random": "pass"}
    assert verdicts["test_checker"].output["evalue"] == "second element"


def test_in_place_changes_to_arguments_reach_the_checker(tmp_path):
    nb = source_notebook()
    nb.cells[1].source = "def fill(x):\n    ### BEGIN SOLUTION\n    return x.sum()\n    ### END SOLUTION"
    nb.cells[2].source = "a = np.ones(3)\nfill(a)\nassert np.all(a == 1), 'fill changed its argument'"
    p = recheck.build_plan(nb, str(tmp_path))
    student = nbformat.from_dict(nb)
    student.cells[1].source = "def fill(x):\n    x[:] = 0\n    return 3.0\n"
    verdict = recheck.recheck(p, student, sandbox=False)["test_basic"]
    assert verdict.status == "fail" and "changed its argument" in verdict.detail


def test_a_hanging_cell_costs_that_cell_only(plan, tmp_path):
    code = ("def scale(x, k):\n    if np.ndim(x) == 2 and np.shape(x)[0] == 2:\n        while True:\n"
            "            pass\n    return np.asarray(x) * k\n")
    verdicts = recheck.recheck(plan[0], _student(code), sandbox=False, cell_timeout=2)
    assert verdicts["test_basic"].status == "fail" and "per-cell limit" in verdicts["test_basic"].detail
    assert verdicts["test_checker"].status == "pass" and verdicts["test_random"].status == "pass"


@pytest.mark.parametrize("python", ["/nonexistent/python", "/bin/false"])
def test_a_replay_that_never_starts_is_an_infrastructure_failure(plan, tmp_path, monkeypatch, python):
    monkeypatch.setattr(recheck.sys, "executable", python)
    with pytest.raises(InfrastructureError, match="did not start"):
        recheck.recheck(plan[0], _student(HONEST), sandbox=False)


def test_hidden_cases_depend_on_the_course_secret(tmp_path):
    nb = source_notebook()
    nb.cells[2].source = ("from conv_course.grading import case_rng\n"
                          "x = case_rng('g', hidden=True).normal(size=3)\nassert np.allclose(scale(x, 2.0), 2 * x)")
    a = recheck.build_plan(nb, str(tmp_path), secret="one")
    b = recheck.build_plan(nb, str(tmp_path), secret="two")
    args = [plaindata.decode(p["cells"]["test_basic"]["calls"][0]["args"], p["arrays"])[0] for p in (a, b)]
    assert not np.allclose(args[0], args[1])


def test_course_secret_is_created_once_and_private(tmp_path):
    first = recheck.course_secret(str(tmp_path))
    assert first == recheck.course_secret(str(tmp_path)) and len(first) == 32
    assert os.stat(tmp_path / "trusted" / "secret").st_mode & 0o077 == 0


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "solutions", "09-fine-tune", "09-fine-tune.ipynb")),
                    reason="assignment 09 not in this checkout")
def test_checks_on_models_are_judged_from_their_student_side_reports(tmp_path):
    """09 checks models and optimizers: the student side reports plain data, the judge judges it."""
    source = nbformat.read(os.path.join(ROOT, "solutions", "09-fine-tune", "09-fine-tune.ipynb"), 4)
    p = recheck.build_plan(source, str(tmp_path))
    assert p["cells"] and all(c["status"] == "ok" for c in p["cells"].values()), p["cells"]
    call = p["cells"]["test_freeze"]["calls"][0]
    assert call["probe"] and call["name"] == "conv_course.grading.finetuning.freeze_report"
    job, _ = recheck._replay_job(p, source, ["test_freeze"], ["test_freeze"], set())
    assert '"t": "ref", "n": "freeze_backbone"' in json.dumps(job["calls"])
    lazy = nbformat.from_dict(source)
    for cell in lazy.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "freeze_backbone":
            cell.source = "def freeze_backbone(model):\n    return model\n"
    verdicts = recheck.recheck(p, lazy, sandbox=True, timeout=120)
    assert verdicts["test_freeze"].status == "fail"
    assert "no parameter of model.features is frozen" in verdicts["test_freeze"].detail
    assert {g for g, v in verdicts.items() if v.status == "pass"} == set(p["cells"]) - {"test_freeze"}


def test_the_plan_key_covers_every_file_of_the_package(monkeypatch, tmp_path):
    """A checker or engine change anywhere in conv_course (not only beside the re-check) makes
    cached instructor plans stale."""
    import shutil

    from conv_course import PACKAGE_DIR

    copy = tmp_path / "conv_course"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    monkeypatch.setattr(recheck, "PACKAGE_DIR", str(copy))
    src = tmp_path / "source"
    src.mkdir()
    keys = [recheck.plan_key(str(src))]
    for rel in ("grading/conv.py", "_engine/gemm.py", "ops.py"):
        with open(copy / rel, "a") as f:
            f.write("# changed\n")
        keys.append(recheck.plan_key(str(src)))
    assert len(set(keys)) == len(keys)
