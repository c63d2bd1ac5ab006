"""Checkers for assignments 01 (`conv_output_size`, `corr2d`) and 02 (`conv2d`).

Each checker runs one seeded case group against `conv_course.ops` and names the likely bug by
comparing the student's output with deliberately wrong variants of the reference.
"""

import numpy as np

from conv_course import ops
from conv_course._checks import pair

from ._core import (call_student, case_rng, check_array, checker, format_case, join_clauses, likely_bug, output_of,
                    run_cases, shape_diagnoses)
from ._i18n import N_, _

__all__ = ["check_output_size", "check_corr2d", "check_conv2d", "conv_variants", "DIAGNOSES"]

DIAGNOSES = {
    "flipped": N_("your output equals the true convolution: the kernel is flipped. This course (like "
                  "torch) cross-correlates: out[i, j] = sum over a, b of image[i*S + a, j*S + b] * kernel[a, b], "
                  "kernel[0, 0] meeting the top-left pixel of the window, no flip"),
    "stride_ignored": N_("stride ignored: your output equals the stride-1 result; move the window by "
                         "`stride` pixels (rows i*S, columns j*S) and size the output (H + 2P - K) // S + 1"),
    "padding_ignored": N_("padding ignored: your output equals padding 0; pad P zeros on every side first"),
    "padding_one_side": N_("padding on one side only: your output equals P zeros added on the top/left "
                           "(or bottom/right) only; pad every side, e.g. np.pad(image, P)"),
    "padding_twice": N_("padding applied twice: your output equals padding 2P; pad the input once, then "
                        "slide over the padded input without adding P again"),
    "dilation_ignored": N_("dilation ignored: your output equals dilation 1; kernel taps are D pixels "
                           "apart: x[i*S + a*D, j*S + b*D] * weight[a, b]"),
    "missing_channel_sum": N_("missing sum over input channels: your output uses only one input channel; "
                              "out[n, co] adds up the correlations of ALL C_in channels "
                              "(sum over ci of x[n, ci] (*) weight[co, ci])"),
    "bias_ignored": N_("bias ignored: add bias[co] to every pixel of output channel co"),
    "bias_broadcast": N_("bias not broadcast per output channel: bias[co] belongs to output channel co, "
                         "on every pixel: out + bias[None, :, None, None] (a bare `out + bias` "
                         "broadcasts along the width instead)"),
    "transposed": N_("height and width are swapped: your output is the transpose of the expected one; "
                     "row index i runs over H_out (image rows), column index j over W_out"),
    "truncated": N_("integer truncation: your values are the expected ones rounded toward zero; allocate "
                    "the output with a float dtype (np.result_type(image, kernel)), not with the integer "
                    "dtype of the input (np.zeros_like(image))"),
}

_SIZE_FORMULA = "H_out = (H + 2*P - D*(K - 1) - 1) // S + 1"


def conv_variants(x, weight, bias=None, stride=1, padding=0, dilation=1, formula=_SIZE_FORMULA, texts=None):
    """Wrong variants of ``ops.conv2d(x, weight, bias, ...)`` for a (N, C_in, H, W) case.

    Args:
        formula: the output size formula the shape diagnoses quote.
        texts: key of `DIAGNOSES` -> the wording a checker uses instead (e.g. matmul's
            "stride ignored: pass `stride` on to im2col"), in English, marked with `N_`: like
            `DIAGNOSES`, it is translated here.
    Returns:
        name -> (wrong (N, C_out, H', W') array, shape or predicate, diagnosis), for `check_array`.
    """
    kw = dict(stride=stride, padding=padding, dilation=dilation)

    def ref(x_=x, w_=weight, b_=bias, **over):
        try:
            return ops.conv2d(x_, w_, b_, **{**kw, **over})
        except ValueError:  # the wrong geometry does not fit this case
            return None

    expected = ref()
    s, d = pair("conv_variants", "stride", stride), pair("conv_variants", "dilation", dilation)
    p = pair("conv_variants", "padding", padding, minimum=0)
    out = {"flipped": ref(w_=weight[..., ::-1, ::-1])}
    if s != (1, 1):
        out["stride_ignored"] = ref(stride=1)
    if p != (0, 0):
        out["padding_ignored"] = ref(padding=0)
        out["padding_twice"] = ref(padding=(2 * p[0], 2 * p[1]))
        for name, pads in [("padding_one_side", ((p[0], 0), (p[1], 0))),
                           ("padding_other_side", ((0, p[0]), (0, p[1])))]:
            padded = np.pad(x, ((0, 0), (0, 0)) + pads)
            out[name] = (ref(x_=padded, padding=0), "padding_one_side")
    if d != (1, 1):
        out["dilation_ignored"] = ref(dilation=1)
    if x.shape[1] > 1:
        out["first_channel_only"] = (ref(x_=x[:, :1], w_=weight[:, :1]), "missing_channel_sum")
        out["last_channel_only"] = (ref(x_=x[:, -1:], w_=weight[:, -1:]), "missing_channel_sum")
    if bias is not None:
        plain = ref(b_=None)
        out["bias_ignored"] = plain
        wrong = [plain + bias[0], plain + bias.sum()]
        if plain.shape[-1] == bias.shape[0]:
            wrong.append(plain + bias)
        if plain.shape[-2] == bias.shape[0]:
            wrong.append(plain + bias[:, None])
        for i, w in enumerate(wrong):
            out[f"bias_broadcast_{i}"] = (w, "bias_broadcast")
    if expected.shape[-1] == expected.shape[-2]:
        out["transposed"] = expected.swapaxes(-1, -2)
    if expected.dtype.kind == "f" and not np.array_equal(expected, np.trunc(expected)):
        out["truncated"] = _truncated_of(expected)
    words = {**DIAGNOSES, **(texts or {})}
    variants = {}
    for name, value in out.items():
        wrong, key = value if isinstance(value, tuple) else (value, name)
        if wrong is not None:
            variants[name] = (wrong, _(words[key]))
    variants.update(shape_diagnoses(expected.shape, formula))
    return variants


def _truncated_of(expected, tol=1e-6):
    """Predicate: `received` holds whole numbers within 1 of `expected`, rounded toward zero."""
    def truncated(received):
        if received.shape != expected.shape or received.dtype.kind not in "iuf":
            return False
        r = received.astype(np.float64)
        return bool(np.all(r == np.round(r)) and np.all(np.abs(r - expected) < 1 + tol)
                    and np.all(np.abs(r) <= np.abs(expected) + tol))
    return truncated


def _squeeze(variants):
    """(1, 1, H, W) variants of a single-channel case as (H, W) ones."""
    def one(wrong):
        if isinstance(wrong, tuple):
            return wrong[2:]
        if callable(wrong):
            return lambda received: wrong(np.asarray(received)[None, None])
        return wrong[0, 0]
    return {name: (one(wrong), text) for name, (wrong, text) in variants.items()}


def _check_inputs_unchanged(name, originals, passed, case):
    for arg, (orig, given) in zip((N_("first"), N_("second"), N_("third")), zip(originals, passed)):
        if orig is not None and not np.array_equal(orig, given):
            raise AssertionError(_("case {case}: `{name}` modified its {position} argument in place; compute into "
                                   "a new array (np.pad returns a copy)").format(case=format_case(case), name=name,
                                                                                  position=_(arg)))


# ---------------------------------------------------------------- conv_output_size
_SIZE_CASES = {
    "basic": [dict(n=5, kernel_size=3), dict(n=28, kernel_size=5), dict(n=4, kernel_size=4),
              dict(n=7, kernel_size=3, stride=2), dict(n=8, kernel_size=3, stride=2),
              dict(n=5, kernel_size=3, padding=1), dict(n=6, kernel_size=5, stride=3, padding=2)],
}


def _size_cases(hidden):
    if not hidden:
        return _SIZE_CASES["basic"]
    rng = case_rng("output_size", hidden=True)
    cases = []
    for _i in range(12):
        k, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        cases.append(dict(n=int(rng.integers(k, 40)), kernel_size=k, stride=s, padding=p))
    return cases


@checker
def check_output_size(conv_output_size, group="basic", hidden=False):
    """Check ``conv_output_size(n, kernel_size, stride=1, padding=0)`` on one case group."""
    def one(case):
        n, k, s, p = case["n"], case["kernel_size"], case.get("stride", 1), case.get("padding", 0)
        got = call_student(conv_output_size, n, k, stride=s, padding=p, case=case)
        variants = {"no_plus_one": ((n + 2 * p - k) // s, _("you forgot the + 1: a kernel as large as the "
                                                             "padded input still fits once")),
                    "pad_once": ((n + p - k) // s + 1, _("padding counted on one side only: P zeros are "
                                                         "added on both sides, so the padded length is n + 2*P")),
                    "stride_ignored": (n + 2 * p - k + 1, _("stride ignored: divide the free room "
                                                            "(n + 2P - K) by the stride, then add 1")),
                    "true_division": ((n + 2 * p - k) / s + 1, _("true division: use floor division // "
                                                                 "(a window that does not fit is not computed)"))}
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            message = _("case {case}: `{name}` returned {value} of type {type}; expected an int").format(
                case=format_case(case), name=conv_output_size.__name__, value=repr(got), type=type(got).__name__)
            if isinstance(got, float):
                message = join_clauses([message, likely_bug(variants["true_division"][1])])
            raise AssertionError(message)
        check_array(got, ops.conv_output_size(n, k, s, p), case=case, name=_("output size"),
                    variants={k_: (np.asarray(v), t) for k_, (v, t) in variants.items()})

    if group != "basic":
        raise ValueError(f"check_output_size: `group` must be 'basic'; got {group!r}")
    run_cases(_size_cases(hidden), one)


# ---------------------------------------------------------------- corr2d
def _ints(rng, shape, low=-3, high=4):
    return rng.integers(low, high, size=shape).astype(np.int64)


def _corr2d_cases(group, hidden):
    rng = case_rng(f"corr2d/{group}", hidden)
    n = 4 if hidden else 2
    rand = lambda h, w: rng.standard_normal((h, w))  # noqa: E731
    if group == "basic":
        cases = [dict(image=rand(int(rng.integers(5, 9)), int(rng.integers(9, 12))),
                      kernel=rand(int(rng.integers(2, 4)), 3)) for _ in range(n)]
        cases += [dict(image=np.arange(9).reshape(3, 3), kernel=np.arange(4).reshape(2, 2))]
    elif group == "padding":
        cases = [dict(image=_ints(rng, (4, 5)), kernel=_ints(rng, (3, 3)), padding=1)]
        cases += [dict(image=rand(int(rng.integers(4, 8)), int(rng.integers(8, 11))),
                       kernel=rand(3, 2), padding=int(rng.integers(1, 3))) for _ in range(n)]
    elif group == "stride":
        cases = [dict(image=_ints(rng, (6, 7)), kernel=_ints(rng, (2, 3)), stride=2)]
        cases += [dict(image=rand(int(rng.integers(7, 11)), int(rng.integers(11, 14))),
                       kernel=rand(3, 2), stride=int(rng.integers(2, 4))) for _ in range(n)]
    elif group == "edge":
        cases = [dict(image=rand(5, 7), kernel=rand(1, 1)),
                 dict(image=rand(4, 6), kernel=rand(4, 6)),
                 dict(image=rand(1, 8), kernel=rand(1, 3)),
                 dict(image=rng.integers(0, 256, (6, 8)), kernel=np.full((3, 3), 1 / 9)),
                 dict(image=rand(5, 6).astype(np.float32), kernel=rand(2, 2).astype(np.float32)),
                 dict(image=np.arange(12).reshape(3, 4) % 5 - 2, kernel=np.array([[1, -1], [2, 0]]))]
        if hidden:
            cases += [dict(image=rng.integers(0, 256, (7, 9)), kernel=rng.random((2, 3))),
                      dict(image=rand(3, 9), kernel=rand(3, 1))]
    else:
        raise ValueError(f"check_corr2d: `group` must be one of 'basic', 'padding', 'stride', 'edge'; "
                         f"got {group!r}")
    for case in cases:
        case.setdefault("stride", 1)
        case.setdefault("padding", 0)
    return cases


def _check_result_dtype(name, got, image, kernel, case):
    """The dtype the notebook's docstring promises: np.result_type(image, kernel)."""
    want, dtype = np.result_type(image, kernel), np.asarray(got).dtype
    if dtype == want:
        return
    rule = (_("both inputs are integers, so the result is an integer array") if want.kind in "iu" else
            _("{dtype} inputs give a {dtype} result").format(dtype=want) if image.dtype == kernel.dtype else
            _("a float input makes the result float"))
    raise AssertionError(
        _("case {case}: `{name}` returned dtype {dtype}; expected {want} = np.result_type(image, kernel): "
          "{rule}.").format(case=format_case(case), name=name, dtype=dtype, want=want, rule=rule) + " " + likely_bug(
            _("the output array is allocated with a fixed dtype (np.zeros(shape) is always float64); allocate it "
              "with np.zeros(shape, dtype=np.result_type(image, kernel))")))


@checker
def check_corr2d(corr2d, group="basic", hidden=False):
    """Check a student's ``corr2d(image, kernel, stride=1, padding=0)`` on one case group.

    Groups: "basic" (valid, stride 1), "padding", "stride", "edge" (1x1 kernel, kernel as large
    as the image, one-row image, integer image with a float kernel, float32, integer image and
    kernel; this group also checks the result dtype: np.result_type(image, kernel), as the
    notebook's docstring promises).
    """
    def one(case):
        image, kernel, s, p = case["image"], case["kernel"], case["stride"], case["padding"]
        expected = ops.corr2d(image, kernel, s, p)
        variants = _squeeze(conv_variants(image[None, None], kernel[None, None], None, s, p, 1,
                                          "H_out = (H + 2*P - K) // S + 1"))
        passed = (image.copy(), kernel.copy())
        got = call_student(corr2d, passed[0], passed[1], stride=s, padding=p, case=case)
        _check_inputs_unchanged(corr2d.__name__, (image, kernel), passed, case)
        tol = 1e-4 if expected.dtype == np.float32 else 1e-6
        check_array(got, expected, case=case, variants=variants, atol=tol, rtol=tol, name=output_of("corr2d"))
        if group == "edge":
            _check_result_dtype(corr2d.__name__, got, image, kernel, case)

    run_cases(_corr2d_cases(group, hidden), one)


# ---------------------------------------------------------------- conv2d
def _conv2d_cases(group, hidden):
    rng = case_rng(f"conv2d/{group}", hidden)
    n = 3 if hidden else 1
    rand = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    if group == "basic":
        cases = [dict(x=rand(2, 1, int(rng.integers(5, 8)), 9), weight=rand(1, 1, 3, 2)) for _ in range(n)]
        cases += [dict(x=np.arange(18.0).reshape(2, 1, 3, 3), weight=np.arange(4.0).reshape(1, 1, 2, 2))]
        cases += [dict(x=rng.integers(0, 10, (1, 1, 5, 6)), weight=rng.random((1, 1, 2, 2))),
                  dict(x=rand(1, 1, 6, 7).astype(np.float32), weight=rand(1, 1, 3, 3).astype(np.float32))]
    elif group == "channels":
        # first H_out = W_out = C_out, so a bias added along the wrong axis still broadcasts
        cases = [dict(x=rand(1, 2, 5, 5), weight=rand(4, 2, 2, 2), bias=rand(4)),
                 dict(x=rand(2, 3, 5, 6), weight=rand(4, 3, 3, 2), bias=rand(4))]
        cases += [dict(x=rand(2, int(rng.integers(2, 5)), 6, 7), weight=None, bias=rand(3)) for _ in range(n)]
        for case in cases:
            if case["weight"] is None:
                case["weight"] = rand(3, case["x"].shape[1], 3, 3)
    elif group == "padding_stride":
        cases = [dict(x=rand(1, 2, 6, 7), weight=rand(3, 2, 3, 3), padding=1),
                 dict(x=rand(2, 1, 8, 9), weight=rand(2, 1, 3, 2), stride=2),
                 dict(x=rand(1, 2, 7, 8), weight=rand(2, 2, 3, 3), stride=(2, 1), padding=(1, 2))]
        cases += [dict(x=rand(1, 2, 9, 10), weight=rand(2, 2, 3, 3), stride=int(rng.integers(2, 4)),
                       padding=int(rng.integers(1, 3)), bias=rand(2)) for _ in range(n)]
    elif group == "dilation":
        cases = [dict(x=rand(1, 1, 7, 8), weight=rand(1, 1, 3, 3), dilation=2),
                 dict(x=rand(2, 2, 9, 9), weight=rand(3, 2, 2, 3), dilation=(2, 3), padding=1)]
        cases += [dict(x=rand(1, 2, 10, 11), weight=rand(2, 2, 3, 3), dilation=int(rng.integers(2, 4)),
                       stride=int(rng.integers(1, 3)), bias=rand(2)) for _ in range(n)]
    else:
        raise ValueError(f"check_conv2d: `group` must be one of 'basic', 'channels', 'padding_stride', "
                         f"'dilation'; got {group!r}")
    for case in cases:
        for key, default in (("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1)):
            case.setdefault(key, default)
    return cases


@checker
def check_conv2d(conv2d, group="basic", hidden=False):
    """Check a student's ``conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1)``.

    Groups: "basic" (batch, one channel, integer and float32 input), "channels" (C_in > 1,
    C_out > 1, bias), "padding_stride" (ints and pairs), "dilation".
    """
    def one(case):
        x, w, b = case["x"], case["weight"], case["bias"]
        kw = {k: case[k] for k in ("stride", "padding", "dilation")}
        expected = ops.conv2d(x, w, b, **kw)
        variants = conv_variants(x, w, b, **kw)
        passed = (x.copy(), w.copy(), None if b is None else b.copy())
        got = call_student(conv2d, *passed, **kw, case=case)
        _check_inputs_unchanged(conv2d.__name__, (x, w, b), passed, case)
        tol = 1e-4 if expected.dtype == np.float32 else 1e-6
        check_array(got, expected, case=case, variants=variants, atol=tol, rtol=tol, name=output_of("conv2d"))

    run_cases(_conv2d_cases(group, hidden), one)
