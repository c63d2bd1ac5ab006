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
