"""BackpropStampExplorer, Python side: traitlets, validation, and gradients checked against torch autograd."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course.widgets import BackpropStampExplorer
from conv_course.widgets.backprop_stamp import LIMITS, grad_value, no_output


def autograd(x, k, g, stride, padding, dilation):
    """grad_x and grad_weight of sum(g * conv2d(x, k)) from torch autograd, as int64."""
    xt = torch.tensor(x[None, None], dtype=torch.float64, requires_grad=True)
    kt = torch.tensor(k[None, None], dtype=torch.float64, requires_grad=True)
    out = F.conv2d(xt, kt, stride=stride, padding=padding, dilation=dilation)
    out.backward(torch.tensor(g[None, None], dtype=torch.float64))
    return xt.grad[0, 0].numpy().astype(np.int64), kt.grad[0, 0].numpy().astype(np.int64)


def test_defaults_are_the_chapter_grids():
    w = BackpropStampExplorer()
    np.testing.assert_array_equal(w.x, np.arange(49).reshape(7, 7))
    np.testing.assert_array_equal(w.kernel, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert w.output_shape == (5, 5) and w.grad_out.shape == (5, 5) and w.grad_out.dtype == np.int64
    assert w.grad_out[0].tolist() == [1, 3, 2, 1, 3] and w.grad_out[1, 0] == grad_value(1, 0) == 2


def test_one_hot_stamps_the_kernel_unflipped_and_reads_the_window():
    w = BackpropStampExplorer(selection=(1, 2))
    want_x = np.zeros((7, 7), dtype=np.int64)
    want_x[1:4, 2:5] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]            # K itself, on rows 1..3, columns 2..4
    np.testing.assert_array_equal(w.grad_input, want_x)
    np.testing.assert_array_equal(w.grad_weight, [[9, 10, 11], [16, 17, 18], [23, 24, 25]])  # x[1:4, 2:5]
    assert w.grad_output.sum() == 1 and w.grad_output[1, 2] == 1


def test_one_hot_with_stride_and_dilation_spreads_the_taps():
    w = BackpropStampExplorer(stride=2, dilation=2, selection=(1, 1))  # window starts at (2, 2), taps 2 apart
    assert w.output_shape == (2, 2)
    want_x = np.zeros((7, 7), dtype=np.int64)
    want_x[2:7:2, 2:7:2] = w.kernel
    np.testing.assert_array_equal(w.grad_input, want_x)
    np.testing.assert_array_equal(w.grad_weight, w.x[2:7:2, 2:7:2])


def test_accumulate_sums_the_scaled_stamps():
    x, k = np.arange(16).reshape(4, 4), np.array([[1, -1], [2, 0]])
    g = np.array([[1, 2, 0], [0, 3, 0], [0, 0, -1]])
    w = BackpropStampExplorer(x, k, g, accumulate=True)
    want_x = np.zeros((4, 4), dtype=np.int64)
    want_w = np.zeros((2, 2), dtype=np.int64)
    for i, j in np.ndindex(3, 3):                                 # each G pixel: a stamp and a window
        want_x[i:i + 2, j:j + 2] += g[i, j] * k
        want_w += g[i, j] * x[i:i + 2, j:j + 2]
    np.testing.assert_array_equal(w.grad_input, want_x)
    np.testing.assert_array_equal(w.grad_weight, want_w)


def test_stamps_sum_to_full_correlation_with_flipped_kernel():
    w = BackpropStampExplorer(accumulate=True)                     # stride 1, no padding
    full = np.zeros((7, 7), dtype=np.int64)
    gp, kf = np.pad(w.grad_out, 2), w.kernel[::-1, ::-1]
    for p, q in np.ndindex(7, 7):
        full[p, q] = (gp[p:p + 3, q:q + 3] * kf).sum()
    np.testing.assert_array_equal(w.grad_input, full)


@pytest.mark.parametrize("seed", range(30))
def test_gradients_equal_torch_autograd_on_random_settings(seed):
    rng = np.random.default_rng(seed)
    while True:                                                   # draw until the kernel fits
        h, wd = rng.integers(1, 9, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        p, s, d = int(rng.integers(0, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if no_output((h, wd), (kh, kw), p, d) is None:
            break
    x, k = rng.integers(-9, 10, size=(h, wd)), rng.integers(-5, 6, size=(kh, kw))
    w = BackpropStampExplorer(x, k, stride=s, padding=p, dilation=d)
    w.grad_out = rng.integers(-9, 10, size=w.output_shape)
    for accumulate in (False, True):
        w.accumulate = accumulate
        w.selection = tuple(int(rng.integers(0, n)) for n in w.output_shape)
        want_x, want_w = autograd(x, k, w.grad_output, s, p, d)
        np.testing.assert_array_equal(w.grad_input, want_x)
        np.testing.assert_array_equal(w.grad_weight, want_w)
        assert w.grad_input.dtype == w.grad_weight.dtype == np.int64


def test_setting_change_resizes_grad_out_and_clamps_selection():
    w = BackpropStampExplorer(selection=(4, 4))
    w.grad_out = np.full((5, 5), 7)
    w.stride = 2                                                  # output 3x3
    assert w.grad_out.tolist() == [[7] * 3] * 3 and w.selection == (2, 2)
    w.stride = 1                                                  # back to 5x5: new cells filled
    assert w.grad_out[:3, :3].tolist() == [[7] * 3] * 3 and w.grad_out[4, 4] == grad_value(4, 4)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"x": np.ones((2, 2, 2))}, ValueError, r"`x` must be a 2-D array \(rows, columns\); got shape \(2, 2, 2\)"),
    ({"x": np.ones((9, 3))}, ValueError, r"`x` sides must be between 1 and 8; got shape \(9, 3\)"),
    ({"kernel": np.ones((6, 1))}, ValueError, r"`kernel` sides must be between 1 and 5; got shape \(6, 1\)"),
    ({"x": [[1.0, np.nan]]}, ValueError, r"`x` must be finite; got nan at \(0, 1\)"),
    ({"kernel": [[1, 0.5]]}, ValueError, r"`kernel` must hold whole numbers .*; got 0.5 at \(0, 1\)"),
    ({"grad_out": np.full((5, 5), 100)}, ValueError, r"`grad_out` values must lie between −99 and 99; got 100"),
    ({"x": np.ones((2, 2), dtype=bool)}, TypeError, "`x` must hold integers; got dtype bool"),
    ({"grad_out": np.ones((4, 4))}, ValueError,
     re.escape("`grad_out` must have the output's shape (5, 5) (x (7, 7), kernel (3, 3), stride=1, padding=0, "
               "dilation=1); got (4, 4)")),
    ({"padding": -1}, ValueError, "`padding` must be between 0 and 3; got -1"),
    ({"stride": 0}, ValueError, "`stride` must be between 1 and 3; got 0"),
    ({"dilation": 4}, ValueError, "`dilation` must be between 1 and 3; got 4"),
    ({"stride": 1.5}, ValueError, "`stride` must be an int; got 1.5"),
    ({"padding": float("nan")}, ValueError, "`padding` must be an int; got nan"),
    ({"dilation": True}, ValueError, "`dilation` must be an int; got True"),
    ({"x": np.ones((2, 6)), "kernel": np.ones((3, 3))}, ValueError,
     re.escape("`x` of shape (2, 6) leaves no output: the dilated kernel spans 3 rows, the padded input has only 2")),
    ({"selection": (5, 0)}, ValueError, re.escape("`selection` must lie in the output-gradient grid of shape (5, 5); "
                                                  "got (5, 0)")),
])
def test_bad_arguments_raise_naming_them(kwargs, err, match):
    with pytest.raises(err, match=match):
        BackpropStampExplorer(**kwargs)


def test_dilation_that_leaves_no_output_is_refused_and_state_kept():
    w = BackpropStampExplorer(np.ones((6, 6)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=re.escape("`dilation` = 3 leaves no output: the dilated kernel spans 7 rows, "
                                                   "the padded input has only 6")):
        w.dilation = 3
    assert w.dilation == 1 and w.grad_input.shape == (6, 6)
    w.padding = 1                                                 # 6 + 2 = 8 >= 7: now it fits
    w.dilation = 3
    assert w.output_shape == (2, 2) and w.grad_out.shape == (2, 2)


def test_kernel_and_padding_set_together_in_the_constructor():
    w = BackpropStampExplorer(np.ones((3, 3)), np.ones((5, 5)), padding=1)   # fits only with the padding
    assert w.output_shape == (1, 1)


def test_synced_state_is_plain_json():
    state = BackpropStampExplorer(stride=2).get_state()
    assert state["x"][1][:3] == [7, 8, 9] and state["grad_out"] == [[1, 3, 2], [2, 1, 3], [3, 2, 1]]
    assert state["limits"] == LIMITS and tuple(state["selection"]) == (0, 0) and state["accumulate"] is False
    assert "export default { render }" in state["_esm"]
    assert not re.search(r"^\s*import\s", state["_esm"], flags=re.M), "the view must import nothing"
    assert "http://" not in state["_esm"] and "https://" not in state["_esm"]
    assert ".bs-tap" in state["_css"]


def test_frontend_state_arrives_as_arrays():
    w = BackpropStampExplorer()
    w.set_state({"stride": 2, "grad_out": [[1, 0, 0], [0, 2, 0], [0, 0, 3]], "selection": [2, 1], "accumulate": True})
    assert w.grad_out.dtype == np.int64 and w.selection == (2, 1)
    assert w.grad_input[6, 6] == 3 * 9                            # G[2, 2] = 3 stamps K[2, 2] = 9 at (6, 6)
