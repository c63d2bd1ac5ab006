"""Checkers for assignment 06: im2col and convolution as one matrix multiplication.

Students write ``im2col(x, kernel_size, stride=1, padding=0)`` -> (N, C*kh*kw, H_out*W_out)
(rows ordered (C, kh, kw), columns row by row over the output) and
``conv2d_matmul(x, weight, bias=None, stride=1, padding=0)`` -> (N, C_out, H_out, W_out).
Both are compared with `conv_course.ops` on seeded cases; a wrong answer is matched against
deliberately wrong variants of the reference to name the likely bug.

The ``"vectorized"`` group also proves there is no Python loop over output pixels: it counts
the lines of the student's own code that Python executes (``sys.settrace`` line events, which
fire once per loop iteration, comprehension step or ``np.vectorize`` call) for a 4x4 and a
32x32 output. Vectorized code runs the same lines for both; a loop over output rows or pixels
runs at least 28 more. Loops over the kh*kw kernel offsets, the batch or the channels are
allowed: those sizes are the same in both runs.
"""

import os
import sys
import sysconfig

import numpy as np

from conv_course import PACKAGE_DIR, ops

from ._core import call_student, check_array, checker, forbid_references, hidden_seed, likely_bug
from ._i18n import N_, _
from .conv import conv_variants

__all__ = ["check_im2col", "check_conv2d_matmul", "count_student_lines"]

_LIBRARY_DIRS = tuple(sorted({os.path.realpath(sysconfig.get_paths()[key]) + os.sep
                              for key in ("stdlib", "platstdlib", "purelib", "platlib")}))

# (x shape, kernel_size, stride, padding); the values come from a seed that differs between visible
# and hidden runs (the hidden one from the course secret, when set: `hidden_seed`).
_CASES = {
    "basic": [((1, 1, 3, 3), (2, 2), 1, 0), ((2, 3, 5, 7), (2, 3), 1, 0), ((1, 2, 4, 4), (3, 3), 1, 0)],
    "stride_padding": [((1, 1, 5, 5), (3, 3), 2, 1), ((2, 2, 6, 7), (2, 3), 2, 0),
                       ((1, 3, 7, 5), (3, 2), 3, 2), ((1, 1, 4, 6), (3, 3), 1, 1)],
}
_HIDDEN_CASES = {
    "basic": [((3, 2, 6, 5), (3, 2), 1, 0), ((1, 4, 7, 7), (1, 1), 1, 0), ((2, 1, 8, 3), (4, 3), 1, 0)],
    "stride_padding": [((2, 2, 9, 8), (3, 3), 2, 2), ((1, 3, 8, 11), (2, 4), 3, 1),
                       ((1, 2, 5, 5), (5, 5), 1, 2), ((3, 1, 10, 7), (3, 2), 2, 1)],
}
_SMALL, _BIG = 6, 34          # input sizes for the loop count: outputs 4x4 and 32x32 with a 3x3 kernel
_LOOP_LINES = 16               # extra executed lines that reveal a loop (a row loop adds >= 28)

# diagnoses that im2col and conv2d_matmul share
_ONE_SIDE = N_("padding on one side only: pad top and bottom, left and right")
_TWICE = N_("padding applied twice: the input was padded by 2*padding")
_TRUNCATED = N_("integer truncation: the output array has an integer dtype, so every value lost its fractional "
                "part; allocate it with the input's dtype")
# conv's diagnoses (`conv.DIAGNOSES`) in this assignment's words: the fix is in the im2col route
_CONV_TEXTS = {
    "flipped": N_("the output equals the true convolution: the kernel is flipped; "
                  "convolution layers cross-correlate (no flip)"),
    "stride_ignored": N_("stride ignored: pass `stride` on to im2col"),
    "padding_ignored": N_("padding ignored: pass `padding` on to im2col"),
    "padding_twice": _TWICE,
    "padding_one_side": _ONE_SIDE,
    "bias_ignored": N_("bias not added: add bias[:, None] to every position of its output channel"),
    "truncated": _TRUNCATED,
}


def _cases(group, hidden, checker_name):
    table = _HIDDEN_CASES if hidden else _CASES
    if group not in table:
        names = sorted(table) + ["vectorized"]
        raise ValueError(f"{checker_name}: `group` must be one of {names}; got {group!r}")
    rng = np.random.default_rng(hidden_seed(f"matmul/{group}", 606) if hidden else 6)
    for shape, k, s, p in table[group]:
        x = rng.standard_normal(shape)
        if shape == (1, 1, 3, 3):  # the hand-checkable case: 1..9
            x = np.arange(1.0, 10.0).reshape(shape)
        yield x, k, s, p, rng


def _student_code(filename):
    """True for code the student wrote (a notebook cell or script), False for libraries."""
    if filename.startswith("<"):
        return not filename.startswith("<frozen")  # <ipython-input-...>, <string>, <stdin>: user code
    path = os.path.realpath(filename)
    return not path.startswith(_LIBRARY_DIRS + (PACKAGE_DIR + os.sep,))


def count_student_lines(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` and count the lines of student code Python executes.

    Returns:
        (result, lines): the call's result and the number of ``line`` trace events raised in
        code outside the installed libraries and conv_course. A loop body of b lines run n
        times contributes about n*b.
    """
    count = [0]
    cache = {}

    def local(frame, event, arg):
        if event == "line":
            count[0] += 1
        return local

    def tracer(frame, event, arg):
        name = frame.f_code.co_filename
        if name not in cache:
            cache[name] = _student_code(name)
        return local if cache[name] else None

    with forbid_references("warm-up"):  # patch the reference modules once, untraced: scanning torch
        pass                             # under a tracer takes minutes once torch is imported
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return result, count[0]


def _fmt_case(x, k, s, p, **extra):
    case = {"x.shape": tuple(x.shape), "kernel_size": k, "stride": s, "padding": p}
    case.update(extra)
    return case


def _pad(x, top, bottom, left, right):
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _im2col_variants(x, k, s, p):
    """Wrong versions of im2col(x, k, s, p): name -> (array, diagnosis)."""
    n, c = x.shape[:2]
    want = ops.im2col(x, k, stride=s, padding=p)
    ho = ops.conv_output_size(x.shape[2], k[0], s, p)
    wo = ops.conv_output_size(x.shape[3], k[1], s, p)
    grid = want.reshape(n, c, k[0], k[1], ho, wo)
    v = {}
    if k[0] != k[1] and min(x.shape[2] + 2 * p - k[1], x.shape[3] + 2 * p - k[0]) >= 0:
        v["kernel_swapped"] = (ops.im2col(x, (k[1], k[0]), stride=s, padding=p),
                               _("kernel height and width swapped: kernel_size is (kh, kw)"))
    if s != 1:
        v["stride_ignored"] = (ops.im2col(x, k, stride=1, padding=p),
                               _("stride ignored: windows must start every `stride` pixels"))
    if p != 0:
        v["padding_ignored"] = (ops.im2col(x, k, stride=s, padding=0),
                                _("padding ignored: pad the input with `padding` zeros on every side first"))
        v["padding_twice"] = (ops.im2col(x, k, stride=s, padding=2 * p), _(_TWICE))
        v["padding_after"] = (ops.im2col(_pad(x, 0, p, 0, p), k, stride=s), _(_ONE_SIDE))
        v["padding_before"] = (ops.im2col(_pad(x, p, 0, p, 0), k, stride=s), _(_ONE_SIDE))
    v.update({
        "transposed": (want.transpose(0, 2, 1),
                       _("the result is transposed: rows must be the C*kh*kw window entries and "
                         "columns the H_out*W_out output positions, shape (N, C*kh*kw, H_out*W_out)")),
        "rows_khkwc": (grid.transpose(0, 2, 3, 1, 4, 5).reshape(want.shape),
                       _("rows are ordered (kh, kw, C); they must be ordered (C, kh, kw), channel "
                         "first, the order weight.reshape(C_out, -1) flattens a kernel")),
        "cols_colmajor": (grid.transpose(0, 1, 2, 3, 5, 4).reshape(want.shape),
                          _("columns walk down the image first; they must go row by row "
                            "(column index = i * W_out + j)")),
        "short": (grid[..., :-1, :-1].reshape(n, c * k[0] * k[1], -1),
                  _("output one row and one column short: H_out = (H + 2*padding - kh) // stride + 1")),
        "float32": (want.astype(np.float32), _("the columns are float32, losing precision: allocate them with "
                                               "dtype=x.dtype")),
    })
    v["int"] = (np.trunc(want), _(_TRUNCATED))
    return v


def _conv_variants(x, weight, bias, s, p):
    """Wrong versions of conv2d(x, weight, bias, s, p): conv's (`conv.conv_variants`, worded for
    the im2col route) and the bugs of the matmul itself. name -> (wrong, diagnosis)."""
    want = ops.conv2d(x, weight, bias, stride=s, padding=p)
    n, c_out, ho, wo = want.shape
    c_in, kh, kw = weight.shape[1:]
    # weight flattened (kh, kw, C_in) while im2col rows are (C_in, kh, kw)
    scrambled = weight.transpose(0, 2, 3, 1).reshape(c_out, c_in, kh, kw)
    v = conv_variants(x, weight, bias, s, p, formula="H_out = (H + 2*P - K) // S + 1", texts=_CONV_TEXTS)
    v.update({
        "weight_order": (ops.conv2d(x, scrambled, bias, stride=s, padding=p),
                         _("the weight is flattened in a different order than im2col's rows: use "
                           "weight.reshape(C_out, -1), which matches rows ordered (C, kh, kw)")),
        "not_transposed": (want.transpose(0, 2, 3, 1).reshape(want.shape),
                           _("the (H_out*W_out, C_out) product was reshaped straight into "
                             "(C_out, H_out, W_out): transpose it to (C_out, H_out*W_out) first")),
        "hw_swapped": (want.reshape(n, c_out, wo, ho),
                       _("height and width of the output swapped: reshape to (N, C_out, H_out, W_out)")),
    })
    return v


@checker
def check_im2col(im2col, group="basic", hidden=False):
    """Check a student's ``im2col(x, kernel_size, stride=1, padding=0)`` on one case group.

    Args:
        im2col: the student's function; x (N, C, H, W), kernel_size (kh, kw), ints stride/padding;
            must return (N, C*kh*kw, H_out*W_out).
        group: "basic", "stride_padding" or "vectorized" (no Python loop over output pixels).
        hidden: run the hidden seed set.
    Raises:
        AssertionError naming the case, the shapes, a few values and the likely bug.
    """
    if group == "vectorized":
        return _check_vectorized("im2col", im2col, lambda x, w: (x, w.shape[2:]), hidden)
    for x, k, s, p, _rng in _cases(group, hidden, "check_im2col"):
        want = ops.im2col(x, k, stride=s, padding=p)
        variants = _im2col_variants(x, k, s, p)
        case = _fmt_case(x, k, s, p)
        got = call_student(im2col, x.copy(), k, stride=s, padding=p, case=case)
        check_array(got, want, case=case, variants=variants, atol=1e-8, rtol=1e-8)


@checker
def check_conv2d_matmul(conv2d_matmul, group="basic", hidden=False):
    """Check a student's ``conv2d_matmul(x, weight, bias=None, stride=1, padding=0)``.

    Args:
        conv2d_matmul: the student's function; x (N, C_in, H, W), weight (C_out, C_in, kh, kw),
            bias (C_out,) or None; must return (N, C_out, H_out, W_out).
        group: "basic", "stride_padding" or "vectorized" (no Python loop over output pixels).
        hidden: run the hidden seed set.
    Raises:
        AssertionError naming the case, the shapes, a few values and the likely bug.
    """
    if group == "vectorized":
        return _check_vectorized("conv2d_matmul", conv2d_matmul, lambda x, w: (x, w), hidden)
    for i, (x, k, s, p, rng) in enumerate(_cases(group, hidden, "check_conv2d_matmul")):
        c_out = 1 + (i + x.shape[1]) % 3
        weight = rng.standard_normal((c_out, x.shape[1]) + k)
        bias = rng.standard_normal(c_out) if i % 2 == 0 else None
        want = ops.conv2d(x, weight, bias, stride=s, padding=p)
        variants = _conv_variants(x, weight, bias, s, p)
        case = _fmt_case(x, k, s, p, **{"weight.shape": weight.shape, "bias": "given" if bias is not None else None})
        got = call_student(conv2d_matmul, x.copy(), weight.copy(), None if bias is None else bias.copy(),
                           stride=s, padding=p, case=case)
        check_array(got, want, case=case, variants=variants, atol=1e-8, rtol=1e-8)


def _check_vectorized(name, fn, make_args, hidden):
    """Fail if the student's Python work grows with the number of output pixels."""
    rng = np.random.default_rng(hidden_seed(f"matmul/vectorized/{name}", 666) if hidden else 66)
    n, c = (3, 1) if hidden else (2, 2)
    counts = []
    for size in (_SMALL, _BIG):
        x = rng.standard_normal((n, c, size, size))
        w = rng.standard_normal((3, c, 3, 3))
        args = make_args(x, w)
        want = ops.im2col(x, (3, 3)) if name == "im2col" else ops.conv2d(x, w)
        case = {"x.shape": x.shape, "kernel_size": (3, 3)}
        got, lines = count_student_lines(call_student, fn, *args, case=case)
        check_array(got, want, case=case, atol=1e-8, rtol=1e-8)
        counts.append(lines)
    small_out, big_out = _SMALL - 2, _BIG - 2
    name = getattr(fn, "__name__", name)
    if counts[1] - counts[0] >= _LOOP_LINES:
        raise AssertionError(
            _("`{name}` is not vectorized: Python ran {small_lines} lines of your code for a {small}x{small} output "
              "but {big_lines} for a {big}x{big} output (same batch, channels and 3x3 kernel). The work in Python "
              "grows with the number of output pixels, so there is a Python loop over output positions (a for/while "
              "loop, a comprehension, map or np.vectorize).").format(
                name=name, small_lines=counts[0], small=small_out, big_lines=counts[1], big=big_out)
            + " " + likely_bug(_("a Python loop over output pixels (or rows). Build all windows at once: loop over "
                                 "the kh*kw kernel offsets at most, or use np.lib.stride_tricks.sliding_window_view, "
                                 "then do one matmul.")))
