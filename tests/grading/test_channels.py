"""Checkers of assignment 03 (`conv_course.grading.channels`): correct code passes, each known bug is named."""

import numpy as np
import pytest

from conv_course.grading.channels import (check_conv1x1, check_conv_params, check_grouped_conv2d, check_multi_in,
                                          check_multi_in_out)


# ------------------------------------------------------------------ correct students
def corr2d(X, K):
    windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
    return np.einsum("ijab,ab->ij", windows, K)


def corr2d_multi_in(X, K):
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    return np.stack([corr2d_multi_in(X, k) for k in K])


def conv1x1(X, K):
    c_in, h, w = X.shape
    return (K @ X.reshape(c_in, h * w)).reshape(K.shape[0], h, w)


def grouped_conv2d(x, weight, groups, *, group_of=lambda co, per_out: co // per_out):
    """Output channel co reads the input channels of group `group_of(co, C_out // groups)`."""
    c_in, c_out = x.shape[1], weight.shape[0]
    per_in, per_out = c_in // groups, c_out // groups
    outs = []
    for co in range(c_out):
        g = group_of(co, per_out)
        xs = x[:, g * per_in:(g + 1) * per_in]
        outs.append(np.stack([corr2d_multi_in(xn, weight[co]) for xn in xs]))
    return np.stack(outs, axis=1)


def conv_params(c_in, c_out, kernel_size, groups=1, bias=True):
    return c_out * (c_in // groups) * kernel_size * kernel_size + (c_out if bias else 0)


def test_the_students_written_here_compute_the_hand_case():
    X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    assert corr2d_multi_in(X, K).tolist() == [[56, 72], [104, 120]]    # d2l's multi-input example
    assert conv_params(3, 8, 3) == 8 * 3 * 9 + 8


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("check, fn", [(check_multi_in, corr2d_multi_in), (check_multi_in_out, corr2d_multi_in_out),
                                       (check_conv1x1, conv1x1), (check_grouped_conv2d, grouped_conv2d),
                                       (check_conv_params, conv_params)],
                         ids=["multi_in", "multi_in_out", "conv1x1", "grouped", "params"])
def test_correct_code_passes(check, fn, hidden):
    check(fn, hidden=hidden)


# ------------------------------------------------------------------ one wrong student per bug
BUGS = [
    ("multi_in first channel", check_multi_in, lambda X, K: corr2d(X[0], K[0]), "missing sum over input channels"),
    ("multi_in last channel", check_multi_in, lambda X, K: corr2d(X[-1], K[-1]), "missing sum over input channels"),
    ("multi_in mean", check_multi_in, lambda X, K: corr2d_multi_in(X, K) / len(X), "you averaged over the input"),
    ("multi_in stacked", check_multi_in, lambda X, K: np.stack([corr2d(x, k) for x, k in zip(X, K)]),
     "missing sum over input channels"),
    ("multi_in one row short", check_multi_in, lambda X, K: corr2d_multi_in(X, K)[:-1], "output is one row short"),
    ("multi_in_out first channel", check_multi_in_out, lambda X, K: np.stack([corr2d(X[0], k[0]) for k in K]),
     "missing sum over input channels"),
    ("multi_in_out channels last", check_multi_in_out, lambda X, K: np.stack(
        [corr2d_multi_in(X, k) for k in K], axis=-1), "output channels are on the last axis"),
    ("conv1x1 K.T", check_conv1x1, lambda X, K: conv1x1(X, K.T), r"yours multiplied by K\.T"),
    ("conv1x1 first channel", check_conv1x1, lambda X, K: conv1x1(X[:1], K[:, :1]), "missing sum over input"),
    ("grouped round-robin", check_grouped_conv2d, lambda x, w, groups: grouped_conv2d(
        x, w, groups, group_of=lambda co, per_out: co % groups), "output channels are assigned to groups round-robin"),
    ("grouped first group", check_grouped_conv2d, lambda x, w, groups: grouped_conv2d(
        x, w, groups, group_of=lambda co, per_out: 0), "groups ignored"),
    ("params no bias", check_conv_params, lambda c_in, c_out, k, groups=1, bias=True: conv_params(
        c_in, c_out, k, groups, False), "bias not counted"),
    ("params groups", check_conv_params, lambda c_in, c_out, k, groups=1, bias=True: conv_params(
        c_in, c_out, k, 1, bias), "groups not taken into account"),
    ("params k once", check_conv_params, lambda c_in, c_out, k, groups=1, bias=True: conv_params(
        c_in, c_out, k, groups, bias) - c_out * (c_in // groups) * (k * k - k), "kernel counted once"),
    ("params bias per input", check_conv_params, lambda c_in, c_out, k, groups=1, bias=True: conv_params(
        c_in, c_out, k, groups, False) + (c_in if bias else 0), "bias counted per input channel"),
]


@pytest.mark.parametrize("name, check, fn, text", BUGS, ids=[b[0] for b in BUGS])
def test_channels_bug_is_named(name, check, fn, text):
    with pytest.raises(AssertionError, match="Likely bug: .*" + text):
        check(fn)


def test_parameter_count_must_be_an_int():
    def params_float(c_in, c_out, kernel_size, groups=1, bias=True):
        return float(conv_params(c_in, c_out, kernel_size, groups, bias))

    with pytest.raises(AssertionError, match=r"`params_float` returned 224\.0 \(float\); expected an int"):
        check_conv_params(params_float)


def test_the_wrong_count_is_printed_with_the_right_one():
    with pytest.raises(AssertionError, match="expected 224, received 216"):    # 8*3*3*3 + 8, without the bias
        check_conv_params(lambda c_in, c_out, k, groups=1, bias=True: c_out * c_in * k * k)


def test_calling_the_reference_is_refused():
    from conv_course import ops

    def cheat(x, weight, groups):
        return ops.conv2d(x, weight, groups=groups)

    with pytest.raises(AssertionError, match="`cheat` called conv_course.ops.conv2d while being checked"):
        check_grouped_conv2d(cheat)


# ------------------------------------------------------------------ hidden cases
def _seen_inputs(check, fn, hidden):
    seen = []

    def recording(X, *args, **kwargs):
        seen.append(np.asarray(X).copy() if isinstance(X, np.ndarray) else (X, *args))
        return fn(X, *args, **kwargs)

    check(recording, hidden=hidden)
    return seen


@pytest.mark.parametrize("check, fn", [(check_multi_in, corr2d_multi_in), (check_multi_in_out, corr2d_multi_in_out),
                                       (check_conv1x1, conv1x1), (check_grouped_conv2d, grouped_conv2d),
                                       (check_conv_params, conv_params)],
                         ids=["multi_in", "multi_in_out", "conv1x1", "grouped", "params"])
def test_hidden_cases_are_more_and_other_than_the_visible_ones(check, fn):
    visible, hidden = _seen_inputs(check, fn, False), _seen_inputs(check, fn, True)
    assert len(hidden) > len(visible)
    first = hidden[0]
    assert not any(np.shape(first) == np.shape(v) and np.array_equal(first, v) for v in visible)
