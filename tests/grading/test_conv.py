"""Checkers of assignments 01 and 02 (`conv_course.grading.conv`): correct code passes, each known bug is named.

Each wrong student below is written by hand, the way the bug appears in real code; the expected
diagnosis is the text a student should read. Expected values are arithmetic, never the checker's.
"""

import numpy as np
import pytest

from conv_course.grading import conv
from conv_course.grading.conv import check_conv2d, check_corr2d, check_output_size


# ------------------------------------------------------------------ students: correct unless a knob injects a bug
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


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, flip=False, step=None, pad=None, dil=None,
           only_channel=None, bias_mode="channel", dtype=None):
    """A loop conv2d; `pad` is ((top, bottom), (left, right)), `bias_mode` "channel" (right), "none" or "width"."""
    weight = weight[..., ::-1, ::-1] if flip else weight
    (sh, sw), (dh, dw) = pair(stride if step is None else step), pair(dilation if dil is None else dil)
    ph, pw = pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0)) + (((ph, ph), (pw, pw)) if pad is None else pad))
    n, c, h, w = xp.shape
    co, ci, kh, kw = weight.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, co, ho, wo), dtype=dtype or np.result_type(x, weight))
    chans = range(ci) if only_channel is None else [only_channel]
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            out[:, :, i, j] = sum(np.einsum("nab,oab->no", win[:, c_], weight[:, c_]) for c_ in chans)
    if bias is not None and bias_mode == "channel":
        out = out + bias[None, :, None, None]
    elif bias is not None and bias_mode == "width":
        out = out + bias
    return out


def output_size(n, kernel_size, stride=1, padding=0):
    return (n + 2 * padding - kernel_size) // stride + 1


def failure(check, fn, group):
    with pytest.raises(AssertionError) as err:
        check(fn, group=group)
    return str(err.value)


# ------------------------------------------------------------------ the checkers accept correct code
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_output_size_passes(hidden):
    check_output_size(output_size, hidden=hidden)


@pytest.mark.parametrize("group", ["basic", "padding", "stride", "edge"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_corr2d_passes_every_group(group, hidden):
    check_corr2d(corr2d, group=group, hidden=hidden)


@pytest.mark.parametrize("group", ["basic", "channels", "padding_stride", "dilation"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_conv2d_passes_every_group(group, hidden):
    check_conv2d(conv2d, group=group, hidden=hidden)


# ------------------------------------------------------------------ conv_output_size: one wrong student per bug
def test_output_size_without_plus_one_is_named():
    message = failure(check_output_size, lambda n, kernel_size, stride=1, padding=0:
                      (n + 2 * padding - kernel_size) // stride, "basic")
    assert "expected 3, received 2" in message                       # n=5, K=3: 5 - 3 + 1
    assert "Likely bug: you forgot the + 1" in message


def test_output_size_with_padding_on_one_side_is_named():
    message = failure(check_output_size, lambda n, kernel_size, stride=1, padding=0:
                      (n + padding - kernel_size) // stride + 1, "basic")
    assert "expected 5, received 4" in message                       # n=5, K=3, P=1: 5 + 2 - 3 + 1
    assert "padding counted on one side only" in message


def test_output_size_ignoring_the_stride_is_named():
    message = failure(check_output_size, lambda n, kernel_size, stride=1, padding=0:
                      n + 2 * padding - kernel_size + 1, "basic")
    assert "expected 3, received 5" in message                       # n=7, K=3, S=2: (7 - 3) // 2 + 1
    assert "Likely bug: stride ignored" in message


def test_output_size_as_a_float_names_true_division():
    message = failure(check_output_size, lambda n, kernel_size, stride=1, padding=0:
                      (n + 2 * padding - kernel_size) / stride + 1, "basic")
    assert "returned 3.0 of type float; expected an int; Likely bug: true division" in message


def test_output_size_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="check_output_size: `group` must be 'basic'"):
        check_output_size(output_size, group="padding")


# ------------------------------------------------------------------ corr2d: one wrong student per bug
def _corr2d_with(**bug):
    return lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, **bug)


CORR2D_BUGS = [
    ("flipped", "basic", _corr2d_with(flip=True), "the kernel is flipped"),
    ("one row short", "basic", _corr2d_with(h_extra=-1), "output is one row short"),
    ("one row long", "basic", lambda im, k, stride=1, padding=0: np.vstack(
        [corr2d(im, k, stride, padding), np.zeros((1, im.shape[1] - k.shape[1] + 1))]), "output is one row long"),
    ("stride ignored", "stride", _corr2d_with(step=1), "stride ignored"),
    ("padding ignored", "padding", _corr2d_with(pad=0), "padding ignored"),
    ("padding one side", "padding", lambda im, k, stride=1, padding=0: corr2d(
        im, k, stride, padding, pad=((padding, 0), (padding, 0))), "padding on one side only"),
    ("padding twice", "padding", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, pad=2 * padding),
     "padding applied twice"),
    ("swapped", "basic", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding).T.copy(),
     "height and width are swapped"),
    ("truncation", "edge", lambda im, k, stride=1, padding=0: corr2d(im, k, stride, padding, dtype=im.dtype),
     "integer truncation"),
]


@pytest.mark.parametrize("name,group,fn,text", CORR2D_BUGS, ids=[b[0] for b in CORR2D_BUGS])
def test_corr2d_bug_is_named(name, group, fn, text):
    with pytest.raises(AssertionError, match="Likely bug: .*" + text):
        check_corr2d(fn, group=group)


def test_padding_one_side_and_output_one_short_give_the_same_array_and_both_are_named():
    # Padding case 0: 4x5 image, 3x3 kernel, P=1 -> 4x5 output. Padding only the top and the left
    # (a 5x6 input) gives 3x4 windows, exactly the top-left 3x4 corner of the right output: the
    # output of a corr2d that forgot the + 1 on both axes.
    message = failure(check_corr2d, lambda im, k, stride=1, padding=0: corr2d(
        im, k, stride, padding, pad=((padding, 0), (padding, 0))), "padding")
    assert "expected shape (4, 5), received shape (3, 4)" in message
    assert "padding on one side only" in message and "\n  Or: output is one row and one column short" in message


def test_corr2d_modifying_its_input_fails():
    def in_place(image, kernel, stride=1, padding=0):
        out = corr2d(image, kernel, stride, padding)
        image[...] = 0
        return out

    with pytest.raises(AssertionError, match="`in_place` modified its first argument in place"):
        check_corr2d(in_place, group="basic")


def test_corr2d_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="check_corr2d: `group` must be one of 'basic', 'padding', 'stride', 'edge'"):
        check_corr2d(corr2d, group="dilation")


def _float_for_integers(im, k, stride=1, padding=0):
    return corr2d(im, k, stride, padding).astype(np.result_type(im, k, 1.0))


@pytest.mark.parametrize("fn, case", [
    (_corr2d_with(dtype=np.float64), "image=array(5, 6) float32, kernel=array(2, 2) float32"),
    (_float_for_integers, "image=array(3, 4) int64, kernel=array(2, 2) int64"),
], ids=["always float64", "float for integers"])
def test_corr2d_with_the_wrong_result_dtype_fails_the_edge_group_only(fn, case):
    for group in ("basic", "padding", "stride"):
        check_corr2d(fn, group=group)
    message = failure(check_corr2d, fn, "edge")
    assert case in message and "returned dtype float64" in message
    assert "Likely bug: the output array is allocated with a fixed dtype" in message
    assert "np.zeros(shape, dtype=np.result_type(image, kernel))" in message


# ------------------------------------------------------------------ conv2d: one wrong student per bug
def _conv2d_with(**bug):
    return lambda x, w, b=None, stride=1, padding=0, dilation=1: conv2d(x, w, b, stride, padding, dilation, **bug)


def _one_side(x, w, b=None, stride=1, padding=0, dilation=1):
    ph, pw = pair(padding)
    return conv2d(x, w, b, stride, padding, dilation, pad=((ph, 0), (pw, 0)))


def _twice(x, w, b=None, stride=1, padding=0, dilation=1):
    ph, pw = pair(padding)
    return conv2d(x, w, b, stride, padding, dilation, pad=((2 * ph, 2 * ph), (2 * pw, 2 * pw)))


CONV2D_BUGS = [
    ("flipped", "basic", _conv2d_with(flip=True), "the kernel is flipped"),
    ("stride ignored", "padding_stride", _conv2d_with(step=1), "stride ignored"),
    ("padding ignored", "padding_stride", _conv2d_with(pad=((0, 0), (0, 0))), "padding ignored"),
    ("padding one side", "padding_stride", _one_side, "padding on one side only"),
    ("padding twice", "padding_stride", _twice, "padding applied twice"),
    ("dilation ignored", "dilation", _conv2d_with(dil=1), "dilation ignored"),
    ("first channel only", "channels", _conv2d_with(only_channel=0), "missing sum over input channels"),
    ("last channel only", "channels", _conv2d_with(only_channel=-1), "missing sum over input channels"),
    ("bias ignored", "channels", _conv2d_with(bias_mode="none"), "bias ignored"),
    ("bias along the width", "channels", _conv2d_with(bias_mode="width"), "bias not broadcast per output channel"),
    ("truncation", "basic", lambda x, w, b=None, stride=1, padding=0, dilation=1: conv2d(
        x, w, b, stride, padding, dilation, dtype=x.dtype), "integer truncation"),
]


@pytest.mark.parametrize("name,group,fn,text", CONV2D_BUGS, ids=[b[0] for b in CONV2D_BUGS])
def test_conv2d_bug_is_named(name, group, fn, text):
    with pytest.raises(AssertionError, match="Likely bug: .*" + text):
        check_conv2d(fn, group=group)


def test_conv2d_transposing_a_square_output_is_named():
    def transposed(x, w, b=None, stride=1, padding=0, dilation=1):
        out = conv2d(x, w, b, stride, padding, dilation)
        return out.swapaxes(-1, -2) if out.shape[-1] == out.shape[-2] else out

    message = failure(check_conv2d, transposed, "basic")
    assert "x=array(2, 1, 3, 3) float64" in message                 # the 3x3 hand case: a 2x2 output
    assert "Likely bug: height and width are swapped: your output is the transpose" in message


def test_conv2d_modifying_its_weight_fails():
    def in_place(x, weight, bias=None, stride=1, padding=0, dilation=1):
        out = conv2d(x, weight, bias, stride, padding, dilation)
        weight *= 2
        return out

    with pytest.raises(AssertionError, match="`in_place` modified its second argument in place"):
        check_conv2d(in_place, group="basic")


def test_conv2d_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="check_conv2d: `group` must be one of 'basic', 'channels'"):
        check_conv2d(conv2d, group="edge")


# ------------------------------------------------------------------ the wrong variants and the case sets
def test_flipped_variant_is_the_true_convolution():
    x, w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), np.array([[[[1.0, 0.0], [0.0, 0.0]]]])
    wrong, text = conv.conv_variants(x, w)["flipped"]
    assert wrong.tolist() == [[[[4.0]]]]                              # the flipped kernel meets x[1, 1] = 4
    assert text == conv.DIAGNOSES["flipped"]


def test_conv_variants_take_a_checker_s_own_words():
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    variants = conv.conv_variants(x, w, stride=2, texts={"stride_ignored": "MY WORDS"})
    assert variants["stride_ignored"][0].shape == (1, 1, 3, 3)       # (5 - 3) // 1 + 1
    assert variants["stride_ignored"][1] == "MY WORDS"
    assert variants["flipped"][1] == conv.DIAGNOSES["flipped"]


@pytest.mark.parametrize("cases, group", [(conv._corr2d_cases, "basic"), (conv._conv2d_cases, "channels")])
def test_hidden_cases_differ_from_the_visible_ones(cases, group):
    visible, hidden = cases(group, hidden=False), cases(group, hidden=True)
    assert len(hidden) > len(visible)
    first = "image" if "image" in visible[0] else "x"
    assert not np.array_equal(hidden[0][first], visible[0][first])


def test_hidden_output_size_cases_are_drawn_not_the_listed_ones():
    assert conv._size_cases(False) == conv._SIZE_CASES["basic"]
    assert conv._size_cases(True) != conv._size_cases(False) and len(conv._size_cases(True)) == 12
