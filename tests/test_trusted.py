"""The trusted re-check: recording the instructor's calls, replaying them, comparing outside."""

import os
import sys

import nbformat
import numpy as np
import pytest

from conv_course import _replay as codec
from conv_course import trusted

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "security"))
from tinycourse import HONEST, WRONG, source_notebook  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    return trusted.build_plan(source_notebook(), str(work)), work


def _recheck(plan, nb, tmp_path, sandbox=False):
    from tinycourse import CHECKER

    p, _ = plan
    (tmp_path / "tinycheck.py").write_text(CHECKER)
    return {gid: v.status for gid, v in trusted.recheck(p, nb, str(tmp_path), sandbox=sandbox, timeout=60).items()}


def test_codec_round_trips_plain_data():
    value = {"a": [1, 2.5, None, True, "s"], (1, 2): (np.arange(6).reshape(2, 3), np.float32(0.5)),
             "big": 2 ** 80, "nan": float("nan")}
    arrays = []
    back = codec.decode(codec.encode(value, arrays), arrays)
    assert codec.same(value, back)
    assert back["big"] == 2 ** 80 and isinstance(back[(1, 2)], tuple)
    assert np.array_equal(back[(1, 2)][0], np.arange(6).reshape(2, 3))


def test_codec_refuses_non_data():
    for bad in (lambda: 1, object(), np.array([object()]), {1, 2}):
        with pytest.raises(codec.Unencodable):
            codec.encode(bad, [])


@pytest.mark.parametrize("node", [{"t": "array", "i": 5}, {"t": "int", "v": 3}, {"t": "list", "v": "x"},
                                  {"t": "eval", "v": "1"}, "x", {"t": "dict", "k": [], "v": [{"t": "none"}]}])
def test_decode_rejects_malformed_trees(node):
    with pytest.raises(ValueError):
        codec.decode(node, [np.zeros(1)])


def test_same_compares_shapes_values_and_kinds():
    a = np.array([[1.0, 2.0]])
    assert codec.same(a, a + 1e-9)
    assert not codec.same(a, a + 1e-3)
    assert not codec.same(a, a.reshape(2, 1))
    assert not codec.same(np.array([True]), np.array([1]))
    assert codec.same(3, 3.0) and not codec.same(3, True) and not codec.same("a", b"a")
    assert codec.same([1, (2, 3)], (1, [2, 3])) and not codec.same([1, 2], [1, 2, 3])


def test_read_bundle_refuses_links_fifos_and_pickles(tmp_path):
    codec.write_bundle(str(tmp_path), "ok", {"x": 1}, [np.zeros(2)])
    obj, arrays = codec.read_bundle(str(tmp_path), "ok")
    assert obj == {"x": 1} and np.array_equal(arrays[0], np.zeros(2))
    os.symlink(tmp_path / "ok.json", tmp_path / "link.json")
    os.symlink(tmp_path / "ok.npz", tmp_path / "link.npz")
    with pytest.raises(OSError):
        codec.read_bundle(str(tmp_path), "link")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ValueError, match="regular file"):
        codec.read_bundle(str(tmp_path), "fifo")
    (tmp_path / "pickled.json").write_text("{}")
    np.savez(tmp_path / "pickled.npz", np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        codec.read_bundle(str(tmp_path), "pickled")


def test_plan_records_every_test_cell(plan):
    p, _ = plan
    assert set(p["cells"]) == {"test_basic", "test_checker", "test_random"}
    assert all(c["status"] == "ok" for c in p["cells"].values())
    assert len(p["cells"]["test_basic"]["calls"]) == 2  # visible + hidden
    assert len(p["cells"]["test_checker"]["calls"]) == 2 and len(p["cells"]["test_random"]["calls"]) == 3
    first = p["cells"]["test_basic"]["calls"][0]
    args = codec.decode(first["args"], p["arrays"])
    assert np.array_equal(args[0], np.arange(3.0)) and args[1] == 2.0
    assert np.array_equal(codec.decode(first["outcome"]["value"], p["arrays"]), [0.0, 2.0, 4.0])


def test_untraceable_cells_are_unverifiable(tmp_path):
    nb = source_notebook()
    nb.cells[1].source = "class Model:\n    pass\nanswer = 42\n### BEGIN SOLUTION\n### END SOLUTION"
    nb.cells[2].source = "assert isinstance(Model(), Model)"
    nb.cells[3].source = "assert 1 + 1 == 2"
    nb.cells[4].source = "assert answer == 42"
    p = trusted.build_plan(nb, str(tmp_path))
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


def test_a_killed_recheck_fails_the_cells_it_did_not_reach(plan, tmp_path):
    nb = _student(HONEST, ["import os\nos._exit(0)"])
    assert set(_recheck(plan, nb, tmp_path, sandbox=True).values()) == {"fail"}


def test_expected_exceptions_must_be_raised(tmp_path):
    nb = source_notebook()
    nb.cells[2].source = ("try:\n    scale(np.ones(2), 'k')\nexcept TypeError:\n    pass\n"
                          "else:\n    raise AssertionError('should raise TypeError')")
    p = trusted.build_plan(nb, str(tmp_path))
    assert p["cells"]["test_basic"]["calls"][0]["outcome"]["types"][0] == "UFuncTypeError"
    lenient = _student("def scale(x, k):\n    return np.asarray(x) * float(k) if not isinstance(k, str) else x\n")
    verdicts = trusted.recheck(p, lenient, str(tmp_path), sandbox=False)
    assert verdicts["test_basic"].status == "fail" and "should raise" in verdicts["test_basic"].detail


def test_flags_round_trip(tmp_path):
    trusted.write_flags(str(tmp_path), "a1", {"eve": {"flags": ["x: kernel 1, re-check fail"]}, "bob": {"flags": []}})
    assert trusted.load_flags(str(tmp_path)) == {("eve", "a1"): ["x: kernel 1, re-check fail"]}


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "solutions", "01-corr2d", "01-corr2d.ipynb")),
                    reason="assignment 01 not in this checkout")
def test_assignment_01_flipped_kernel_fails_only_corr2d(tmp_path):
    source = nbformat.read(os.path.join(ROOT, "solutions", "01-corr2d", "01-corr2d.ipynb"), 4)
    p = trusted.build_plan(source, str(tmp_path))
    assert p["cells"] and all(c["status"] == "ok" for c in p["cells"].values())
    flipped = nbformat.from_dict(source)
    for cell in flipped.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "corr2d":
            cell.source += "\n_c = corr2d\ncorr2d = lambda image, kernel, stride=1, padding=0: " \
                           "_c(image, np.asarray(kernel)[::-1, ::-1], stride, padding)\n"
    got = {gid: v.status for gid, v in trusted.recheck(p, flipped, str(tmp_path), sandbox=True).items()}
    assert got.pop("test_output_size") == "pass"
    assert set(got.values()) == {"fail"}


def test_new_roots_lists_what_to_import_again_in_order():
    before = {"numpy", "torch"}
    after = dict.fromkeys(["numpy", "torch", "torch._dynamo.utils", "torch._dynamo", "scipy.linalg", "scipy",
                           "json"])
    assert codec.new_roots(before, after) == ["torch._dynamo", "scipy", "json"]


def test_plan_lists_the_modules_the_notebook_imported(tmp_path):
    nb = source_notebook()
    nb.cells[2].source += "\nimport fractions"
    p = trusted.build_plan(nb, str(tmp_path))
    assert "numpy" in p["modules"] and "fractions" in p["modules"]
    assert not any(m.startswith(("__", "conv_course._replay")) for m in p["modules"])


def test_cached_plan_is_reused_until_the_source_changes(tmp_path, monkeypatch):
    from tinycourse import CHECKER

    src = tmp_path / "source"
    src.mkdir()
    nbformat.write(source_notebook(), str(src / "tiny.ipynb"))
    (src / "tinycheck.py").write_text(CHECKER)
    cache = tmp_path / "plans"
    first = trusted.cached_plan(str(src), "tiny", str(cache))
    built = []
    real_build = trusted.build_plan
    monkeypatch.setattr(trusted, "build_plan", lambda *a, **k: built.append(1) or real_build(*a, **k))
    again = trusted.cached_plan(str(src), "tiny", str(cache))
    assert built == [] and again["cells"] == first["cells"] and again["modules"] == first["modules"]
    assert all(np.array_equal(a, b) for a, b in zip(again["arrays"], first["arrays"]))
    (src / "tinycheck.py").write_text(CHECKER + "\n# a changed checker\n")
    trusted.cached_plan(str(src), "tiny", str(cache))
    assert built == [1] and len(list((cache / "tiny").glob("*.json"))) == 1
