"""ReceptiveFieldExplorer, Python side: the receptive field of every unit against torch autograd,
the recurrence, validation, synced state, and the effective field of a StackNet."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course.widgets import ReceptiveFieldExplorer
from conv_course.widgets.receptive_field import (LIMITS, TRAINED_LAYERS, StackNet, check_layers, effective_field,
                                                  half_mass_side, theory, unit_field)


def conv(k, s=1, d=1, p=0):
    return dict(kind="conv", kernel=k, stride=s, dilation=d, padding=p)


def pool(k, s=None, p=0):
    return dict(kind="pool", kernel=k, stride=s or k, dilation=1, padding=p)


def ones_stack(x, layers):
    """The stack with every weight one: convolutions of ones, average pools (positive, so no
    gradient cancels: the support of a gradient is exactly the set of pixels with a path)."""
    for L in layers:
        k, kw = L["kernel"], dict(stride=L["stride"], padding=L["padding"])
        if L["kind"] == "pool" and L["dilation"] == 1:
            x = F.avg_pool2d(x, k, **kw)
        else:                          # avg_pool2d has no dilation; a kernel of ones has the same support
            x = F.conv2d(x, torch.ones(1, 1, k, k, dtype=x.dtype), dilation=L["dilation"], **kw)
    return x


def torch_field(layers, n, m, row, col):
    """(rows, cols) of the input pixels with a non-zero d out[row, col] / d x, out the map after `m` layers."""
    x = torch.zeros(1, 1, n, n, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(ones_stack(x, layers[:m])[0, 0, row, col], x)
    support = grad[0, 0] != 0
    return np.flatnonzero(support.any(1)).tolist(), np.flatnonzero(support.any(0)).tolist(), support.numpy()


def torch_reach(layers, n, row, col, m):
    """Units of map `m` that a one-hot input at (row, col) moves (the stack is linear and positive)."""
    x = torch.zeros(1, 1, n, n, dtype=torch.float64)
    x[0, 0, row, col] = 1
    moved = ones_stack(x, layers[:m])[0, 0] != 0
    return np.flatnonzero(moved.any(1)).tolist(), np.flatnonzero(moved.any(0)).tolist(), moved.numpy()


def random_stack(rng):
    """A valid random stack (1 to 5 layers, dilation, stride and padding everywhere) and its input side."""
    while True:
        n = int(rng.integers(4, 33))
        layers = []
        for _ in range(int(rng.integers(1, 6))):
            k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
            kind = "pool" if rng.random() < 0.3 else "conv"
            p = int(rng.integers(0, (k // 2 if kind == "pool" else 3) + 1))
            layers.append(dict(kind=kind, kernel=k, stride=s, dilation=d, padding=p))
        try:
            return check_layers(layers, n), n
        except ValueError:
            continue


def test_two_3x3_convs_see_5x5():
    w = ReceptiveFieldExplorer([conv(3), conv(3)], input_size=9, selection=(2, 2, 2))
    assert w.sizes == [9, 7, 5]
    assert w.field() == ([2, 3, 4, 5, 6], [2, 3, 4, 5, 6])        # rows 2..2+5-1
    assert [(t["r"], t["j"]) for t in w.table()] == [(3, 1), (3 + 2, 1)]


def test_recurrence_hand_cases():
    # conv5, pool2, conv5, pool2 (LeNet): r = 5, 5+1*1=6, 6+4*2=14, 14+1*2=16; j = 1, 2, 2, 4
    assert theory([conv(5), pool(2), conv(5), pool(2)]) == [(5, 1), (6, 2), (14, 2), (16, 4)]
    # dilations 1, 2, 4: r = 3, 3+2*2=7, 7+2*4=15
    assert theory([conv(3, d=1), conv(3, d=2), conv(3, d=4)]) == [(3, 1), (7, 1), (15, 1)]


def test_padding_clips_the_field_at_the_border():
    w = ReceptiveFieldExplorer([conv(3, p=1), conv(3, p=1)], input_size=8, selection=(2, 0, 7))
    assert w.field() == ([0, 1, 2], [5, 6, 7])                    # r = 5, two rows and columns on padding


def test_dilation_leaves_gaps():
    w = ReceptiveFieldExplorer([conv(3, d=2)], input_size=7, selection=(1, 1, 0))
    assert w.field() == ([1, 3, 5], [0, 2, 4])


def test_unit_field_needs_no_widget():
    assert unit_field([conv(3, d=2)], 7, 1, 1, 0) == ([1, 3, 5], [0, 2, 4])
    assert unit_field([conv(1, p=1)], 4, 1, 0, 2) == ([], [])      # a window on padding only sees nothing


def test_stride_larger_than_kernel_leaves_gaps():
    # a 1x1 conv with stride 2 keeps every other pixel; a 2x2 conv on top sees pixels 0 and 2
    w = ReceptiveFieldExplorer([conv(1, s=2), conv(2)], input_size=6, selection=(2, 0, 1))
    assert w.field() == ([0, 2], [2, 4])


@pytest.mark.parametrize("seed", range(30))
def test_field_is_the_support_of_torch_gradients(seed):
    rng = np.random.default_rng(seed)
    layers, n = random_stack(rng)
    w = ReceptiveFieldExplorer(layers, input_size=n)
    for m in range(1, len(layers) + 1):
        row, col = (int(v) for v in rng.integers(0, w.sizes[m], size=2))
        rows, cols, support = torch_field(layers, n, m, row, col)
        assert w.field(m, row, col) == (rows, cols), (layers, n, m, row, col)
        assert support.sum() == len(rows) * len(cols)              # the support is a product of row and column sets


@pytest.mark.parametrize("seed", range(20))
def test_reach_is_what_a_one_hot_input_moves(seed):
    rng = np.random.default_rng(100 + seed)
    layers, n = random_stack(rng)
    w = ReceptiveFieldExplorer(layers, input_size=n)
    row, col = (int(v) for v in rng.integers(0, n, size=2))
    reach = w.reach(row, col)
    for m in range(1, len(layers) + 1):
        rows, cols, moved = torch_reach(layers, n, row, col, m)
        assert reach[m] == (rows, cols), (layers, n, row, col, m)
        assert moved.sum() == len(rows) * len(cols)


def test_interior_field_spans_the_recurrence():
    layers = [conv(3), pool(2), conv(3, d=2), conv(3, s=2)]
    w = ReceptiveFieldExplorer(layers, input_size=32)
    rows, cols = w.field(4, 1, 1)
    assert rows[-1] - rows[0] + 1 == theory(layers)[-1][0] == cols[-1] - cols[0] + 1


def test_selection_clamped_when_the_stack_shrinks():
    w = ReceptiveFieldExplorer([conv(3), conv(3), conv(3)], input_size=10, selection=(3, 3, 3))
    w.layers = [conv(5)]
    assert w.selection == (1, 3, 3)
    w.input_size = 6
    assert w.selection == (1, 1, 1)


def test_missing_keys_get_torch_defaults():
    w = ReceptiveFieldExplorer([{"kind": "conv", "kernel": 3}, {"kind": "pool", "kernel": 2}], input_size=10)
    assert w.layers == [conv(3), pool(2)] and w.sizes == [10, 8, 4]


@pytest.mark.parametrize("kwargs, err, match", [
    ({"layers": []}, ValueError, r"`layers` must be a list of 1 to 6 dicts; got 0 layers"),
    ({"layers": [conv(3)] * 7}, ValueError, r"`layers` must be a list of 1 to 6 dicts; got 7 layers"),
    ({"layers": "conv"}, ValueError, r"`layers` must be a list of 1 to 6 dicts; got 'conv'"),
    ({"layers": [3]}, TypeError, r"`layers\[0\]` must be a dict; got 3"),
    ({"layers": [dict(kind="dense", kernel=3)]}, ValueError, r"`layers\[0\]\['kind'\]` must be 'conv' or 'pool'"),
    ({"layers": [dict(kind="conv")]}, ValueError, r"`layers\[0\]` needs a 'kernel' size"),
    ({"layers": [dict(kind="conv", kernel=3, groups=2)]}, ValueError, r"`layers\[0\]` has unknown keys \['groups'\]"),
    ({"layers": [conv(8)]}, ValueError, r"`layers\[0\]\['kernel'\]` must be between 1 and 7; got 8"),
    ({"layers": [conv(3, s=0)]}, ValueError, r"`layers\[0\]\['stride'\]` must be between 1 and 4; got 0"),
    ({"layers": [conv(3), conv(3, d=5)]}, ValueError, r"`layers\[1\]\['dilation'\]` must be between 1 and 4; got 5"),
    ({"layers": [conv(3, p=np.nan)]}, TypeError, r"`layers\[0\]\['padding'\]` must be an int; got nan"),
    ({"layers": [conv(3.0)]}, TypeError, r"`layers\[0\]\['kernel'\]` must be an int; got 3.0"),
    ({"layers": [conv(True)]}, TypeError, r"`layers\[0\]\['kernel'\]` must be an int; got True"),
    ({"layers": [pool(2, p=2)]}, ValueError, r"`layers\[0\]\['padding'\]` of a pool must be at most half its kernel, 1"),
    ({"layers": [conv(5), conv(5)], "input_size": 8}, ValueError,
     r"`layers\[1\]` leaves no output: its 4x4 input, padded to 4x4, is smaller than its dilated kernel 5x5"),
    ({"input_size": 3}, ValueError, r"`input_size` must be between 4 and 32; got 3"),
    ({"input_size": 33}, ValueError, r"`input_size` must be between 4 and 32; got 33"),
    ({"input_size": 28.0}, TypeError, r"`input_size` must be an int; got 28.0"),
    ({"selection": (6, 0, 0)}, ValueError, r"`selection` map must be 0 \(the input\) to 5; got 6"),
    ({"selection": (5, 7, 0)}, ValueError, r"`selection` must lie in map 5 of shape \(7, 7\); got \(7, 0\)"),
])
def test_bad_arguments_raise_naming_them(kwargs, err, match):
    with pytest.raises(err, match=match):
        ReceptiveFieldExplorer(**kwargs)


def test_bad_change_keeps_state():
    w = ReceptiveFieldExplorer()
    with pytest.raises(ValueError, match=r"`layers\[0\]\['stride'\]`"):
        w.layers = [conv(3, s=9)]
    assert w.layers == TRAINED_LAYERS and w.sizes == [28, 28, 14, 14, 7, 7]
    w.layers = [conv(5), conv(5)]
    with pytest.raises(ValueError, match=r"`input_size` 8 is too small for the layers: `layers\[1\]` leaves no output"):
        w.input_size = 8
    assert w.input_size == 28 and w.sizes == [28, 24, 20]


def test_default_is_the_trained_stack_with_the_centre_unit_selected():
    w = ReceptiveFieldExplorer()
    assert w.selection == (5, 3, 3) and w.table()[-1]["r"] == 18 and w.table()[-1]["j"] == 4
    assert w.field() == (list(range(5, 23)), list(range(5, 23)))  # 3*4 - 7 .. 3*4 - 7 + 18 - 1


def test_half_mass_side_hand_cases():
    point = np.zeros((9, 9))
    point[4, 4] = 1
    assert half_mass_side(point, (0, 8), (0, 8)) == 1
    flat = np.ones((9, 9))                       # 5x5 holds 25/81 < half, 7x7 holds 49/81 >= half
    assert half_mass_side(flat, (0, 8), (0, 8)) == 7


def test_effective_field_lies_inside_the_theoretical_field():
    torch.manual_seed(0)
    net = StackNet()
    digits = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    w = ReceptiveFieldExplorer(network=net, digits=digits)
    erf = w.effective_map
    rows, cols = w.field(5, 3, 3)
    assert erf.shape == (28, 28) and erf.max() == 1
    outside = np.ones_like(erf, dtype=bool)
    outside[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = False
    assert erf[outside].max() == 0 and erf[~outside].min() >= 0
    assert w.effective["digits"] == 8 and (w.effective["layer"], w.effective["row"], w.effective["col"]) == (5, 3, 3)
    assert 1 <= w.half_mass() <= 18


def test_effective_field_is_the_mean_input_gradient():
    torch.manual_seed(1)
    net = StackNet(width=2)
    x = torch.rand(3, 1, 28, 28)
    want = torch.zeros(28, 28)
    for img in x:                                # one image at a time, the channels' sum at unit (1, 2) of map 3
        img = img[None].clone().requires_grad_(True)
        net.upto(img, 3)[0, :, 1, 2].sum().backward()
        want += img.grad[0, 0].abs() / 3
    np.testing.assert_allclose(effective_field(net, x.numpy(), 3, 1, 2), want.numpy(), atol=1e-6)


def test_effective_field_follows_the_selection_only_on_the_trained_stack():
    torch.manual_seed(0)
    w = ReceptiveFieldExplorer(network=StackNet(), digits=np.random.default_rng(1).random((4, 1, 28, 28)))
    w.selection = (2, 0, 13)
    assert (w.effective["layer"], w.effective["row"], w.effective["col"]) == (2, 0, 13)
    w.layers = [conv(3)]
    w.selection = (1, 5, 5)
    assert (w.effective["layer"], w.effective["row"], w.effective["col"]) == (2, 0, 13)
    assert w.trained_layers == TRAINED_LAYERS


@pytest.mark.parametrize("network, digits, err, match", [
    ("net", np.zeros((2, 1, 28, 28)), TypeError, "`network` must be a StackNet; got str"),
    (None, np.zeros((2, 28, 28)), ValueError, r"`digits` must have shape \(N, 1, 28, 28\); got \(2, 28, 28\)"),
    (None, np.full((2, 1, 28, 28), np.nan), ValueError, "`digits` must be finite"),
])
def test_bad_network_or_digits_raise_naming_them(network, digits, err, match):
    with pytest.raises(err, match=match):
        ReceptiveFieldExplorer(network=StackNet() if network is None else network, digits=digits)


def test_synced_state_is_plain_json():
    state = ReceptiveFieldExplorer(layers=[conv(3), pool(2)], input_size=12).get_state()
    assert state["layers"] == [conv(3), pool(2)] and state["input_size"] == 12 and list(state["selection"]) == [2, 2, 2]
    assert state["limits"] == LIMITS and state["effective"] == {}
    assert "export default { render }" in state["_esm"]
    assert not re.search(r"^\s*import\s", state["_esm"], flags=re.M), "the view must import nothing"
    assert "http://" not in state["_esm"] and "https://" not in state["_esm"]
    assert ".rf-map" in state["_css"]
