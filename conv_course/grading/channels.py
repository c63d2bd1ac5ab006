"""Checkers for assignment 03: channels, 1x1 convolutions, groups and parameter counts.

Student functions (unbatched where the chapter is, batched for groups):
``corr2d_multi_in(X, K)`` X (C_in, H, W), K (C_in, kh, kw) -> (H_out, W_out);
``corr2d_multi_in_out(X, K)`` K (C_out, C_in, kh, kw) -> (C_out, H_out, W_out);
``conv1x1(X, K)`` K (C_out, C_in) -> (C_out, H, W);
``grouped_conv2d(x, weight, groups)`` x (N, C_in, H, W), weight (C_out, C_in // groups, kh, kw);
``conv_params(c_in, c_out, kernel_size, groups=1, bias=True)`` -> int.
"""

import numpy as np

from conv_course import ops

from ._core import call_student, case_rng, check_array, checker, output_of, run_cases, shape_diagnoses
from ._i18n import N_, _

__all__ = ["check_multi_in", "check_multi_in_out", "check_conv1x1", "check_grouped_conv2d",
           "check_conv_params", "DIAGNOSES"]

DIAGNOSES = {
    "missing_channel_sum": N_("missing sum over input channels: your output uses only one input channel; "
                              "add the correlations of ALL C_in channels, each with its own kernel slice K[ci]"),
    "channel_mean": N_("you averaged over the input channels; a multi-channel kernel SUMS them"),
    "channels_last": N_("output channels are on the last axis; stack them first: shape (C_out, H_out, W_out)"),
    "weight_transposed": N_("the 1x1 weight is (C_out, C_in): out = K @ X.reshape(C_in, H * W), then reshape "
                            "to (C_out, H, W); yours multiplied by K.T"),
    "groups_interleaved": N_("output channels are assigned to groups round-robin; output channel co belongs to "
                             "group co // (C_out // groups), which reads input channels "
                             "[g * C_in/groups, (g + 1) * C_in/groups)"),
    "groups_ignored": N_("groups ignored: every output channel must see only the C_in / groups input channels "
                         "of its group"),
    "no_bias": N_("bias not counted: a convolution with bias=True has one extra parameter per output channel"),
    "groups_not_divided": N_("groups not taken into account: each kernel spans only C_in / groups input "
                             "channels, so the weight has C_out * (C_in / groups) * k * k entries"),
    "kernel_not_squared": N_("kernel counted once: a k x k kernel has k * k weights per (output, input) pair"),
    "bias_per_input": N_("bias counted per input channel; there is one bias per OUTPUT channel"),
}


def _ref(X, K, groups=1):
    return ops.conv2d(X, K, groups=groups)


def _multi_in_cases(group, hidden):
    rng = case_rng(f"multi_in/{group}", hidden)
    n = 3 if hidden else 1
    cases = [dict(X=np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)]),
                  K=np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)]))]
    for _i in range(n):
        c, h, w = int(rng.integers(2, 5)), int(rng.integers(4, 7)), int(rng.integers(7, 10))
        cases.insert(0, dict(X=rng.standard_normal((c, h, w)), K=rng.standard_normal((c, 2, 3))))
    return cases


@checker
def check_multi_in(corr2d_multi_in, group="basic", hidden=False):
    """Check ``corr2d_multi_in(X, K)``: X (C_in, H, W), K (C_in, kh, kw) -> (H_out, W_out)."""
    def one(case):
        X, K = case["X"], case["K"]
        expected = _ref(X[None], K[None])[0, 0]
        per = [_ref(X[None, c:c + 1], K[None, c:c + 1])[0, 0] for c in range(X.shape[0])]
        variants = {"first": (per[0], _(DIAGNOSES["missing_channel_sum"])),
                    "last": (per[-1], _(DIAGNOSES["missing_channel_sum"])),
                    "mean": (expected / X.shape[0], _(DIAGNOSES["channel_mean"])),
                    "stacked": (np.stack(per), _(DIAGNOSES["missing_channel_sum"]))}
        variants.update(shape_diagnoses(expected.shape))
        got = call_student(corr2d_multi_in, X.copy(), K.copy(), case=case)
        check_array(got, expected, case=case, variants=variants, name=output_of("corr2d_multi_in"))

    run_cases(_multi_in_cases(group, hidden), one)


@checker
def check_multi_in_out(corr2d_multi_in_out, group="basic", hidden=False):
    """Check ``corr2d_multi_in_out(X, K)``: K (C_out, C_in, kh, kw) -> (C_out, H_out, W_out)."""
    rng = case_rng(f"multi_in_out/{group}", hidden)
    cases = []
    for _i in range(3 if hidden else 2):
        c_in, c_out = int(rng.integers(2, 4)), int(rng.integers(2, 5))
        cases.append(dict(X=rng.standard_normal((c_in, int(rng.integers(4, 7)), 8)),
                          K=rng.standard_normal((c_out, c_in, 2, 3))))

    def one(case):
        X, K = case["X"], case["K"]
        expected = _ref(X[None], K)[0]
        variants = {"first": (_ref(X[None, :1], K[:, :1])[0], _(DIAGNOSES["missing_channel_sum"])),
                    "last": (_ref(X[None, -1:], K[:, -1:])[0], _(DIAGNOSES["missing_channel_sum"])),
                    "channels_last": (np.moveaxis(expected, 0, -1), _(DIAGNOSES["channels_last"]))}
        got = call_student(corr2d_multi_in_out, X.copy(), K.copy(), case=case)
        check_array(got, expected, case=case, variants=variants, name=output_of("corr2d_multi_in_out"))

    run_cases(cases, one)


@checker
def check_conv1x1(conv1x1, group="basic", hidden=False):
    """Check ``conv1x1(X, K)``: X (C_in, H, W), K (C_out, C_in) -> (C_out, H, W)."""
    rng = case_rng(f"conv1x1/{group}", hidden)
    cases = [dict(X=rng.standard_normal((3, 4, 5)), K=rng.standard_normal((3, 3)))]
    for _i in range(3 if hidden else 1):
        c_in, c_out = int(rng.integers(2, 6)), int(rng.integers(1, 5))
        cases.append(dict(X=rng.standard_normal((c_in, int(rng.integers(2, 6)), int(rng.integers(6, 9)))),
                          K=rng.standard_normal((c_out, c_in))))

    def one(case):
        X, K = case["X"], case["K"]
        expected = _ref(X[None], K[:, :, None, None])[0]
        variants = {}
        if K.shape[0] == K.shape[1]:
            variants["transposed"] = (_ref(X[None], K.T[:, :, None, None])[0], _(DIAGNOSES["weight_transposed"]))
        variants["first"] = (_ref(X[None, :1], K[:, :1, None, None])[0], _(DIAGNOSES["missing_channel_sum"]))
        got = call_student(conv1x1, X.copy(), K.copy(), case=case)
        check_array(got, expected, case=case, variants=variants, name=output_of("conv1x1"))

    run_cases(cases, one)


@checker
def check_grouped_conv2d(grouped_conv2d, group="basic", hidden=False):
    """Check ``grouped_conv2d(x, weight, groups)`` (stride 1, no padding) incl. depthwise (groups = C_in)."""
    rng = case_rng(f"groups/{group}", hidden)
    cases = [dict(x=rng.standard_normal((2, 4, 5, 6)), weight=rng.standard_normal((6, 2, 3, 3)), groups=2),
             dict(x=rng.standard_normal((1, 3, 5, 5)), weight=rng.standard_normal((3, 1, 3, 3)), groups=3)]
    for _i in range(3 if hidden else 0):
        g = int(rng.integers(1, 4))
        c_in, c_out = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 4))
        cases.append(dict(x=rng.standard_normal((2, c_in, 6, 7)),
                          weight=rng.standard_normal((c_out, c_in // g, 2, 3)), groups=g))

    def one(case):
        x, w, g = case["x"], case["weight"], case["groups"]
        expected = ops.conv2d(x, w, groups=g)
        c_in, c_out = x.shape[1], w.shape[0]
        variants = {}
        if g > 1 and c_out // g > 1:  # output channel co wrongly fed by group co % g
            per = c_in // g
            wrong = np.concatenate([ops.conv2d(x[:, (co % g) * per:(co % g + 1) * per], w[co:co + 1])
                                    for co in range(c_out)], axis=1)
            variants["interleaved"] = (wrong, _(DIAGNOSES["groups_interleaved"]))
        if g > 1:
            variants["first_group_inputs"] = (ops.conv2d(x[:, :c_in // g], w), _(DIAGNOSES["groups_ignored"]))
        got = call_student(grouped_conv2d, x.copy(), w.copy(), g, case=case)
        check_array(got, expected, case=case, variants=variants, name=output_of("grouped_conv2d"))

    run_cases(cases, one)


def _params(c_in, c_out, k, groups=1, bias=True):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


@checker
def check_conv_params(conv_params, group="basic", hidden=False):
    """Check ``conv_params(c_in, c_out, kernel_size, groups=1, bias=True)`` (number of parameters)."""
    if hidden:
        rng = case_rng(f"params/{group}", hidden=True)
        cases = []
        for _i in range(10):
            g = int(rng.choice([1, 2, 4]))
            cases.append(dict(c_in=g * int(rng.integers(1, 17)), c_out=g * int(rng.integers(1, 17)),
                              kernel_size=int(rng.choice([1, 3, 5, 7])), groups=g, bias=bool(rng.integers(2))))
    else:
        cases = [dict(c_in=3, c_out=8, kernel_size=3, groups=1, bias=True),  # 8*3*9 + 8 = 224
                 dict(c_in=1, c_out=32, kernel_size=3, groups=1, bias=False),
                 dict(c_in=32, c_out=32, kernel_size=3, groups=32, bias=True),  # depthwise: 32*9 + 32
                 dict(c_in=32, c_out=64, kernel_size=1, groups=1, bias=True)]

    def one(case):
        c_in, c_out, k, g, b = (case[key] for key in ("c_in", "c_out", "kernel_size", "groups", "bias"))
        got = call_student(conv_params, c_in, c_out, k, groups=g, bias=b, case=case)
        expected = _params(c_in, c_out, k, g, b)
        variants = {"no_bias": (_params(c_in, c_out, k, g, False), _(DIAGNOSES["no_bias"])),
                    "groups": (_params(c_in, c_out, k, 1, b), _(DIAGNOSES["groups_not_divided"])),
                    "k_once": (c_out * (c_in // g) * k + (c_out if b else 0), _(DIAGNOSES["kernel_not_squared"])),
                    "bias_in": (c_out * (c_in // g) * k * k + (c_in if b else 0), _(DIAGNOSES["bias_per_input"]))}
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            raise AssertionError(_("`{name}` returned {value} ({type}); expected an int").format(
                name=conv_params.__name__, value=repr(got), type=type(got).__name__))
        check_array(got, expected, case=case, name=_("parameter count"),
                    variants={k_: (np.asarray(v), t) for k_, (v, t) in variants.items()})

    run_cases(cases, one)
