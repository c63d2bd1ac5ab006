"""`ReceptiveFieldExplorer`: which input pixels one unit of a conv/pool stack sees, and which units one pixel reaches.

The Python side holds the stack (`layers`, a list of dicts), the input side and the selected unit as
traitlets, and computes the exact receptive field of every unit: the input rows and columns it
depends on, clipped where its window falls on padding, with the gaps that dilation and strides
leave. The view, ``receptive_field.js`` (one ES module, no imports), computes the same itself, so
the widget also works in the static book. The *effective* receptive field of a trained network
(`StackNet`), the mean input-gradient magnitude of one unit over real digits, is computed here and
stored in the `effective` trait; in JupyterLab it follows the selection.
"""

import pathlib

import anywidget
import numpy as np
import torch
import traitlets
from torch import nn

__all__ = ["ReceptiveFieldExplorer", "StackNet", "effective_field", "half_mass_side", "theory", "unit_field"]

_HERE = pathlib.Path(__file__).parent
LIMITS = {"layers": 6, "input_size": 32, "kernel": 7, "stride": 4, "dilation": 4, "padding": 3}
_LOW = {"kernel": 1, "stride": 1, "dilation": 1, "padding": 0}
KINDS = ("conv", "pool")
# the chapter's trained stack: three padded 3x3 convolutions with a 2x2 max pool after the first two
TRAINED_LAYERS = [dict(kind="conv", kernel=3, stride=1, dilation=1, padding=1) if kind == "conv" else
                  dict(kind="pool", kernel=2, stride=2, dilation=1, padding=0) for kind in ["conv", "pool"] * 2 + ["conv"]]


# errors traitlets also knows, so that a failed change inside hold_trait_notifications rolls back
class _ValueError(ValueError, traitlets.TraitError):
    pass


class _TypeError(TypeError, traitlets.TraitError):
    pass


def _fail(name, msg):
    raise _ValueError(f"ReceptiveFieldExplorer: `{name}` {msg}")


def _whole(name, value, low, high):
    """`value` as an int in [low, high], or an error naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _TypeError(f"ReceptiveFieldExplorer: `{name}` must be an int; got {value!r}")
    if not low <= int(value) <= high:
        _fail(name, f"must be between {low} and {high}; got {int(value)}")
    return int(value)


def output_size(n, layer):
    """Side of a layer's output map: floor((n + 2p - d(k - 1) - 1) / s) + 1, as in chapter 2."""
    k, s, d, p = (layer[key] for key in ("kernel", "stride", "dilation", "padding"))
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def check_layers(layers, input_size):
    """The stack as a list of full dicts (kind, kernel, stride, dilation, padding), checked.

    Missing keys default to stride 1 (the kernel size for a pool), dilation 1 and padding 0. A pool
    is a max pool: PyTorch allows padding up to half its kernel. Every layer must leave an output.
    """
    if not isinstance(layers, (list, tuple)) or not 1 <= len(layers) <= LIMITS["layers"]:
        got = f"{len(layers)} layers" if isinstance(layers, (list, tuple)) else repr(layers)
        _fail("layers", f"must be a list of 1 to {LIMITS['layers']} dicts; got {got}")
    out, n = [], input_size
    for i, layer in enumerate(layers):
        name = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise _TypeError(f"ReceptiveFieldExplorer: `{name}` must be a dict; got {layer!r}")
        unknown = set(layer) - {"kind", "kernel", "stride", "dilation", "padding"}
        if unknown:
            _fail(name, f"has unknown keys {sorted(unknown)}; use kind, kernel, stride, dilation, padding")
        if layer.get("kind") not in KINDS:
            _fail(f"{name}['kind']", f"must be 'conv' or 'pool'; got {layer.get('kind')!r}")
        if "kernel" not in layer:
            _fail(name, "needs a 'kernel' size")
        full = {"kind": layer["kind"], "kernel": _whole(f"{name}['kernel']", layer["kernel"], 1, LIMITS["kernel"])}
        defaults = {"stride": full["kernel"] if layer["kind"] == "pool" else 1, "dilation": 1, "padding": 0}
        for key, default in defaults.items():
            full[key] = _whole(f"{name}['{key}']", layer.get(key, default), _LOW[key], LIMITS[key])
        if full["kind"] == "pool" and full["padding"] > full["kernel"] // 2:
            _fail(f"{name}['padding']", f"of a pool must be at most half its kernel, {full['kernel'] // 2} "
                                        f"(as torch.nn.MaxPool2d); got {full['padding']}")
        span, padded = full["dilation"] * (full["kernel"] - 1) + 1, n + 2 * full["padding"]
        if span > padded:
            _fail(name, f"leaves no output: its {n}x{n} input, padded to {padded}x{padded}, is smaller "
                        f"than its dilated kernel {span}x{span}")
        out.append(full)
        n = output_size(n, full)
    return out


def theory(layers):
    """[(r, j)] after each layer: r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}, j_l = j_{l-1} s_l, r_0 = j_0 = 1."""
    r, j, out = 1, 1, []
    for layer in layers:
        r, j = r + (layer["kernel"] - 1) * layer["dilation"] * j, j * layer["stride"]
        out.append((r, j))
    return out


def field_axis(layers, sizes, layer, index, target=0):
    """Indices along one axis of map `target` that unit `index` of map `layer` depends on (sorted).

    Map 0 is the input, map l the output of layers[l - 1]; taps on padding are dropped.
    """
    seen = {index}
    for m in range(layer, target, -1):
        L = layers[m - 1]
        seen = {a * L["stride"] - L["padding"] + t * L["dilation"] for a in seen for t in range(L["kernel"])}
        seen = {v for v in seen if 0 <= v < sizes[m - 1]}
    return sorted(seen)


def reach_axis(layers, sizes, layer, index, target):
    """Indices along one axis of map `target` (> layer) whose units depend on `index` of map `layer`."""
    seen = {index}
    for m in range(layer + 1, target + 1):
        L = layers[m - 1]
        seen = {(v + L["padding"] - t * L["dilation"]) // L["stride"] for v in seen for t in range(L["kernel"])
                if (v + L["padding"] - t * L["dilation"]) % L["stride"] == 0}
        seen = {o for o in seen if 0 <= o < sizes[m]}
    return sorted(seen)


def _product(rows, cols):
    """The field is the product rows x cols: empty when either is (a window entirely on padding)."""
    return (rows, cols) if rows and cols else ([], [])


def unit_field(layers, input_size, m, row, col):
    """(rows, cols): the input pixels unit (row, col) of map `m` of a stack depends on, without a widget."""
    layers = check_layers(layers, input_size)
    sizes = [input_size]
    for layer in layers:
        sizes.append(output_size(sizes[-1], layer))
    return _product(field_axis(layers, sizes, m, row), field_axis(layers, sizes, m, col))


def half_mass_side(erf, rows, cols):
    """Side of the smallest square, shrunk evenly from the field box `rows` x `cols` (inclusive
    (lo, hi) pairs), that holds at least half of the gradient magnitude `erf` (H, W)."""
    total = float(erf.sum())
    for t in range(min(rows[1] - rows[0], cols[1] - cols[0]) // 2, -1, -1):
        inside = erf[rows[0] + t:rows[1] - t + 1, cols[0] + t:cols[1] - t + 1].sum()
        if total > 0 and inside >= total / 2:
            return min(rows[1] - rows[0], cols[1] - cols[0]) + 1 - 2 * t
    return min(rows[1] - rows[0], cols[1] - cols[0]) + 1


class StackNet(nn.Module):
    """A digits classifier on a conv/pool stack: each conv is followed by ReLU, each pool is a max pool.

    Args:
        layers: dicts as in `ReceptiveFieldExplorer` (kind, kernel, stride, dilation, padding).
        width: channels of every conv; the head is one linear layer on the flattened last map.
    Shapes: (N, 1, 28, 28) -> the stack -> (N, width, h, w) -> flatten -> (N, num_classes).
    """

    def __init__(self, layers=TRAINED_LAYERS, width=8, num_classes=10, input_size=28):
        super().__init__()
        self.layers = check_layers(layers, input_size)
        self.input_size = input_size
        blocks, c, n = [], 1, input_size
        for L in self.layers:
            n = output_size(n, L)
            kw = dict(stride=L["stride"], padding=L["padding"], dilation=L["dilation"])
            if L["kind"] == "conv":
                blocks.append(nn.Sequential(nn.Conv2d(c, width, L["kernel"], **kw), nn.ReLU()))
                c = width
            else:
                blocks.append(nn.MaxPool2d(L["kernel"], **kw))
        self.features = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * n * n, num_classes))

    def upto(self, x, layer):
        """The output of the first `layer` layers: (N, C, h, w)."""
        for block in self.features[:layer]:
            x = block(x)
        return x

    def forward(self, x):
        return self.head(self.upto(x, len(self.features)))


def effective_field(net, images, layer, row, col):
    """Mean over `images` (N, 1, H, W) of |d sum_c h[c, row, col] / d x|, h the output of `layer` layers.

    Returns: (H, W) float64 array, the effective receptive field of that unit (Luo et al., 2016).
    """
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).clone().requires_grad_(True)
    was_training = net.training
    net.eval()
    out = net.upto(x, layer)[:, :, row, col].sum()
    (grad,) = torch.autograd.grad(out, x)
    net.train(was_training)
    return grad.abs().mean(dim=(0, 1)).double().numpy()


class ReceptiveFieldExplorer(anywidget.AnyWidget):
    """Select a unit of any map of a conv/pool stack: see what it sees, and what it reaches.

    Args:
        layers: list of 1 to 6 dicts {kind: 'conv' or 'pool', kernel, stride, dilation, padding}
            (kernel <= 7, stride and dilation <= 4, padding <= 3; a pool's padding <= kernel // 2).
        input_size: side of the square input, 4 to 32 (28: the digits).
        selection: (map, row, col): map 0 is the input, map l the output of layers[l - 1].
        network, digits: a trained `StackNet` and images (N, 1, 28, 28); when given, `effective`
            holds the network's effective receptive field of the centre unit of its last map, and
            follows the selection while `layers` equal the network's.

    Map sizes follow n_l = (n_{l-1} + 2p - d(k - 1) - 1) // s + 1. `field(map, row, col)` gives the
    exact input rows and columns a unit depends on, `reach(row, col)` the units an input pixel reaches.
    """

    _esm = _HERE / "receptive_field.js"
    _css = _HERE / "receptive_field.css"

    layers = traitlets.Any().tag(sync=True)           # checked by _valid_layers, whatever the type
    input_size = traitlets.Any(28).tag(sync=True)
    selection = traitlets.Tuple(traitlets.Int(), traitlets.Int(), traitlets.Int(), default_value=(0, 0, 0)).tag(sync=True)
    effective = traitlets.Dict().tag(sync=True)
    trained_layers = traitlets.List().tag(sync=True)
    limits = traitlets.Dict().tag(sync=True)

    def __init__(self, layers=TRAINED_LAYERS, input_size=28, *, selection=None, network=None, digits=None):
        self._network, self._digits = None, None
        super().__init__(limits=LIMITS, layers=[dict(kind="conv", kernel=1)], input_size=4)
        with self.hold_trait_notifications():
            self.input_size = input_size
            self.layers = layers
        if network is not None or digits is not None:
            self.attach(network, digits)
        last = len(self.layers)
        self.selection = selection if selection is not None else (last, self.sizes[last] // 2, self.sizes[last] // 2)

    # -- validation -------------------------------------------------------------------------
    @traitlets.validate("input_size")
    def _valid_input_size(self, proposal):
        n = _whole("input_size", proposal["value"], 4, LIMITS["input_size"])
        try:
            check_layers(self._trait_values.get("layers", [dict(kind="conv", kernel=1)]), n)
        except ValueError as err:
            _fail("input_size", f"{n} is too small for the layers: {str(err).split(': ', 1)[1]}")
        return n

    @traitlets.validate("layers")
    def _valid_layers(self, proposal):
        return check_layers(proposal["value"], self.input_size)

    @traitlets.validate("selection")
    def _valid_selection(self, proposal):
        m, row, col = proposal["value"]
        if not 0 <= m <= len(self.layers):
            _fail("selection", f"map must be 0 (the input) to {len(self.layers)}; got {m}")
        n = self.sizes[m]
        if not (0 <= row < n and 0 <= col < n):
            _fail("selection", f"must lie in map {m} of shape ({n}, {n}); got ({row}, {col})")
        return (m, row, col)

    @traitlets.observe("layers", "input_size")
    def _clamp_selection(self, change):
        m, row, col = self.selection
        m = min(m, len(self.layers))
        n = self.sizes[m]
        self.selection = (m, min(row, n - 1), min(col, n - 1))

    # -- the effective field -------------------------------------------------------------------
    def attach(self, network, digits):
        """Use `network` (a trained `StackNet`) and `digits` (N, 1, H, W) for the effective field."""
        if not isinstance(network, StackNet):
            raise _TypeError(f"ReceptiveFieldExplorer: `network` must be a StackNet; got {type(network).__name__}")
        digits = np.asarray(digits, dtype=np.float32)
        shape = (1, network.input_size, network.input_size)
        if digits.ndim != 4 or digits.shape[1:] != shape or len(digits) == 0:
            _fail("digits", f"must have shape (N, {', '.join(map(str, shape))}); got {digits.shape}")
        if not np.isfinite(digits).all():
            _fail("digits", "must be finite; got NaN or inf")
        self._network, self._digits = network, digits
        self.trained_layers = network.layers
        last = len(network.layers)
        n = network.input_size
        for layer in network.layers:
            n = output_size(n, layer)
        self._update_effective(last, n // 2, n // 2)

    def _update_effective(self, m, row, col):
        erf = effective_field(self._network, self._digits, m, row, col)
        self.effective = {"layer": m, "row": row, "col": col, "digits": len(self._digits),
                          "size": self._network.input_size,
                          "map": np.round(erf / erf.max(), 4).tolist() if erf.max() > 0 else erf.tolist()}

    @traitlets.observe("selection")
    def _follow_selection(self, change):
        m, row, col = change["new"]
        if self._network is not None and m > 0 and self.layers == self._network.layers \
                and self.input_size == self._network.input_size:
            self._update_effective(m, row, col)

    # -- results ----------------------------------------------------------------------------
    @property
    def sizes(self):
        """[n_0, n_1, ...]: the side of the input and of each layer's output map."""
        out = [self.input_size]
        for layer in self.layers:
            out.append(output_size(out[-1], layer))
        return out

    def table(self):
        """One dict per layer: its settings, output side n, receptive field r and jump j (the recurrence)."""
        return [dict(layer, n=n, r=r, j=j) for layer, n, (r, j) in zip(self.layers, self.sizes[1:], theory(self.layers))]

    def field(self, m=None, row=None, col=None):
        """(rows, cols): sorted input indices that unit (row, col) of map `m` depends on (default: the
        selection); the field is every (row, col) pair of them, empty when a window lies on padding only."""
        if m is None:
            m, row, col = self.selection
        self._valid_selection({"value": (m, row, col)})
        return _product(field_axis(self.layers, self.sizes, m, row), field_axis(self.layers, self.sizes, m, col))

    def reach(self, row, col, m=0):
        """{map: (rows, cols)} for every later map: the units that depend on unit (row, col) of map `m`."""
        self._valid_selection({"value": (m, row, col)})
        return {t: _product(reach_axis(self.layers, self.sizes, m, row, t), reach_axis(self.layers, self.sizes, m, col, t))
                for t in range(m + 1, len(self.layers) + 1)}

    @property
    def effective_map(self):
        """The stored effective field, (H, W) float64 normalised to max 1, or None without a network."""
        return np.asarray(self.effective["map"], dtype=np.float64) if self.effective else None

    def half_mass(self):
        """Side of the smallest square, centred in the theoretical field, holding half the effective field."""
        e = self.effective
        rows, cols = unit_field(self.trained_layers, e["size"], e["layer"], e["row"], e["col"])
        return half_mass_side(self.effective_map, (rows[0], rows[-1]), (cols[0], cols[-1]))

