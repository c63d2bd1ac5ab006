"""Internals of `conv_course.ops`: padding, window views, the im2col GEMM and col2im accumulation.

Arguments arrive checked (see `_checks.conv_geometry`) and already in their compute dtype.
Shapes use the book's letters: x (N, C, H, W), weight (C_out, C_in // groups, kh, kw).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["pad", "windows", "gemm_forward", "gemm_grad_weight", "gemm_grad_input", "col2im_add"]

# Column buffers are built a batch chunk at a time, so that one chunk stays in the L2/L3 cache.
_CHUNK_BYTES = 4 << 20


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
    return as_strided(xp, (n, c, kh, kw, ho, wo), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
                      writeable=False)


def _chunk(per_sample_bytes):
    return max(1, _CHUNK_BYTES // max(1, per_sample_bytes))


def gemm_forward(xp, weight, geom):
    """(N, C_out, H_out, W_out) = per group, weight (C_out/g, C_in/g*kh*kw) @ columns (C_in/g*kh*kw, H_out*W_out)."""
    n, c = xp.shape[:2]
    c_out, c_g, kh, kw = weight.shape
    g = geom.groups
    ho, wo = geom.out
    k = c_g * kh * kw
    out = np.empty((n, c_out, ho, wo), dtype=np.result_type(xp, weight))
    w = weight.reshape(g, c_out // g, k)
    if (kh, kw) == (1, 1) and geom.stride == (1, 1):
        np.matmul(w, xp.reshape(n, g, k, ho * wo), out=out.reshape(n, g, c_out // g, ho * wo))
        return out
    win = windows(xp, (kh, kw), geom.stride, geom.dilation, geom.out)
    step = _chunk(c * kh * kw * ho * wo * xp.itemsize)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        cols = np.ascontiguousarray(win[n0:n1]).reshape(n1 - n0, g, k, ho * wo)
        np.matmul(w, cols, out=out[n0:n1].reshape(n1 - n0, g, c_out // g, ho * wo))
    return out


def gemm_grad_weight(grad_out, xp, kernel, geom):
    """(C_out, C_in/g, kh, kw): per group, sum over the batch of grad_out (C_out/g, HW) @ columns.T."""
    n, c = xp.shape[:2]
    c_out = grad_out.shape[1]
    g = geom.groups
    kh, kw = kernel
    ho, wo = geom.out
    k = c // g * kh * kw
    win = windows(xp, kernel, geom.stride, geom.dilation, geom.out)
    go = grad_out.reshape(n, g, c_out // g, ho * wo)
    grad_w = np.zeros((g, c_out // g, k), dtype=np.result_type(grad_out, xp))
    step = _chunk(c * kh * kw * ho * wo * xp.itemsize)
    for n0 in range(0, n, step):
        n1 = min(n, n0 + step)
        cols = np.ascontiguousarray(win[n0:n1]).reshape(n1 - n0, g, k, ho * wo)
        grad_w += np.matmul(go[n0:n1], cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return grad_w.reshape(c_out, c // g, kh, kw)


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


def gemm_grad_input(grad_out, weight, padded_shape, geom):
    """Gradient w.r.t. the padded input (N, C_in, Hp, Wp): columns = weight.T @ grad_out, then col2im."""
    n, c_out = grad_out.shape[:2]
    _, c_g, kh, kw = weight.shape
    g = geom.groups
    ho, wo = geom.out
    w_t = weight.reshape(g, c_out // g, c_g * kh * kw).transpose(0, 2, 1)
    cols = np.matmul(w_t, grad_out.reshape(n, g, c_out // g, ho * wo))
    cols = cols.reshape(n, g * c_g, kh, kw, ho, wo)
    return col2im_add(cols, padded_shape, (kh, kw), geom.stride, geom.dilation)
