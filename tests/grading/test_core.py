"""Unit tests of the grading core (`conv_course.grading._core`, the `checker` decorator and the
package's lazy checker lookup), in-process (no nbgrader). The diagnoses of each checker are tested
beside it (test_conv.py, test_pooling.py, ...); here a checker only serves as a real caller.
"""

import sys

import numpy as np
import pytest

from conv_course import grading
from conv_course.grading import (call_student, case_rng, check_array, check_corr2d, forbid_references,
                                 format_case, run_cases, select_variants, shape_diagnoses)
from conv_course.grading._core import not_implemented


def corr2d(image, kernel, stride=1, padding=0):
    """A correct corr2d, for the tests that need a checker to pass."""
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(image, padding), kernel.shape)
    return np.einsum("ijab,ab->ij", windows[::stride, ::stride], kernel)


# ------------------------------------------------------------------ messages
def test_message_states_case_shapes_and_first_values():
    with pytest.raises(AssertionError) as err:
        check_array(np.array([[1.0, 2.0], [3.0, 9.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]),
                    case={"image": np.zeros((3, 3)), "stride": 1})
    msg = str(err.value)
    assert "image=array(3, 3) float64, stride=1" in msg
    assert "expected shape (2, 2), received shape (2, 2)" in msg
    assert "1 of 4 values differ; at [1, 1] expected 4, received 9" in msg
    assert "Likely bug" not in msg


def test_message_never_prints_a_whole_array():
    big = np.arange(400.0).reshape(20, 20)
    with pytest.raises(AssertionError) as err:
        check_array(big + 1, big, case={"x": big})
    msg = str(err.value)
    assert "400 of 400 values differ" in msg
    assert msg.count("expected") <= 4 and len(msg) < 600


def test_shape_mismatch_uses_shape_diagnoses():
    with pytest.raises(AssertionError, match="one column short"):
        check_array(np.zeros((3, 2)), np.zeros((3, 3)), case={}, variants=shape_diagnoses((3, 3)))


def test_variant_equal_to_expected_is_not_a_diagnosis():
    expected = np.ones((2, 2))
    with pytest.raises(AssertionError) as err:
        check_array(np.zeros((2, 2)), expected, case={}, variants={"same": (expected.copy(), "WRONG TEXT")})
    assert "WRONG TEXT" not in str(err.value)


def test_none_and_non_numeric_results_are_explained():
    with pytest.raises(AssertionError, match="forget `return`"):
        check_array(None, np.zeros(2), case={})
    with pytest.raises(AssertionError, match="numeric"):
        check_array(np.array(["a", "b"]), np.zeros(2), case={})


def test_format_case_shows_arrays_as_shape_and_dtype():
    assert format_case({"x": np.zeros((2, 3), np.float32), "k": 3, "p": (1, 2)}) == \
        "x=array(2, 3) float32, k=3, p=(1, 2)"


def test_case_rng_is_seeded_and_hidden_differs():
    a, b = case_rng("g").integers(0, 10**9), case_rng("g").integers(0, 10**9)
    assert a == b and a != case_rng("g", hidden=True).integers(0, 10**9)


def test_run_cases_stops_at_first_failure_and_rejects_empty_groups():
    seen = []

    def one(case):
        seen.append(case)
        if case == 2:
            raise AssertionError("bad case 2")

    with pytest.raises(AssertionError, match="bad case 2"):
        run_cases([1, 2, 3], one)
    assert seen == [1, 2]
    with pytest.raises(ValueError, match="cases"):
        run_cases([], one)


def test_call_student_explains_not_implemented_and_errors():
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        call_student(stub, 1, case={})

    def broken(x):
        return x[5]

    with pytest.raises(AssertionError, match=r"case n=1: `broken` raised IndexError"):
        call_student(broken, np.zeros(2), case={"n": 1})


# ------------------------------------------------------------------ references are forbidden
def test_forbidden_module_attribute_call_fails_with_the_reference_named():
    import scipy.signal

    def cheat(a):
        return scipy.signal.correlate2d(a, a)

    with pytest.raises(AssertionError, match=r"`cheat` called scipy.signal.correlate2d while being checked: "
                                             r"write the computation yourself"):
        call_student(cheat, np.ones((2, 2)), case={})


def test_name_imported_before_the_check_is_blocked_too():
    namespace = {}
    exec("from numpy import convolve\ndef cheat(a):\n    return convolve(a, a)\n", namespace)
    with pytest.raises(AssertionError, match="numpy.convolve"):
        call_student(namespace["cheat"], np.ones(3), case={})
    assert namespace["convolve"] is np.convolve  # restored afterwards


def test_conv_course_ops_is_blocked_and_restored():
    from conv_course import ops

    def cheat(im, k, stride=1, padding=0):
        return ops.corr2d(im, k, stride, padding)

    with pytest.raises(AssertionError, match="`cheat` called conv_course.ops.corr2d"):
        check_corr2d(cheat, group="basic")
    assert ops.corr2d(np.arange(9).reshape(3, 3), np.arange(4).reshape(2, 2)).tolist() == [[19, 25], [37, 43]]


def test_swallowed_reference_error_still_fails():
    def sneaky(a):
        try:
            return np.correlate(a, a)
        except AssertionError:
            return a

    with pytest.raises(AssertionError, match="numpy.correlate"):
        call_student(sneaky, np.ones(3), case={})


def test_module_imported_during_the_check_is_blocked(monkeypatch):
    import scipy

    for name in [m for m in sys.modules if m == "scipy.ndimage" or m.startswith("scipy.ndimage.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(scipy, "ndimage", raising=False)
    assert "scipy.ndimage" not in sys.modules

    def cheat(a):
        import scipy.ndimage

        return scipy.ndimage.correlate(a, a)

    with pytest.raises(AssertionError, match="scipy.ndimage.correlate"):
        call_student(cheat, np.ones((3, 3)), case={})


def test_torch_functional_and_torch_names_are_blocked():
    torch = pytest.importorskip("torch")

    def via_functional(_):
        return torch.nn.functional.max_pool2d(torch.ones(1, 1, 2, 2), 2)

    def via_torch(_):
        return torch.conv2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1))

    with pytest.raises(AssertionError, match="torch.nn.functional.max_pool2d"):
        call_student(via_functional, 0, case={})
    with pytest.raises(AssertionError, match="called torch.conv2d"):
        call_student(via_torch, 0, case={})
    assert torch.nn.functional.max_pool2d(torch.ones(1, 1, 2, 2), 2).item() == 1.0


def test_checker_own_references_work_inside_nested_context():
    with forbid_references("student"):
        with forbid_references("student"):
            pass
    assert np.convolve([1, 2], [1, 1]).tolist() == [1, 3, 2]


def test_lazy_checker_lookup_and_unknown_names():
    assert grading.check_corr2d is check_corr2d
    with pytest.raises(AttributeError):
        grading.check_no_such_thing  # noqa: B018


# ------------------------------------------------------------------ two bugs, one wrong array
def test_check_array_names_every_variant_equal_to_the_received_array():
    expected, wrong = np.arange(4.0).reshape(2, 2), np.zeros((2, 2))
    variants = {"a": (wrong, "FIRST BUG"), "b": (wrong.copy(), "SECOND BUG"), "c": (wrong + 1, "OTHER BUG")}
    with pytest.raises(AssertionError) as err:
        check_array(wrong, expected, case={}, variants=variants)
    msg = str(err.value)
    assert "Likely bug: FIRST BUG\n  Or: SECOND BUG" in msg and "OTHER BUG" not in msg


def test_a_wrong_shape_with_other_values_keeps_the_shape_diagnoses():
    with pytest.raises(AssertionError) as err:
        check_array(np.full((2, 3), 7.0), np.zeros((3, 3)), case={}, variants=shape_diagnoses((3, 3)))
    assert "Likely bug: output is one row short" in str(err.value)


def test_check_array_names_three_bugs_at_most():
    expected, wrong = np.ones(2), np.zeros(2)
    variants = {name: (wrong, f"BUG {name}") for name in "abcd"}
    with pytest.raises(AssertionError) as err:
        check_array(wrong, expected, case={}, variants=variants)
    assert "Likely bug: BUG a\n  Or: BUG b\n  Or: BUG c" in str(err.value) and "BUG d" not in str(err.value)


# ------------------------------------------------------------------ select_variants: which bugs explain an answer
def test_select_variants_keeps_a_wrong_array_and_a_short_corner_that_both_equal_the_answer():
    expected = np.arange(9.0).reshape(3, 3)
    received = np.array([[0.0, 1.0], [3.0, 4.0]])                   # the top-left 2x2 corner
    variants = {"array": (received.copy(), "A"), "corner": ((2, 2), "B"), "other": (np.zeros((2, 2)), "C")}
    assert list(select_variants(received, expected, variants)) == ["array", "corner"]


def test_select_variants_asks_a_predicate():
    variants = {"negated": (lambda r: bool(np.all(r < 0)), "signs"), "zero": (np.zeros(2), "zeros")}
    assert list(select_variants(-np.ones(2), np.ones(2), variants)) == ["negated"]


def test_select_variants_falls_back_to_the_variants_of_the_received_shape():
    variants = {"wide": (np.zeros((2, 4)), "W"), "short": ((2, 3), "S"), "tall": (np.zeros((4, 3)), "T"),
                "pred": (lambda r: False, "P")}
    assert list(select_variants(np.full((2, 3), 7.0), np.zeros((3, 3)), variants)) == ["short"]
    assert list(select_variants(np.full((2, 4), 7.0), np.zeros((3, 3)), variants)) == ["wide"]


def test_select_variants_names_nothing_for_wrong_values_of_the_right_shape():
    variants = {"zero": (np.zeros((2, 2)), "Z"), "short": ((1, 2), "S")}
    assert select_variants(np.full((2, 2), 5.0), np.ones((2, 2)), variants) == {}


def test_select_variants_is_the_one_the_package_exports():
    assert grading.select_variants is select_variants
    from conv_course.grading import _core

    assert _core.select_variants is select_variants


def test_not_implemented_names_the_function():
    err = not_implemented("conv2d")
    assert isinstance(err, AssertionError)
    assert str(err) == "`conv2d` is not implemented yet: replace `raise NotImplementedError()` with your code"


# ------------------------------------------------------------------ IPython shows the message first
IPYTHON_SCRIPT = r'''
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("""
import numpy as np
from conv_course.grading import check_corr2d
def short(image, kernel, stride=1, padding=0):
    return np.zeros((1, 1))
def broken(image, kernel, stride=1, padding=0):
    return image[100]
""")
print("=====")
shell.run_cell("check_corr2d(short)")
print("=====")
shell.run_cell("check_corr2d(broken)")
'''


def test_ipython_shows_a_failed_check_message_first_without_checker_frames():
    import re
    import subprocess

    proc = subprocess.run([sys.executable, "-c", IPYTHON_SCRIPT], capture_output=True, text=True, timeout=120)
    out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", proc.stdout)
    _, wrong, broken = out.split("=====\n")
    assert wrong.startswith("AssertionError: wrong corr2d output for case"), wrong
    assert "expected shape (7, 7), received shape (1, 1)" in wrong
    assert broken.startswith("AssertionError: case image="), broken
    assert "`broken` raised IndexError" in broken and "return image[100]" in broken  # the student's frame
    for text in (wrong, broken):
        assert "conv_course/grading" not in text and "check_array" not in text and "run_cases" not in text, text


def test_a_failed_check_still_raises_a_plain_assertion_error():
    with pytest.raises(AssertionError) as err:
        check_corr2d(lambda im, k, stride=1, padding=0: np.zeros((1, 1)), group="basic")
    assert type(err.value) is AssertionError
    assert err.value._render_traceback_()[0].startswith("AssertionError: wrong corr2d output")


# ------------------------------------------------------------------ hidden seeds and the course secret
def test_without_the_course_secret_hidden_seeds_are_the_package_seeds(monkeypatch):
    import zlib

    monkeypatch.delenv("CONV_COURSE_HIDDEN_SEED", raising=False)
    base = zlib.crc32(b"corr2d/basic") % 2**31
    for index in (0, 2):
        want = np.random.default_rng(base + 100_003 * (index + 1)).integers(0, 10**9, 5)
        np.testing.assert_array_equal(case_rng("corr2d/basic", hidden=True, index=index).integers(0, 10**9, 5), want)
    np.testing.assert_array_equal(case_rng("corr2d/basic", index=1).integers(0, 10**9, 5),
                                  np.random.default_rng(base + 1).integers(0, 10**9, 5))


def test_with_the_course_secret_hidden_cases_depend_on_it(monkeypatch):
    from conv_course.grading import conv, matmul

    def hidden_draws():
        return [case_rng("corr2d/basic", hidden=True, index=i).integers(0, 10**9) for i in (0, 1)]

    def hidden_images():
        return [c["image"] for c in conv._corr2d_cases("basic", hidden=True)]

    monkeypatch.delenv("CONV_COURSE_HIDDEN_SEED", raising=False)
    package, package_images = hidden_draws(), hidden_images()
    visible = case_rng("corr2d/basic").integers(0, 10**9)
    matmul_package = next(matmul._cases("basic", True, "check_im2col"))[0]
    monkeypatch.setenv("CONV_COURSE_HIDDEN_SEED", "course secret 1")
    secret1 = hidden_draws()
    assert secret1 != package and secret1[0] != secret1[1] and secret1 == hidden_draws()
    first, first_package = hidden_images()[0], package_images[0]   # a random case (the last is the hand example)
    assert first.shape != first_package.shape or not np.array_equal(first, first_package)
    assert not np.array_equal(next(matmul._cases("basic", True, "check_im2col"))[0], matmul_package)
    assert case_rng("corr2d/basic").integers(0, 10**9) == visible   # visible cases stay as they are
    monkeypatch.setenv("CONV_COURSE_HIDDEN_SEED", "course secret 2")
    assert hidden_draws() not in (secret1, package)
    check_corr2d(corr2d, group="basic", hidden=True)                 # correct code still passes
