"""Convolution, its gradients and pooling in numpy, with torch.nn.functional's semantics.

Layout NCHW; "convolution" means cross-correlation (the kernel is not flipped), as in torch.
`stride`, `padding`, `dilation` and `kernel_size` take an int or a pair; `padding` also takes
"valid" and "same" (stride 1 only; an odd total pad puts the extra row/column at the bottom/right).
Floats keep their dtype (float32 in, float32 out; float16 is computed in float32 and returned as
float16); integer inputs are computed exactly in int64; bool, complex and object arrays raise
TypeError. No function writes into its arguments.

Three ways to compute one convolution, from the formula to the fast path:
- `conv2d_naive` is the loop to read: one weighted sum per output position;
- `conv2d_strided` is the idea of the fast path in a dozen lines: the windows as a read-only
  strided view of the padded input, contracted with the weights in one matrix product;
- `conv2d` checks its arguments, then dispatches (this module is the one dispatch point): tiny
  problems take a lean path that skips the checks' overhead (`_engine.gemm.small_conv2d`); large
  3x3, stride-1 float convolutions take Winograd F(4, 3), forward and backward (fewer
  multiplications, about one decimal digit less accurate in float32; `_engine.winograd`); all
  others take the blocked GEMM: windows copied into columns a cache-sized block at a time and
  multiplied by BLAS (`_engine.gemm`), the blocks shared among as many threads as numpy's BLAS may
  use (`_engine.threads`). `conv2d_backward` and `conv_transpose2d` use the same engine.
"""

import numpy as np

from . import _checks as ck
from ._engine import gemm, winograd

__all__ = ["conv_output_size", "corr2d", "conv2d_naive", "conv2d_strided", "conv2d", "conv2d_backward", "conv_transpose2d",
           "conv1d", "im2col", "col2im", "max_pool2d", "avg_pool2d"]


def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one axis.

    Args:
        n: input length (H or W). kernel_size, stride, dilation: ints >= 1.
        padding: int >= 0 on each side, or "valid" (0) or "same" (output length n, stride 1 only).
    Returns:
        (n + 2*padding - dilation*(kernel_size - 1) - 1) // stride + 1.
    Raises: ValueError if that is < 1 (the padded input is smaller than the dilated kernel).
    """
    fn = "conv_output_size"
    (n,) = ck.pair(fn, "n", n, 1)
    (k,) = ck.pair(fn, "kernel_size", kernel_size, 1)
    stride = ck.pair(fn, "stride", stride, 1)
    dilation = ck.pair(fn, "dilation", dilation, 1)
    ((p0, p1),) = ck.window_pads(fn, padding, (k,), dilation, stride, nd=1)
    out = ck.output_length(n, k, stride[0], p0 + p1, dilation[0])
    if out < 1:
        raise ValueError(f"{fn}: output size {out} < 1: padded input {n + p0 + p1} is smaller than dilated "
                         f"kernel {dilation[0] * (k - 1) + 1} (n={n}, kernel_size={k}, padding={padding!r})")
    return out


def _prepare(fn, x, weight, bias, stride, padding, dilation, groups, nd=2):
    """Check arguments, cast them to the compute dtype; return (x, weight, bias, geometry, result dtype)."""
    x = ck.as_numeric(fn, "x", x)
    weight = ck.as_numeric(fn, "weight", weight)
    bias = None if bias is None else ck.as_numeric(fn, "bias", bias)
    geom = ck.conv_geometry(fn, x, weight, bias, stride, padding, dilation, groups, nd)
    compute, result = ck.result_dtype(x, weight, bias)
    bias = None if bias is None else bias.astype(compute, copy=False)
    return x.astype(compute, copy=False), weight.astype(compute, copy=False), bias, geom, result


def corr2d(image, kernel, stride=1, padding=0):
    """Slide `kernel` over `image` and take the weighted sum at each position (no flip).

    Args:
        image: (H, W). kernel: (kh, kw).
        stride, padding: int or pair; padding also "valid" or "same".
    Returns:
        (H_out, W_out), H_out = (H + 2*padding - kh) // stride + 1; int64 for integer inputs,
        else the float dtype of the inputs.
    Raises: ValueError for non-2-D arrays or a kernel larger than the padded image; TypeError for
        bool/complex/object input.
    """
    fn = "corr2d"
    image, kernel = ck.as_numeric(fn, "image", image), ck.as_numeric(fn, "kernel", kernel)
    ck.check_ndim(fn, "image", image, "H, W")
    ck.check_ndim(fn, "kernel", kernel, "kh, kw")
    ck.window_geometry(fn, (1, 1) + image.shape, kernel.shape, stride, padding,
                       shapes=f"`image` {image.shape}, `kernel` {kernel.shape}")
    return conv2d(image[None, None], kernel[None, None], None, stride, padding)[0, 0]


def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """`conv2d` written as the formula reads: one weighted sum per output position.

    y[n, o, i, j] = bias[o] + sum over c, u, v of
                    weight[o, c, u, v] * x_pad[n, c0 + c, i*sh + u*dh, j*sw + v*dw],
    where c0 is the first input channel of output channel o's group. Slow; for reading.
    Args, Returns, Raises: as `conv2d`.
    """
    x, weight, bias, geom, result = _prepare("conv2d_naive", x, weight, bias, stride, padding, dilation, groups)
    N, C_in, H, W = x.shape
    C_out, C_per_group, kh, kw = weight.shape
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    H_out, W_out = geom.out
    out_per_group = C_out // groups
    x_pad = gemm.pad(x, geom.pads)
    y = np.zeros((N, C_out, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for o in range(C_out):
            c0 = (o // out_per_group) * C_per_group
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, c0:c0 + C_per_group,
                                   i * sh:i * sh + dh * (kh - 1) + 1:dh,
                                   j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    y[n, o, i, j] = np.sum(window * weight[o])
            if bias is not None:
                y[n, o] += bias[o]
    return y.astype(result, copy=False)


def conv2d_strided(x, weight, bias=None, stride=1, padding=0):
    """`conv2d` (groups=1, no dilation) as one matrix product over a strided view of the windows.

    The idea behind the fast path, written to be read: no Python loop, no copy of the input until
    the product. `conv2d` computes the same, block by block, on the engine. Args, Returns, Raises:
    as `conv2d`.
    """
    x, weight, bias, geom, result = _prepare("conv2d_strided", x, weight, bias, stride, padding, 1, 1)
    (sh, sw), (kh, kw) = geom.stride, weight.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0)) + geom.pads)
    # (N, C_in, H_out, W_out, kh, kw): window (i, j) starts at x_pad[..., i*sh, j*sw]; a view, no data moves
    windows = np.lib.stride_tricks.sliding_window_view(x_pad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    # one product: sum over C_in, kh, kw of windows times weight -> (N, H_out, W_out, C_out)
    y = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))
    if bias is not None:
        y = y + bias
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)).astype(result, copy=False)


def _winograd_fits(x, weight, geom):
    """Whether Winograd F(4, 3) pays: floats, 3x3, stride 1, no dilation, one group, a large enough problem."""
    c_out, c_in, kh, kw = weight.shape
    macs = x.shape[0] * c_out * geom.out[0] * geom.out[1] * c_in * kh * kw
    return (x.dtype.kind == "f" and (kh, kw) == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1)
            and geom.groups == 1 and min(c_in, c_out) >= winograd.MIN_CHANNELS and min(geom.out) >= 4
            and macs >= winograd.MIN_MACS)


def _forward(x, weight, bias, geom):
    """The one dispatch point of the fast forward: the best path for this geometry."""
    if _winograd_fits(x, weight, geom):
        return winograd.conv3x3(x, weight, bias, pads=geom.pads)
    return gemm.gemm_forward(gemm.pad(x, geom.pads), weight, geom, bias)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlate a batch of images with a bank of kernels, as torch.nn.functional.conv2d does.

    Args:
        x: (N, C_in, H, W). weight: (C_out, C_in // groups, kh, kw). bias: (C_out,) or None.
        stride, dilation: int or pair. padding: int, pair, "valid" or "same".
        groups: C_in and C_out split into `groups` independent convolutions.
    Returns:
        (N, C_out, H_out, W_out), H_out = (H + 2*padding - dilation*(kh - 1) - 1) // stride + 1;
        int64 for integer inputs, else the float dtype of the inputs.
    Raises: ValueError if shapes do not fit together; TypeError for bool/complex/object input.
    """
    y = gemm.small_conv2d(x, weight, bias, stride, padding, dilation, groups)
    if y is not None:
        return y
    x, weight, bias, geom, result = _prepare("conv2d", x, weight, bias, stride, padding, dilation, groups)
    return _forward(x, weight, bias, geom).astype(result, copy=False)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, as torch.nn.functional.conv1d (a conv2d with height 1).

    Args:
        x: (N, C_in, L). weight: (C_out, C_in // groups, k). bias: (C_out,) or None.
        stride, dilation: int. padding: int, "valid" or "same".
    Returns:
        (N, C_out, L_out), L_out = (L + 2*padding - dilation*(k - 1) - 1) // stride + 1.
    Raises: as `conv2d`.
    """
    x, weight, bias, g1, result = _prepare("conv1d", x, weight, bias, stride, padding, dilation, groups, nd=1)
    geom = ck.Geometry(((0, 0),) + g1.pads, (1,) + g1.stride, (1,) + g1.dilation, (1,) + g1.out, g1.groups)
    return _forward(x[:, :, None], weight[:, :, None], bias, geom)[:, :, 0].astype(result, copy=False)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of sum(grad_out * conv2d(x, weight, bias, ...)) w.r.t. x, weight and bias.

    Args:
        grad_out: (N, C_out, H_out, W_out), the gradient flowing into conv2d's output.
        x, weight, stride, padding, dilation, groups: as given to `conv2d`.
    Returns:
        (grad_x (N, C_in, H, W), grad_weight (C_out, C_in // groups, kh, kw), grad_bias (C_out,)).
    Raises: as `conv2d`, and ValueError if `grad_out` does not have conv2d's output shape.
    """
    small = gemm.small_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    if small is not None:
        return small
    fn = "conv2d_backward"
    grad_out = ck.as_numeric(fn, "grad_out", grad_out)
    compute, result = ck.result_dtype(grad_out, ck.as_numeric(fn, "x", x), ck.as_numeric(fn, "weight", weight))
    x, weight, _, geom, _ = _prepare(fn, x, weight, None, stride, padding, dilation, groups)
    want = (x.shape[0], weight.shape[0]) + geom.out
    if grad_out.shape != want:
        raise ValueError(f"{fn}: `grad_out` must have shape {want}, the output of conv2d for `x` {x.shape} "
                         f"and `weight` {weight.shape}; got {grad_out.shape}")
    grad_out, x, weight = (a.astype(compute, copy=False) for a in (grad_out, x, weight))
    if _winograd_fits(x, weight, geom):
        grad_xp, grad_w = winograd.backward3x3(grad_out, x, weight, pads=geom.pads)
    else:
        xp = gemm.pad(x, geom.pads)
        grad_xp, grad_w = gemm.gemm_backward(grad_out, weight, xp.shape, geom, xp)
    (top, _), (left, _) = geom.pads
    grad_x = grad_xp[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    grad_b = grad_out.sum(axis=(0, 2, 3))
    return tuple(np.ascontiguousarray(a, dtype=result) for a in (grad_x, grad_w, grad_b))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, as torch.nn.functional.conv_transpose2d: the gradient of conv2d w.r.t. its input.

    Args:
        x: (N, C_in, H, W). weight: (C_in, C_out // groups, kh, kw). bias: (C_out,) or None.
        stride, padding, output_padding, dilation: int or pair (output_padding < stride or dilation).
    Returns:
        (N, C_out, H_out, W_out),
        H_out = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1.
    Raises: ValueError if shapes do not fit together; TypeError for bool/complex/object input.
    """
    fn = "conv_transpose2d"
    x, weight = ck.as_numeric(fn, "x", x), ck.as_numeric(fn, "weight", weight)
    bias = None if bias is None else ck.as_numeric(fn, "bias", bias)
    geom, full, out = ck.transpose_geometry(fn, x, weight, bias, stride, padding, output_padding, groups, dilation)
    compute, result = ck.result_dtype(x, weight, bias)
    x, weight = x.astype(compute, copy=False), weight.astype(compute, copy=False)
    y, _ = gemm.gemm_backward(x, weight, (x.shape[0], weight.shape[1] * groups) + full, geom)
    (top, _), (left, _) = geom.pads
    y = y[:, :, top:top + out[0], left:left + out[1]]
    if bias is not None:
        y = y + bias.astype(compute)[:, None, None]
    return np.ascontiguousarray(y, dtype=result)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold every kernel-sized window of `x` into a column, as torch.nn.functional.unfold.

    Args:
        x: (N, C, H, W). kernel_size, stride, dilation: int or pair. padding: int, pair, "valid", "same".
    Returns:
        (N, C*kh*kw, H_out*W_out); row c*kh*kw + u*kw + v holds x_pad[n, c, i*sh + u*dh, j*sw + v*dw].
    """
    x = ck.as_numeric("im2col", "x", x)
    ck.check_ndim("im2col", "x", x, "N, C, H, W")
    kernel, stride, dilation, pads, out = ck.window_geometry("im2col", x.shape, kernel_size, stride, padding,
                                                             dilation)
    win = gemm.windows(gemm.pad(x, pads), kernel, stride, dilation, out)
    return win.reshape(x.shape[0], x.shape[1] * kernel[0] * kernel[1], out[0] * out[1])


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an image, summing where windows overlap (the adjoint of `im2col`).

    Args:
        cols: (N, C*kh*kw, H_out*W_out). input_shape: (N, C, H, W) of the image `im2col` unfolded.
        kernel_size, stride, padding, dilation: as given to `im2col`.
    Returns:
        (N, C, H, W); <im2col(x), cols> == <x, col2im(cols)> for every x.
    """
    fn = "col2im"
    cols = ck.as_numeric(fn, "cols", cols)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4:
        raise ValueError(f"{fn}: `input_shape` must be (N, C, H, W); got {input_shape!r}")
    kernel, stride, dilation, pads, out = ck.window_geometry(fn, shape, kernel_size, stride, padding, dilation)
    want = (shape[0], shape[1] * kernel[0] * kernel[1], out[0] * out[1])
    if cols.shape != want:
        raise ValueError(f"{fn}: `cols` must have shape {want} for input_shape {shape} and kernel "
                         f"{kernel}; got {cols.shape}")
    padded = (shape[0], shape[1], shape[2] + sum(pads[0]), shape[3] + sum(pads[1]))
    full = gemm.col2im_add(cols.reshape(shape[:2] + kernel + out), padded, kernel, stride, dilation)
    return np.ascontiguousarray(full[:, :, pads[0][0]:pads[0][0] + shape[2], pads[1][0]:pads[1][0] + shape[3]])


def _pool_windows(fn, x, kernel_size, stride, padding, fill):
    x = ck.as_numeric(fn, "x", x)
    ck.check_ndim(fn, "x", x, "N, C, H, W")
    stride = kernel_size if stride is None else stride
    kernel = ck.pair(fn, "kernel_size", kernel_size)
    p = ck.pair(fn, "padding", padding, minimum=0)
    if any(pp > k // 2 for pp, k in zip(p, kernel)):
        raise ValueError(f"{fn}: `padding` {p} must be at most half of kernel_size {kernel} (as in torch)")
    kernel, stride, dilation, pads, out = ck.window_geometry(fn, x.shape, kernel, stride, p)
    fill_value = fill(x.dtype)
    return gemm.windows(gemm.pad(x, pads, fill_value), kernel, stride, dilation, out), x


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Maximum over each kernel-sized window, as torch.nn.functional.max_pool2d (padding counts as -inf).

    Args:
        x: (N, C, H, W). kernel_size: int or pair. stride: int or pair, default kernel_size.
        padding: int or pair, at most half the kernel size.
    Returns:
        (N, C, H_out, W_out) of x's dtype, H_out = (H + 2*padding - kh) // stride + 1.
    """
    def lowest(dt):
        return -np.inf if dt.kind == "f" else np.iinfo(dt).min
    win, x = _pool_windows("max_pool2d", x, kernel_size, stride, padding, lowest)
    return win.max(axis=(2, 3))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each kernel-sized window, as torch.nn.functional.avg_pool2d (padding counts as 0).

    Like torch's default count_include_pad=True, every window is divided by kh*kw.
    Args: as `max_pool2d`.
    Returns:
        (N, C, H_out, W_out) of x's float dtype (float64 for integer input).
    """
    win, x = _pool_windows("avg_pool2d", x, kernel_size, stride, padding, lambda dt: 0)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return (win.sum(axis=(2, 3), dtype=dt) / (win.shape[2] * win.shape[3])).astype(dt, copy=False)
