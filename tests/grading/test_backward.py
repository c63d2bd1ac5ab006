"""Checkers of assignment 07: correct gradients pass, each known bug is named."""

import numpy as np
import pytest
import torch

from conv_course.grading.backward import check_conv2d_backward, check_numerical_gradient


def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def _windows(xp, kh, kw, stride, ho, wo):
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return win[:, :, ::stride, ::stride][:, :, :ho, :wo]          # (N, C_in, H_out, W_out, kh, kw)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    """Correct, written independently of conv_course.ops: windows for grad_weight, scatter for grad_x."""
    kh, kw = weight.shape[2:]
    ho, wo = grad_out.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    grad_w = np.einsum("nohw,nchwij->ocij", grad_out, _windows(xp, kh, kw, stride, ho, wo))
    grad_xp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += np.einsum(
                "nohw,oc->nchw", grad_out, weight[:, :, i, j])
    grad_x = grad_xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


def test_reference_solution_matches_torch_autograd():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, bt, stride=2, padding=1)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    for mine, theirs in zip(conv2d_backward(g, x, w, 2, 1), (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), atol=1e-10)


@pytest.mark.parametrize("group", ["bias", "weight", "input", "stride_padding"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_conv2d_backward_passes(group, hidden):
    check_conv2d_backward(conv2d_backward, group=group, hidden=hidden)


@pytest.mark.parametrize("group", ["basic", "central"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_numerical_gradient_passes(group, hidden):
    check_numerical_gradient(numerical_gradient, group=group, hidden=hidden)


def _grad_bug(bug):
    def wrong(grad_out, x, weight, stride=1, padding=0):
        if bug == "unflipped_x":
            gx = conv2d_backward(grad_out, x, weight[..., ::-1, ::-1], stride, padding)[0]
            return gx, *conv2d_backward(grad_out, x, weight, stride, padding)[1:]
        if bug == "crop":
            xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            gx, gw, gb = conv2d_backward(grad_out, xp, weight, stride, 0)
            return gx, gw, gb
        if bug == "stride":
            gx, gw, gb = conv2d_backward(grad_out, x, weight, stride, padding)
            n, c = x.shape[:2]
            ho, wo = grad_out.shape[2:]
            kh, kw = weight.shape[2:]
            small = np.zeros((n, c, ho + kh - 1 - 2 * padding, wo + kw - 1 - 2 * padding))
            return conv2d_backward(grad_out, small, weight, 1, padding)[0], gw, gb
        gx, gw, gb = conv2d_backward(grad_out, x, weight, stride, padding)
        if bug == "flipped_w":
            gw = gw[..., ::-1, ::-1]
        if bug == "mean_w":
            gw = gw / x.shape[0]
        if bug == "first_w":
            gw = conv2d_backward(grad_out[:1], x[:1], weight, stride, padding)[1]
        if bug == "bias_batch":
            gb = grad_out.sum(axis=(2, 3))
        if bug == "bias_mean":
            gb = grad_out.mean(axis=(0, 2, 3))
        return gx, gw, gb
    return wrong


@pytest.mark.parametrize("bug, group, message", [
    ("unflipped_x", "input", "kernel unrotated"),
    ("crop", "stride_padding", "keeps the padded size"),
    ("stride", "stride_padding", "stride ignored in grad_x"),
    ("flipped_w", "weight", "grad_weight is flipped"),
    ("mean_w", "weight", "averaged over the batch"),
    ("first_w", "weight", "only the first image"),
    ("bias_batch", "bias", "not summed over the batch"),
    ("bias_mean", "bias", "grad_bias averaged"),
])
def test_gradient_bug_is_named(bug, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_conv2d_backward(_grad_bug(bug), group=group)


def test_each_group_checks_only_its_gradient():
    check_conv2d_backward(_grad_bug("flipped_w"), group="bias")
    check_conv2d_backward(_grad_bug("flipped_w"), group="input")
    with pytest.raises(AssertionError, match="grad_weight"):
        check_conv2d_backward(_grad_bug("flipped_w"), group="stride_padding")


def test_wrong_return_type_is_explained():
    with pytest.raises(AssertionError, match="must return a tuple"):
        check_conv2d_backward(lambda g, x, w, stride=1, padding=0: g, group="bias")


def test_calling_torch_grad_is_refused():
    def cheat(grad_out, x, weight, stride=1, padding=0):
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(weight, requires_grad=True)
        torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding).backward(torch.tensor(grad_out))
        return xt.grad.numpy(), wt.grad.numpy(), grad_out.sum(axis=(0, 2, 3))

    with pytest.raises(AssertionError, match="while being checked"):
        check_conv2d_backward(cheat, group="weight")


def _numgrad_bug(bug):
    def wrong(f, x, eps=1e-6):
        grad = np.zeros_like(x)
        if bug == "all":
            return np.full(x.shape, (f(x + eps) - f(x - eps)) / (2 * eps))
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            up = f(x)
            x[i] = old if bug == "forward" else old - eps
            down = f(x)
            if bug != "restore":
                x[i] = old
            grad[i] = (up - down) / (eps if bug == "forward" else 2 * eps)
        return grad
    return wrong


@pytest.mark.parametrize("bug, group, message", [
    ("forward", "central", r"one-sided difference \(f\(x\+eps\) - f\(x\)\)"),
    ("restore", "basic", "x is not restored"),
    ("all", "basic", "perturbed every entry at once"),
])
def test_numerical_gradient_bug_is_named(bug, group, message):
    with pytest.raises(AssertionError, match=message):
        check_numerical_gradient(_numgrad_bug(bug), group=group)


def test_numerical_gradient_stub_says_not_implemented():
    def stub(f, x, eps=1e-6):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_numerical_gradient(stub, group="basic")
