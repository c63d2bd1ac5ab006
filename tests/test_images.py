import numpy as np
import pytest

from conv_course import images


@pytest.mark.parametrize("name", images.names())
def test_every_photo_loads_offline_in_unit_range(name):
    gray = images.load(name)
    rgb = images.load(name, color=True)
    assert gray.ndim == 2 and rgb.shape == gray.shape + (3,)
    assert gray.dtype == np.float64
    assert 0.0 <= gray.min() < gray.max() <= 1.0
    assert gray.std() > 0.02  # a real photo, not a flat array


def test_grayscale_is_the_rec709_luma_of_the_colour_photo():
    rgb = images.load("astronaut", color=True)
    gray = images.load("astronaut")
    np.testing.assert_allclose(gray, 0.2125 * rgb[..., 0] + 0.7154 * rgb[..., 1] + 0.0721 * rgb[..., 2])


def test_float32_on_request():
    assert images.load("coins", dtype=np.float32).dtype == np.float32


def test_every_photo_states_source_and_licence():
    text = images.describe()
    for name in images.names():
        line = next(line for line in text.splitlines() if line.startswith(name + ":"))
        assert "source:" in line and "licence:" in line


def test_unknown_name_and_non_float_dtype_are_rejected():
    with pytest.raises(ValueError, match="camera"):
        images.load("lena")
    with pytest.raises(TypeError, match="`dtype`"):
        images.load("camera", dtype=np.uint8)
