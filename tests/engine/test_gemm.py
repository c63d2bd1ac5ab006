"""conv_course._engine.gemm: the blocked GEMM and the lean path for tiny problems give ops' results."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course import ops
from conv_course._engine import gemm, threads


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("kernel, stride", [((3, 3), 1), ((2, 3), 2), ((1, 1), 1)])
def test_batch_chunking_does_not_change_results(monkeypatch, kernel, stride):
    """Column buffers are built a few samples at a time; one sample per chunk must give the same sums."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((5, 4, 9, 8)), rng.standard_normal((6, 2, *kernel))
    grad_out = rng.standard_normal(ops.conv2d(x, weight, stride=stride, groups=2).shape)
    monkeypatch.setattr(threads, "CHUNK_BYTES", 1)
    xt, wt = t(x).requires_grad_(), t(weight).requires_grad_()
    y = F.conv2d(xt, wt, stride=stride, groups=2)
    y.backward(t(grad_out))
    np.testing.assert_allclose(ops.conv2d(x, weight, stride=stride, groups=2), y.detach().numpy(), atol=1e-10)
    grad_x, grad_w, _ = ops.conv2d_backward(grad_out, x, weight, stride=stride, groups=2)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(grad_w, wt.grad.numpy(), atol=1e-10)


def test_small_convolutions_take_the_lean_path_with_the_same_result(monkeypatch):
    """Small float problems skip the checks and threads; the checked path must give the same values."""
    rng = np.random.default_rng(8)
    x, weight, bias = rng.random((1, 2, 9, 8)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    kw = dict(stride=2, padding=1, dilation=1)
    lean = gemm.small_conv2d(x, weight, bias, groups=1, **kw)
    assert lean is not None and lean.dtype == x.dtype
    monkeypatch.setattr(gemm, "SMALL_MACS", 0)  # every problem now takes the checked path
    assert gemm.small_conv2d(x, weight, bias, groups=1, **kw) is None
    np.testing.assert_allclose(lean, ops.conv2d(x, weight, bias, **kw), atol=1e-12)
    np.testing.assert_allclose(lean, F.conv2d(t(x), t(weight), t(bias), **kw).numpy(), atol=1e-12)


@pytest.mark.parametrize("args", [
    dict(stride=(1, 1)), dict(padding="same"), dict(groups=2), dict(stride=True), dict(dtype=np.int64),
])
def test_the_lean_path_declines_what_it_does_not_check(args):
    x, weight = np.ones((1, 2, 5, 5)), np.ones((2, 2 // args.get("groups", 1), 3, 3))
    dtype = args.pop("dtype", None)
    if dtype is not None:
        x, weight = x.astype(dtype), weight.astype(dtype)
    kw = dict(dict(stride=1, padding=0, dilation=1, groups=1), **args)
    assert gemm.small_conv2d(x, weight, None, **kw) is None


@pytest.mark.parametrize("n, kw", [(1, dict(padding=1)), (2, dict(dilation=2)), (1, dict(padding=2, dilation=1))])
def test_small_backward_takes_the_lean_path_with_the_same_gradients(monkeypatch, n, kw):
    rng = np.random.default_rng(10)
    x, weight = rng.random((n, 2, 9, 8)), rng.standard_normal((3, 2, 3, 3))
    args = dict(dict(stride=1, padding=0, dilation=1), **kw)
    grad_out = rng.standard_normal(ops.conv2d(x, weight, **args).shape)
    lean = gemm.small_conv2d_backward(grad_out, x, weight, groups=1, **args)
    assert lean is not None
    xt, wt = t(x).requires_grad_(), t(weight).requires_grad_()
    F.conv2d(xt, wt, **args).backward(t(grad_out))
    for got, want in zip(lean, (xt.grad.numpy(), wt.grad.numpy(), grad_out.sum(axis=(0, 2, 3)))):
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert gemm.small_conv2d_backward(grad_out, x, weight, groups=1, **dict(args, stride=2)) is None
