"""`ConvArithmeticExplorer`: step a kernel over a small grid of integers, forwards or transposed.

The Python side holds the settings as traitlets (input, kernel, padding, stride, dilation,
transposed, output_padding, position) and computes the output with `conv_course.ops`. The view,
``conv_arithmetic.js`` (one ES module, no imports), recomputes everything for display, so the
widget also works in the static book where no Python kernel runs. Settings that leave no output
are accepted and explained in words (`problem`); only single arguments out of range raise.
"""

import math
import pathlib

import anywidget
import numpy as np
import traitlets

__all__ = ["ConvArithmeticExplorer", "PRESETS", "problem"]

_HERE = pathlib.Path(__file__).parent
LIMITS = {"input": 9, "kernel": 5, "padding": 4, "stride": 4, "dilation": 4, "output_padding": 3,
          "value": 99}
_LOW = {"padding": 0, "stride": 1, "dilation": 1, "output_padding": 0}
_ARGS = ("padding", "stride", "dilation", "transposed", "output_padding")

# The cases of Dumoulin & Visin's guide (named as in its animations):
# (name, input side, kernel side, padding, stride, dilation, transposed, output_padding)
_CASES = [
    ("no padding, no strides", 4, 3, 0, 1, 1, False, 0),
    ("arbitrary padding, no strides", 5, 4, 2, 1, 1, False, 0),
    ("half padding, no strides", 5, 3, 1, 1, 1, False, 0),
    ("full padding, no strides", 5, 3, 2, 1, 1, False, 0),
    ("no padding, strides", 5, 3, 0, 2, 1, False, 0),
    ("padding, strides", 5, 3, 1, 2, 1, False, 0),
    ("padding, strides (odd)", 6, 3, 1, 2, 1, False, 0),
    ("no padding, no strides, transposed", 2, 3, 0, 1, 1, True, 0),
    ("arbitrary padding, no strides, transposed", 6, 4, 2, 1, 1, True, 0),
    ("half padding, no strides, transposed", 5, 3, 1, 1, 1, True, 0),
    ("full padding, no strides, transposed", 7, 3, 2, 1, 1, True, 0),
    ("no padding, strides, transposed", 2, 3, 0, 2, 1, True, 0),
    ("padding, strides, transposed", 3, 3, 1, 2, 1, True, 0),
    ("padding, strides, transposed (odd)", 3, 3, 1, 2, 1, True, 1),
    ("no padding, no strides, dilation", 7, 3, 0, 1, 2, False, 0),
]
PRESETS = [dict(name=n, input=[h, h], kernel=[k, k], padding=p, stride=s, dilation=d, transposed=t,
                output_padding=op) for n, h, k, p, s, d, t, op in _CASES]


def input_value(i, j):
    """The value a new input cell (i, j) gets: 1 to 5, never 0, so padding stands out."""
    return 1 + (3 * i + j) % 5


def kernel_value(i, j):
    """The value a new kernel cell (i, j) gets: 1 to 3 (a Latin square on 3x3)."""
    return 1 + (2 * i + j) % 3


def filled(shape, value, old=None):
    """An int64 array of `shape`: `old` where it reaches, `value(i, j)` elsewhere (the view does the same)."""
    out = np.fromfunction(np.vectorize(value), shape, dtype=np.int64).astype(np.int64)
    if old is not None:
        h, w = min(shape[0], old.shape[0]), min(shape[1], old.shape[1])
        out[:h, :w] = old[:h, :w]
    return out


def _num(v):
    return str(v).replace("-", "\u2212")


def _count(n, lines):
    return f"{n} {lines[:-1] if n == 1 else lines}"


def problem(shape, kernel_shape, padding, stride, dilation, transposed=False, output_padding=0):
    """Why these settings give no output, in words; None when they give one. The view says the same."""
    P, S, D, OP = padding, stride, dilation, output_padding
    if transposed and OP >= max(S, D):
        return (f"output_padding = {OP} is too large: it must be smaller than max(stride, dilation) = "
                f"max({S}, {D}) = {max(S, D)}. It adds rows and columns at the bottom and right to "
                f"recover input sizes that the forward convolution's floor dropped, and PyTorch (like "
                f"ops.conv_transpose2d) accepts only values below max(stride, dilation).")
    axes = [("height", "rows", "H", shape[0], kernel_shape[0]),
            ("width", "columns", "W", shape[1], kernel_shape[1])]
    for axis, lines, L, n, K in axes:
        if not transposed:
            span, padded = D * (K - 1) + 1, n + 2 * P
            out = (padded - span) // S + 1
            if out >= 1:
                continue
            fixes = [f"padding \u2265 {math.ceil((span - n) / 2)}"]
            if D > 1 and (padded - 1) // (K - 1) >= 1:
                fixes.append(f"dilation \u2264 {(padded - 1) // (K - 1)}")
            fixes.append(f"a kernel of at most {_count((padded - 1) // D + 1, lines)}")
            return (f"No output along the {axis}: {L}_out = \u230a({L} + 2P \u2212 D(K\u22121) \u2212 1) / S\u230b + 1 = "
                    f"\u230a({n} + 2\u00b7{P} \u2212 {D}\u00b7({K}\u22121) \u2212 1) / {S}\u230b + 1 = {_num(out)}, "
                    f"less than 1. The term D(K\u22121) = {D * (K - 1)} is larger than {L} + 2P \u2212 1 = "
                    f"{padded - 1}: the dilated kernel spans {_count(span, lines)}, the padded input has "
                    f"only {padded}. It fits with {' or '.join(fixes)}.")
        full = (n - 1) * S + D * (K - 1) + OP + 1
        out = full - 2 * P
        if out >= 1:
            continue
        return (f"No output along the {axis}: {L}_out = ({L}\u22121)\u00b7S \u2212 2P + D(K\u22121) + output_padding + 1 = "
                f"({n}\u22121)\u00b7{S} \u2212 2\u00b7{P} + {D}\u00b7({K}\u22121) + {OP} + 1 = {_num(out)}, less than 1. "
                f"The term 2P = {2 * P} is not smaller than the full output's {_count(full, lines)}: the "
                f"transposed convolution's padding removes P {lines} on each side of the full output, "
                f"({L}\u22121)\u00b7S + D(K\u22121) + output_padding + 1 = {full}. It fits with padding \u2264 {(full - 1) // 2}.")
    return None


# errors traitlets also knows, so that a failed change inside hold_trait_notifications rolls back
class _ValueError(ValueError, traitlets.TraitError):
    pass


class _TypeError(TypeError, traitlets.TraitError):
    pass


def _fail(name, msg):
    raise _ValueError(f"ConvArithmeticExplorer: `{name}` {msg}")


def _as_grid(name, value, limit, fill, old):
    """`value` (a side, an (h, w) pair or a 2-D array of whole numbers) as an int64 array."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (int(value), int(value))
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        if not all(1 <= v <= limit for v in value):
            _fail(name, f"sides must be between 1 and {limit}; got {value}")
        return filled(tuple(int(v) for v in value), fill, old)
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise _TypeError(f"ConvArithmeticExplorer: `{name}` must hold integers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        _fail(name, f"must be a 2-D array (rows, columns); got shape {arr.shape}")
    if not all(1 <= v <= limit for v in arr.shape):
        _fail(name, f"sides must be between 1 and {limit}; got shape {arr.shape}")
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
        fill = input_value if self.name == "input" else kernel_value
        return _as_grid(self.name, value, LIMITS[self.name], fill, obj._trait_values.get(self.name))


_grid_sync = dict(sync=True, to_json=lambda a, w: a.tolist(), from_json=lambda a, w: np.asarray(a, dtype=np.int64))


class ConvArithmeticExplorer(anywidget.AnyWidget):
    """Step a kernel window over a small integer grid: padding, stride, dilation, transposed mode.

    Args:
        input: a side (5), a pair of sides ((4, 6)) or a 2-D array of whole numbers; sides <= 9.
        kernel: the same, sides <= 5. New cells get small integers (`input_value`, `kernel_value`).
        padding, stride, dilation, output_padding: ints, as in `conv_course.ops.conv2d` and
            `conv_transpose2d` (output_padding is used only when transposed).
        transposed: False for `ops.conv2d`, True for `ops.conv_transpose2d`.
        position: (row, col) of the current step: the output cell (convolution) or the input cell
            that stamps the kernel (transposed).
        preset: a name from `PRESETS` (the guide's cases) to start from; it overrides the others.

    `output` is `ops.conv2d` (or `conv_transpose2d`) of `input` and `kernel`, int64, with
    H_out = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1, or transposed
    H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1. Settings that give
    no output are kept; `problem` then says why and `output` raises ValueError with that text.
    """

    _esm = _HERE / "conv_arithmetic.js"
    _css = _HERE / "conv_arithmetic.css"

    input = _Grid().tag(**_grid_sync)
    kernel = _Grid().tag(**_grid_sync)
    padding = _Whole(0).tag(sync=True)
    stride = _Whole(1).tag(sync=True)
    dilation = _Whole(1).tag(sync=True)
    output_padding = _Whole(0).tag(sync=True)
    transposed = traitlets.Bool(False).tag(sync=True)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
    preset = traitlets.Unicode("custom").tag(sync=True)
    presets = traitlets.List().tag(sync=True)
    limits = traitlets.Dict().tag(sync=True)

    def __init__(self, input=5, kernel=3, *, padding=0, stride=1, dilation=1, transposed=False,
                 output_padding=0, position=(0, 0), preset=None):
        self._applying = True
        super().__init__(presets=PRESETS, limits=LIMITS, input=filled((1, 1), input_value),
                         kernel=filled((1, 1), kernel_value))
        with self.hold_trait_notifications():
            self.input, self.kernel = input, kernel
            self.padding, self.stride, self.dilation = padding, stride, dilation
            self.transposed, self.output_padding = transposed, output_padding
        self._applying = False
        if preset is not None:
            self.preset = preset
        else:
            self.preset = self._matching_preset()
            self.position = position

    # -- validation -------------------------------------------------------------------------
    @traitlets.validate("preset")
    def _valid_preset(self, proposal):
        names = [p["name"] for p in PRESETS]
        if proposal["value"] not in names + ["custom"]:
            _fail("preset", f"must be 'custom' or one of {names}; got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("position")
    def _valid_position(self, proposal):
        row, col = proposal["value"]
        h, w = self.grid_shape
        if not (0 <= row < h and 0 <= col < w) and (row, col) != (0, 0):
            where = "input" if self.transposed else "output"
            _fail("position", f"must lie in the {where} grid of shape ({h}, {w}); got ({row}, {col})")
        return (row, col)

    # -- presets and steps ------------------------------------------------------------------
    def _settings(self):
        return dict(input=list(self.input.shape), kernel=list(self.kernel.shape),
                    **{name: getattr(self, name) for name in _ARGS})

    def _matching_preset(self):
        now = self._settings()
        return next((p["name"] for p in PRESETS if {k: p[k] for k in now} == now), "custom")

    @traitlets.observe("preset")
    def _apply_preset(self, change):
        chosen = next((p for p in PRESETS if p["name"] == change["new"]), None)
        if chosen is None or self._applying or self._matching_preset() == chosen["name"]:
            return
        grids = {"input": filled(tuple(chosen["input"]), input_value, self.input),
                 "kernel": filled(tuple(chosen["kernel"]), kernel_value, self.kernel)}
        self._applying = True
        try:
            self.position = (0, 0)
            with self.hold_trait_notifications():
                self.input, self.kernel = grids["input"], grids["kernel"]
                for name in _ARGS:
                    setattr(self, name, chosen[name])
        finally:
            self._applying = False

    @traitlets.observe("input", "kernel", *_ARGS)
    def _settings_changed(self, change):
        h, w = self.grid_shape
        row, col = self.position
        self.position = (min(row, max(h - 1, 0)), min(col, max(w - 1, 0)))
        if not self._applying:
            self.preset = self._matching_preset()

    # -- results ----------------------------------------------------------------------------
    @property
    def problem(self):
        """Why the settings give no output (the text the view shows), or None."""
        return problem(self.input.shape, self.kernel.shape, self.padding, self.stride, self.dilation,
                       self.transposed, self.output_padding)

    @property
    def output_shape(self):
        """(H_out, W_out) from the size formula of the current mode; < 1 when there is no output."""
        P, S, D = self.padding, self.stride, self.dilation
        if self.transposed:
            return tuple((n - 1) * S - 2 * P + D * (k - 1) + self.output_padding + 1
                         for n, k in zip(self.input.shape, self.kernel.shape))
        return tuple((n + 2 * P - D * (k - 1) - 1) // S + 1 for n, k in zip(self.input.shape, self.kernel.shape))

    @property
    def grid_shape(self):
        """The grid the steps visit: the output (convolution) or the input (transposed); (0, 0) without output."""
        if self.problem:
            return (0, 0)
        return tuple(self.input.shape) if self.transposed else self.output_shape

    @property
    def output(self):
        """(H_out, W_out) int64 from `conv_course.ops.conv2d`, or `conv_transpose2d` when transposed."""
        from conv_course import ops

        if self.problem:
            raise ValueError(f"ConvArithmeticExplorer: {self.problem}")
        x, k = self.input[None, None], self.kernel[None, None]
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        if self.transposed:
            return ops.conv_transpose2d(x, k, output_padding=self.output_padding, **kw)[0, 0]
        return ops.conv2d(x, k, **kw)[0, 0]
