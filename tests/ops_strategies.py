"""Hypothesis strategies for `conv_course.ops`: argument sets that are valid together.

Arrays come from a numpy Generator seeded by hypothesis (fast to draw, shrinks by seed);
shapes, strides, paddings, dilations and groups are drawn so that the output is at least 1x1.
"""

import numpy as np
from hypothesis import strategies as st

DTYPES = st.sampled_from([np.float32, np.float64])


def int_or_pair(lo, hi):
    """An int, or a pair of ints, in [lo, hi]."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.tuples(one, one))


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@st.composite
def conv2d_cases(draw, max_kernel=4, max_extra=6, max_channels=3, strings=True, dtypes=DTYPES):
    """(x, weight, bias or None, kwargs) for conv2d: kwargs has stride, padding, dilation, groups."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, max_channels)), groups * draw(st.integers(1, max_channels))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 2))
    choices = [int_or_pair(0, 2)] + ([st.sampled_from(["valid", "same"])] if strings else [])
    padding = draw(st.one_of(*choices))
    if padding == "same":
        stride = 1
    pads = (0, 0) if isinstance(padding, str) else as_pair(padding)
    dil = as_pair(dilation)
    sizes = [max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, max_extra))
             for k, d, p in zip((kh, kw), dil, pads)]
    n = draw(st.integers(1, 2))
    dtype = draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c_in, *sizes)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, kh, kw)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype) if draw(st.booleans()) else None
    return x, weight, bias, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@st.composite
def conv_transpose2d_cases(draw):
    """(x, weight (C_in, C_out // groups, kh, kw), bias or None, kwargs) for conv_transpose2d."""
    groups = draw(st.integers(1, 3))
    c_in, c_out_g = groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, dilation = as_pair(draw(int_or_pair(1, 3))), as_pair(draw(int_or_pair(1, 2)))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    full = [(n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip((h, w), stride, dilation, (kh, kw), out_pad)]
    padding = tuple(draw(st.integers(0, (f - 1) // 2)) for f in full)
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_in, c_out_g, kh, kw)).astype(dtype)
    bias = rng.standard_normal(c_out_g * groups).astype(dtype) if draw(st.booleans()) else None
    return x, weight, bias, dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups,
                                 dilation=dilation)


@st.composite
def pool_cases(draw):
    """(x, kwargs) for max_pool2d / avg_pool2d: kernel_size, stride (maybe None), padding <= kernel/2."""
    kernel = draw(int_or_pair(1, 4))
    kh, kw = as_pair(kernel)
    stride = draw(st.one_of(st.none(), int_or_pair(1, 3)))
    padding = draw(st.one_of(st.integers(0, min(kh, kw) // 2), st.tuples(st.integers(0, kh // 2),
                                                                         st.integers(0, kw // 2))))
    ph, pw = as_pair(padding)
    h, w = max(1, kh - 2 * ph) + draw(st.integers(0, 6)), max(1, kw - 2 * pw) + draw(st.integers(0, 6))
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)).astype(dtype)
    return x, dict(kernel_size=kernel, stride=stride, padding=padding)
