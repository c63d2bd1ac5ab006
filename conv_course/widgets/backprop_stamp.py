"""`BackpropStampExplorer`: where one output gradient G[i, j] lands in the backward pass of a convolution.

The Python side holds the settings as traitlets (x, kernel, grad_out, stride, padding, dilation,
selection, accumulate) and computes the gradients with `conv_course.ops.conv2d_backward`. The view,
``backprop_stamp.js`` (one ES module, no imports), recomputes them for display, so the widget also
works in the static book where no Python kernel runs. One output pixel G[i, j] stamps the kernel,
scaled by G[i, j], onto the window of x that produced out[i, j] (grad_x) and adds G[i, j] times
that window to grad_weight; with `accumulate` every pixel of `grad_out` does so and the stamps sum
to the full correlation of G with the flipped kernel.
"""

import pathlib

import anywidget
import numpy as np
import traitlets

__all__ = ["BackpropStampExplorer"]

_HERE = pathlib.Path(__file__).parent
LIMITS = {"x": 8, "kernel": 5, "padding": 3, "stride": 3, "dilation": 3, "value": 99}
LIMITS["grad_out"] = LIMITS["x"] + 2 * LIMITS["padding"]   # the largest output: a 1x1 kernel on the padded x
_LOW = {"padding": 0, "stride": 1, "dilation": 1}
_SETTINGS = ("x", "kernel", "padding", "stride", "dilation")
_AXES = (("rows", 0), ("columns", 1))


def grad_value(i, j):
    """The value a new output-gradient cell (i, j) gets: 1 to 3, so each stamp's scale is visible."""
    return 1 + (i + 2 * j) % 3


def _filled(shape, old):
    """An int64 array of `shape`: `old` where it reaches, `grad_value(i, j)` elsewhere (the view does the same)."""
    out = np.fromfunction(np.vectorize(grad_value), shape, dtype=np.int64).astype(np.int64)
    h, w = min(shape[0], old.shape[0]), min(shape[1], old.shape[1])
    out[:h, :w] = old[:h, :w]
    return out


def no_output(shape, kernel_shape, padding, dilation):
    """Why the dilated kernel does not fit in the padded input, in words; None when it fits."""
    for lines, axis in _AXES:
        span, padded = dilation * (kernel_shape[axis] - 1) + 1, shape[axis] + 2 * padding
        if span > padded:
            return (f"leaves no output: the dilated kernel spans {span} {lines}, "
                    f"the padded input has only {padded}")
    return None


# errors traitlets also knows, so that a failed change inside hold_trait_notifications rolls back
class _ValueError(ValueError, traitlets.TraitError):
    pass


class _TypeError(TypeError, traitlets.TraitError):
    pass


def _fail(name, msg):
    raise _ValueError(f"BackpropStampExplorer: `{name}` {msg}")


def _as_grid(name, value):
    """`value` (a 2-D array of whole numbers) as an int64 array, or an error naming `name`."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise _TypeError(f"BackpropStampExplorer: `{name}` must hold integers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        _fail(name, f"must be a 2-D array (rows, columns); got shape {arr.shape}")
    if not all(1 <= v <= LIMITS[name] for v in arr.shape):
        _fail(name, f"sides must be between 1 and {LIMITS[name]}; got shape {arr.shape}")
    top = LIMITS["value"]
    for bad, msg in [(~np.isfinite(arr), "must be finite"),
                     (arr != np.round(arr), "must hold whole numbers (small integers keep the sums readable)"),
                     (np.abs(arr) > top, f"values must lie between \u2212{top} and {top}")]:
        if bad.any():
            _fail(name, f"{msg}; got {arr[bad][0]} at {tuple(map(int, np.argwhere(bad)[0]))}")
    return arr.astype(np.int64)


class _Whole(traitlets.Int):
    """An int trait that also takes numpy integers and rejects bools, floats and NaN by name."""

    def validate(self, obj, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            _fail(self.name, f"must be an int; got {value!r}")
        value, low, high = int(value), _LOW[self.name], LIMITS[self.name]
        if not low <= value <= high:
            _fail(self.name, f"must be between {low} and {high}; got {value}")
        return value


class _Grid(traitlets.Any):
    """A 2-D int64 array trait, checked on assignment (so numpy's `==` never compares unchecked values)."""

    def validate(self, obj, value):
        return _as_grid(self.name, value)


_grid_sync = dict(sync=True, to_json=lambda a, w: a.tolist(), from_json=lambda a, w: np.asarray(a, dtype=np.int64))


class BackpropStampExplorer(anywidget.AnyWidget):
    """Select an output-gradient pixel G[i, j] and see where it lands on grad_x and grad_weight.

    Args:
        x: (H, W) whole numbers, sides <= 8; default the 7x7 grid 0, 1, 2, ... of the chapter.
        kernel: (kh, kw) whole numbers, sides <= 5; default 1, ..., 9 in a 3x3 grid.
        grad_out: (H_out, W_out) whole numbers, the output gradient G, with
            H_out = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1; default small integers
            (`grad_value`). A change of setting resizes it, keeping the values that still fit.
        stride, padding, dilation: ints, as in `conv_course.ops.conv2d`.
        selection: (i, j), the selected output-gradient pixel.
        accumulate: False: G is one-hot, 1 at `selection` (the loss is out[i, j]); True: G is
            `grad_out`, and grad_x and grad_weight are the sums of every pixel's stamp.

    `grad_input` (H, W) and `grad_weight` (kh, kw) are `ops.conv2d_backward` of that G, int64.
    Values are small integers so that every sum is exact and readable.
    """

    _esm = _HERE / "backprop_stamp.js"
    _css = _HERE / "backprop_stamp.css"

    x = _Grid().tag(**_grid_sync)
    kernel = _Grid().tag(**_grid_sync)
    grad_out = _Grid().tag(**_grid_sync)
    padding = _Whole(0).tag(sync=True)
    stride = _Whole(1).tag(sync=True)
    dilation = _Whole(1).tag(sync=True)
    selection = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
    accumulate = traitlets.Bool(False).tag(sync=True)
    limits = traitlets.Dict().tag(sync=True)

    def __init__(self, x=None, kernel=None, grad_out=None, *, stride=1, padding=0, dilation=1,
                 selection=(0, 0), accumulate=False):
        one = np.ones((1, 1), dtype=np.int64)
        super().__init__(limits=LIMITS, x=one, kernel=one, grad_out=one)
        with self.hold_trait_notifications():
            self.x = np.arange(49).reshape(7, 7) if x is None else x
            self.kernel = np.arange(1, 10).reshape(3, 3) if kernel is None else kernel
            self.padding, self.stride, self.dilation = padding, stride, dilation
        if grad_out is not None:
            self.grad_out = grad_out
        self.selection, self.accumulate = selection, accumulate

    # -- validation -------------------------------------------------------------------------
    @traitlets.validate(*_SETTINGS)
    def _fits(self, proposal):
        """Cross-check (deferred inside hold_trait_notifications): the kernel must fit the padded x."""
        name, value = proposal["trait"].name, proposal["value"]
        now = {n: getattr(self, n) for n in _SETTINGS} | {name: value}
        why = no_output(now["x"].shape, now["kernel"].shape, now["padding"], now["dilation"])
        if why:
            _fail(name, f"{f'of shape {value.shape}' if name in ('x', 'kernel') else f'= {value}'} {why}")
        return value

    @traitlets.validate("grad_out")
    def _grad_out_shape(self, proposal):
        if proposal["value"].shape != self.output_shape:
            _fail("grad_out", f"must have the output's shape {self.output_shape} (x {self.x.shape}, kernel "
                  f"{self.kernel.shape}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}); "
                  f"got {proposal['value'].shape}")
        return proposal["value"]

    @traitlets.validate("selection")
    def _valid_selection(self, proposal):
        i, j = proposal["value"]
        h, w = self.output_shape
        if not (0 <= i < h and 0 <= j < w):
            _fail("selection", f"must lie in the output-gradient grid of shape ({h}, {w}); got ({i}, {j})")
        return (i, j)

    @traitlets.observe(*_SETTINGS)
    def _settings_changed(self, change):
        self.grad_out = _filled(self.output_shape, self.grad_out)
        i, j = self.selection
        self.selection = (min(i, self.output_shape[0] - 1), min(j, self.output_shape[1] - 1))

    # -- results ----------------------------------------------------------------------------
    @property
    def output_shape(self):
        """(H_out, W_out) = ((H + 2*padding - dilation*(k - 1) - 1) // stride + 1) per axis."""
        P, S, D = self.padding, self.stride, self.dilation
        return tuple((n + 2 * P - D * (k - 1) - 1) // S + 1 for n, k in zip(self.x.shape, self.kernel.shape))

    @property
    def grad_output(self):
        """The G the gradients use: `grad_out` when accumulating, else one-hot (1 at `selection`)."""
        if self.accumulate:
            return self.grad_out.copy()
        g = np.zeros(self.output_shape, dtype=np.int64)
        g[self.selection] = 1
        return g

    def _backward(self):
        from conv_course import ops

        return ops.conv2d_backward(self.grad_output[None, None], self.x[None, None], self.kernel[None, None],
                                   stride=self.stride, padding=self.padding, dilation=self.dilation)

    @property
    def grad_input(self):
        """(H, W) int64: the gradient of sum(G * conv2d(x, kernel)) with respect to x."""
        return self._backward()[0][0, 0]

    @property
    def grad_weight(self):
        """(kh, kw) int64: the gradient of sum(G * conv2d(x, kernel)) with respect to the kernel."""
        return self._backward()[1][0, 0]
