import numpy as np
import pytest

from conv_course import kernels


def _corr_valid(img, k):
    kh, kw = k.shape
    out = np.empty((img.shape[0] - kh + 1, img.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (img[i:i + kh, j:j + kw] * k).sum()
    return out


@pytest.mark.parametrize("name", kernels.names())
def test_every_preset_is_a_fresh_float_array(name):
    a, b = kernels.get(name), kernels.get(name)
    assert a.dtype == np.float64 and a.ndim == 2 and a.shape[0] % 2 == 1
    a[...] = 99.0
    assert not np.array_equal(a, b)


def test_identity_leaves_the_image_unchanged():
    img = np.arange(25.0).reshape(5, 5)
    np.testing.assert_array_equal(_corr_valid(img, kernels.identity()), img[1:-1, 1:-1])


@pytest.mark.parametrize("name", ["box_blur", "gaussian"])
def test_blurs_preserve_a_constant_image(name):
    k = kernels.get(name)
    assert k.sum() == pytest.approx(1.0)
    assert (k >= 0).all()


def test_gaussian_is_symmetric_and_peaks_in_the_centre():
    k = kernels.gaussian(7, sigma=1.5)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    assert k.argmax() == 3 * 7 + 3
    # ratio between centre and its neighbour is exp(1 / (2 sigma^2))
    assert k[3, 3] / k[3, 4] == pytest.approx(np.exp(1 / (2 * 1.5**2)))


def test_sobel_x_responds_to_vertical_edges_only():
    step_right = np.tile([0.0, 0.0, 1.0, 1.0, 1.0], (5, 1))   # dark -> bright left to right
    assert (_corr_valid(step_right, kernels.sobel_x()) >= 0).all()
    assert _corr_valid(step_right, kernels.sobel_x()).max() == 4.0  # 1 + 2 + 1
    np.testing.assert_array_equal(_corr_valid(step_right, kernels.sobel_y()), 0.0)
    np.testing.assert_array_equal(kernels.sobel_y(), kernels.sobel_x().T)


def test_laplacian_and_sharpen_ignore_linear_ramps():
    ramp = np.add.outer(np.arange(5.0), 2 * np.arange(5.0))
    np.testing.assert_allclose(_corr_valid(ramp, kernels.laplacian()), 0.0)
    np.testing.assert_allclose(_corr_valid(ramp, kernels.sharpen()), ramp[1:-1, 1:-1])


def test_emboss_keeps_flat_regions_bright():
    assert kernels.emboss().sum() == 1.0


@pytest.mark.parametrize("size", [0, 2, -3, 2.5, True])
def test_bad_size_is_rejected(size):
    with pytest.raises(ValueError, match="`size`"):
        kernels.box_blur(size)


def test_bad_sigma_and_unknown_name_are_rejected():
    with pytest.raises(ValueError, match="`sigma`"):
        kernels.gaussian(5, sigma=0)
    with pytest.raises(ValueError, match="sobel_x"):
        kernels.get("sobel")
