"""Argument checks shared by `conv_course.ops`: int-or-pair sizes, dtypes, shapes.

Every message names the function, the argument in backticks, what was received and what was
expected (STYLE.md section 4). Nothing here computes a convolution.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["pair", "as_numeric", "result_dtype", "check_ndim", "conv_geometry", "transpose_geometry",
           "window_geometry", "Geometry", "window_pads", "output_length"]


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def pair(fn, name, value, nd=2, minimum=1):
    """`value` (an int or a tuple of `nd` ints, each >= `minimum`) as a tuple of `nd` ints."""
    if _is_int(value):
        values = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and len(value) == nd and all(_is_int(v) for v in value):
        values = tuple(int(v) for v in value)
    else:
        what = "an int" if nd == 1 else "an int or a pair of ints"
        raise TypeError(f"{fn}: `{name}` must be {what}; got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{fn}: `{name}` must be >= {minimum}; got {value!r}")
    return values


def as_numeric(fn, name, a):
    """`a` as a numpy array of integer or float dtype; TypeError for bool, complex, object, str."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{fn}: `{name}` must hold integers or floats; got dtype {arr.dtype} "
                        f"(bool, complex, object and string arrays are not supported)")
    return arr


def result_dtype(*arrays):
    """(compute dtype, result dtype): int64 for integers, float32 for float16, else the float type."""
    dt = np.result_type(*[a for a in arrays if a is not None])
    if dt.kind in "iu":
        return np.dtype(np.int64), np.dtype(np.int64)
    if dt.itemsize < 4:
        return np.dtype(np.float32), dt
    return dt, dt


def check_ndim(fn, name, arr, letters):
    """Raise ValueError unless `arr` has len(letters) dimensions, e.g. letters = "N, C_in, H, W"."""
    want = len(letters.split(","))
    if arr.ndim != want:
        raise ValueError(f"{fn}: `{name}` must have {want} dimensions ({letters}); "
                         f"got shape {tuple(arr.shape)}")


def output_length(n, k, stride, pad_total, dilation):
    """Output length along one axis: (n + pad_total - dilation*(k - 1) - 1) // stride + 1."""
    return (n + pad_total - dilation * (k - 1) - 1) // stride + 1


def window_pads(fn, padding, kernel, dilation, stride, nd=2):
    """Padding as ((before, after), ...) per axis; accepts int, tuple, "valid" or "same" (like torch).

    "same" pads dilation*(k - 1) in total, the odd extra on the right/bottom, and needs stride 1.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: `padding`='same' needs stride 1 (as in torch); got stride="
                                 f"{stride if nd > 1 else stride[0]}")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{fn}: `padding` must be an int, a tuple, 'valid' or 'same'; got {padding!r}")
    p = pair(fn, "padding", padding, nd, minimum=0)
    return tuple((v, v) for v in p)


def _fmt(sizes):
    return "x".join(str(s) for s in sizes)


@dataclass(frozen=True)
class Geometry:
    """Checked convolution arguments: pads ((top, bottom), (left, right)), stride, dilation, output size."""

    pads: tuple
    stride: tuple
    dilation: tuple
    out: tuple
    groups: int


def conv_geometry(fn, x, weight, bias, stride, padding, dilation, groups, nd=2):
    """Check a convolution's arguments (ndim, groups, channels, bias, output size) and return its Geometry.

    `x` is (N, C_in, *spatial) and `weight` is (C_out, C_in // groups, *kernel), `nd` spatial axes.
    """
    spatial = ["L"] if nd == 1 else ["H", "W"]
    kernel_letters = ["k"] if nd == 1 else ["kh", "kw"]
    check_ndim(fn, "x", x, ", ".join(["N", "C_in"] + spatial))
    check_ndim(fn, "weight", weight, ", ".join(["C_out", "C_in // groups"] + kernel_letters))
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{fn}: `groups` must be a positive int; got {groups!r}")
    stride = pair(fn, "stride", stride, nd)
    dilation = pair(fn, "dilation", dilation, nd)
    c_out, c_per_group = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    shape_x, shape_w = tuple(x.shape), tuple(weight.shape)
    letters = ", ".join(spatial)
    if c_out % groups:
        near = sorted({max(groups, c_out // groups * groups), (c_out // groups + 1) * groups})
        examples = " or ".join(str((c,) + shape_w[1:]) for c in near)
        raise ValueError(f"{fn}: `weight` must have shape (C_out, {', '.join(map(str, shape_w[1:]))}) with C_out "
                         f"a multiple of groups={groups}, e.g. {examples}; got {shape_w}")
    if x.shape[1] != c_per_group * groups:
        raise ValueError(f"{fn}: `x` must have shape (N, {c_per_group * groups}, {letters}) to match "
                         f"`weight` {shape_w} with groups={groups}; got {shape_x}")
    if min(kernel) < 1 or c_out < 1:
        raise ValueError(f"{fn}: `weight` must have C_out >= 1 and a kernel of size >= 1; got {shape_w}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"{fn}: `bias` must have shape ({c_out},) to match `weight` {shape_w}; "
                         f"got {tuple(bias.shape)}")
    pads = window_pads(fn, padding, kernel, dilation, stride, nd)
    out = tuple(output_length(n, k, s, sum(p), d)
                for n, k, s, p, d in zip(x.shape[2:], kernel, stride, pads, dilation))
    if min(out) < 1:
        padded = [n + sum(p) for n, p in zip(x.shape[2:], pads)]
        dilated = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        raise ValueError(f"{fn}: output size {_fmt(out)} < 1: padded input {_fmt(padded)} is smaller than "
                         f"dilated kernel {_fmt(dilated)} (`x` {shape_x}, `weight` {shape_w}); expected "
                         f"each padded input size >= dilated kernel size")
    return Geometry(pads, stride, dilation, out, int(groups))


def transpose_geometry(fn, x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Check conv_transpose2d's arguments; return (Geometry of the conv2d it transposes, full size, output size).

    `x` is (N, C_in, H, W), `weight` (C_in, C_out // groups, kh, kw). The full size is the output
    before cropping `padding`: (H - 1)*stride + dilation*(kh - 1) + 1 + output_padding.
    """
    check_ndim(fn, "x", x, "N, C_in, H, W")
    check_ndim(fn, "weight", weight, "C_in, C_out // groups, kh, kw")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{fn}: `groups` must be a positive int; got {groups!r}")
    stride, dilation = pair(fn, "stride", stride), pair(fn, "dilation", dilation)
    pads = pair(fn, "padding", padding, minimum=0)
    out_pad = pair(fn, "output_padding", output_padding, minimum=0)
    if any(p >= max(s, d) for p, s, d in zip(out_pad, stride, dilation)):
        raise ValueError(f"{fn}: `output_padding` {out_pad} must be smaller than stride {stride} or "
                         f"dilation {dilation}")
    c_in, c_g, kh, kw = weight.shape
    shape_x, shape_w = tuple(x.shape), tuple(weight.shape)
    if c_in % groups:
        raise ValueError(f"{fn}: `weight` must have shape (C_in, {c_g}, {kh}, {kw}) with C_in a multiple of "
                         f"groups={groups}; got {shape_w}")
    if x.shape[1] != c_in:
        raise ValueError(f"{fn}: `x` must have shape (N, {c_in}, H, W) to match `weight` {shape_w} "
                         f"(C_in, C_out // groups, kh, kw); got {shape_x}")
    if bias is not None and tuple(bias.shape) != (c_g * groups,):
        raise ValueError(f"{fn}: `bias` must have shape ({c_g * groups},) to match `weight` {shape_w} "
                         f"with groups={groups}; got {tuple(bias.shape)}")
    full = tuple((n - 1) * s + d * (k - 1) + 1 + op
                 for n, s, d, k, op in zip(x.shape[2:], stride, dilation, (kh, kw), out_pad))
    out = tuple(f - 2 * p for f, p in zip(full, pads))
    if min(out) < 1 or min(x.shape[2:]) < 1:
        raise ValueError(f"{fn}: output size {_fmt(out)} < 1: full output {_fmt(full)} minus padding {pads} "
                         f"on each side (`x` {shape_x}, `weight` {shape_w})")
    geom = Geometry(((pads[0],) * 2, (pads[1],) * 2), stride, dilation, tuple(x.shape[2:]), int(groups))
    return geom, full, out


def window_geometry(fn, shape, kernel_size, stride, padding, dilation=1, shapes=None):
    """Check a sliding window over an input of `shape` (N, C, H, W); return (kernel, stride, dilation, pads, out).

    `shapes` names the caller's arguments in an error message (default: "`x` (N, C, H, W)").
    """
    kernel = pair(fn, "kernel_size", kernel_size)
    stride = pair(fn, "stride", stride)
    dilation = pair(fn, "dilation", dilation)
    pads = window_pads(fn, padding, kernel, dilation, stride)
    out = tuple(output_length(n, k, s, sum(p), d)
                for n, k, s, p, d in zip(shape[2:], kernel, stride, pads, dilation))
    if min(out) < 1:
        padded = [n + sum(p) for n, p in zip(shape[2:], pads)]
        dilated = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        raise ValueError(f"{fn}: output size {_fmt(out)} < 1: padded input {_fmt(padded)} is smaller than "
                         f"dilated kernel {_fmt(dilated)} ({shapes or f'`x` {tuple(shape)}'})")
    return kernel, stride, dilation, pads, out
