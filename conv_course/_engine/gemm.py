"""Internals of `conv_course.ops`: padding, window views, the im2col GEMM and col2im accumulation.

Arguments arrive checked (see `conv_course._checks.conv_geometry`) and already in their compute dtype, except in
`small_conv2d` and `small_conv2d_backward`, which check the few argument sets they take themselves
and decline all others (returning None).
Shapes use the book's letters: x (N, C, H, W), weight (C_out, C_in // groups, kh, kw).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _checks as ck
from . import threads
from .threads import blocks

__all__ = ["pad", "windows", "small_conv2d", "small_conv2d_backward", "gemm_forward", "gemm_backward",
           "col2im_add"]

# `small_conv2d` takes convolutions of at most this many multiply-adds: there, checks cost more than the sums.
SMALL_MACS = 1 << 16
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def pad(x, pads, value=0):
    """A new (N, C, H + top + bottom, W + left + right) array with `x` inside, `value` around it.

    Returns `x` itself (not a copy) when every pad is zero; callers never write into the result.
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def windows(xp, kernel, stride, dilation, out):
    """Read-only view (N, C, kh, kw, H_out, W_out) of `xp`: [n, c, u, v, i, j] = xp[n, c, i*sh + u*dh, j*sw + v*dw]."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.strides
    view = np.ndarray((n, c, kh, kw, ho, wo), xp.dtype, xp, 0, (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w)) \
        if xp.flags.c_contiguous else \
        as_strided(xp, (n, c, kh, kw, ho, wo), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w))
    view.flags.writeable = False
    return view


def _small_out(x, weight, stride, padding, dilation, groups):
    """(H_out, W_out) when conv2d(x, weight, ...) may take the lean path (see `small_conv2d`), else None."""
    if not (type(x) is np.ndarray and type(weight) is np.ndarray and type(groups) is int and groups == 1
            and type(stride) is int and type(padding) is int and type(dilation) is int  # not bool, not numpy ints
            and stride >= 1 and dilation >= 1 and padding >= 0):
        return None
    dt = x.dtype
    if dt not in _FLOATS or weight.dtype != dt or x.ndim != 4 or weight.ndim != 4 or not x.flags.c_contiguous:
        return None
    n, c, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    ho = ck.output_length(h, kh, stride, 2 * padding, dilation)
    wo = ck.output_length(w, kw, stride, 2 * padding, dilation)
    if c_w != c or min(n, ho, wo, kh, kw, c_out, c) < 1 or n * c_out * ho * wo * c * kh * kw > SMALL_MACS:
        return None
    return ho, wo


def _small_columns(x, kernel, stride, padding, dilation, out):
    """(N, C*kh*kw, H_out*W_out) copy of x's windows (the lean paths' GEMM operand)."""
    xp = pad(x, ((padding, padding), (padding, padding))) if padding else x
    n, c = x.shape[:2]
    win = windows(xp, kernel, (stride, stride), (dilation, dilation), out)
    return win.reshape(n, c * kernel[0] * kernel[1], out[0] * out[1])


def small_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """conv2d of a small problem (at most `SMALL_MACS` multiply-adds) with minimal overhead, else None.

    Takes only C-contiguous float32/float64 arrays of one dtype, x (N, C, H, W), weight (C_out, C, kh, kw),
    bias (C_out,) or None, plain int stride >= 1, padding >= 0, dilation >= 1 and groups == 1, with an
    output of at least 1x1. Anything else returns None, and the caller checks and computes as usual.
    Windows are taken along whole padded rows: column l = i*Wp + j of the (C*kh*kw, L) operand starts
    at xp[..., i*s, j*s], L = (H_out - 1)*Wp + W_out, so each of its rows is one strided run of xp
    (one copy); the columns j >= W_out, which wrap around a row, are computed and dropped.
    """
    out = _small_out(x, weight, stride, padding, dilation, groups)
    if out is None or (bias is not None and not (type(bias) is np.ndarray and bias.dtype == x.dtype
                                                 and bias.shape == (weight.shape[0],))):
        return None
    (ho, wo), (n, c, _, wp), (c_out, _, kh, kw) = out, x.shape, weight.shape
    wp += 2 * padding
    xp = pad(x, ((padding, padding), (padding, padding))) if padding else x
    s_n, s_c, s_h, s_w = xp.strides
    length = (ho - 1) * wp + wo
    cols = np.ndarray((n, c, kh, kw, length), x.dtype, xp, 0,
                      (s_n, s_c, dilation * s_h, dilation * s_w, stride * s_w)).reshape(n, c * kh * kw, length)
    w = weight.reshape(c_out, -1)
    y = np.dot(w, cols[0]) if n == 1 else np.matmul(w, cols)  # (C_out, L) or (N, C_out, L)
    item = x.dtype.itemsize
    rows = np.ndarray((n, c_out, ho, wo), x.dtype, y, 0, (c_out * length * item, length * item, wp * item, item))
    if bias is None:
        return np.ascontiguousarray(rows)
    return np.add(rows, bias.reshape(c_out, 1, 1), out=np.empty((n, c_out, ho, wo), x.dtype))  # crop + bias


def small_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups):
    """conv2d_backward of a small stride-1 problem: (grad_x, grad_weight, grad_bias), or None.

    Takes what `small_conv2d` takes, with stride 1, square padding no wider than the dilated kernel,
    and grad_out a C-contiguous array of x's dtype and conv2d's output shape. grad_x is then the
    lean forward of grad_out with the kernel flipped and its channel axes swapped.
    """
    out = _small_out(x, weight, stride, padding, dilation, groups)
    if out is None or stride != 1:  # x and weight are 4-D arrays only past this check
        return None
    n, c_out, kh, kw = x.shape[0], *weight.shape[:1], *weight.shape[2:]
    if (kh != kw or dilation * (kh - 1) < padding or type(grad_out) is not np.ndarray
            or grad_out.dtype != x.dtype or grad_out.shape != (n, c_out) + out or not grad_out.flags.c_contiguous):
        return None
    flipped = np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    grad_x = small_conv2d(grad_out, flipped, None, 1, dilation * (kh - 1) - padding, dilation, 1)
    if grad_x is None:  # (not expected: same sizes as the forward)
        return None
    cols = _small_columns(x, (kh, kw), stride, padding, dilation, out)
    go = grad_out.reshape(n, c_out, -1)
    grad_w = go[0] @ cols[0].T if n == 1 else np.matmul(go, cols.transpose(0, 2, 1)).sum(axis=0)
    return grad_x, grad_w.reshape(weight.shape), grad_out.sum(axis=(0, 2, 3))


def _columns(wins, block, groups, buf, ones=False):
    """Copy a block of windows into `buf` as (nb, groups, K, rows*W_out) GEMM operands.

    `wins` are window views (N, C, kh', kw', H_out, W_out) whose rows follow one another in K, per
    group: one view (K = C/g*kh*kw) or one per stride phase (see `_phase_windows`). With `ones`, each
    (group, sample) gets one more row, of ones, after its K rows (a bias column's partner).
    """
    n0, n1, r0, r1 = block
    nb, c, rows, wo = n1 - n0, wins[0].shape[1], r1 - r0, wins[0].shape[5]
    sizes = [c // groups * win.shape[2] * win.shape[3] for win in wins]
    k = sum(sizes)
    cols = buf[:nb * groups * (k + ones) * rows * wo].reshape(nb, groups, k + ones, rows * wo)
    for win, k0, size in zip(wins, np.cumsum([0] + sizes), sizes):
        shape = (nb, groups, c // groups, win.shape[2], win.shape[3], rows, wo)
        np.copyto(cols[:, :, k0:k0 + size].reshape(shape), win[n0:n1, :, :, :, r0:r1].reshape(shape))
    if ones:
        cols[:, :, k] = 1
    return cols


def _phase_windows(xp, weight, geom):
    """(window views, weight (g, C_out/g, K) in their row order) for the forward GEMM.

    With stride s > 1 (and no dilation) the input is first split into its s*s phases
    xp[:, :, p::s, q::s]: each meets the kernel taps weight[..., p::s, q::s] at stride 1, so its
    windows are copied in runs of whole rows instead of element by element.
    """
    c_out, c_g, kh, kw = weight.shape
    g = geom.groups
    (sh, sw), (ho, wo) = geom.stride, geom.out
    if geom.stride == (1, 1) or geom.dilation != (1, 1):
        return [windows(xp, (kh, kw), geom.stride, geom.dilation, geom.out)], weight.reshape(g, c_out // g, -1)
    wins, taps = [], []
    for p in range(min(sh, kh)):
        for q in range(min(sw, kw)):
            sub = weight[:, :, p::sh, q::sw]
            phase = np.ascontiguousarray(xp[:, :, p::sh, q::sw])
            wins.append(windows(phase, sub.shape[2:], (1, 1), (1, 1), (ho, wo)))
            taps.append(sub.reshape(g, c_out // g, -1))
    return wins, np.concatenate(taps, axis=2)


def gemm_forward(xp, weight, geom, bias=None):
    """(N, C_out, H_out, W_out): per sample and group, weight (C_out/g, K) @ columns (K, rows*W_out) + bias.

    K = C_in/g*kh*kw. Columns are built a block at a time (so they stay in cache) and each product is
    written by BLAS straight into the output. `bias` (C_out,) rides in the same product, as one more
    weight column against a row of ones. Blocks are shared out among threads (see `threads`).
    """
    n = xp.shape[0]
    c_out, c_g, kh, kw = weight.shape
    g, (ho, wo) = geom.groups, geom.out
    og, k, has_bias = c_out // g, c_g * kh * kw, bias is not None
    dtype = np.result_type(xp, weight)
    out = np.empty((n, c_out, ho, wo), dtype=dtype)
    wins, w = _phase_windows(xp, weight, geom)
    if has_bias:
        w = np.concatenate([w, bias.reshape(g, og, 1).astype(dtype, copy=False)], axis=2)
    todo = blocks(n, ho, g * (k + has_bias) * wo * dtype.itemsize)

    def work(part):
        most = max((b[1] - b[0]) * (b[3] - b[2]) for b in part)
        buf = threads.scratch(dtype)("columns", (most * g * (k + has_bias) * wo,))
        for n0, n1, r0, r1 in part:
            cols = _columns(wins, (n0, n1, r0, r1), g, buf, ones=has_bias)  # (nb, g, K (+ 1), rows*W_out)
            target = np.reshape(out[n0:n1, :, r0:r1], (n1 - n0, g, og, -1), copy=False)  # a view, never a copy
            np.matmul(w, cols, out=target)  # one BLAS call per (n, g)

    threads.run_parts(work, todo)
    return out


def gemm_backward(grad_out, weight, padded_shape, geom, xp=None):
    """(grad_xp (N, C_in, Hp, Wp), grad_weight or None): the two GEMMs of conv2d's backward, block by block.

    Per sample and group: grad_weight += grad_out (C_out/g, M) @ columns.T (M, K), which needs the
    padded input `xp` (without it only grad_xp is computed, as conv_transpose2d needs); column
    gradients weight.T @ grad_out (K, M) are summed into grad_xp with one strided slice-add per
    kernel offset and block (no np.add.at). Threads sum private grad_weight (and, for row bands,
    grad_xp) copies.
    """
    n, c_out = grad_out.shape[:2]
    _, c_g, kh, kw = weight.shape
    g, (ho, wo), (sh, sw), (dh, dw) = geom.groups, geom.out, geom.stride, geom.dilation
    og, k = c_out // g, c_g * kh * kw
    dtype = np.result_type(grad_out, weight)
    w_t = weight.reshape(g, og, k).transpose(0, 2, 1)
    win = None if xp is None else windows(xp, (kh, kw), geom.stride, geom.dilation, geom.out)
    todo = blocks(n, ho, max(g * k, c_out) * wo * dtype.itemsize)
    bands = any(r1 - r0 != ho for _, _, r0, r1 in todo)
    shared = None if bands else np.zeros(padded_shape, dtype=dtype)

    def work(part):
        grad_xp = np.zeros(padded_shape, dtype=dtype) if bands else shared
        grad_w = None if xp is None else np.zeros((g, og, k), dtype=dtype)
        scratch = threads.scratch(dtype)
        buf = scratch("columns", (max((b[1] - b[0]) * (b[3] - b[2]) for b in part) * g * k * wo,))
        for n0, n1, r0, r1 in part:
            nb, rows = n1 - n0, r1 - r0
            go = grad_out[n0:n1, :, r0:r1].reshape(nb, g, og, rows * wo)  # a copy only if grad_out is strided
            if xp is not None:
                cols = _columns([win], (n0, n1, r0, r1), g, buf)  # (nb, g, K, rows*W_out)
                grad_w += np.matmul(go, cols.transpose(0, 1, 3, 2), out=scratch("grad_w", (nb, g, og, k))).sum(axis=0)
            dcols = np.matmul(w_t, go, out=scratch("dcols", (nb, g, k, rows * wo)))  # one BLAS call per (n, g)
            dcols = dcols.reshape(nb, g * c_g, kh, kw, rows, wo)
            target = grad_xp[n0:n1]
            for u in range(kh):
                top = u * dh + r0 * sh
                for v in range(kw):
                    target[:, :, top:top + sh * (rows - 1) + 1:sh, v * dw:v * dw + sw * (wo - 1) + 1:sw] += \
                        dcols[:, :, u, v]
        return grad_xp, grad_w

    results = threads.run_parts(work, todo)
    grad_xp = sum(r[0] for r in results[1:]) + results[0][0] if bands else shared
    if xp is None:
        return grad_xp, None
    grad_w = results[0][1]
    for r in results[1:]:
        grad_w += r[1]
    return grad_xp, grad_w.reshape(c_out, c_g, kh, kw)


def col2im_add(cols, padded_shape, kernel, stride, dilation):
    """Sum columns (N, C, kh, kw, H_out, W_out) back into a zero (N, C, Hp, Wp) image.

    The adjoint of `windows`: one strided slice-add per kernel offset (u, v), no np.add.at.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = cols.shape[4:]
    xp = np.zeros(padded_shape, dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, :, u * dh:u * dh + sh * (ho - 1) + 1:sh, v * dw:v * dw + sw * (wo - 1) + 1:sw] += cols[:, :, u, v]
    return xp
