"""Checkers for assignment 07: gradients of conv2d, by finite differences and by hand.

Students write ``numerical_gradient(f, x, eps=1e-6)`` (central differences of a scalar function,
one entry at a time) and ``conv2d_backward(grad_out, x, weight, stride=1, padding=0)`` ->
``(grad_x, grad_weight, grad_bias)``, the backward pass of ``conv_course.ops.conv2d`` without
dilation or groups. Expected gradients come from `conv_course.ops.conv2d_backward` (itself tested
against torch autograd); wrong answers are matched against deliberately wrong variants.
"""

import numpy as np

from conv_course import ops

from ._core import call_student, check_array, checker, hidden_seed, likely_bug
from ._i18n import _

__all__ = ["check_numerical_gradient", "check_conv2d_backward"]

# (x shape, weight shape, stride, padding)
_CASES = {
    "bias": [((1, 1, 4, 4), (1, 1, 2, 2), 1, 0), ((2, 3, 5, 6), (4, 3, 3, 2), 1, 0)],
    "weight": [((1, 1, 4, 4), (1, 1, 2, 2), 1, 0), ((2, 3, 5, 6), (4, 3, 3, 2), 1, 0),
               ((3, 2, 6, 5), (2, 2, 2, 3), 1, 0)],
    "input": [((1, 1, 4, 4), (1, 1, 2, 2), 1, 0), ((2, 3, 5, 6), (4, 3, 3, 2), 1, 0),
              ((2, 2, 6, 5), (2, 2, 2, 3), 1, 0)],
    "stride_padding": [((1, 1, 5, 5), (1, 1, 3, 3), 2, 1), ((2, 2, 7, 6), (3, 2, 3, 2), 2, 0),
                       ((1, 3, 6, 7), (2, 3, 2, 3), 1, 2), ((2, 2, 8, 9), (2, 2, 3, 3), 3, 1)],
}
_HIDDEN_CASES = {
    "bias": [((3, 2, 6, 5), (3, 2, 2, 2), 1, 0), ((1, 4, 7, 7), (5, 4, 3, 3), 1, 0)],
    "weight": [((2, 2, 7, 6), (3, 2, 2, 3), 1, 0), ((1, 4, 5, 5), (2, 4, 3, 3), 1, 0)],
    "input": [((2, 2, 7, 6), (3, 2, 2, 3), 1, 0), ((1, 3, 5, 5), (3, 3, 3, 3), 1, 0)],
    "stride_padding": [((2, 2, 9, 8), (2, 2, 3, 3), 2, 2), ((1, 3, 8, 11), (2, 3, 2, 4), 3, 1),
                       ((3, 1, 10, 7), (2, 1, 3, 2), 2, 1)],
}
_PARTS = {"bias": (2,), "weight": (1,), "input": (0,), "stride_padding": (0, 1, 2)}
_NAMES = ("grad_x", "grad_weight", "grad_bias")


def _grad_variants(which, g, x, weight, s, p):
    """Wrong versions of one gradient: name -> (array, diagnosis)."""
    n = x.shape[0]
    grad_x, grad_w, grad_b = ops.conv2d_backward(g, x, weight, stride=s, padding=p)
    ho, wo = g.shape[2:]
    kh, kw = weight.shape[2:]
    v = {}
    if which == "grad_bias":
        v["batch"] = (g.sum(axis=(2, 3)),
                      _("grad_bias not summed over the batch: sum grad_out over axes (0, 2, 3)"))
        v["channels"] = (g.sum(axis=(1, 2, 3)),
                         _("grad_bias summed over the channels: sum over axes (0, 2, 3), keep C_out"))
        v["mean"] = (g.mean(axis=(0, 2, 3)),
                     _("grad_bias averaged: the bias is added at every output pixel, so sum, do not average"))
    elif which == "grad_weight":
        v["flipped"] = (grad_w[..., ::-1, ::-1],
                        _("grad_weight is flipped: cross-correlate x with grad_out (no kernel flip)"))
        v["mean"] = (grad_w / n, _("grad_weight averaged over the batch: sum it"))
        v["first"] = (ops.conv2d_backward(g[:1], x[:1], weight, stride=s, padding=p)[1],
                      _("grad_weight uses only the first image: sum the contributions of the whole batch"))
        v["transposed"] = (grad_w.transpose(1, 0, 2, 3),
                           _("grad_weight has C_in and C_out swapped: shape (C_out, C_in, kh, kw)"))
        if s != 1:
            small = np.zeros(weight.shape[:2] + (x.shape[2] + 2 * p - ho + 1, x.shape[3] + 2 * p - wo + 1))
            v["stride"] = (ops.conv2d_backward(g, x, small, stride=1, padding=p)[1],
                           _("stride ignored in grad_weight: grad_out entries are `stride` pixels apart in the "
                             "input"))
    else:
        v["unflipped"] = (ops.conv2d_backward(g, x, weight[..., ::-1, ::-1].copy(), stride=s, padding=p)[0],
                          _("grad_x uses the kernel unrotated: a full convolution of grad_out with the kernel "
                            "rotated by 180 degrees (or scatter grad_out through the unflipped kernel)"))
        if weight.shape[0] == weight.shape[1]:
            v["swap"] = (ops.conv2d_backward(g, x, weight.transpose(1, 0, 2, 3).copy(), stride=s, padding=p)[0],
                         _("grad_x uses weight[c_in, c_out] instead of weight[c_out, c_in]: sum over the output "
                           "channels"))
        if p != 0:
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            v["uncropped"] = (ops.conv2d_backward(g, xp, weight, stride=s)[0],
                              _("grad_x keeps the padded size: crop `padding` rows and columns from every side"))
        if s != 1:
            small = np.zeros(x.shape[:2] + (ho + kh - 1 - 2 * p, wo + kw - 1 - 2 * p))
            if min(small.shape[2:]) >= 1:
                v["stride"] = (ops.conv2d_backward(g, small, weight, stride=1, padding=p)[0],
                               _("stride ignored in grad_x: put stride-1 zeros between grad_out entries "
                                 "(the gradient of a strided conv is a transposed conv)"))
    return v


@checker
def check_conv2d_backward(conv2d_backward, group="bias", hidden=False):
    """Check a student's ``conv2d_backward(grad_out, x, weight, stride=1, padding=0)``.

    Args:
        conv2d_backward: the student's function; grad_out (N, C_out, H_out, W_out),
            x (N, C_in, H, W), weight (C_out, C_in, kh, kw); returns (grad_x, grad_weight,
            grad_bias) with the shapes of x, weight and (C_out,).
        group: "bias", "weight", "input" (each checks one gradient, stride 1, no padding) or
            "stride_padding" (all three).
        hidden: run the hidden seed set.
    Raises:
        AssertionError naming the case, the gradient, the shapes and the likely bug.
    """
    table = _HIDDEN_CASES if hidden else _CASES
    if group not in table:
        raise ValueError(f"check_conv2d_backward: `group` must be one of {sorted(table)}; got {group!r}")
    rng = np.random.default_rng(hidden_seed(f"conv2d_backward/{group}", 707) if hidden else 7)
    for xs, ws, s, p in table[group]:
        x, weight = rng.standard_normal(xs), rng.standard_normal(ws)
        ho, wo = (ops.conv_output_size(xs[i], ws[i], s, p) for i in (2, 3))
        g = rng.standard_normal((xs[0], ws[0], ho, wo))
        want = ops.conv2d_backward(g, x, weight, stride=s, padding=p)
        case = {"x.shape": xs, "weight.shape": ws, "stride": s, "padding": p}
        got = call_student(conv2d_backward, g.copy(), x.copy(), weight.copy(), stride=s, padding=p, case=case)
        if not isinstance(got, tuple) or len(got) != 3:
            got_what = (_("{type} of length {length}").format(type=type(got).__name__, length=len(got))
                        if isinstance(got, tuple) else type(got).__name__)
            raise AssertionError(_("`conv2d_backward` must return a tuple (grad_x, grad_weight, grad_bias); "
                                   "got {got}").format(got=got_what))
        for i in _PARTS[group]:
            variants = _grad_variants(_NAMES[i], g, x, weight, s, p)
            check_array(got[i], want[i], case=case, variants=variants, atol=1e-8, rtol=1e-8, name=_NAMES[i])


def _restore_check(x_before, x_after, name):
    if not np.array_equal(x_before, x_after):
        raise AssertionError(_("`{name}` changed its input `x`.").format(name=name) + " " + likely_bug(
            _("x is not restored after perturbing an entry: put x[i] back to its old value before moving on")))


@checker
def check_numerical_gradient(numerical_gradient, group="basic", hidden=False):
    """Check a student's ``numerical_gradient(f, x, eps=1e-6)`` (central differences).

    Args:
        numerical_gradient: takes a scalar function f of an array and an array x (any shape);
            returns df/dx, same shape as x, one entry at a time by central differences.
        group: "basic" (shape, f = sum(x**2), x left unchanged) or "central" (the accuracy of
            (f(x+eps) - f(x-eps)) / (2*eps) on f = sum(x**3) with eps = 1e-3).
        hidden: run the hidden seed set.
    Raises:
        AssertionError naming the case and the likely bug.
    """
    if group not in ("basic", "central"):
        raise ValueError(f"check_numerical_gradient: `group` must be 'basic' or 'central'; got {group!r}")
    rng = np.random.default_rng(hidden_seed(f"numerical_gradient/{group}", 77) if hidden else 70)
    shapes = [(3,), (2, 3), (1, 2, 3, 2)] if not hidden else [(4,), (3, 2), (2, 1, 2, 3)]
    for shape in shapes:
        x = rng.standard_normal(shape)
        if group == "basic":
            f, eps, want = (lambda a: float(np.sum(a ** 2))), 1e-6, 2 * x
            variants = {"half": (4 * x, _("divided by eps instead of 2*eps: the central difference spans 2*eps")),
                        "all": (np.full(shape, 2 * x.sum()),
                                _("perturbed every entry at once: change one entry at a time"))}
            atol = 1e-5
        else:
            f, eps, want = (lambda a: float(np.sum(a ** 3))), 1e-3, 3 * x ** 2
            central = _("use the central difference (f(x+eps) - f(x-eps)) / (2*eps), its error is O(eps**2)")
            variants = {"forward": (3 * x ** 2 + 3 * x * eps, _("one-sided difference (f(x+eps) - f(x)) / eps: {fix}")
                                    .format(fix=central)),
                        "backward": (3 * x ** 2 - 3 * x * eps, _("one-sided difference (f(x) - f(x-eps)) / eps: {fix}")
                                     .format(fix=central)),
                        "half": (6 * x ** 2, _("divided by eps instead of 2*eps: the central difference spans 2*eps"))}
            atol = 1e-5
        before = x.copy()
        case = {"x.shape": shape, "f": "sum(x**2)" if group == "basic" else "sum(x**3)", "eps": eps}
        got = call_student(numerical_gradient, f, x, eps=eps, case=case)
        _restore_check(before, x, "numerical_gradient")
        check_array(got, want, case=case, variants=variants, atol=atol, rtol=1e-4)
