"""Checkers for assignment 05: ``max_pool2d`` and ``avg_pool2d`` with stride and padding (torch semantics).

Student functions: ``max_pool2d(x, kernel_size, stride=None, padding=0)`` and the same for
``avg_pool2d``; x is (N, C, H, W); stride defaults to kernel_size; max pooling pads with -inf,
average pooling pads with zeros and divides by kh*kw (torch's count_include_pad=True).
"""

import numpy as np

from conv_course import ops
from conv_course._checks import pair

from ._core import call_student, case_rng, check_array, checker, output_of, run_cases, shape_diagnoses
from ._i18n import N_, _

__all__ = ["check_max_pool2d", "check_avg_pool2d", "DIAGNOSES"]

DIAGNOSES = {
    "stride_one": N_("stride=None must mean stride = kernel_size (windows side by side, not overlapping); "
                     "yours moved the window by 1"),
    "stride_ignored": N_("stride ignored: your output equals stride = kernel_size; move the window by `stride`"),
    "zero_pad_max": N_("max pooling padded with zeros: a padded zero beats negative inputs; pad with -inf "
                       "(np.pad(..., constant_values=-np.inf)) so padding never wins"),
    "count_exclude_pad": N_("you divided by the number of real pixels in the window; torch's avg_pool2d "
                            "counts the padded zeros too (count_include_pad=True): divide by kh*kw"),
    "sum_not_mean": N_("you summed each window; the average divides the sum by kh*kw"),
    "mean_not_max": N_("you averaged each window; max pooling takes the largest value"),
    "max_not_mean": N_("you took the maximum of each window; average pooling takes the mean"),
    "padding_ignored": N_("padding ignored: your output equals padding 0; pad P on every side first"),
    "padding_twice": N_("padding applied twice: your output equals padding 2P"),
}


def _cases(kind, group, hidden):
    rng = case_rng(f"{kind}/{group}", hidden)
    rand = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    n = 3 if hidden else 1
    if group == "basic":  # default stride = kernel_size, no padding
        cases = [dict(x=np.arange(16.0).reshape(1, 1, 4, 4), kernel_size=2),
                 dict(x=rand(2, 3, 6, 9), kernel_size=3)]
        cases += [dict(x=rand(1, 2, int(rng.integers(4, 9)), int(rng.integers(9, 12))),
                       kernel_size=int(rng.integers(2, 4))) for _ in range(n)]
    elif group == "stride_padding":
        cases = [dict(x=-np.abs(rand(1, 2, 5, 6)) - 0.1, kernel_size=3, stride=2, padding=1),
                 dict(x=rand(2, 1, 7, 8), kernel_size=2, stride=1),
                 dict(x=rand(1, 2, 6, 7), kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))]
        cases += [dict(x=rand(1, 2, int(rng.integers(5, 9)), int(rng.integers(9, 12))),
                       kernel_size=3, stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, 2)))
                  for _ in range(n)]
    else:
        raise ValueError(f"check_{kind}: `group` must be 'basic' or 'stride_padding'; got {group!r}")
    for case in cases:
        case.setdefault("stride", None)
        case.setdefault("padding", 0)
    return cases


def _variants(kind, x, k, s, p):
    ref = ops.max_pool2d if kind == "max_pool2d" else ops.avg_pool2d
    other = ops.avg_pool2d if kind == "max_pool2d" else ops.max_pool2d

    def safe(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except ValueError:
            return None

    expected = ref(x, k, s, p)
    kh, kw = pair(f"check_{kind}", "kernel_size", k)
    out = {"other": (safe(other, x, k, s, p), _(DIAGNOSES["mean_not_max" if kind == "max_pool2d" else "max_not_mean"]))}
    if s is None:
        out["stride_one"] = (safe(ref, x, k, 1, p), _(DIAGNOSES["stride_one"]))
    elif pair(f"check_{kind}", "stride", s) != (kh, kw):
        out["stride_ignored"] = (safe(ref, x, k, None, p), _(DIAGNOSES["stride_ignored"]))
    ph, pw = pair(f"check_{kind}", "padding", p, minimum=0)
    if (ph, pw) != (0, 0):
        out["padding_ignored"] = (safe(ref, x, k, s, 0), _(DIAGNOSES["padding_ignored"]))
        padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        out["padding_twice"] = (safe(ref, padded, k, s, p), _(DIAGNOSES["padding_twice"]))
        if kind == "max_pool2d":
            out["zero_pad"] = (ops.max_pool2d(padded, k, s if s is not None else k, 0), _(DIAGNOSES["zero_pad_max"]))
        else:
            count = ops.avg_pool2d(np.ones_like(x), k, s, p)
            out["exclude_pad"] = (expected / count, _(DIAGNOSES["count_exclude_pad"]))
    if kind == "avg_pool2d":
        out["sum"] = (expected * kh * kw, _(DIAGNOSES["sum_not_mean"]))
    variants = {name: v for name, v in out.items() if v[0] is not None}
    variants.update(shape_diagnoses(expected.shape, _("H_out = (H + 2*P - K) // S + 1, S = K when stride is None")))
    return expected, variants


def _check(kind, fn, group, hidden):
    def one(case):
        x, k, s, p = case["x"], case["kernel_size"], case["stride"], case["padding"]
        expected, variants = _variants(kind, x, k, s, p)
        passed = x.copy()
        got = call_student(fn, passed, k, stride=s, padding=p, case=case)
        if not np.array_equal(passed, x):
            raise AssertionError(_("`{name}` modified its input `x` in place; pad into a new array").format(
                name=fn.__name__))
        check_array(got, expected, case=case, variants=variants, name=output_of(kind))

    run_cases(_cases(kind, group, hidden), one)


@checker
def check_max_pool2d(max_pool2d, group="basic", hidden=False):
    """Check ``max_pool2d(x, kernel_size, stride=None, padding=0)``; groups "basic", "stride_padding"."""
    _check("max_pool2d", max_pool2d, group, hidden)


@checker
def check_avg_pool2d(avg_pool2d, group="basic", hidden=False):
    """Check ``avg_pool2d(x, kernel_size, stride=None, padding=0)``; groups "basic", "stride_padding"."""
    _check("avg_pool2d", avg_pool2d, group, hidden)
