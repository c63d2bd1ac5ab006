"""`KernelExplorer`: drag a kernel over an image and watch the convolution.

The Python side holds the state as traitlets (image, kernel, padding, stride, dilation, mode,
position) and computes the exact output with `conv_course.ops`. The view is one JavaScript
module, ``kernel_explorer.js`` (no imports), which recomputes the output for display, links each
output pixel to its window (hover or arrow keys) and writes the equivalent
``torch.nn.functional.conv2d`` call, so the widget keeps working in the static book where no
Python kernel runs.
"""

import base64
import math
import os
import pathlib

import anywidget
import numpy as np
import traitlets

from conv_course import images, kernels
from conv_course._checks import output_length

__all__ = ["KernelExplorer"]

_HERE = pathlib.Path(__file__).parent
MAX_KERNEL = 7          # largest kernel side the view lays out
EDIT_SIZES = (3, 5)     # kernel sizes the size switch offers
_PRESET_SIZES = {"identity": EDIT_SIZES, "box_blur": EDIT_SIZES, "gaussian": EDIT_SIZES}


def _as_2d(name, value, rgb=False):
    """`value` as a finite float64 2-D array, or a TypeError/ValueError naming `name`.

    With `rgb`, (H, W, 3) RGB and (H, W, 4) RGBA arrays are accepted too and turned gray with the
    Rec. 709 luma Y = 0.2125 R + 0.7154 G + 0.0721 B (alpha dropped), as `images.load` does.
    """
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise TypeError(f"KernelExplorer: `{name}` must hold real numbers; got dtype {arr.dtype}")
    if rgb and arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., :3].astype(np.float64) @ images._LUMA
    if arr.ndim != 2:
        also = " or an RGB(A) array (H, W, 3 or 4)" if rgb else ""
        raise ValueError(f"KernelExplorer: `{name}` must be a 2-D array (H, W){also}; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"KernelExplorer: `{name}` must not be empty; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"KernelExplorer: `{name}` must be finite; got NaN or infinity")
    return arr


def _read_photo(value):
    """A photo name of `conv_course.images` or a PNG/JPEG path -> gray (H, W) float64 in [0, 1]."""
    if isinstance(value, str) and value in images.names():
        return images.load(value)
    path = pathlib.Path(value)
    if not path.is_file():
        raise ValueError(f"KernelExplorer: `image` must be a photo name ({', '.join(images.names())}), "
                         f"a path to a PNG/JPEG file, or a 2-D array; no file {os.fspath(value)!r}")
    try:
        img = images._read(path)      # matplotlib.image.imread: PNG natively, JPEG through Pillow
    except Exception as err:          # Pillow and matplotlib raise several types for a non-image
        raise ValueError(f"KernelExplorer: `image` file {os.fspath(value)!r} is not a readable "
                         f"PNG/JPEG image ({err})") from err
    return np.clip(_as_2d("image", img, rgb=True), 0.0, 1.0)


def _downsample(img, size):
    """Block-average (H, W) by the smallest integer factor that brings max(H, W) to <= size."""
    factor = math.ceil(max(img.shape) / size)
    if factor <= 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return img[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def _is_8bit(img):
    return img.min() >= 0 and img.max() <= 1 and np.array_equal(np.round(img * 255) / 255, img)


def _image_to_json(img, widget):
    """(H, W) float64 -> {"shape", "dtype", "data"}: 8-bit when exact (value k/255), else float64."""
    if img is None:
        return None
    if _is_8bit(img):
        raw, dtype = np.round(img * 255).astype(np.uint8).tobytes(), "uint8/255"
    else:
        raw, dtype = img.astype("<f8").tobytes(), "float64"
    return {"shape": list(img.shape), "dtype": dtype, "data": base64.b64encode(raw).decode("ascii")}


def _image_from_json(obj, widget):
    if obj is None:
        return None
    raw = base64.b64decode(obj["data"])
    if obj["dtype"] == "uint8/255":
        arr = np.frombuffer(raw, dtype=np.uint8) / 255.0
    else:
        arr = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    return arr.reshape(obj["shape"])


def _presets():
    """name -> {"3": weights, "5": weights} for the sizes each preset comes in (JSON-ready)."""
    out = {}
    for name in kernels.names():
        sizes = _PRESET_SIZES.get(name)
        if sizes:
            out[name] = {str(s): kernels.get(name, size=s).tolist() for s in sizes}
        else:
            k = kernels.get(name)
            out[name] = {str(k.shape[0]): k.tolist()}
    return out


class KernelExplorer(anywidget.AnyWidget):
    """Drag a kernel window over an image; see the patch, the products, their sum and the output.

    Args:
        image: a photo name from `conv_course.images` or a path to a PNG/JPEG file (loaded gray
            in [0, 1], then kept at 8-bit precision), or an array of real numbers, any dtype:
            (H, W) gray, or (H, W, 3) RGB / (H, W, 4) RGBA turned gray with the Rec. 709 luma
            Y = 0.2125 R + 0.7154 G + 0.0721 B (alpha dropped); array values are kept as given.
        kernel: a preset name from `conv_course.kernels` or a 2-D array (kh, kw), sides <= 7.
        padding, stride, dilation: ints, as in `conv_course.ops.conv2d`.
        mode: "correlation" (what `ops.conv2d` and PyTorch compute) or "convolution" (flipped kernel).
        position: (row, col) of the highlighted output pixel.
        size: images larger than `size` pixels on a side are block-averaged down for display
            (photos are then kept at 8-bit precision); None keeps the image as given.

    `output` is the (H_out, W_out) feature map of the displayed image, computed by `conv_course.ops`,
    with H_out = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1. The view's "Copy as PyTorch
    code" writes the same computation as one `torch.nn.functional.conv2d` call.

    Raises: ValueError or TypeError naming the argument: a bad shape, dtype, NaN or infinity, an
    unknown photo name or unreadable file, a kernel side > 7, or settings that leave no output.
    """

    _esm = _HERE / "kernel_explorer.js"
    _css = _HERE / "kernel_explorer.css"

    image = traitlets.Any(None, allow_none=True).tag(
        sync=True, to_json=_image_to_json, from_json=_image_from_json)
    kernel = traitlets.Any(None, allow_none=True).tag(
        sync=True, to_json=lambda k, w: None if k is None else k.tolist(),
        from_json=lambda k, w: None if k is None else np.asarray(k, dtype=np.float64))
    preset = traitlets.Unicode("custom").tag(sync=True)
    padding = traitlets.Int(0).tag(sync=True)
    stride = traitlets.Int(1).tag(sync=True)
    dilation = traitlets.Int(1).tag(sync=True)
    mode = traitlets.Enum(["correlation", "convolution"], "correlation").tag(sync=True)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
    presets = traitlets.Dict().tag(sync=True)

    def __init__(self, image="camera", kernel="sobel_x", *, padding=0, stride=1, dilation=1,
                 mode="correlation", position=(0, 0), size=128):
        if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                                 or size < 4):
            raise ValueError(f"KernelExplorer: `size` must be an int >= 4 or None; got {size!r}")
        self._size, self._ready = size, False
        super().__init__(presets=_presets())
        self.image, self.kernel = image, kernel
        self.padding, self.stride, self.dilation, self.mode = padding, stride, dilation, mode
        self._check_fits()
        self._ready = True
        self.position = position

    # -- validation -------------------------------------------------------------------------
    @traitlets.validate("image")
    def _valid_image(self, proposal):
        value = proposal["value"]
        if isinstance(value, (str, os.PathLike)):
            img = _read_photo(value)
            img = np.round((_downsample(img, self._size) if self._size else img) * 255) / 255
        else:
            img = _as_2d("image", value, rgb=True)
            if self._size:
                img = _downsample(img, self._size)
        if self._ready:
            self._check_fits(img=img)
        return img

    @traitlets.validate("kernel")
    def _valid_kernel(self, proposal):
        value = proposal["value"]
        k = kernels.get(value) if isinstance(value, str) else _as_2d("kernel", value)
        if max(k.shape) > MAX_KERNEL:
            raise ValueError(f"KernelExplorer: `kernel` sides must be <= {MAX_KERNEL}; got shape {k.shape}")
        if self._ready:
            self._check_fits(k=k)
        if isinstance(value, str):
            self.preset = value
        elif not any(np.array_equal(k, np.asarray(w)) for w in self.presets.get(self.preset, {}).values()):
            self.preset = "custom"
        return k

    @traitlets.validate("padding", "stride", "dilation")
    def _valid_int(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        low = 0 if name == "padding" else 1
        if value < low:
            raise ValueError(f"KernelExplorer: `{name}` must be >= {low}; got {value}")
        if self._ready:
            self._check_fits(**{name: value})
        return value

    @traitlets.validate("position")
    def _valid_position(self, proposal):
        row, col = proposal["value"]
        h, w = self.output_shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"KernelExplorer: `position` must lie in the output map of shape "
                             f"({h}, {w}); got ({row}, {col})")
        return (row, col)

    @traitlets.observe("image", "kernel", "padding", "stride", "dilation")
    def _clamp_position(self, change):
        if not self._ready:
            return
        h, w = self.output_shape
        row, col = self.position
        self.position = (min(max(row, 0), h - 1), min(max(col, 0), w - 1))

    def _check_fits(self, img=None, k=None, **params):
        img = self.image if img is None else img
        k = self.kernel if k is None else k
        if img is None or k is None:
            return
        p = {name: params.get(name, getattr(self, name)) for name in ("padding", "stride", "dilation")}
        shape = [output_length(n, kn, p["stride"], 2 * p["padding"], p["dilation"]) for n, kn in zip(img.shape, k.shape)]
        if min(shape) < 1:
            span = [p["dilation"] * (kn - 1) + 1 for kn in k.shape]
            raise ValueError(
                f"KernelExplorer: padded image {img.shape[0] + 2 * p['padding']}x{img.shape[1] + 2 * p['padding']} "
                f"is smaller than the dilated kernel {span[0]}x{span[1]} (`kernel` {k.shape}, "
                f"`padding`={p['padding']}, `dilation`={p['dilation']}); no output position fits")

    # -- results ----------------------------------------------------------------------------
    @property
    def output_shape(self):
        """(H_out, W_out) of the current settings; (0, 0) before image and kernel are set."""
        if self.image is None or self.kernel is None:
            return (0, 0)
        return tuple(output_length(n, k, self.stride, 2 * self.padding, self.dilation)
                     for n, k in zip(self.image.shape, self.kernel.shape))

    @property
    def weights(self):
        """The (kh, kw) weights applied by cross-correlation: `kernel`, flipped in convolution mode."""
        return self.kernel[::-1, ::-1].copy() if self.mode == "convolution" else self.kernel.copy()

    @property
    def output(self):
        """(H_out, W_out) float64 feature map of the displayed image, from `conv_course.ops.conv2d`."""
        from conv_course import ops

        out = ops.conv2d(self.image[None, None], self.weights[None, None], stride=self.stride,
                         padding=self.padding, dilation=self.dilation)
        return out[0, 0]

    @property
    def patch(self):
        """The (kh, kw) input values under the window at `position` (zeros where it covers padding)."""
        p, s, d = self.padding, self.stride, self.dilation
        padded = np.pad(self.image, p)
        row, col = self.position
        kh, kw = self.kernel.shape
        return padded[row * s: row * s + d * (kh - 1) + 1: d, col * s: col * s + d * (kw - 1) + 1: d].copy()
