"""Winograd minimal filtering for 3x3, stride-1 convolutions: F(m x m, 3 x 3) with m = 2 or 4.

Each (m + 2) x (m + 2) input tile d (tiles overlap by 2) gives an m x m output tile
    y = A^T [(G g G^T) * (B^T d B)] A          (* elementwise, g the 3x3 kernel),
so the multiply-adds over input channels become (m + 2)^2 independent matrix products
(C_out x C_in) @ (C_in x tiles) instead of 9*m^2 / (m + 2)^2 times as many in im2col form:
2.25x fewer for F(2, 3), 4x fewer for F(4, 3) (which loses about one more decimal digit in float32).
The transforms are separable: each is two thin matrix products over the gathered tiles.
Reference: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.

Shapes: x (N, C_in, H, W), padded to (N, C_in, Hp, Wp) block by block (see `_padded_rows`),
weight (C_out, C_in, 3, 3), output (N, C_out, Hp - 2, Wp - 2).
"""

import numpy as np

from . import threads

__all__ = ["MATRICES", "MIN_CHANNELS", "MIN_MACS", "transform_weight", "conv3x3", "backward3x3"]

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
# ops takes this path when C_in and C_out are both at least MIN_CHANNELS and the direct sum needs at
# least MIN_MACS multiply-adds: below (e.g. 8x16x32x32 -> 16, forward), the transforms cost more than
# the products they save.
MIN_CHANNELS = 32
MIN_MACS = 1 << 24
# Gathered tiles per block: the block's transformed tiles ((m + 2)^2 * C * tiles floats) stay near cache.
_BLOCK_BYTES = 2 << 20


def _matrices(m, dtype):
    """(B^T, G, A^T) of F(m, 3) as arrays of `dtype` (G computed in float64, then rounded)."""
    bt, g, at = MATRICES[m]
    return np.array(bt, dtype), np.array(g, dtype), np.array(at, dtype)


def transform_weight(weight, m):
    """((m + 2)^2, C_out, C_in) transformed kernels G g G^T, index a*(m + 2) + b; weight (C_out, C_in, 3, 3).

    One product: ((m + 2)^2, 9) @ weight as (9, C_out*C_in), whose row a*(m + 2) + b holds
    G[a, u] * G[b, v] at column u*3 + v (computed in float64, then rounded to weight's dtype).
    """
    _, g, _ = _matrices(m, np.float64)
    t = m + 2
    kron = np.einsum("au,bv->abuv", g, g).reshape(t * t, 9).astype(weight.dtype)
    return (kron @ weight.reshape(-1, 9).T).reshape(t * t, *weight.shape[:2])  # BLAS reads the transpose as is


def _tile_view(img, m, th, tw):
    """View (N, C, th, tw, m + 2, m + 2) of `img`: [n, c, i, j, a, b] = img[n, c, i*m + a, j*m + b]."""
    s_n, s_c, s_h, s_w = img.strides
    t = m + 2
    return np.ndarray((img.shape[0], img.shape[1], th, tw, t, t), img.dtype, img, 0,
                      (s_n, s_c, m * s_h, m * s_w, s_h, s_w))


def _padded_rows(x, pads, block, m, tw, scratch):
    """(nb, C, rows*m + 2, tw*m + 2) scratch copy of the padded input rows that tile rows r0..r1 read.

    Padded row R (column S) is x's row R - top (column S - left), zero outside x: the padding is
    written only around each block's rows, so no padded copy of the whole input is made.
    """
    n0, n1, r0, r1 = block
    (top, _), (left, _) = pads
    h, w = x.shape[2:]
    slab = scratch("slab", (n1 - n0, x.shape[1], (r1 - r0) * m + 2, tw * m + 2))
    rows, cols = slab.shape[2:]
    i0, i1 = max(0, top - r0 * m), min(rows, top + h - r0 * m)  # slab rows that hold x's rows
    j0, j1 = max(0, left), min(cols, left + w)
    slab[:, :, :i0] = 0
    slab[:, :, i1:] = 0
    slab[:, :, i0:i1, :j0] = 0
    slab[:, :, i0:i1, j1:] = 0
    slab[:, :, i0:i1, j0:j1] = x[n0:n1, :, r0 * m + i0 - top:r0 * m + i1 - top, j0 - left:j1 - left]
    return slab


def _grid(x, pads, m):
    """((Hp, Wp), (th, tw)): the padded size of x and the tile rows and columns that cover its output."""
    (top, bottom), (left, right) = pads
    hp, wp = x.shape[2] + top + bottom, x.shape[3] + left + right
    return (hp, wp), (-(-(hp - 2) // m), -(-(wp - 2) // m))


def _block_tiles(x, pads, block, m, grid, scratch):
    """(tiles view, the block in its coordinates): the (m + 2) x (m + 2) input tiles of `block`.

    `grid` is (th, tw), the tile rows and columns. Without padding, and with tiles that cover x
    exactly, they are read from x itself; otherwise from the block's padded rows (`_padded_rows`).
    """
    (th, tw), (n0, n1, r0, r1) = grid, block
    if pads == ((0, 0), (0, 0)) and x.shape[2:] == (th * m + 2, tw * m + 2):
        return _tile_view(x, m, th, tw), block
    return _tile_view(_padded_rows(x, pads, block, m, tw, scratch), m, r1 - r0, tw), (0, n1 - n0, 0, r1 - r0)


def _input_transform(tiles, block, bt, scratch):
    """((m + 2)^2, C, p) B^T d B of the block's p tiles, gathered as [a, b, c, tile] first (in scratch "d").

    B^T from the left over a (into scratch "r"), then over b (back into "d").
    """
    n0, n1, r0, r1 = block
    t, c = bt.shape[0], tiles.shape[1]
    cp = c * (n1 - n0) * (r1 - r0) * tiles.shape[3]
    d = scratch("d", (t, t, c, n1 - n0, r1 - r0, tiles.shape[3]))
    np.copyto(d, tiles[n0:n1, :, r0:r1].transpose(4, 5, 1, 0, 2, 3))
    r = np.matmul(bt, d.reshape(t, -1), out=scratch("r", (t, t * cp)))
    return np.matmul(bt, r.reshape(t, t, cp), out=scratch("d", (t, t, cp))).reshape(t * t, c, -1)


def conv3x3(x, weight, bias=None, m=4, pads=((0, 0), (0, 0))):
    """(N, C_out, Hp - 2, Wp - 2): the valid 3x3 cross-correlation of x (N, C_in, H, W) padded by `pads`, + bias.

    pads ((top, bottom), (left, right)) gives Hp = H + top + bottom and Wp = W + left + right.
    Floating dtypes only (the transforms divide). Blocks of tiles are shared out among threads; each
    copies its block's padded input rows (see `_padded_rows`). The output side applies A^T from the
    left over a, then A from the right over b, so that the result has its columns s last and is
    written back in runs of whole output rows.
    """
    n, c_in = x.shape[:2]
    (hp, wp), (th, tw) = _grid(x, pads, m)
    c_out, t, dtype = weight.shape[0], m + 2, x.dtype
    bt, _, at = _matrices(m, dtype)
    a = np.ascontiguousarray(at.T)
    out = np.empty((n, c_out, th * m, tw * m), dtype)
    out6 = out.reshape(n, c_out, th, m, tw, m)  # [n, o, i, r, j, s] = out[n, o, i*m + r, j*m + s]
    todo = threads.blocks(n, th, t * t * max(c_in, c_out) * tw * dtype.itemsize, _BLOCK_BYTES)

    def work(part):
        u = transform_weight(weight, m)  # in each part, where BLAS runs on one thread (see threads)
        scratch = threads.scratch(dtype)
        for n0, n1, r0, r1 in part:
            v = _input_transform(*_block_tiles(x, pads, (n0, n1, r0, r1), m, (th, tw), scratch), bt, scratch)
            op = c_out * v.shape[2]
            mm = np.matmul(u, v, out=scratch("mm", (t * t, c_out, v.shape[2])))
            z = np.matmul(at, mm.reshape(t, -1), out=scratch("z", (m, t * op))).reshape(m, t, op)  # [r, b, o*p]
            y = np.matmul(z.transpose(0, 2, 1), a, out=scratch("y", (m, op, m)))  # [r, o*p, s]
            y = y.reshape(m, c_out, n1 - n0, r1 - r0, tw, m)  # [r, o, n, i, j, s]
            if bias is not None:
                y += bias[:, None, None, None, None]
            np.copyto(out6[n0:n1, :, r0:r1].transpose(3, 1, 0, 2, 4, 5), y)

    threads.run_parts(work, todo)
    if (th * m, tw * m) != (hp - 2, wp - 2):
        out = np.ascontiguousarray(out[:, :, :hp - 2, :wp - 2])
    return out


def _overlap_add(grad_xp, dz, block, m, q_buf, add=True):
    """Add the block's input-tile gradients dz [a, b, c, n, i, j] into grad_xp (N, C, (th+1)*m, (tw+1)*m).

    Tile (i, j) covers rows i*m + a and columns j*m + b, a, b < m + 2: neighbours overlap by 2. The
    tiles are first summed by phase (row i*m + a is phase a of row block i), with the tile index
    innermost, then added to the image in one strided addition; or, with add=False, written over
    the block's whole region (blocks of whole samples share no rows). `q_buf` is a flat scratch buffer.
    """
    n0, n1, r0, r1 = block
    t, _, c, nb, rows, tw = dz.shape
    q = q_buf[:m * m * c * nb * (rows + 1) * (tw + 1)].reshape(m, m, c, nb, rows + 1, tw + 1)  # [a, b, c, n, i, j]:
    q[..., rows, :] = 0  # row i*m + a, column j*m + b; the last tile row and column start at zero
    q[..., :rows, tw] = 0
    q[..., :rows, :tw] = dz[:m, :m]
    q[:, :t - m, ..., :rows, 1:] += dz[:m, m:]
    q[:t - m, :, ..., 1:, :tw] += dz[m:, :m]
    q[:t - m, :t - m, ..., 1:, 1:] += dz[m:, m:]
    target = np.reshape(grad_xp[n0:n1, :, r0 * m:(r1 + 1) * m], (nb, c, rows + 1, m, tw + 1, m), copy=False)
    if add:
        target.transpose(3, 5, 1, 0, 2, 4)[...] += q
    else:
        np.copyto(target.transpose(3, 5, 1, 0, 2, 4), q)


def backward3x3(grad_out, x, weight, m=4, pads=((0, 0), (0, 0))):
    """(grad_xp (N, C_in, Hp', Wp'), grad_weight (C_out, C_in, 3, 3)) of conv3x3(x, weight, pads=pads).

    grad_out (N, C_out, Hp - 2, Wp - 2), x (N, C_in, H, W) padded by `pads` to (Hp, Wp) as in
    `conv3x3`; grad_xp is the gradient of the padded input, and more: Hp' >= Hp and Wp' >= Wp, and
    its top-left (Hp, Wp) corner is the gradient (crop it; x's own is inside the pads). The transpose
    of the forward algorithm, with the same tiles and matrices: with dY' = A dY A^T per output tile,
    grad_weight = G^T [sum over tiles of dY' * (B^T d B)] G and the input tile gradients are
    B [U^T dY'] B^T, summed where tiles overlap. Both sums are (m + 2)^2 matrix products:
    (C_out x tiles) @ (tiles x C_in) and (C_in x C_out) @ (C_out x tiles).
    """
    n, c_in = x.shape[:2]
    c_out, t, dtype = grad_out.shape[1], m + 2, x.dtype
    _, (th, tw) = _grid(x, pads, m)
    ho, wo = grad_out.shape[2:]
    if (th * m, tw * m) != (ho, wo):  # output tiles past the edge carry zero gradient
        ext = np.zeros((n, c_out, th * m, tw * m), dtype)
        ext[:, :, :ho, :wo] = grad_out
        grad_out = ext
    dy6 = grad_out.reshape(n, c_out, th, m, tw, m)  # [n, o, i, r, j, s]
    bt, g, at = _matrices(m, dtype)
    b, a = np.ascontiguousarray(bt.T), np.ascontiguousarray(at.T)
    todo = threads.blocks(n, th, t * t * max(c_in, c_out) * tw * dtype.itemsize, _BLOCK_BYTES)
    bands = any(r1 - r0 != th for _, _, r0, r1 in todo)  # blocks that share tile rows add into private copies
    padded = (n, c_in, (th + 1) * m, (tw + 1) * m)  # room for the last tiles' 2 overlapping rows, columns
    shared = None if bands else np.empty(padded, dtype)  # each block writes its whole samples

    def work(part):  # every product in here, on one BLAS thread per part (see threads)
        u_t = transform_weight(weight, m).transpose(0, 2, 1)  # (t*t, C_in, C_out)
        grad_xp = np.zeros(padded, dtype) if bands else shared
        scratch = threads.scratch(dtype)
        q_buf = scratch("q", (max(m * m * c_in * (b[1] - b[0]) * (b[3] - b[2] + 1) * (tw + 1) for b in part),))
        acc, prod = scratch("acc", (t * t, c_out, c_in)), scratch("prod", (t * t, c_out, c_in))
        acc[...] = 0
        for n0, n1, r0, r1 in part:
            v = _input_transform(*_block_tiles(x, pads, (n0, n1, r0, r1), m, (th, tw), scratch), bt,
                                 scratch)  # (t*t, C_in, p)
            p = v.shape[2]
            # Gathered as [r, o, tile, s], in runs of whole rows; A from the left over s (on the transposed
            # view), giving [r, b, o*p], then over r: (A dY A^T)[a, b].
            dy = scratch("dy", (m, c_out, p, m))
            np.copyto(dy.reshape(m, c_out, n1 - n0, r1 - r0, tw, m), dy6[n0:n1, :, r0:r1].transpose(3, 1, 0, 2, 4, 5))
            w1 = np.matmul(a, dy.reshape(m, -1, m).transpose(0, 2, 1), out=scratch("w1", (m, t, c_out * p)))
            w = np.matmul(a, w1.reshape(m, -1), out=scratch("w", (t, t * c_out * p))).reshape(t * t, c_out, p)
            acc += np.matmul(w, v.transpose(0, 2, 1), out=prod)
            z = np.matmul(u_t, w, out=scratch("z", (t * t, c_in, p))).reshape(t, -1)  # [a, b, c*p]
            r = np.matmul(b, z, out=scratch("r", (t, t * c_in * p)))
            dz = np.matmul(b, r.reshape(t, t, -1), out=scratch("d", (t, t, c_in * p)))  # (B z B^T)[i, j]
            _overlap_add(grad_xp, dz.reshape(t, t, c_in, n1 - n0, r1 - r0, tw), (n0, n1, r0, r1), m, q_buf,
                         add=bands)
        s = acc.reshape(t, t, c_out, c_in).astype(np.float64)
        return grad_xp, np.tensordot(np.tensordot(g64, s, axes=(0, 0)), g64, axes=(1, 0))  # G^T s G: [u, o, c, v]

    g64 = g.astype(np.float64)
    results = threads.run_parts(work, todo)
    grad_xp = sum(r[0] for r in results) if bands else shared
    grad_w = sum(r[1] for r in results)
    return grad_xp, np.ascontiguousarray(grad_w.transpose(1, 2, 0, 3), dtype=dtype)
