"""conv_course._engine.winograd: F(2, 3) and F(4, 3) against the direct sum, and when ops takes this path."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from conv_course import ops
from conv_course._engine import winograd


def direct(xp, weight, bias=None):
    """The valid 3x3 cross-correlation in float64, one kernel offset at a time."""
    n, _, hp, wp = xp.shape
    out = np.zeros((n, weight.shape[0], hp - 2, wp - 2))
    for u in range(3):
        for v in range(3):
            out += np.einsum("oc,nchw->nohw", weight[:, :, u, v].astype(np.float64),
                             xp[:, :, u:u + hp - 2, v:v + wp - 2].astype(np.float64))
    return out if bias is None else out + bias[:, None, None]


@pytest.mark.parametrize("m", [2, 4])
def test_one_dimensional_identity_holds(m):
    """A^T [(G g) * (B^T d)] is the valid correlation of a tile d (length m + 2) with g (length 3)."""
    bt, g, at = (np.array(a, dtype=np.float64) for a in winograd.MATRICES[m])
    rng = np.random.default_rng(m)
    d, k = rng.standard_normal(m + 2), rng.standard_normal(3)
    want = [d[i] * k[0] + d[i + 1] * k[1] + d[i + 2] * k[2] for i in range(m)]
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, atol=1e-12)


def test_transform_weight_of_a_centre_tap_is_an_outer_product():
    """F(2, 3): G e_centre = (0, 1/2, -1/2, 0), so U[a*4 + b] = that[a] * that[b]."""
    weight = np.zeros((1, 1, 3, 3))
    weight[0, 0, 1, 1] = 1.0
    col = np.array([0, 0.5, -0.5, 0])
    np.testing.assert_allclose(winograd.transform_weight(weight, 2)[:, 0, 0], np.outer(col, col).ravel())


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 5, 6, 6), (3, 2, 13, 4)])
def test_conv3x3_equals_the_direct_sum_in_float64(m, shape):
    """Odd sizes too: tiles past the edge read zeros and are cropped."""
    rng = np.random.default_rng(0)
    xp, weight, bias = rng.standard_normal(shape), rng.standard_normal((4, shape[1], 3, 3)), rng.standard_normal(4)
    got = winograd.conv3x3(xp, weight, bias, m=m)
    assert got.shape == (shape[0], 4, shape[2] - 2, shape[3] - 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, direct(xp, weight, bias), atol=1e-12)


@pytest.mark.parametrize("m, atol", [(2, 1e-5), (4, 5e-5)])
def test_conv3x3_float32_error_stays_within_the_torch_tolerance(m, atol):
    """Images in [0, 1], He-scaled weights, 64 channels: F(4, 3) loses about a decimal digit to F(2, 3)."""
    rng = np.random.default_rng(1)
    xp = rng.random((4, 64, 30, 30), dtype=np.float32)
    weight = (rng.standard_normal((32, 64, 3, 3)) * np.sqrt(2 / (9 * 64))).astype(np.float32)
    got = winograd.conv3x3(xp, weight, m=m)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, direct(xp, weight), atol=atol, rtol=0)


def autograd(xp, weight, grad_out):
    """(grad_xp, grad_weight) of the valid 3x3 cross-correlation, by torch autograd in float64."""
    xt = torch.from_numpy(xp.astype(np.float64)).requires_grad_()
    wt = torch.from_numpy(weight.astype(np.float64)).requires_grad_()
    F.conv2d(xt, wt).backward(torch.from_numpy(grad_out.astype(np.float64)))
    return xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 5, 6, 6), (3, 2, 13, 4)])
def test_backward3x3_equals_autograd_in_float64(m, shape):
    rng = np.random.default_rng(5)
    xp, weight = rng.standard_normal(shape), rng.standard_normal((4, shape[1], 3, 3))
    grad_out = rng.standard_normal((shape[0], 4, shape[2] - 2, shape[3] - 2))
    grad_xp, grad_w = winograd.backward3x3(grad_out, xp, weight, m=m)
    want_x, want_w = autograd(xp, weight, grad_out)
    assert grad_xp.shape[2] >= shape[2] and grad_xp.shape[3] >= shape[3]
    np.testing.assert_allclose(grad_xp[:, :, :shape[2], :shape[3]], want_x, atol=1e-12)
    np.testing.assert_allclose(grad_xp[:, :, shape[2]:], 0, atol=1e-12)  # nothing spills past the input
    np.testing.assert_allclose(grad_w, want_w, atol=1e-12)


def test_backward3x3_float32_error_is_small_next_to_the_gradients():
    rng = np.random.default_rng(6)
    xp = rng.random((4, 32, 30, 30), dtype=np.float32)
    weight = (rng.standard_normal((32, 32, 3, 3)) * np.sqrt(2 / (9 * 32))).astype(np.float32)
    grad_out = rng.standard_normal((4, 32, 28, 28)).astype(np.float32)
    grad_xp, grad_w = winograd.backward3x3(grad_out, xp, weight)
    want_x, want_w = autograd(xp, weight, grad_out)
    np.testing.assert_allclose(grad_xp[:, :, :30, :30], want_x, atol=1e-4, rtol=0)
    np.testing.assert_allclose(grad_w, want_w, atol=1e-5 * np.abs(want_w).max(), rtol=0)


def test_backward3x3_does_not_depend_on_the_thread_count(monkeypatch):
    """One tile row per block: blocks share the 2 rows where their tiles overlap."""
    monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)
    rng = np.random.default_rng(7)
    xp, weight = rng.standard_normal((2, 3, 11, 10)), rng.standard_normal((4, 3, 3, 3))
    grad_out = rng.standard_normal((2, 4, 9, 8))
    with threadpool_limits(limits=2, user_api="blas"):
        grad_xp, grad_w = winograd.backward3x3(grad_out, xp, weight)
    want_x, want_w = autograd(xp, weight, grad_out)
    np.testing.assert_allclose(grad_xp[:, :, :11, :10], want_x, atol=1e-12)
    np.testing.assert_allclose(grad_w, want_w, atol=1e-12)


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((2, 0), (0, 1))])
@pytest.mark.parametrize("block_bytes", [1, 1 << 30])  # one tile row per block; whole samples
def test_conv3x3_pads_block_by_block_as_a_padded_copy_would(monkeypatch, pads, block_bytes):
    """Each block copies only its own padded rows: asymmetric pads, row bands and whole samples agree."""
    monkeypatch.setattr(winograd, "_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(5)
    x, weight, bias = rng.standard_normal((3, 2, 9, 7)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    got = winograd.conv3x3(x, weight, bias, m=4, pads=pads)
    assert got.shape == (3, 4, xp.shape[2] - 2, xp.shape[3] - 2)
    np.testing.assert_allclose(got, direct(xp, weight, bias), atol=1e-12)


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 2), (3, 0))])
@pytest.mark.parametrize("block_bytes", [1, 1 << 30])
def test_backward3x3_pads_block_by_block_as_a_padded_copy_would(monkeypatch, pads, block_bytes):
    monkeypatch.setattr(winograd, "_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(6)
    x, weight = rng.standard_normal((3, 2, 9, 7)), rng.standard_normal((4, 2, 3, 3))
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    grad_out = rng.standard_normal((3, 4, xp.shape[2] - 2, xp.shape[3] - 2))
    got_x, got_w = winograd.backward3x3(grad_out, x, weight, pads=pads)
    want_x, want_w = winograd.backward3x3(grad_out, xp, weight)
    np.testing.assert_allclose(got_x, want_x, atol=1e-12)
    np.testing.assert_allclose(got_w, want_w, atol=1e-12)
    xt = torch.from_numpy(xp).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    F.conv2d(xt, wt).backward(torch.from_numpy(grad_out))
    np.testing.assert_allclose(got_x[:, :, :xp.shape[2], :xp.shape[3]], xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(got_w, wt.grad.numpy(), atol=1e-10)


def test_conv3x3_does_not_depend_on_the_thread_count(monkeypatch):
    monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)  # one tile row per block: many blocks to share out
    rng = np.random.default_rng(2)
    xp, weight = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((5, 4, 3, 3))
    with threadpool_limits(limits=1, user_api="blas"):
        serial = winograd.conv3x3(xp, weight)
    with threadpool_limits(limits=2, user_api="blas"):
        parallel = winograd.conv3x3(xp, weight)
    np.testing.assert_allclose(parallel, serial, atol=1e-12)
    np.testing.assert_allclose(serial, direct(xp, weight), atol=1e-12)


def conv2d_calls_winograd(monkeypatch, x, weight, **kw):
    """(ops.conv2d's result, whether it called conv3x3), with the size threshold lowered to small tests."""
    monkeypatch.setattr(winograd, "MIN_MACS", 1)
    calls = []
    real = winograd.conv3x3

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(winograd, "conv3x3", spy)
    return ops.conv2d(x, weight, **kw), bool(calls)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_takes_winograd_for_3x3_stride_1_with_enough_channels(monkeypatch, dtype):
    rng = np.random.default_rng(3)
    x, weight = rng.random((2, 32, 12, 12)).astype(dtype), rng.standard_normal((32, 32, 3, 3)).astype(dtype)
    got, used = conv2d_calls_winograd(monkeypatch, x, weight, padding=1)
    assert used
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), padding=1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("kw", [dict(stride=2), dict(dilation=2), dict(groups=2)])
def test_conv2d_keeps_the_gemm_for_other_geometries(monkeypatch, kw):
    x, weight = np.ones((1, 32, 12, 12)), np.ones((32, 32 // kw.get("groups", 1), 3, 3))
    assert not conv2d_calls_winograd(monkeypatch, x, weight, **kw)[1]


def test_conv2d_of_integers_stays_exact(monkeypatch):
    """Winograd divides (G has 1/6, 1/24): integers keep the exact GEMM, even where floats would round."""
    rng = np.random.default_rng(4)
    x = rng.integers(-2**20, 2**20, (1, 32, 6, 6))
    weight = rng.integers(-2**20, 2**20, (32, 32, 3, 3))
    got, used = conv2d_calls_winograd(monkeypatch, x, weight)
    assert not used and got.dtype == np.int64
    want = sum(x[:, None, c, u:u + 4, v:v + 4] * weight[None, :, c, u, v, None, None]
               for c in range(32) for u in range(3) for v in range(3))
    np.testing.assert_array_equal(got, want)


def test_conv2d_keeps_the_gemm_for_small_problems(monkeypatch):
    """Below MIN_MACS multiply-adds the transforms cost more than the products they save."""
    x, weight = np.ones((1, 32, 12, 12)), np.ones((32, 32, 3, 3))
    calls = []
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: calls.append(1))
    ops.conv2d(x, weight)
    assert calls == []


@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_conv2d_backward_by_winograd_matches_autograd(monkeypatch, padding):
    monkeypatch.setattr(winograd, "MIN_MACS", 1)
    used = []
    real = winograd.backward3x3
    monkeypatch.setattr(winograd, "backward3x3", lambda *a, **k: used.append(1) or real(*a, **k))
    rng = np.random.default_rng(9)
    x, weight = rng.random((2, 32, 11, 10)), rng.standard_normal((32, 32, 3, 3)) / 17
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(weight).requires_grad_()
    y = F.conv2d(xt, wt, padding=padding)
    grad_out = rng.standard_normal(tuple(y.shape))
    y.backward(torch.from_numpy(grad_out))
    grad_x, grad_w, grad_b = ops.conv2d_backward(grad_out, x, weight, padding=padding)
    assert used
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(grad_w, wt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(grad_b, grad_out.sum(axis=(0, 2, 3)), atol=1e-10)


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_kernel_transform_runs_on_one_blas_thread(monkeypatch, which):
    """A multithreaded BLAS call before the thread parts leaves a BLAS thread spinning that takes a core."""
    from conv_course._engine import threads

    monkeypatch.setattr(winograd, "_BLOCK_BYTES", 1)
    seen = []
    real = winograd.transform_weight
    monkeypatch.setattr(winograd, "transform_weight", lambda *a: seen.append(threads.count()) or real(*a))
    rng = np.random.default_rng(11)
    xp, weight = rng.standard_normal((4, 3, 10, 10)), rng.standard_normal((2, 3, 3, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        if which == "forward":
            winograd.conv3x3(xp, weight)
        else:
            winograd.backward3x3(rng.standard_normal((4, 2, 8, 8)), xp, weight)
    assert seen and set(seen) == {1}
