"""Unit tests of the grading core and of every diagnosis, in-process (no nbgrader).

Each wrong student below is written by hand, the way the bug appears in real code; the expected
diagnosis is the text a student should read. Expected values are arithmetic, never the checker's.
"""

import sys

import numpy as np
import pytest

from conv_course import grading
from conv_course.grading import (call_student, case_rng, check_array, check_conv2d, check_corr2d,
                                 check_output_size, forbid_references, format_case, run_cases,
                                 shape_diagnoses)


# ------------------------------------------------------------------ correct students
def pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def corr2d(image, kernel, stride=1, padding=0, *, flip=False, pad=None, h_extra=0, step=None, dtype=None):
    """A readable loop corr2d with knobs that inject one bug each."""
    k = kernel[::-1, ::-1] if flip else kernel
    padded = np.pad(image, padding if pad is None else pad)
    kh, kw = k.shape
    step = stride if step is None else step
    h_out = (padded.shape[0] - kh) // step + 1 + h_extra
    w_out = (padded.shape[1] - kw) // step + 1
    out = np.zeros((max(h_out, 0), w_out), dtype=dtype or np.result_type(image, kernel))
    for i in range(max(h_out, 0)):
        for j in range(w_out):
            out[i, j] = (padded[i * step:i * step + kh, j * step:j * step + kw] * k).sum()
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, only_channel=None, bias_axis=1):
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = xp.shape
    co, ci, kh, kw = weight.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, co, ho, wo), dtype=np.result_type(x, weight))
    chans = range(ci) if only_channel is None else [only_channel]
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            out[:, :, i, j] = sum(np.einsum("nab,oab->no", win[:, c_], weight[:, c_]) for c_ in chans)
    if bias is not None:
        out = out + (bias[None, :, None, None] if bias_axis == 1 else bias)
    return out


def likely_bug(message):
    lines = [line for line in message.splitlines() if "Likely bug:" in line]
    assert len(lines) == 1, message
    return lines[0]


def diagnosis(check, fn, group):
    with pytest.raises(AssertionError) as err:
        check(fn, group=group)
    return str(err.value)


# ------------------------------------------------------------------ the checkers accept correct code
@pytest.mark.parametrize("group", ["basic", "padding", "stride", "edge"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_corr2d_passes_every_group(group, hidden):
    check_corr2d(corr2d, group=group, hidden=hidden)


@pytest.mark.parametrize("group", ["basic", "channels", "padding_stride", "dilation"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_conv2d_passes_every_group(group, hidden):
    check_conv2d(conv2d, group=group, hidden=hidden)


def test_correct_output_size_passes():
    fn = lambda n, kernel_size, stride=1, padding=0: (n + 2 * padding - kernel_size) // stride + 1  # noqa: E731
    check_output_size(fn)
    check_output_size(fn, hidden=True)


# ------------------------------------------------------------------ one wrong student per diagnosed bug
CORR2D_BUGS = [
    ("flipped", "basic", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, flip=True),
     "the kernel is flipped"),
    ("one row short", "basic", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, h_extra=-1),
     "output is one row short"),
    ("one row long", "basic", lambda im, k, stride=1, padding=0: np.vstack([corr2d(im, k, stride, padding),
                                                                            np.zeros((1, im.shape[1] - k.shape[1] + 1))]),
     "output is one row long"),
    ("stride ignored", "stride", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, step=1),
     "stride ignored"),
    ("padding one side", "padding",
     lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, pad=((padding, 0), (padding, 0))),
     "padding on one side only"),
    ("padding twice", "padding", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, pad=2 * padding),
     "padding applied twice"),
    ("swapped", "basic", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding).T.copy(),
     "height and width are swapped"),
    ("truncation", "edge", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, dtype=im.dtype),
     "integer truncation"),
]


@pytest.mark.parametrize("name,group,fn,text", CORR2D_BUGS, ids=[b[0] for b in CORR2D_BUGS])
def test_corr2d_bug_is_named(name, group, fn, text):
    message = diagnosis(check_corr2d, fn, group)
    assert text in likely_bug(message), message


def test_missing_channel_sum_is_named():
    message = diagnosis(check_conv2d, lambda *a, **k: conv2d(*a, **k, only_channel=0), "channels")
    assert "missing sum over input channels" in likely_bug(message)


def test_bias_on_the_wrong_axis_is_named():
    message = diagnosis(check_conv2d, lambda *a, **k: conv2d(*a, **k, bias_axis=-1), "channels")
    assert "bias not broadcast per output channel" in likely_bug(message)


def test_dilation_ignored_is_named():
    message = diagnosis(check_conv2d, lambda x, w, b=None, stride=1, padding=0, dilation=1: conv2d(x, w, b, stride, padding),
                        "dilation")
    assert "dilation ignored" in likely_bug(message)


def test_output_size_without_plus_one_is_named():
    message = diagnosis(check_output_size, lambda n, kernel_size, stride=1, padding=0:
                        (n + 2 * padding - kernel_size) // stride, "basic")
    assert "you forgot the + 1" in likely_bug(message) and "expected 3, received 2" in message


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


def test_student_modifying_its_input_fails():
    def in_place(image, kernel, stride=1, padding=0):
        out = corr2d(image, kernel, stride, padding)
        image[...] = 0
        return out

    with pytest.raises(AssertionError, match="modified its first argument in place"):
        check_corr2d(in_place, group="basic")


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

    message = diagnosis(check_corr2d, cheat, "basic")
    assert "`cheat` called conv_course.ops.corr2d" in message
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


def test_padding_one_side_and_output_one_short_give_the_same_array_and_both_are_named():
    # Padding case 0: 4x5 image, 3x3 kernel, P=1 -> 4x5 output. Padding only the top and the left
    # (a 5x6 input) gives 3x4 windows, exactly the top-left 3x4 corner of the right output: the
    # output of a corr2d that forgot the + 1 on both axes.
    pad_top_left = lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding,  # noqa: E731
                                                             pad=((padding, 0), (padding, 0)))
    message = diagnosis(check_corr2d, pad_top_left, "padding")
    assert "expected shape (4, 5), received shape (3, 4)" in message
    assert "padding on one side only" in message and "one row and one column short" in message


def test_a_wrong_shape_with_other_values_keeps_the_shape_diagnoses():
    with pytest.raises(AssertionError) as err:
        check_array(np.full((2, 3), 7.0), np.zeros((3, 3)), case={}, variants=shape_diagnoses((3, 3)))
    assert "Likely bug: output is one row short" in str(err.value)


# ------------------------------------------------------------------ the result dtype (01, edge group)
@pytest.mark.parametrize("dtype, case", [(np.float64, "image=array(5, 6) float32, kernel=array(2, 2) float32"),
                                         (None, "image=array(3, 4) int64, kernel=array(2, 2) int64")])
def test_corr2d_with_the_wrong_result_dtype_fails_the_edge_group_only(dtype, case):
    if dtype is None:  # float for integer inputs, float32 kept for float32 inputs
        fn = lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding).astype(np.result_type(im, k, 1.0))  # noqa: E731
    else:              # always float64
        fn = lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, dtype=dtype)  # noqa: E731
    for group in ("basic", "padding", "stride"):
        check_corr2d(fn, group=group)
    message = diagnosis(check_corr2d, fn, "edge")
    assert case in message and "returned dtype float64" in message
    assert "np.zeros(shape, dtype=np.result_type(image, kernel))" in likely_bug(message)


def test_corr2d_result_dtype_follows_the_inputs():
    integer = np.arange(12).reshape(3, 4)
    assert np.result_type(integer, integer).kind == "i"          # the rule the edge group checks
    assert np.result_type(integer, np.ones((2, 2)) / 9) == np.float64
    assert np.result_type(np.ones(2, np.float32), np.ones(2, np.float32)) == np.float32


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
