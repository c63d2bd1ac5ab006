"""ChannelsExplorer, Python side: traitlets, validation, presets, the ops-backed maps."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course import images, kernels
from conv_course.widgets import ChannelsExplorer
from conv_course.widgets.channels import PRESETS, crop_square, two_decimals


def random_widget(seed, **extra):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 12, size=2)
    kh, kw = rng.integers(1, 4, size=2)
    return ChannelsExplorer(rng.random((h, w, 3)), rng.normal(size=(3, kh, kw)), bias=float(rng.normal()),
                            padding=int(rng.integers(0, 3)), **extra)


def test_default_is_a_32x32_crop_of_the_cat_with_the_luminance_edge():
    w = ChannelsExplorer()
    assert w.image.shape == (32, 32, 3) and w.kernel.shape == (3, 3, 3) and w.preset == "luminance edge"
    assert w.output.shape == (32, 32) and w.partials.shape == (3, 32, 32)   # padding 1 keeps the size
    assert np.array_equal(np.round(w.image * 255) / 255, w.image)          # 8-bit, sent as uint8
    assert w.get_state()["image"]["dtype"] == "uint8/255"


def test_crop_square_block_averages_the_centre():
    img = np.zeros((10, 14, 3))
    img[1:9, 3:11] = 1.0                        # the centred 8x8 square, factor 2 for size 4
    np.testing.assert_array_equal(crop_square(img, 4), np.ones((4, 4, 3)))
    photo = crop_square(images.load("coffee", color=True), 48)
    assert photo.shape == (48, 48, 3) and 0 <= photo.min() and photo.max() <= 1


@pytest.mark.parametrize("seed", range(20))
def test_partials_and_output_equal_torch(seed):
    w = random_widget(seed)
    x = torch.from_numpy(w.image.transpose(2, 0, 1)[None])
    k = torch.from_numpy(w.kernel)
    want = F.conv2d(x, k[None], torch.tensor([w.bias], dtype=torch.float64), padding=w.padding)[0, 0]
    np.testing.assert_allclose(w.output, want.numpy(), rtol=0, atol=1e-12)
    per_channel = [F.conv2d(x[:, c:c + 1], k[None, c:c + 1], padding=w.padding)[0, 0].numpy() for c in range(3)]
    np.testing.assert_allclose(w.partials, np.stack(per_channel), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.partials.sum(0) + w.bias, w.output, rtol=0, atol=1e-12)
    assert w.output.shape == w.output_shape


def test_presets_are_what_their_names_say():
    luma = np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(PRESETS["luminance edge"], luma[:, None, None] * kernels.sobel_x())
    img = np.random.default_rng(0).random((6, 6, 3))
    rg = ChannelsExplorer(img, "red minus green", padding=0)
    np.testing.assert_allclose(rg.output, (img[..., 0] - img[..., 1])[1:-1, 1:-1], atol=1e-15)
    assert not rg.partials[2].any()                                        # blue is ignored
    green = ChannelsExplorer(img, "green only", bias=0.5)
    np.testing.assert_allclose(green.output, img[..., 1] + 0.5, atol=1e-15)
    blur = ChannelsExplorer(img, "blur", padding=0)
    np.testing.assert_allclose(blur.output[0, 0], (img[:3, :3] @ luma).mean(), atol=1e-15)


def test_kernel_edit_marks_custom_and_preset_name_sets_weights():
    w = ChannelsExplorer(kernel="blur")
    k = w.kernel.copy()
    k[2, 1, 1] = 1.0
    w.kernel = k
    assert w.preset == "custom"
    w.kernel = "red minus green"
    assert w.preset == "red minus green" and w.kernel[0, 1, 1] == 1 and w.kernel[1, 1, 1] == -1
    w.kernel = np.asarray(PRESETS["blur"])                                # a preset's weights: named
    assert w.preset == "blur"
    w.preset = "green only"                                               # a name sets the weights
    np.testing.assert_array_equal(w.kernel, PRESETS["green only"])
    with pytest.raises(ValueError, match="`preset` must be 'custom' or one of"):
        w.preset = "sharpen"


@pytest.mark.parametrize("order", [("preset", "kernel"), ("kernel", "preset")])
def test_front_end_preset_change_arrives_in_either_order(order):
    w = ChannelsExplorer()
    sent = {"preset": "blur", "kernel": PRESETS["blur"]}
    w.set_state({name: sent[name] for name in order})                    # as the view's save_changes
    assert w.preset == "blur" and np.array_equal(w.kernel, PRESETS["blur"])
    k = np.array(PRESETS["blur"])
    k[0, 0, 0] = 2.0
    w.set_state({"preset": "custom", "kernel": k.tolist()})
    assert w.preset == "custom" and w.kernel[0, 0, 0] == 2


def test_equation_names_each_channel_and_adds_up():
    w = ChannelsExplorer(bias=0.5, position=(10, 12))
    r, g, b = w.partials[:, 10, 12]
    assert w.equation == (f"output[10, 12] = red {two_decimals(r)} + green {two_decimals(g)} + "
                          f"blue {two_decimals(b)} + bias 0.50 = {two_decimals(w.output[10, 12])}")
    assert re.fullmatch(r"output\[10, 12\] = red −?\d\.\d\d \+ green −?\d\.\d\d \+ blue −?\d\.\d\d "
                        r"\+ bias 0\.50 = −?\d\.\d\d", w.equation)


def test_two_decimals_matches_javascript_tofixed():
    # JavaScript's toFixed rounds exact ties away from zero, Python's format to even
    assert [two_decimals(v) for v in (0.125, -0.125, 1.005, -0.001, 2, -1.5)] == \
        ["0.13", "−0.13", "1.00", "0.00", "2.00", "−1.50"]


def test_position_is_clamped_when_the_output_shrinks():
    w = ChannelsExplorer(position=(31, 31))
    w.padding = 0
    assert w.position == (29, 29) and w.output_shape == (30, 30)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image="camera"), "`image` 'camera' is a grayscale photo"),
    (dict(image="nope"), "`image` must be a photo name"),
    (dict(image=np.ones((4, 4))), r"`image` must be an RGB array \(H, W, 3\)"),
    (dict(image=np.ones((4, 4, 4))), r"`image` must be an RGB array .* got shape \(4, 4, 4\)"),
    (dict(image=np.full((4, 4, 3), np.nan)), "`image` must be finite"),
    (dict(image=np.full((4, 4, 3), 2.0)), r"`image` values must lie in \[0, 1\]"),
    (dict(image=np.ones((65, 4, 3))), "`image` sides must be between 1 and 64"),
    (dict(kernel=np.ones((3, 3))), r"`kernel` must have shape \(3, kh, kw\)"),
    (dict(kernel=np.ones((4, 3, 3))), r"`kernel` must have shape \(3, kh, kw\).*got shape \(4, 3, 3\)"),
    (dict(kernel=np.ones((3, 6, 6))), "`kernel` slice sides must be between 1 and 5"),
    (dict(kernel=np.full((3, 3, 3), np.inf)), "`kernel` must be finite"),
    (dict(kernel="sharpen"), "`kernel` must be one of"),
    (dict(image=np.ones((2, 2, 3)), kernel=np.ones((3, 5, 5))), "`kernel` slices 5x5 do not fit the image 2x2"),
    (dict(bias=float("nan")), "`bias` must be finite"),
    (dict(bias=True), "`bias` must be a real number"),
    (dict(padding=3), "`padding` must be between 0 and 2"),
    (dict(padding=1.0), "`padding` must be an int"),
    (dict(position=(32, 0)), r"`position` must lie in the output channel of shape \(32, 32\)"),
    (dict(size=100), "`size` must be an int from 4 to 64"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChannelsExplorer(**kwargs)


def test_kernel_of_strings_is_a_type_error():
    with pytest.raises(TypeError, match="`kernel` must hold real numbers"):
        ChannelsExplorer(kernel=np.full((3, 3, 3), "a"))


def test_refused_change_keeps_the_state():
    w = ChannelsExplorer(np.ones((3, 3, 3)), "blur", padding=0)
    with pytest.raises(ValueError, match="do not fit"):
        w.kernel = np.ones((3, 5, 5))
    with pytest.raises(ValueError, match="`bias` must be finite"):
        w.bias = float("inf")
    assert w.kernel.shape == (3, 3, 3) and w.preset == "blur" and w.bias == 0 and w.output.shape == (1, 1)


def test_numpy_numbers_are_accepted():
    w = ChannelsExplorer(bias=np.float32(0.25), padding=np.int64(0), size=np.int64(16))
    assert w.bias == 0.25 and w.padding == 0 and w.image.shape == (16, 16, 3)


def test_esm_is_self_contained_module():
    state = ChannelsExplorer().get_state()
    assert "export default { render }" in state["_esm"]
    assert not re.search(r"^\s*import\s", state["_esm"], flags=re.M), "the view must import nothing"
    assert "http://" not in state["_esm"] and "https://" not in state["_esm"]
    assert ".cx-card" in state["_css"]
    assert state["presets"] == PRESETS and state["image"]["shape"] == [32, 32, 3]
