"""Checkers of assignment 05 (`conv_course.grading.pooling`): correct pooling passes, each known bug is named."""

import numpy as np
import pytest

from conv_course.grading import pooling
from conv_course.grading.pooling import check_avg_pool2d, check_max_pool2d

CHECKERS = {"max": check_max_pool2d, "avg": check_avg_pool2d}


def pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def pool2d(x, kernel_size, stride=None, padding=0, *, kind, stride_none_is_one=False, ignore_stride=False,
           pads=None, fill=None, divide_by_real=False):
    """torch's max/avg pooling (avg: count_include_pad=True), with knobs that inject one bug each.

    `kind` is "max", "avg" or "sum"; `pads` is ((top, bottom), (left, right)).
    """
    kh, kw = pair(kernel_size)
    if stride is None or ignore_stride:
        stride = 1 if stride_none_is_one else (kh, kw)
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    pads = ((ph, ph), (pw, pw)) if pads is None else pads
    fill = (-np.inf if kind == "max" else 0.0) if fill is None else fill
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=fill)
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    if kind == "max":
        return windows.max(axis=(-2, -1))
    total = windows.sum(axis=(-2, -1))
    if kind == "sum":
        return total
    if divide_by_real:
        real = np.pad(np.ones(x.shape), ((0, 0), (0, 0)) + pads)
        return total / np.lib.stride_tricks.sliding_window_view(real, (kh, kw), axis=(2, 3))[
            :, :, ::sh, ::sw].sum(axis=(-2, -1))
    return total / (kh * kw)


def student(kind, **bug):
    def pool(x, kernel_size, stride=None, padding=0):
        return pool2d(x, kernel_size, stride, padding, kind=kind, **bug)
    return pool


def _twice(kind):
    def pool(x, kernel_size, stride=None, padding=0):
        ph, pw = pair(padding)
        return pool2d(x, kernel_size, stride, padding, kind=kind, pads=((2 * ph, 2 * ph), (2 * pw, 2 * pw)))
    return pool


def test_the_pooling_written_here_is_what_its_docstring_says():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert pool2d(x, 2, kind="max")[0, 0].tolist() == [[5, 7], [13, 15]]
    assert pool2d(x, 2, kind="avg")[0, 0].tolist() == [[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4],
                                                       [(8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]]
    assert pool2d(-np.ones((1, 1, 2, 2)), 2, 2, 1, kind="max")[0, 0].tolist() == [[-1, -1], [-1, -1]]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("group", ["basic", "stride_padding"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_pooling_passes(kind, group, hidden):
    CHECKERS[kind](student(kind), group=group, hidden=hidden)


BUGS = [
    ("max", "basic", student("max", stride_none_is_one=True), "stride=None must mean stride = kernel_size"),
    ("avg", "basic", student("avg", stride_none_is_one=True), "stride=None must mean stride = kernel_size"),
    ("max", "stride_padding", student("max", ignore_stride=True), "stride ignored: your output equals stride = kernel"),
    ("avg", "stride_padding", student("avg", ignore_stride=True), "stride ignored: your output equals stride = kernel"),
    ("max", "stride_padding", student("max", pads=((0, 0), (0, 0))), "padding ignored"),
    ("avg", "stride_padding", student("avg", pads=((0, 0), (0, 0))), "padding ignored"),
    ("max", "stride_padding", _twice("max"), "padding applied twice"),
    ("avg", "stride_padding", _twice("avg"), "padding applied twice"),
    ("max", "stride_padding", student("max", fill=0.0), "max pooling padded with zeros"),
    ("avg", "stride_padding", student("avg", divide_by_real=True), "divided by the number of real pixels"),
    ("avg", "basic", student("sum"), "you summed each window"),
    ("max", "basic", student("avg"), "you averaged each window; max pooling takes the largest value"),
    ("avg", "basic", student("max"), "you took the maximum of each window; average pooling takes the mean"),
]


@pytest.mark.parametrize("kind, group, fn, text", BUGS, ids=[f"{b[0]}-{b[3][:24]}" for b in BUGS])
def test_pooling_bug_is_named(kind, group, fn, text):
    with pytest.raises(AssertionError, match="Likely bug: .*" + text):
        CHECKERS[kind](fn, group=group)


def test_zero_padding_is_right_for_average_pooling():
    check_avg_pool2d(student("avg", fill=0.0), group="stride_padding")


def test_output_one_row_short_is_named():
    def short(x, kernel_size, stride=None, padding=0):
        return pool2d(x, kernel_size, stride, padding, kind="max")[:, :, :-1]

    with pytest.raises(AssertionError, match=r"Likely bug: output is one row short: check H_out = \(H \+ 2\*P - K\)"):
        check_max_pool2d(short, group="basic")


def test_pooling_that_pads_its_input_in_place_fails():
    def in_place(x, kernel_size, stride=None, padding=0):
        out = pool2d(x, kernel_size, stride, padding, kind="max")
        x[...] = 0
        return out

    with pytest.raises(AssertionError, match=r"`in_place` modified its input `x` in place; pad into a new array"):
        check_max_pool2d(in_place, group="basic")


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_an_unknown_group_is_a_value_error(kind):
    with pytest.raises(ValueError, match=f"check_{kind}_pool2d: `group` must be 'basic' or 'stride_padding'"):
        CHECKERS[kind](student(kind), group="dilation")


def test_unfinished_stub_says_not_implemented():
    def stub(x, kernel_size, stride=None, padding=0):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="`stub` is not implemented yet"):
        check_avg_pool2d(stub)


@pytest.mark.parametrize("group", ["basic", "stride_padding"])
def test_hidden_cases_differ_from_the_visible_ones(group):
    visible, hidden = pooling._cases("max_pool2d", group, False), pooling._cases("max_pool2d", group, True)
    assert len(hidden) > len(visible)
    assert not np.array_equal(hidden[-1]["x"], visible[-1]["x"])   # the last case is a random one
