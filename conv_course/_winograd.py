"""Winograd minimal filtering for 3x3, stride-1 convolutions: F(m x m, 3 x 3) with m = 2 or 4.

Each (m + 2) x (m + 2) input tile d (tiles overlap by 2) gives an m x m output tile
    y = A^T [(G g G^T) * (B^T d B)] A          (* elementwise, g the 3x3 kernel),
so the multiply-adds over input channels become (m + 2)^2 independent matrix products
(C_out x C_in) @ (C_in x tiles) instead of 9*m^2 / (m + 2)^2 times as many in im2col form:
2.25x fewer for F(2, 3), 4x fewer for F(4, 3) (which loses about one more decimal digit in float32).
The transforms are separable: each is two thin matrix products over the gathered tiles.
Reference: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.

Shapes: xp (N, C_in, Hp, Wp) already padded, weight (C_out, C_in, 3, 3), output (N, C_out, Hp - 2, Wp - 2).
"""

import numpy as np

from . import _conv_fast, _threads

__all__ = ["MATRICES", "MIN_CHANNELS", "transform_weight", "conv3x3"]

# m -> (B^T (t x t), G (t x 3), A^T (m x t)), t = m + 2.
MATRICES = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}
# ops takes this path when C_in and C_out are both at least this (below, the transforms cost more than they save).
MIN_CHANNELS = 8
# Gathered tiles per block: the block's transformed tiles ((m + 2)^2 * C * tiles floats) stay near cache.
_BLOCK_BYTES = 1 << 20


def _matrices(m, dtype):
    """(B^T, G, A^T) of F(m, 3) as arrays of `dtype` (G computed in float64, then rounded)."""
    bt, g, at = MATRICES[m]
    return np.array(bt, dtype), np.array(g, dtype), np.array(at, dtype)


def transform_weight(weight, m):
    """((m + 2)^2, C_out, C_in) transformed kernels G g G^T, index a*(m + 2) + b; weight (C_out, C_in, 3, 3)."""
    _, g, _ = _matrices(m, np.float64)
    u = g @ weight.astype(np.float64) @ g.T  # (C_out, C_in, t, t)
    t = m + 2
    return np.ascontiguousarray(u.transpose(2, 3, 0, 1).reshape(t * t, *weight.shape[:2]), dtype=weight.dtype)


def conv3x3(xp, weight, bias=None, m=4):
    """(N, C_out, Hp - 2, Wp - 2): the valid 3x3 cross-correlation of padded `xp` (N, C_in, Hp, Wp), + bias (C_out,).

    Floating dtypes only (the transforms divide). Blocks of tiles are shared out among threads.
    """
    n, c_in, hp, wp = xp.shape
    c_out = weight.shape[0]
    ho, wo, t = hp - 2, wp - 2, m + 2
    th, tw = -(-ho // m), -(-wo // m)
    dtype = xp.dtype
    # Tiles cover th*m + 2 rows and tw*m + 2 columns: extend the input with zeros at the bottom/right.
    if (th * m + 2, tw * m + 2) != (hp, wp):
        ext = np.zeros((n, c_in, th * m + 2, tw * m + 2), dtype)
        ext[:, :, :hp, :wp] = xp
        xp = ext
    bt, _, at = _matrices(m, dtype)
    u = transform_weight(weight, m)
    s_n, s_c, s_h, s_w = xp.strides
    # tiles[n, c, i, j, a, b] = xp[n, c, i*m + a, j*m + b]
    tiles = np.ndarray((n, c_in, th, tw, t, t), dtype, xp, 0, (s_n, s_c, m * s_h, m * s_w, s_h, s_w))
    out = np.empty((n, c_out, th * m, tw * m), dtype)
    # out6[n, o, i, r, j, s] = out[n, o, i*m + r, j*m + s]
    out6 = out.reshape(n, c_out, th, m, tw, m)
    todo = _conv_fast.blocks(n, th, t * t * max(c_in, c_out) * tw * dtype.itemsize, _BLOCK_BYTES)

    def work(part):
        most = max((b[1] - b[0]) * (b[3] - b[2]) for b in part) * tw
        d_buf = np.empty(t * t * c_in * most, dtype)
        for n0, n1, r0, r1 in part:
            nb, rows = n1 - n0, r1 - r0
            p = nb * rows * tw
            d = d_buf[:t * t * c_in * p].reshape(t, t, c_in, nb, rows, tw)
            np.copyto(d, tiles[n0:n1, :, r0:r1].transpose(4, 5, 1, 0, 2, 3))
            v = np.matmul(bt, (bt @ d.reshape(t, -1)).reshape(t, t, -1))  # [a, b, c*p] = (B^T d B)[a, b]
            mm = np.matmul(u, v.reshape(t * t, c_in, p))  # ((t*t), C_out, p)
            y = np.matmul(at, (at @ mm.reshape(t, -1)).reshape(m, t, -1))  # [r, s, o*p]
            if bias is not None:
                y.reshape(m, m, c_out, p)[...] += bias[:, None]
            np.copyto(out6[n0:n1, :, r0:r1].transpose(3, 5, 1, 0, 2, 4),
                      y.reshape(m, m, c_out, nb, rows, tw))

    _threads.run_parts(work, todo)
    if (th * m, tw * m) != (ho, wo):
        out = np.ascontiguousarray(out[:, :, :ho, :wo])
    return out
