"""KernelExplorer, Python side: traitlets, validation, synced state, the ops-backed output."""

import re

import numpy as np
import pytest
from scipy import signal

from conv_course import images, kernels
from conv_course.widgets import KernelExplorer
from conv_course.widgets.kernel_explorer import _image_from_json, _image_to_json

IMG = np.arange(20.0).reshape(4, 5)   # rows 0..4, 5..9, 10..14, 15..19


def test_output_hand_case_correlation():
    # kernel [[1, 0], [0, -1]] at (r, c): X[r, c] - X[r+1, c+1] = -6 everywhere
    w = KernelExplorer(image=IMG, kernel=[[1, 0], [0, -1]])
    np.testing.assert_array_equal(w.output, np.full((3, 4), -6.0))


def test_output_convolution_mode_flips_kernel():
    # flipped: [[-1, 0], [0, 1]] -> X[r+1, c+1] - X[r, c] = +6
    w = KernelExplorer(image=IMG, kernel=[[1, 0], [0, -1]], mode="convolution")
    np.testing.assert_array_equal(w.output, np.full((3, 4), 6.0))


def test_convolution_mode_matches_scipy_convolve2d():
    rng = np.random.default_rng(0)
    img, k = rng.normal(size=(9, 11)), rng.normal(size=(3, 3))
    w = KernelExplorer(image=img, kernel=k, mode="convolution", size=None)
    np.testing.assert_allclose(w.output, signal.convolve2d(img, k, mode="valid"), atol=1e-12)


def test_output_padding_stride_dilation_matches_scipy_correlate():
    rng = np.random.default_rng(1)
    img, k = rng.normal(size=(12, 10)), rng.normal(size=(3, 3))
    w = KernelExplorer(image=img, kernel=k, padding=2, stride=2, dilation=2, size=None)
    dk = np.zeros((5, 5))
    dk[::2, ::2] = k                                      # dilation 2 spreads the taps
    want = signal.correlate2d(np.pad(img, 2), dk, mode="valid")[::2, ::2]
    assert w.output_shape == ((12 + 4 - 4 - 1) // 2 + 1, (10 + 4 - 4 - 1) // 2 + 1) == want.shape
    np.testing.assert_allclose(w.output, want, atol=1e-12)


def test_patch_reads_padded_dilated_window():
    w = KernelExplorer(image=IMG, kernel=np.ones((2, 2)), padding=1, dilation=2, position=(0, 1))
    # padded rows -1 and 1, columns 0 and 2 -> [[0, 0], [5, 7]]
    np.testing.assert_array_equal(w.patch, [[0, 0], [5, 7]])


def test_preset_name_loads_kernel_and_sets_preset():
    w = KernelExplorer(image="coins", kernel="laplacian")
    np.testing.assert_array_equal(w.kernel, kernels.laplacian())
    assert w.preset == "laplacian"
    w.kernel = np.array([[0.0, 1, 0], [1, -3, 1], [0, 1, 0]])
    assert w.preset == "custom"


def test_photo_is_block_averaged_to_size_and_kept_8bit():
    w = KernelExplorer(image="camera", kernel="identity", size=128)
    full = images.load("camera")
    want = np.round(full.reshape(128, 4, 128, 4).mean(axis=(1, 3)) * 255) / 255
    np.testing.assert_array_equal(w.image, want)
    assert w.get_state()["image"]["dtype"] == "uint8/255"


def test_small_array_kept_exact_as_float64():
    img = np.array([[0.1, -2.5], [3.0, 1e-3]])
    w = KernelExplorer(image=img, kernel=[[1.0]])
    state = w.get_state()["image"]
    assert state["dtype"] == "float64" and state["shape"] == [2, 2]
    np.testing.assert_array_equal(_image_from_json(state, None), img)


def test_image_json_round_trip_8bit():
    img = np.array([[0, 1 / 255, 128 / 255], [1.0, 0.5 + 0.5 / 255, 7 / 255]])
    obj = _image_to_json(img, None)
    assert obj["dtype"] == "uint8/255"
    np.testing.assert_array_equal(_image_from_json(obj, None), img)


def test_frontend_kernel_edit_arrives_as_array():
    w = KernelExplorer(image=IMG, kernel="sobel_x")
    w.set_state({"kernel": [[0, 0, 0], [0, 2, 0], [0, 0, 0]], "preset": "custom"})
    np.testing.assert_array_equal(w.output, 2 * IMG[1:-1, 1:-1])


def test_position_out_of_range_raises():
    w = KernelExplorer(image=IMG, kernel=np.ones((3, 3)))
    with pytest.raises(ValueError, match=re.escape("`position` must lie in the output map of shape (2, 3)")):
        w.position = (2, 0)


def test_position_clamped_when_output_shrinks():
    w = KernelExplorer(image=IMG, kernel=np.ones((3, 3)), padding=1, position=(3, 4))
    w.padding = 0
    assert w.position == (1, 2)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"image": np.ones((2, 2, 2))}, ValueError, r"`image` must be a 2-D array .* got shape \(2, 2, 2\)"),
    ({"image": np.ones((4, 4), dtype=bool)}, TypeError, "`image` must hold real numbers; got dtype bool"),
    ({"image": [[1.0, np.nan]]}, ValueError, "`image` must be finite"),
    ({"kernel": np.ones(3)}, ValueError, r"`kernel` must be a 2-D array .* got shape \(3,\)"),
    ({"kernel": np.ones((9, 9))}, ValueError, r"`kernel` sides must be <= 7; got shape \(9, 9\)"),
    ({"kernel": "blur"}, ValueError, "unknown kernel 'blur'"),
    ({"padding": -1}, ValueError, "`padding` must be >= 0; got -1"),
    ({"stride": 0}, ValueError, "`stride` must be >= 1; got 0"),
    ({"dilation": 3}, ValueError, r"padded image 4x5 is smaller than the dilated kernel 7x7"),
    ({"mode": "flip"}, Exception, "mode"),
    ({"size": 2}, ValueError, "`size` must be an int >= 4 or None; got 2"),
])
def test_bad_arguments_raise_naming_them(kwargs, err, match):
    args = {"image": IMG, "kernel": np.ones((3, 3)), **kwargs}
    with pytest.raises(err, match=match):
        KernelExplorer(**args)


def test_bad_trait_change_keeps_state():
    w = KernelExplorer(image=IMG, kernel=np.ones((3, 3)))
    with pytest.raises(ValueError, match="dilated kernel"):
        w.dilation = 2
    assert w.dilation == 1 and w.output.shape == (2, 3)


def test_presets_synced_for_every_named_kernel():
    presets = KernelExplorer(image=IMG, kernel="identity").get_state()["presets"]
    assert list(presets) == kernels.names()
    np.testing.assert_array_equal(presets["gaussian"]["5"], kernels.gaussian(5))
    np.testing.assert_array_equal(presets["box_blur"]["3"], np.full((3, 3), 1 / 9))
    assert list(presets["emboss"]) == ["3"]


def test_esm_is_self_contained_module():
    w = KernelExplorer(image=IMG, kernel="identity")
    esm = w.get_state()["_esm"]
    assert "export default { render }" in esm
    assert not re.search(r"^\s*import\s", esm, flags=re.M), "the view must import nothing"
    assert "http://" not in esm and "https://" not in esm
    assert ".kx-panel" in w.get_state()["_css"]


def test_refused_kernel_keeps_kernel_and_preset():
    w = KernelExplorer(image=np.ones((4, 4)), kernel="sharpen")
    with pytest.raises(ValueError, match="dilated kernel 5x5"):
        w.kernel = "gaussian"
    assert w.preset == "sharpen" and w.kernel.shape == (3, 3)


# -- the reader's own image: arrays of any real dtype, RGB(A), PNG/JPEG files ----------------

def test_rgb_array_turned_gray_with_rec709_luma():
    rgb = np.random.default_rng(2).random((6, 7, 3))
    w = KernelExplorer(image=rgb, kernel="identity")
    np.testing.assert_allclose(w.image, 0.2125 * rgb[..., 0] + 0.7154 * rgb[..., 1] + 0.0721 * rgb[..., 2],
                               atol=1e-15)
    rgba = np.concatenate([rgb, np.zeros((6, 7, 1))], axis=2)          # alpha is dropped
    np.testing.assert_array_equal(KernelExplorer(image=rgba, kernel="identity").image, w.image)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float16, np.float32])
def test_any_real_dtype_kept_as_given(dtype):
    img = (np.arange(30) % 7).reshape(5, 6).astype(dtype)
    w = KernelExplorer(image=img, kernel=[[1.0, -1.0]])
    assert w.image.dtype == np.float64
    np.testing.assert_array_equal(w.image, img.astype(np.float64))
    np.testing.assert_array_equal(w.output, img[:, :-1].astype(np.float64) - img[:, 1:])


def test_large_array_block_averaged_to_size():
    img = np.random.default_rng(4).random((300, 200, 3))
    w = KernelExplorer(image=img, kernel="identity", size=64)
    gray = img @ [0.2125, 0.7154, 0.0721]
    assert w.image.shape == (60, 40)                                    # factor ceil(300 / 64) = 5
    np.testing.assert_allclose(w.image, gray.reshape(60, 5, 40, 5).mean(axis=(1, 3)), atol=1e-14)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_image_file_read_like_a_named_photo(tmp_path, suffix):
    from PIL import Image

    rgb = np.random.default_rng(6).integers(0, 256, size=(200, 150, 3), dtype=np.uint8)
    path = tmp_path / f"mine{suffix}"
    Image.fromarray(rgb).save(path)
    w = KernelExplorer(image=path, kernel="sobel_y", size=64)         # a pathlib.Path, or a str
    assert w.image.shape == (50, 37)                                   # factor ceil(200 / 64) = 4
    read = np.asarray(Image.open(path), dtype=np.float64) / 255 @ [0.2125, 0.7154, 0.0721]
    want = np.round(read[:200, :148].reshape(50, 4, 37, 4).mean(axis=(1, 3)) * 255) / 255
    np.testing.assert_allclose(w.image, want, atol=1e-12)
    assert w.get_state()["image"]["dtype"] == "uint8/255"
    np.testing.assert_array_equal(KernelExplorer(image=str(path), kernel="sobel_y", size=64).image, w.image)


def test_photo_file_path_equals_its_name():
    by_path = KernelExplorer(image=images.CATALOG["coins"].path(), kernel="identity")
    np.testing.assert_array_equal(by_path.image, KernelExplorer(image="coins", kernel="identity").image)


def test_bad_image_file_raises_naming_image(tmp_path):
    with pytest.raises(ValueError, match=r"`image` must be a photo name \(camera, .*\), a path to a PNG/JPEG "
                                         r"file, or a 2-D array; no file 'cameraa'"):
        KernelExplorer(image="cameraa")
    with pytest.raises(ValueError, match=r"`image` must be .*; no file '.*missing\.png'"):
        KernelExplorer(image=tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=r"`image` file '.*notes\.png' is not a readable PNG/JPEG image"):
        KernelExplorer(image=text)


@pytest.mark.parametrize("value, err, match", [
    (np.full((4, 4, 3), np.nan), ValueError, "`image` must be finite; got NaN or infinity"),
    (np.ones((4, 4, 2)), ValueError, r"`image` must be a 2-D array \(H, W\) or an RGB\(A\) array "
                                     r"\(H, W, 3 or 4\); got shape \(4, 4, 2\)"),
    (np.ones((0, 4)), ValueError, r"`image` must not be empty; got shape \(0, 4\)"),
    (np.ones((4, 4), dtype=complex), TypeError, "`image` must hold real numbers; got dtype complex128"),
    (3.0, ValueError, r"`image` must be a 2-D array .* got shape \(\)"),
])
def test_bad_image_array_raises_naming_image(value, err, match):
    with pytest.raises(err, match=match):
        KernelExplorer(image=value, kernel="identity")
