"""conv_course.ops against torch.nn.functional (the oracle), plus identities between the ops."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from conv_course import ops
from ops_strategies import conv2d_cases, conv_transpose2d_cases, int_or_pair, pool_cases

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch warns on padding="same" with even kernels


def t(a):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def tol(dtype):
    return dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-10, rtol=1e-10)


@given(case=conv2d_cases())
def test_conv2d_matches_torch(case):
    x, weight, bias, kw = case
    want = F.conv2d(t(x), t(weight), t(bias), **kw).numpy()
    got = ops.conv2d(x, weight, bias, **kw)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want, **tol(x.dtype))


@settings(max_examples=15)
@given(case=conv2d_cases(max_kernel=3, max_extra=3, max_channels=2))
def test_conv2d_naive_equals_conv2d(case):
    x, weight, bias, kw = case
    np.testing.assert_allclose(ops.conv2d_naive(x, weight, bias, **kw), ops.conv2d(x, weight, bias, **kw),
                               **tol(x.dtype))


@settings(max_examples=20)
@given(case=conv2d_cases(max_extra=4))
def test_conv2d_strided_matches_torch_without_groups_and_dilation(case):
    x, weight, bias, kw = case
    x, weight = x[:, :weight.shape[1]], weight[:weight.shape[0] // kw["groups"]]   # one group, no dilation
    bias = None if bias is None else bias[:len(weight)]
    got = ops.conv2d_strided(x, weight, bias, stride=kw["stride"], padding=kw["padding"])
    want = F.conv2d(t(x), t(weight), None if bias is None else t(bias), stride=kw["stride"], padding=kw["padding"])
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_strided_keeps_integers_exact():
    x, weight = np.arange(9).reshape(1, 1, 3, 3), np.ones((1, 1, 2, 2), dtype=np.int64)
    assert ops.conv2d_strided(x, weight).tolist() == [[[[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]]]


def test_conv2d_strided_checks_arguments_like_conv2d():
    with pytest.raises(ValueError, match="conv2d_strided: `x` must have shape"):
        ops.conv2d_strided(np.ones((1, 2, 5, 5)), np.ones((1, 3, 3, 3)))


@given(case=conv2d_cases())
def test_conv2d_backward_matches_autograd(case):
    x, weight, bias, kw = case
    xt, wt = t(x).requires_grad_(), t(weight).requires_grad_()
    bt = torch.zeros(weight.shape[0], dtype=xt.dtype, requires_grad=True)
    y = F.conv2d(xt, wt, bt, **kw)
    grad_out = np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(t(grad_out))
    got = ops.conv2d_backward(grad_out, x, weight, **kw)
    for g, want in zip(got, (xt.grad, wt.grad, bt.grad)):
        assert g.dtype == x.dtype
        np.testing.assert_allclose(g, want.numpy(), **tol(x.dtype))


@given(case=conv2d_cases())
def test_conv1d_matches_torch(case):
    x, weight, bias, kw = case
    x1, w1 = x[:, :, 0], weight[:, :, 0]
    kw = {k: (v[1] if isinstance(v, tuple) else v) for k, v in kw.items()}
    want = F.conv1d(t(x1), t(w1), t(bias), **kw).numpy()
    np.testing.assert_allclose(ops.conv1d(x1, w1, bias, **kw), want, **tol(x.dtype))


@given(case=conv_transpose2d_cases())
def test_conv_transpose2d_matches_torch(case):
    x, weight, bias, kw = case
    want = F.conv_transpose2d(t(x), t(weight), t(bias), **kw).numpy()
    got = ops.conv_transpose2d(x, weight, bias, **kw)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want, **tol(x.dtype))


@given(case=pool_cases())
def test_max_pool2d_matches_torch(case):
    x, kw = case
    np.testing.assert_array_equal(ops.max_pool2d(x, **kw), F.max_pool2d(t(x), **kw).numpy())


@given(case=pool_cases())
def test_avg_pool2d_matches_torch(case):
    x, kw = case
    got = ops.avg_pool2d(x, **kw)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, F.avg_pool2d(t(x), **kw).numpy(), **tol(x.dtype))


@given(n=st.integers(1, 12), k=st.integers(1, 5), stride=st.integers(1, 3), padding=st.integers(0, 2),
       dilation=st.integers(1, 2))
def test_conv_output_size_matches_torch_output_shape(n, k, stride, padding, dilation):
    x, w = torch.zeros(1, 1, 1, n), torch.zeros(1, 1, 1, k)
    if n + 2 * padding < dilation * (k - 1) + 1:
        with pytest.raises(ValueError, match="padded input"):
            ops.conv_output_size(n, k, stride, padding, dilation)
        return
    want = F.conv2d(x, w, stride=stride, padding=(0, padding), dilation=dilation).shape[-1]
    assert ops.conv_output_size(n, k, stride, padding, dilation) == want


@pytest.mark.parametrize("n,k,dilation", [(7, 3, 1), (8, 4, 1), (6, 3, 2), (5, 2, 3)])
def test_conv_output_size_same_and_valid_match_torch(n, k, dilation):
    x, w = torch.zeros(1, 1, 1, n), torch.zeros(1, 1, 1, k)
    for padding in ("same", "valid"):
        want = F.conv2d(x, w, padding=padding, dilation=dilation).shape[-1]
        assert ops.conv_output_size(n, k, padding=padding, dilation=dilation) == want


@given(case=conv2d_cases(strings=False))
def test_im2col_matches_torch_unfold(case):
    x, weight, _, kw = case
    kh, kwid = weight.shape[2:]
    want = F.unfold(t(x), (kh, kwid), kw["dilation"], kw["padding"], kw["stride"]).numpy()
    np.testing.assert_array_equal(ops.im2col(x, (kh, kwid), kw["stride"], kw["padding"], kw["dilation"]), want)


@given(case=conv2d_cases(strings=False), seed=st.integers(0, 2**16))
def test_col2im_matches_torch_fold(case, seed):
    x, weight, _, kw = case
    kernel = weight.shape[2:]
    args = (kernel, kw["stride"], kw["padding"], kw["dilation"])
    shape = ops.im2col(x, *args).shape
    cols = np.random.default_rng(seed).standard_normal(shape)
    want = F.fold(t(cols), x.shape[2:], kernel, kw["dilation"], kw["padding"], kw["stride"]).numpy()
    np.testing.assert_allclose(ops.col2im(cols, x.shape, *args), want, atol=1e-12)


@given(case=conv2d_cases(), seed=st.integers(0, 2**16))
def test_im2col_and_col2im_are_adjoint(case, seed):
    x, weight, _, kw = case
    x = x.astype(np.float64)
    args = (weight.shape[2:], kw["stride"], kw["padding"], kw["dilation"])
    cols = ops.im2col(x, *args)
    y = np.random.default_rng(seed).standard_normal(cols.shape)
    assert np.vdot(cols, y) == pytest.approx(np.vdot(x, ops.col2im(y, x.shape, *args)), rel=1e-10, abs=1e-10)


@given(h=st.integers(1, 9), w=st.integers(1, 9), k=int_or_pair(1, 5), dilation=int_or_pair(1, 2))
def test_conv2d_same_padding_keeps_size(h, w, k, dilation):
    kh, kw = (k, k) if isinstance(k, int) else k
    x = np.ones((1, 1, h, w))
    assert ops.conv2d(x, np.ones((2, 1, kh, kw)), padding="same", dilation=dilation).shape == (1, 2, h, w)


@pytest.mark.parametrize("shape", [(2, 16, 20, 17), (3, 8, 33, 30), (65, 2, 9, 9)])
@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_conv2d_3x3_float32_matches_torch_on_larger_inputs(shape, padding):
    """Large enough for the fast 3x3 paths and batch chunking; images in [0, 1], He-scaled weights."""
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    weight = (rng.standard_normal((12, shape[1], 3, 3)) * np.sqrt(2 / (9 * shape[1]))).astype(np.float32)
    bias = rng.standard_normal(12).astype(np.float32)
    want = F.conv2d(t(x), t(weight), t(bias), padding=padding).numpy()
    np.testing.assert_allclose(ops.conv2d(x, weight, bias, padding=padding), want, atol=1e-4, rtol=1e-4)
    grad_out = rng.standard_normal(want.shape).astype(np.float32)
    xt, wt = t(x).requires_grad_(), t(weight).requires_grad_()
    F.conv2d(xt, wt, padding=padding).backward(t(grad_out))
    grad_x, grad_w, grad_b = ops.conv2d_backward(grad_out, x, weight, padding=padding)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(grad_w, wt.grad.numpy(), atol=1e-3 * np.abs(wt.grad.numpy()).max(), rtol=1e-4)
    np.testing.assert_allclose(grad_b, grad_out.sum(axis=(0, 2, 3)), rtol=1e-4)


def test_small_backward_takes_lists_and_names_a_wrong_weight():
    """The lean backward must leave inputs it cannot take (lists, a 2-D weight) to the checked path."""
    x, weight, grad_out = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    for got, want in zip(ops.conv2d_backward(grad_out.tolist(), x.tolist(), weight.tolist()),
                         ops.conv2d_backward(grad_out, x, weight)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"`weight` must have 4 dimensions .* got shape \(3, 3\)"):
        ops.conv2d_backward(grad_out, x, np.ones((3, 3)))


def test_strided_inputs_give_the_same_gradients_and_transposed_convolution():
    """Views that are not C-contiguous (here transposed) are read as their values, never reshaped in place."""
    rng = np.random.default_rng(12)
    x, weight = rng.standard_normal((3, 4, 12, 12)), rng.standard_normal((5, 4, 3, 3))
    grad_out = rng.standard_normal((3, 5, 10, 10)).transpose(0, 1, 3, 2)
    want = ops.conv2d_backward(np.ascontiguousarray(grad_out), x, weight)
    for got, expected in zip(ops.conv2d_backward(grad_out, x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2),
                                                 weight), want):
        np.testing.assert_allclose(got, expected, atol=1e-12)
    small = rng.standard_normal((2, 4, 5, 5)).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(ops.conv_transpose2d(small, weight.transpose(1, 0, 2, 3), stride=2),
                               ops.conv_transpose2d(np.ascontiguousarray(small), weight.transpose(1, 0, 2, 3).copy(),
                                                    stride=2), atol=1e-12)
