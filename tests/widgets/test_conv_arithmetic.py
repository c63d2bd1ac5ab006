"""ConvArithmeticExplorer, Python side: traitlets, validation, presets, the ops-backed output."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course.widgets import ConvArithmeticExplorer
from conv_course.widgets.conv_arithmetic import LIMITS, PRESETS, filled, input_value, kernel_value, problem


def test_default_values_are_small_integers():
    w = ConvArithmeticExplorer()
    assert w.input.dtype == np.int64 and w.input.shape == (5, 5) and w.kernel.shape == (3, 3)
    assert w.input[0].tolist() == [1, 2, 3, 4, 5] and w.input[1].tolist() == [4, 5, 1, 2, 3]
    assert w.kernel.tolist() == [[1, 2, 3], [3, 1, 2], [2, 3, 1]]


def test_output_hand_case():
    # 3x3 input of 1..9, 2x2 kernel of ones: each output is the sum of a 2x2 block
    w = ConvArithmeticExplorer(np.arange(1, 10).reshape(3, 3), np.ones((2, 2), dtype=int))
    np.testing.assert_array_equal(w.output, [[1 + 2 + 4 + 5, 2 + 3 + 5 + 6], [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    assert w.output.dtype == np.int64


def test_transposed_one_hot_stamps_kernel_at_stride():
    x = np.zeros((2, 2), dtype=int)
    x[1, 0] = 1
    k = np.array([[1, 2], [3, 4]])
    w = ConvArithmeticExplorer(x, k, stride=3, transposed=True)
    want = np.zeros((5, 5), dtype=int)            # (2 - 1) * 3 + 2 = 5; pixel (1, 0) stamps at (3, 0)
    want[3:5, 0:2] = k
    np.testing.assert_array_equal(w.output, want)


@pytest.mark.parametrize("seed", range(40))
def test_output_equals_torch_for_random_settings(seed):
    rng = np.random.default_rng(seed)
    transposed = bool(seed % 2)
    for _ in range(100):                          # draw until the settings give an output
        h, wd = rng.integers(1, 10, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        p, s, d = int(rng.integers(0, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
        op = int(rng.integers(0, max(s, d))) if transposed else 0
        if problem((h, wd), (kh, kw), p, s, d, transposed, op) is None:
            break
    x, k = rng.integers(-9, 10, size=(h, wd)), rng.integers(-3, 4, size=(kh, kw))
    w = ConvArithmeticExplorer(x, k, padding=p, stride=s, dilation=d, transposed=transposed, output_padding=op)
    tx, tk = torch.from_numpy(x[None, None]).double(), torch.from_numpy(k[None, None]).double()
    if transposed:
        want = F.conv_transpose2d(tx, tk, stride=s, padding=p, output_padding=op, dilation=d)
    else:
        want = F.conv2d(tx, tk, stride=s, padding=p, dilation=d)
    np.testing.assert_array_equal(w.output, want[0, 0].numpy().astype(np.int64))
    assert w.output.shape == w.output_shape


def test_every_guide_case_is_a_preset_with_its_output_size():
    # (input, kernel, padding, stride, dilation, output_padding) -> output side, from the guide
    sizes = {p["name"]: ConvArithmeticExplorer(preset=p["name"]).output.shape[0] for p in PRESETS}
    assert sizes == {
        "no padding, no strides": 2, "arbitrary padding, no strides": 6, "half padding, no strides": 5,
        "full padding, no strides": 7, "no padding, strides": 2, "padding, strides": 3,
        "padding, strides (odd)": 3, "no padding, no strides, transposed": 4,
        "arbitrary padding, no strides, transposed": 5, "half padding, no strides, transposed": 5,
        "full padding, no strides, transposed": 5, "no padding, strides, transposed": 5,
        "padding, strides, transposed": 5, "padding, strides, transposed (odd)": 6, "no padding, no strides, dilation": 3}


def test_each_transposed_preset_undoes_the_shape_of_its_convolution():
    for p in PRESETS:
        if p["transposed"]:
            forward = ConvArithmeticExplorer(preset=p["name"].replace(", transposed", ""))
            back = ConvArithmeticExplorer(preset=p["name"])
            assert back.input.shape == forward.output.shape and back.output.shape == forward.input.shape


def test_preset_sets_everything_and_a_change_makes_it_custom():
    w = ConvArithmeticExplorer(position=(1, 1))
    w.preset = "padding, strides, transposed (odd)"
    assert (w.input.shape, w.kernel.shape, w.padding, w.stride, w.transposed, w.output_padding) == \
        ((3, 3), (3, 3), 1, 2, True, 1)
    assert w.position == (0, 0)
    w.output_padding = 0                          # now the settings of another case: named after it
    assert w.preset == "padding, strides, transposed"
    w.stride = 3
    assert w.preset == "custom"
    w.stride, w.output_padding = 2, 1             # back to the first case's settings
    assert w.preset == "padding, strides, transposed (odd)"


def test_frontend_state_with_preset_keeps_the_preset():
    w = ConvArithmeticExplorer()
    w.set_state({"preset": "no padding, no strides, dilation", "input": filled((7, 7), input_value).tolist(), "dilation": 2,
                 "position": [2, 2]})
    assert w.preset == "no padding, no strides, dilation" and w.position == (2, 2) and w.output.shape == (3, 3)


def test_resize_keeps_old_values_and_fills_new_cells():
    w = ConvArithmeticExplorer(np.full((2, 2), 7))
    w.input = (3, 4)
    assert w.input.tolist() == [[7, 7, 3, 4], [7, 7, 1, 2], [2, 3, 4, 5]]
    assert kernel_value(1, 2) == 1 + (2 + 2) % 3


def test_position_steps_the_output_or_the_input_when_transposed():
    w = ConvArithmeticExplorer(5, 3, position=(2, 2))           # output 3x3
    with pytest.raises(ValueError, match=re.escape("`position` must lie in the output grid of shape (3, 3); got (3, 0)")):
        w.position = (3, 0)
    w.transposed = True                                         # steps visit the 5x5 input
    w.position = (4, 4)
    with pytest.raises(ValueError, match=re.escape("`position` must lie in the input grid of shape (5, 5)")):
        w.position = (5, 0)


def test_position_clamped_when_grid_shrinks():
    w = ConvArithmeticExplorer(5, 3, padding=1, position=(4, 4))
    w.padding = 0
    assert w.position == (2, 2)


def test_setting_without_output_is_kept_and_explained():
    w = ConvArithmeticExplorer(3, 3, position=(0, 0))
    w.dilation = 2                                              # 3 < 2 * (3 - 1) + 1 = 5
    assert w.dilation == 2 and w.grid_shape == (0, 0)
    assert w.problem.startswith("No output along the height: H_out = ⌊(H + 2P − D(K−1) − 1) / S⌋ + 1 = "
                                "⌊(3 + 2·0 − 2·(3−1) − 1) / 1⌋ + 1 = −1, less than 1. The term D(K−1) = 4 "
                                "is larger than H + 2P − 1 = 2")
    assert "It fits with padding ≥ 1 or dilation ≤ 1 or a kernel of at most 2 rows." in w.problem
    with pytest.raises(ValueError, match="The term D"):
        w.output
    w.padding = 1
    assert w.problem is None and w.output.shape == (1, 1)


def test_problem_names_the_width_when_only_the_width_fails():
    assert problem((5, 2), (3, 3), 0, 1, 1).startswith("No output along the width: W_out = ")


def test_transposed_padding_problem_names_the_padding_term():
    text = problem((2, 2), (3, 3), 2, 1, 1, transposed=True)    # full 4 rows, 2P = 4 crops them all
    assert "(2−1)·1 − 2·2 + 1·(3−1) + 0 + 1 = 0, less than 1" in text
    assert "The term 2P = 4 is not smaller than the full output's 4 rows" in text
    assert text.endswith("It fits with padding ≤ 1.")


@pytest.mark.parametrize("stride, dilation, op, bad", [(2, 1, 1, False), (2, 1, 2, True), (1, 3, 2, False),
                                                       (1, 1, 1, True)])
def test_output_padding_must_be_below_max_stride_dilation(stride, dilation, op, bad):
    w = ConvArithmeticExplorer(3, 3, stride=stride, dilation=dilation, transposed=True, output_padding=op)
    if bad:
        assert w.problem.startswith(f"output_padding = {op} is too large: it must be smaller than "
                                    f"max(stride, dilation) = max({stride}, {dilation}) = {max(stride, dilation)}.")
    else:
        assert w.problem is None and w.output.shape[0] == 2 * stride + dilation * 2 + op + 1


def test_output_padding_ignored_without_transposed():
    w = ConvArithmeticExplorer(5, 3, output_padding=3)
    assert w.problem is None and w.output.shape == (3, 3)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"input": np.ones((2, 2, 2))}, ValueError, r"`input` must be a 2-D array \(rows, columns\); got shape \(2, 2, 2\)"),
    ({"input": np.ones((10, 3))}, ValueError, r"`input` sides must be between 1 and 9; got shape \(10, 3\)"),
    ({"input": 0}, ValueError, r"`input` sides must be between 1 and 9; got \(0, 0\)"),
    ({"kernel": (6, 1)}, ValueError, r"`kernel` sides must be between 1 and 5; got \(6, 1\)"),
    ({"input": [[1.0, np.nan]]}, ValueError, r"`input` must be finite; got nan at \(0, 1\)"),
    ({"kernel": [[1, 0.5]]}, ValueError, r"`kernel` must hold whole numbers .*; got 0.5 at \(0, 1\)"),
    ({"kernel": [[1, 2], [3, 100]]}, ValueError, r"`kernel` values must lie between −99 and 99; got 100 at \(1, 1\)"),
    ({"input": np.ones((2, 2), dtype=bool)}, TypeError, "`input` must hold integers; got dtype bool"),
    ({"input": [["a"]]}, TypeError, "`input` must hold integers; got dtype <U1"),
    ({"padding": -1}, ValueError, "`padding` must be between 0 and 4; got -1"),
    ({"stride": 0}, ValueError, "`stride` must be between 1 and 4; got 0"),
    ({"dilation": 5}, ValueError, "`dilation` must be between 1 and 4; got 5"),
    ({"output_padding": 4}, ValueError, "`output_padding` must be between 0 and 3; got 4"),
    ({"stride": 1.5}, ValueError, "`stride` must be an int; got 1.5"),
    ({"padding": float("nan")}, ValueError, "`padding` must be an int; got nan"),
    ({"padding": True}, ValueError, "`padding` must be an int; got True"),
    ({"preset": "same"}, ValueError, "`preset` must be 'custom' or one of"),
    ({"position": (3, 3)}, ValueError, r"`position` must lie in the output grid of shape \(3, 3\)"),
])
def test_bad_arguments_raise_naming_them(kwargs, err, match):
    with pytest.raises(err, match=match):
        ConvArithmeticExplorer(**kwargs)


def test_numpy_ints_and_integral_floats_accepted():
    w = ConvArithmeticExplorer(np.array([[1.0, 2.0], [3.0, 4.0]]), 1, padding=np.int64(1))
    assert w.input.dtype == np.int64 and w.padding == 1 and isinstance(w.padding, int)


def test_bad_change_keeps_state():
    w = ConvArithmeticExplorer()
    with pytest.raises(ValueError, match="`stride`"):
        w.stride = 9
    assert w.stride == 1 and w.output.shape == (3, 3)


def test_synced_state_is_plain_json():
    state = ConvArithmeticExplorer(preset="no padding, no strides, dilation").get_state()
    assert state["input"][0] == [1, 2, 3, 4, 5, 1, 2] and state["dilation"] == 2
    assert state["limits"] == LIMITS and [p["name"] for p in state["presets"]] == [p["name"] for p in PRESETS]
    assert "export default { render }" in state["_esm"]
    assert not re.search(r"^\s*import\s", state["_esm"], flags=re.M), "the view must import nothing"
    assert "http://" not in state["_esm"] and "https://" not in state["_esm"]
    assert ".ca-pad" in state["_css"]
