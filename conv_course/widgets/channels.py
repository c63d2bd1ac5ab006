"""`ChannelsExplorer`: one output channel of a convolution on an RGB image, step by step.

One kernel of a layer has a 2-D slice per input channel. The widget shows the three channels of a
small photo, the three slices, the three per-channel correlation maps, their sum, the bias, and
the output channel; at a window position it writes out the three partial dot products and how
they add up. The Python side holds the state as traitlets (image, kernel, bias, padding,
position) and computes `output` and `partials` with `conv_course.ops.conv2d`. The view,
``channels.js`` (one ES module, no imports), recomputes everything, so the widget also works in
the static book where no Python kernel runs.
"""

import math
import pathlib
from decimal import ROUND_HALF_UP, Decimal

import anywidget
import numpy as np
import traitlets

from conv_course import images, kernels

from .kernel_explorer import _image_from_json, _image_to_json

__all__ = ["ChannelsExplorer", "PRESETS", "CHANNELS"]

_HERE = pathlib.Path(__file__).parent
CHANNELS = ("red", "green", "blue")
LIMITS = {"image": 64, "kernel": 5, "padding": 2}
_LUMA = np.array([0.2125, 0.7154, 0.0721])  # Rec. 709, the weights images.load uses for gray


def _presets():
    """name -> (3, 3, 3) weights: one 3x3 slice per input channel (red, green, blue)."""
    centre = np.zeros((3, 3, 3))
    centre[:, 1, 1] = [1.0, -1.0, 0.0]
    return {
        "luminance edge": _LUMA[:, None, None] * kernels.sobel_x(),   # Sobel x on the gray values
        "red minus green": centre,                                    # a colour-opponent pixel
        "blur": _LUMA[:, None, None] * kernels.box_blur(3),           # the gray values, averaged
        "green only": np.eye(3)[1][:, None, None] * kernels.identity(3),
    }


PRESETS = {name: k.tolist() for name, k in _presets().items()}


def two_decimals(v):
    """`v` with two decimals as the view writes it: ties away from zero, U+2212 minus, no -0.00.

    Like the view, it rounds to 9 decimals first, so that sums computed in another order
    (0.015 + 1e-17 or - 1e-17) give the same text.
    """
    snapped = float(f"{float(v):.9f}")
    text = str(Decimal(snapped).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return "0.00" if text == "-0.00" else text.replace("-", "\u2212")


# errors traitlets also knows, so that a failed assignment leaves the trait unchanged
class _ValueError(ValueError, traitlets.TraitError):
    pass


class _TypeError(TypeError, traitlets.TraitError):
    pass


def _fail(name, msg):
    raise _ValueError(f"ChannelsExplorer: `{name}` {msg}")


def _real_array(name, value):
    """`value` as a finite float64 array, or an error naming `name`."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise _TypeError(f"ChannelsExplorer: `{name}` must hold real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        _fail(name, "must be finite; got NaN or infinity")
    return arr


def crop_square(img, size):
    """The centred square of (H, W, 3) `img`, block-averaged to (size, size, 3), rounded to 8 bits."""
    factor = min(img.shape[:2]) // size
    if factor < 1:
        _fail("size", f"must be at most the photo's shorter side {min(img.shape[:2])}; got {size}")
    side = size * factor
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    square = img[top:top + side, left:left + side]
    small = square.reshape(size, factor, size, factor, 3).mean(axis=(1, 3))
    return np.round(small * 255) / 255


def _photo(name, size):
    if name not in images.names():
        _fail("image", f"must be a photo name from conv_course.images or an (H, W, 3) array; got {name!r}")
    img = images.load(name, color=True)
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
        colour = [n for n in images.names() if images.CATALOG[n].description.endswith("RGB")]
        _fail("image", f"{name!r} is a grayscale photo (its three channels are equal); choose one of {colour}")
    return crop_square(img, size)


class _Whole(traitlets.Int):
    """An int trait that also takes numpy integers and rejects bools and floats by name."""

    def validate(self, obj, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            _fail(self.name, f"must be an int; got {value!r}")
        return int(value)


class _Real(traitlets.Float):
    """A float trait that also takes ints and numpy numbers and rejects bools and NaN by name."""

    def validate(self, obj, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            _fail(self.name, f"must be a real number; got {value!r}")
        if not math.isfinite(value):
            _fail(self.name, f"must be finite; got {value}")
        return float(value)


class ChannelsExplorer(anywidget.AnyWidget):
    """One output channel of a multi-channel convolution: per-channel maps, their sum, the bias.

    Args:
        image: a colour photo name from `conv_course.images` (centre square, block-averaged to
            `size` x `size`, 8-bit values) or an RGB array (H, W, 3) in [0, 1], sides <= 64.
        kernel: a name from `PRESETS` or an array (3, kh, kw), one slice per input channel
            (red, green, blue), sides <= 5.
        bias: the output channel's bias, a real number.
        padding: int 0 to 2, as in `conv_course.ops.conv2d`.
        position: (row, col) of the output pixel whose arithmetic is written out.
        size: side of the square a photo name is reduced to, 4 to 64.

    `partials` (3, H_out, W_out) are the per-channel cross-correlations and `output`
    (H_out, W_out) = partials.sum(0) + bias, both from `ops.conv2d`, with
    H_out = H + 2*padding - kh + 1.
    """

    _esm = _HERE / "channels.js"
    _css = _HERE / "channels.css"

    image = traitlets.Any(None, allow_none=True).tag(sync=True, to_json=_image_to_json, from_json=_image_from_json)
    kernel = traitlets.Any(None, allow_none=True).tag(
        sync=True, to_json=lambda k, w: None if k is None else k.tolist(),
        from_json=lambda k, w: None if k is None else np.asarray(k, dtype=np.float64))
    bias = _Real(0.0).tag(sync=True)
    padding = _Whole(1).tag(sync=True)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
    preset = traitlets.Unicode("custom").tag(sync=True)
    presets = traitlets.Dict().tag(sync=True)

    def __init__(self, image="chelsea", kernel="luminance edge", *, bias=0.0, padding=1, position=(0, 0), size=32):
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) \
                or not 4 <= size <= LIMITS["image"]:
            _fail("size", f"must be an int from 4 to {LIMITS['image']}; got {size!r}")
        self._size, self._ready = int(size), False
        super().__init__(presets=PRESETS)
        with self.hold_trait_notifications():
            self.image, self.kernel, self.bias, self.padding = image, kernel, bias, padding
        self._ready = True
        self._check_fits(self.image, self.kernel, self.padding)
        self.position = position

    # -- validation -------------------------------------------------------------------------
    @traitlets.validate("image")
    def _valid_image(self, proposal):
        value = proposal["value"]
        if isinstance(value, str):
            img = _photo(value, self._size)
        else:
            img = _real_array("image", value)
            if img.ndim != 3 or img.shape[2] != 3:
                _fail("image", f"must be an RGB array (H, W, 3), channels last; got shape {img.shape}")
            if not all(1 <= n <= LIMITS["image"] for n in img.shape[:2]):
                _fail("image", f"sides must be between 1 and {LIMITS['image']}; got shape {img.shape}")
            if img.min() < 0 or img.max() > 1:
                _fail("image", f"values must lie in [0, 1]; got {img.min():g} to {img.max():g}")
        if self._ready:
            self._check_fits(img, self.kernel, self.padding)
        return img

    @traitlets.validate("kernel")
    def _valid_kernel(self, proposal):
        value = proposal["value"]
        if isinstance(value, str):
            if value not in PRESETS:
                _fail("kernel", f"must be one of {list(PRESETS)} or an array (3, kh, kw); got {value!r}")
            k = np.asarray(PRESETS[value], dtype=np.float64)
        else:
            k = _real_array("kernel", value)
            if k.ndim != 3 or k.shape[0] != 3:
                _fail("kernel", f"must have shape (3, kh, kw), one slice per input channel "
                                f"(red, green, blue); got shape {k.shape}")
            if not all(1 <= n <= LIMITS["kernel"] for n in k.shape[1:]):
                _fail("kernel", f"slice sides must be between 1 and {LIMITS['kernel']}; got shape {k.shape}")
        if self._ready:
            self._check_fits(self.image, k, self.padding)
        return k

    @traitlets.validate("preset")
    def _valid_preset(self, proposal):
        if proposal["value"] not in [*PRESETS, "custom"]:
            _fail("preset", f"must be 'custom' or one of {list(PRESETS)}; got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.observe("kernel")
    def _name_the_kernel(self, change):
        self.preset = next((name for name, k in PRESETS.items() if np.array_equal(change["new"], k)), "custom")

    @traitlets.observe("preset")
    def _apply_preset(self, change):
        if change["new"] in PRESETS and not np.array_equal(self.kernel, PRESETS[change["new"]]):
            self.kernel = change["new"]

    @traitlets.validate("padding")
    def _valid_padding(self, proposal):
        value = proposal["value"]
        if not 0 <= value <= LIMITS["padding"]:
            _fail("padding", f"must be between 0 and {LIMITS['padding']}; got {value}")
        if self._ready:
            self._check_fits(self.image, self.kernel, value)
        return value

    @traitlets.validate("position")
    def _valid_position(self, proposal):
        row, col = proposal["value"]
        h, w = self.output_shape
        if not (0 <= row < h and 0 <= col < w):
            _fail("position", f"must lie in the output channel of shape ({h}, {w}); got ({row}, {col})")
        return (row, col)

    @traitlets.observe("image", "kernel", "padding")
    def _clamp_position(self, change):
        if self._ready:
            h, w = self.output_shape
            row, col = self.position
            self.position = (min(row, h - 1), min(col, w - 1))

    @staticmethod
    def _check_fits(img, k, padding):
        if any(n + 2 * padding < kn for n, kn in zip(img.shape[:2], k.shape[1:])):
            _fail("kernel", f"slices {k.shape[1]}x{k.shape[2]} do not fit the image {img.shape[0]}x{img.shape[1]} "
                            f"padded by {padding}: no output position")

    # -- results ----------------------------------------------------------------------------
    @property
    def output_shape(self):
        """(H_out, W_out) = (H + 2*padding - kh + 1, W + 2*padding - kw + 1)."""
        return tuple(n + 2 * self.padding - k + 1 for n, k in zip(self.image.shape[:2], self.kernel.shape[1:]))

    @property
    def partials(self):
        """(3, H_out, W_out): channel c cross-correlated with slice c, `ops.conv2d` with groups=3."""
        from conv_course import ops

        x = self.image.transpose(2, 0, 1)[None]                  # (1, 3, H, W)
        return ops.conv2d(x, self.kernel[:, None], padding=self.padding, groups=3)[0]

    @property
    def output(self):
        """(H_out, W_out): `ops.conv2d` of the image with the one kernel (1, 3, kh, kw) and the bias."""
        from conv_course import ops

        x = self.image.transpose(2, 0, 1)[None]
        return ops.conv2d(x, self.kernel[None], bias=np.array([self.bias]), padding=self.padding)[0, 0]

    @property
    def equation(self):
        """The sum at `position` in words, as the view shows and announces it."""
        row, col = self.position
        parts = self.partials[:, row, col]
        terms = " + ".join(f"{name} {two_decimals(v)}" for name, v in zip(CHANNELS, parts))
        return (f"output[{row}, {col}] = {terms} + bias {two_decimals(self.bias)} = "
                f"{two_decimals(self.output[row, col])}")
