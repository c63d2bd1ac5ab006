"""Named classic 2-D kernels (filters), as float64 arrays ready for cross-correlation.

All kernels are written the way `conv_course.ops.corr2d` and `torch.nn.functional.conv2d`
use them: cross-correlation, no flip. `sobel_x` is positive where brightness increases
to the right, so it responds to *vertical* edges.
"""

import numpy as np

__all__ = ["identity", "box_blur", "gaussian", "sharpen", "sobel_x", "sobel_y",
           "laplacian", "emboss", "PRESETS", "names", "get"]


def _check_size(name, size):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"{name}: `size` must be a positive odd integer; got {size!r}")
    return int(size)


def identity(size=3):
    """(size, size) kernel with a single 1 in the centre: the output equals the input."""
    size = _check_size("identity", size)
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


def box_blur(size=3):
    """(size, size) kernel of equal weights 1/size**2: the local mean."""
    size = _check_size("box_blur", size)
    return np.full((size, size), 1.0 / size**2)


def gaussian(size=5, sigma=1.0):
    """(size, size) sampled Gaussian exp(-(u**2 + v**2) / (2 sigma**2)), normalised to sum 1."""
    size = _check_size("gaussian", size)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"gaussian: `sigma` must be a positive number; got {sigma!r}")
    u = np.arange(size) - size // 2
    g = np.exp(-(u**2) / (2.0 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def sharpen():
    """3x3 sharpen: 5 at the centre, -1 at the four neighbours (identity plus a Laplacian edge boost)."""
    return np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def sobel_x():
    """3x3 Sobel derivative along x (columns): responds to vertical edges."""
    return np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_y():
    """3x3 Sobel derivative along y (rows): responds to horizontal edges."""
    return sobel_x().T.copy()


def laplacian():
    """3x3 discrete Laplacian (4-neighbour): zero on flat and linear ramps, large at edges."""
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def emboss():
    """3x3 emboss: a directional derivative plus the identity, lit from the top left."""
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


PRESETS = {
    "identity": identity,
    "box_blur": box_blur,
    "gaussian": gaussian,
    "sharpen": sharpen,
    "sobel_x": sobel_x,
    "sobel_y": sobel_y,
    "laplacian": laplacian,
    "emboss": emboss,
}


def names():
    """The preset names, in teaching order."""
    return list(PRESETS)


def get(name, **kwargs):
    """The preset kernel called `name` (a fresh array), e.g. ``get("gaussian", size=5, sigma=1.0)``."""
    if name not in PRESETS:
        raise ValueError(f"kernels.get: unknown kernel {name!r}; choose one of {names()}")
    return PRESETS[name](**kwargs)
