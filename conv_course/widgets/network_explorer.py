"""`NetworkExplorer`: draw a digit and watch every feature map and the class probabilities.

The Python side turns a trained conv network into a list of layer specs (`export_layers`): each
layer's kind, its arguments and its tensors as little-endian float32 in base64. The view,
``network_explorer.js`` (one ES module, no imports), decodes them and runs the forward pass
itself on every stroke, so the widget also works in the static book where no Python kernel runs.
`logits` and `probabilities` are torch's forward pass on the same 8-bit drawing.

The network sees what the chapter feeds it: one (1, 1, 28, 28) float image, white strokes
(1.0) on black (0.0), no normalisation; MNIST digits are also centred by their centre of mass
in a 20x20 box, which the drawing pad does not enforce.
"""

import base64
import pathlib

import anywidget
import numpy as np
import torch
import traitlets
from torch import nn

__all__ = ["NetworkExplorer", "export_layers", "layer_stack", "default_digits", "SUPPORTED", "SIDE"]

_HERE = pathlib.Path(__file__).parent
SIDE = 28                  # the drawing pad: (1, 1, SIDE, SIDE), as the chapter's networks take
MAX_DIGITS = 100           # test digits shipped with the page
SUPPORTED = ("Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Flatten", "Linear")


class _ValueError(ValueError, traitlets.TraitError):
    pass


def _fail(name, msg):
    raise _ValueError(f"NetworkExplorer: `{name}` {msg}")


# -- the network as a stack of layers ----------------------------------------------------------

def _runs_children_in_order(module):
    """True for modules whose forward is their children applied in order (LeNet5: features, classifier)."""
    from conv_course import models

    return isinstance(module, nn.Sequential) or type(module) is models.LeNet5


def layer_stack(model):
    """The layers `model` applies, in order, as (dotted name, module) pairs.

    nn.Sequential (nested or not) and `models.LeNet5` (whose forward is its `features` then its
    `classifier`) are opened up; every other module must be one of `SUPPORTED`.
    Raises: ValueError naming every unsupported layer (name and type).
    """
    if not isinstance(model, nn.Module):
        _fail("model", f"must be a torch nn.Module (an nn.Sequential of supported layers); got {type(model).__name__}")
    if not _runs_children_in_order(model) and type(model).__name__ not in SUPPORTED:
        _fail("model", f"must be an nn.Sequential (or models.LeNet5) whose layers are among {', '.join(SUPPORTED)}; "
                       f"got {type(model).__name__}, whose forward the view cannot know")
    stack, bad = [], []

    def visit(prefix, module):
        if _runs_children_in_order(module):
            for name, child in module.named_children():
                visit(f"{prefix}.{name}" if prefix else name, child)
        elif type(module).__name__ in SUPPORTED:
            why = _unsupported_setting(module)
            (bad.append(f"{prefix or 'model'} ({type(module).__name__}, {why})") if why
             else stack.append((prefix or type(module).__name__, module)))
        else:
            bad.append(f"{prefix or 'model'} ({type(module).__name__})")

    visit("", model)
    if bad:
        _fail("model", f"holds layers the view cannot compute: {'; '.join(bad)}. Supported: {', '.join(SUPPORTED)} "
                       "(BatchNorm2d in eval mode with running statistics)")
    if not stack:
        _fail("model", "has no layers")
    return stack


def _unsupported_setting(m):
    """Why a layer of a supported type still cannot be computed by the view, or None."""
    if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
        return f"padding_mode={m.padding_mode!r}; only 'zeros'"
    if isinstance(m, nn.MaxPool2d) and m.return_indices:
        return "return_indices=True"
    if isinstance(m, nn.BatchNorm2d) and (m.running_mean is None or m.running_var is None):
        return "track_running_stats=False"
    if isinstance(m, nn.BatchNorm2d) and m.training:
        return "in training mode; call model.eval() first"
    if isinstance(m, nn.Flatten) and (m.start_dim != 1 or m.end_dim != -1):
        return f"start_dim={m.start_dim}, end_dim={m.end_dim}; only start_dim=1, end_dim=-1"
    return None


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


def _conv_padding(m):
    """[top, left, bottom, right] zero padding of a Conv2d, 'same' and 'valid' included (as torch pads)."""
    if m.padding == "valid":
        return [0, 0, 0, 0]
    if m.padding == "same":
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
    p = _pair(m.padding)
    return [p[0], p[1], p[0], p[1]]


def _b64(name, tensor):
    """A tensor as little-endian float32 bytes in base64; NaN or infinity raise naming the parameter."""
    arr = tensor.detach().cpu().to(torch.float32).numpy()
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail("model", f"parameter {name} must be finite; got {arr[where]} at index {where}")
    return base64.b64encode(arr.astype("<f4").tobytes()).decode("ascii")


def _export(name, m):
    """One layer's spec: its kind, its arguments, its tensors (base64 float32)."""
    kind = type(m).__name__
    spec = {"name": name, "kind": kind}
    if isinstance(m, nn.Conv2d):
        spec.update(in_channels=m.in_channels, out_channels=m.out_channels, kernel=list(m.kernel_size),
                    stride=list(m.stride), dilation=list(m.dilation), groups=m.groups, padding=_conv_padding(m),
                    weight=_b64(f"{name}.weight", m.weight),
                    bias=None if m.bias is None else _b64(f"{name}.bias", m.bias))
    elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        spec.update(kernel=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size), padding=_pair(m.padding),
                    ceil_mode=bool(m.ceil_mode))
        if isinstance(m, nn.MaxPool2d):
            spec.update(dilation=_pair(m.dilation))
        else:
            spec.update(count_include_pad=bool(m.count_include_pad), divisor_override=m.divisor_override)
    elif isinstance(m, nn.BatchNorm2d):
        ones, zeros = torch.ones(m.num_features), torch.zeros(m.num_features)
        spec.update(eps=float(m.eps), mean=_b64(f"{name}.running_mean", m.running_mean),
                    var=_b64(f"{name}.running_var", m.running_var),
                    weight=_b64(f"{name}.weight", m.weight if m.affine else ones),
                    bias=_b64(f"{name}.bias", m.bias if m.affine else zeros))
    elif isinstance(m, nn.Linear):
        spec.update(in_features=m.in_features, out_features=m.out_features, weight=_b64(f"{name}.weight", m.weight),
                    bias=None if m.bias is None else _b64(f"{name}.bias", m.bias))
    return spec


def _probe_shapes(stack):
    """Each layer's output shape (without the batch) for one blank drawing; ValueError when one does not fit."""
    x, shapes = torch.zeros(1, 1, SIDE, SIDE), []
    with torch.no_grad():
        for name, m in stack:
            flat_input = x.ndim == 2
            if isinstance(m, nn.Linear) and not flat_input:
                _fail("model", f"layer {name} (Linear) gets feature maps of shape {tuple(x.shape)}; "
                               "put an nn.Flatten() before it")
            if flat_input and not isinstance(m, (nn.Linear, nn.ReLU)):
                _fail("model", f"layer {name} ({type(m).__name__}) gets a flat vector of shape {tuple(x.shape)}; "
                               "it needs feature maps (N, C, H, W)")
            try:
                x = m(x)
            except RuntimeError as err:
                _fail("model", f"cannot take a (1, 1, {SIDE}, {SIDE}) drawing: layer {name} ({type(m).__name__}) "
                               f"fails on its input of shape {tuple(x.shape)}: {err}")
            shapes.append(list(x.shape[1:]))
    if x.ndim != 2 or x.shape[1] < 2:
        _fail("model", f"must end in logits of shape (1, num_classes >= 2); its last layer gives {tuple(x.shape)}")
    return shapes


def export_layers(model):
    """`model` as the view's list of layer specs, each with its output shape (`shape`, no batch)."""
    stack = layer_stack(model)
    shapes = _probe_shapes(stack)
    return [dict(_export(name, m), shape=shape) for (name, m), shape in zip(stack, shapes)]


# -- the drawing and the test digits ---------------------------------------------------------

def _as_drawing(name, value):
    """`value` as a (SIDE, SIDE) float32 image in [0, 1] quantised to 8 bits (k / 255), as the view holds it."""
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        _fail(name, f"must hold real numbers; got dtype {arr.dtype}")
    arr = np.squeeze(arr.astype(np.float64))
    if arr.shape != (SIDE, SIDE):
        _fail(name, f"must be a {SIDE}x{SIDE} image (or (1, 1, {SIDE}, {SIDE})); got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        _fail(name, "must be finite; got NaN or infinity")
    if arr.min() < 0 or arr.max() > 1:
        _fail(name, f"values must lie in [0, 1] (white strokes on black, as the chapter feeds the network); "
                    f"got {arr.min():g} to {arr.max():g}")
    return (np.round(arr * 255) / 255).astype(np.float32)


def _pixels_b64(img):
    return base64.b64encode(np.round(img * 255).astype(np.uint8).tobytes()).decode("ascii")


def _pixels_from_b64(text):
    return (np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(SIDE, SIDE) / 255).astype(np.float32)


def default_digits(per_class=3):
    """The first `per_class` test digits of each class of `data.mnist_subset()`: (images (N, 28, 28), labels (N,))."""
    from conv_course import data

    _, test = data.mnist_subset()
    idx = np.concatenate([np.flatnonzero(test.labels.numpy() == c)[:per_class] for c in range(10)])
    return test.images[idx, 0].numpy(), test.labels[idx].numpy()



def _as_digits(digits):
    """(images, labels) or a dataset of (image, label) -> list of {"label", "pixels"}; checked by name."""
    if isinstance(digits, torch.utils.data.TensorDataset):
        digits = digits.tensors
    if not isinstance(digits, (tuple, list)) or len(digits) != 2:
        _fail("digits", f"must be (images, labels) or a dataset of (image, label); got {type(digits).__name__}")
    images, labels = (np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t) for t in digits)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or not 1 <= len(images) <= MAX_DIGITS:
        _fail("digits", f"images must have shape (N, {SIDE}, {SIDE}) or (N, 1, {SIDE}, {SIDE}) with "
                        f"1 <= N <= {MAX_DIGITS}; got {images.shape}")
    if labels.shape != (len(images),):
        _fail("digits", f"labels must have shape ({len(images)},) to match the images; got {labels.shape}")
    return [{"label": int(y), "pixels": _pixels_b64(_as_drawing("digits", img))} for img, y in zip(images, labels)]


# -- the widget --------------------------------------------------------------------------------

class _Drawing(traitlets.Any):
    """The (28, 28) float32 drawing, checked on assignment, synced as 8-bit base64."""

    def validate(self, obj, value):
        return _as_drawing(self.name, value)


class NetworkExplorer(anywidget.AnyWidget):
    """Draw a digit (or pick a test digit) and watch every layer of a conv network respond.

    Args:
        model: an nn.Sequential (nesting allowed) or `models.LeNet5` of Conv2d (any stride, padding,
            dilation, groups; zero padding), ReLU, MaxPool2d, AvgPool2d, BatchNorm2d (eval mode),
            Flatten and Linear that maps a (1, 1, 28, 28) image in [0, 1] to (1, num_classes) logits.
        digits: (images (N, 28, 28) or (N, 1, 28, 28) in [0, 1], labels (N,)), or such a dataset;
            default `default_digits()`, 30 real MNIST test digits. N <= 100.
        classes: a name per class; default "0", "1", ...
        digit: index of the digit shown first; -1 starts from a blank pad.

    `image` is the drawing, (28, 28) float32 in [0, 1] in steps of 1/255. `logits` and
    `probabilities` are torch's forward pass of `model` on it, (num_classes,) float32.
    Raises: ValueError naming `model` (unsupported layers, shapes that do not fit, NaN or infinite
    parameters), `digits`, `classes`, `image` or `digit`.
    """

    _esm = _HERE / "network_explorer.js"
    _css = _HERE / "network_explorer.css"

    layers = traitlets.List().tag(sync=True)
    digits = traitlets.List().tag(sync=True)
    classes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    digit = traitlets.Int(-1).tag(sync=True)
    image = _Drawing(np.zeros((SIDE, SIDE), np.float32)).tag(
        sync=True, to_json=lambda a, w: _pixels_b64(a), from_json=lambda s, w: _pixels_from_b64(s))

    def __init__(self, model, digits=None, classes=None, digit=0):
        layers = export_layers(model)
        n_classes = layers[-1]["shape"][0]
        classes = [str(c) for c in range(n_classes)] if classes is None else [str(c) for c in classes]
        if len(classes) != n_classes:
            _fail("classes", f"must name the model's {n_classes} classes; got {len(classes)} names")
        shipped = _as_digits(default_digits() if digits is None else digits)
        self._stack = [m for _, m in layer_stack(model)]
        super().__init__(layers=layers, digits=shipped, classes=classes)
        self.digit = digit

    @traitlets.validate("digit")
    def _valid_digit(self, proposal):
        d = proposal["value"]
        if not -1 <= d < len(self.digits):
            _fail("digit", f"must be -1 (blank pad) or an index below {len(self.digits)}; got {d}")
        return d

    @traitlets.observe("digit")
    def _show_digit(self, change):
        if change["new"] >= 0:
            self.image = _pixels_from_b64(self.digits[change["new"]]["pixels"])

    @property
    def logits(self):
        """(num_classes,) float32: the model's layers applied in order to `image`, by torch."""
        x = torch.from_numpy(self.image)[None, None]
        with torch.no_grad():
            for m in self._stack:
                x = m(x)
        return x[0].numpy()

    @property
    def probabilities(self):
        """(num_classes,) float32: softmax of `logits`."""
        return torch.softmax(torch.from_numpy(self.logits), 0).numpy()
