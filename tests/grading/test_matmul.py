"""Checkers of assignment 06: correct im2col / conv2d_matmul pass, each known bug is named."""

import numpy as np
import pytest

from conv_course.grading.matmul import check_conv2d_matmul, check_im2col, count_student_lines


def im2col(x, kernel_size, stride=1, padding=0):
    """A correct vectorized im2col: loop over the kh*kw kernel offsets only."""
    n, c, h, w = x.shape
    kh, kw = kernel_size
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = xp[:, :, u:u + stride * ho:stride, v:v + stride * wo:stride]
    return cols.reshape(n, c * kh * kw, ho * wo)


def conv2d_matmul(x, weight, bias=None, stride=1, padding=0):
    c_out, _, kh, kw = weight.shape
    ho = (x.shape[2] + 2 * padding - kh) // stride + 1
    wo = (x.shape[3] + 2 * padding - kw) // stride + 1
    out = weight.reshape(c_out, -1) @ im2col(x, (kh, kw), stride, padding)
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(x.shape[0], c_out, ho, wo)


def im2col_loops(x, kernel_size, stride=1, padding=0):
    """Correct values, but a Python loop over every output pixel."""
    n, c, h, w = x.shape
    kh, kw = kernel_size
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    cols = np.empty((n, c * kh * kw, ho * wo))
    for i in range(ho):
        for j in range(wo):
            cols[:, :, i * wo + j] = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(n, -1)
    return cols


def im2col_row_loop(x, kernel_size, stride=1, padding=0):
    """Correct values, a Python loop over output rows (each row vectorized)."""
    n, c, h, w = x.shape
    kh, kw = kernel_size
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :ho, :wo]
    rows = [win[:, :, i].transpose(0, 1, 3, 4, 2).reshape(n, c * kh * kw, wo) for i in range(ho)]
    return np.concatenate(rows, axis=2)


def test_hand_case_is_what_the_docstring_says():
    cols = im2col(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), (2, 2))
    np.testing.assert_array_equal(cols[0], [[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]])


@pytest.mark.parametrize("group", ["basic", "stride_padding", "vectorized"])
@pytest.mark.parametrize("hidden", [False, True])
def test_correct_code_passes(group, hidden):
    check_im2col(im2col, group=group, hidden=hidden)
    check_conv2d_matmul(conv2d_matmul, group=group, hidden=hidden)


def test_loop_over_pixels_passes_values_but_fails_vectorized():
    check_im2col(im2col_loops, group="stride_padding")
    with pytest.raises(AssertionError, match="not vectorized.*loop over output pixels"):
        check_im2col(im2col_loops, group="vectorized")


def test_loop_over_rows_fails_vectorized():
    check_im2col(im2col_row_loop, group="stride_padding", hidden=True)
    with pytest.raises(AssertionError, match="not vectorized"):
        check_im2col(im2col_row_loop, group="vectorized")


def test_comprehension_and_np_vectorize_count_as_loops():
    def per_pixel(x):
        return np.array([v * 2 for v in x.ravel()])

    def vectorize(x):
        return np.vectorize(lambda v: v * 2)(x)

    for fn in (per_pixel, vectorize):
        _, small = count_student_lines(fn, np.ones((4, 4)))
        _, big = count_student_lines(fn, np.ones((16, 16)))
        assert big - small == 256 - 16


def test_conv_loop_over_pixels_fails_vectorized():
    def conv_loops(x, weight, bias=None, stride=1, padding=0):
        cols = im2col_loops(x, weight.shape[2:], stride, padding)
        ho = (x.shape[2] + 2 * padding - weight.shape[2]) // stride + 1
        out = np.einsum("ok,nkl->nol", weight.reshape(weight.shape[0], -1), cols)
        out = out if bias is None else out + bias[:, None]
        return out.reshape(x.shape[0], weight.shape[0], ho, -1)

    check_conv2d_matmul(conv_loops, group="basic")
    with pytest.raises(AssertionError, match="`conv_loops` is not vectorized"):
        check_conv2d_matmul(conv_loops, group="vectorized")


def _im2col_bug(bug):
    def wrong(x, kernel_size, stride=1, padding=0):
        kh, kw = kernel_size
        if bug == "stride":
            stride = 1
        if bug == "pad_twice":
            padding = 2 * padding
        if bug == "pad_ignored":
            padding = 0
        if bug == "pad_one_side":
            x, padding = np.pad(x, ((0, 0), (0, 0), (padding, 0), (padding, 0))), 0
        if bug == "kernel_swapped":
            kh, kw = kw, kh
        cols = im2col(x, (kh, kw), stride, padding)
        n, c = x.shape[:2]
        if bug == "transposed":
            return cols.transpose(0, 2, 1)
        if bug in ("int", "float32"):
            out = np.zeros(cols.shape, dtype=bug)
            out[...] = cols
            return out
        if bug == "rows":
            return cols.reshape(n, c, kh * kw, -1).transpose(0, 2, 1, 3).reshape(cols.shape)
        if bug == "short":  # the + 1 forgotten in H_out and W_out: the last row and column of windows missing
            ho = (x.shape[2] + 2 * padding - kh) // stride + 1
            grid = cols.reshape(n, cols.shape[1], ho, -1)
            return grid[:, :, :-1, :-1].reshape(n, cols.shape[1], -1)
        if bug == "cols":
            ho = (x.shape[2] + 2 * padding - kh) // stride + 1
            return cols.reshape(n, -1, ho, cols.shape[2] // ho).transpose(0, 1, 3, 2).reshape(cols.shape)
        return cols
    return wrong


@pytest.mark.parametrize("bug, group, message", [
    ("stride", "stride_padding", "stride ignored"),
    ("pad_twice", "stride_padding", "padding applied twice"),
    ("pad_ignored", "stride_padding", "padding ignored"),
    ("pad_one_side", "stride_padding", "padding on one side only"),
    ("kernel_swapped", "basic", "kernel height and width swapped"),
    ("transposed", "basic", "the result is transposed"),
    ("rows", "basic", r"rows are ordered \(kh, kw, C\)"),
    ("cols", "basic", "columns walk down the image first"),
    ("int", "basic", "integer truncation"),
    ("float32", "stride_padding", "the columns are float32"),
])
def test_im2col_bug_is_named(bug, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_im2col(_im2col_bug(bug), group=group)


def test_two_bugs_with_the_same_columns_are_both_named():
    # Case 5x5, 3x3 kernel, stride 2, padding 1: padding only the top and the left gives exactly the
    # windows of an output one row and one column short (the + 1 forgotten).
    for bug in ("short", "pad_one_side"):
        with pytest.raises(AssertionError) as err:
            check_im2col(_im2col_bug(bug), group="stride_padding")
        message = str(err.value)
        assert "x.shape=(1, 1, 5, 5)" in message and "Likely bug: " in message, message
        assert "output one row and one column short" in message and "padding on one side only" in message, message


def _conv_bug(bug):
    def wrong(x, weight, bias=None, stride=1, padding=0):
        c_out, c_in, kh, kw = weight.shape
        if bug == "flipped":
            weight = weight[..., ::-1, ::-1]
        if bug == "stride":
            stride = 1
        if bug == "pad_twice":
            padding = 2 * padding
        if bug == "pad_one_side":
            x, padding = np.pad(x, ((0, 0), (0, 0), (padding, 0), (padding, 0))), 0
        if bug == "first_channel":
            x, weight = x[:, :1], weight[:, :1]
        ho = (x.shape[2] + 2 * padding - kh) // stride + 1
        wo = (x.shape[3] + 2 * padding - kw) // stride + 1
        cols = im2col(x, (kh, kw), stride, padding)
        flat = weight.transpose(0, 2, 3, 1).reshape(c_out, -1) if bug == "order" else weight.reshape(c_out, -1)
        if bug == "not_transposed":
            out = cols.transpose(0, 2, 1) @ flat.T
        else:
            out = flat @ cols
        if bias is not None and bug != "bias":
            out = out + (bias if bug == "not_transposed" else bias[:, None])
        if bug == "hw":
            return out.reshape(x.shape[0], c_out, wo, ho)
        if bug == "int":
            return out.astype(int).reshape(x.shape[0], c_out, ho, wo)
        return out.reshape(x.shape[0], c_out, ho, wo)
    return wrong


@pytest.mark.parametrize("bug, group, message", [
    ("flipped", "basic", "the kernel is flipped"),
    ("order", "basic", "flattened in a different order"),
    ("not_transposed", "basic", "reshaped straight into"),
    ("hw", "basic", "height and width of the output swapped"),
    ("bias", "basic", "bias not added"),
    ("stride", "stride_padding", "stride ignored"),
    ("pad_twice", "stride_padding", "padding applied twice"),
    ("int", "basic", "integer truncation"),
    ("pad_one_side", "stride_padding", "padding on one side only"),      # conv2d's diagnoses serve here too
    ("first_channel", "basic", "missing sum over input channels"),
])
def test_conv2d_matmul_bug_is_named(bug, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_conv2d_matmul(_conv_bug(bug), group=group)


def test_calling_the_reference_is_refused():
    def cheat(x, kernel_size, stride=1, padding=0):
        from conv_course import ops
        return ops.im2col(x, kernel_size, stride, padding)

    def cheat_torch(x, kernel_size, stride=1, padding=0):
        import torch
        return torch.nn.functional.unfold(torch.from_numpy(x), kernel_size, stride=stride, padding=padding).numpy()

    for fn in (cheat, cheat_torch):
        with pytest.raises(AssertionError, match="called .* while being checked"):
            check_im2col(fn, group="basic")


def test_unfinished_stub_says_not_implemented():
    def stub(x, kernel_size, stride=1, padding=0):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_im2col(stub, group="basic")


def test_unknown_group_is_a_value_error():
    with pytest.raises(ValueError, match="group"):
        check_im2col(im2col, group="dilation")


def test_loops_over_batch_and_channels_are_allowed():
    def per_image_channel(x, kernel_size, stride=1, padding=0):
        n, c = x.shape[:2]
        parts = [[im2col(x[i:i + 1, j:j + 1], kernel_size, stride, padding) for j in range(c)] for i in range(n)]
        return np.concatenate([np.concatenate(row, axis=1) for row in parts], axis=0)

    check_im2col(per_image_channel, group="stride_padding")
    check_im2col(per_image_channel, group="vectorized")


def test_library_code_is_not_counted():
    _, small = count_student_lines(lambda a: np.pad(a, 2).sum(), np.ones((4, 4)))
    _, big = count_student_lines(lambda a: np.pad(a, 2).sum(), np.ones((64, 64)))
    assert small == big == 1   # the lambda's one line; numpy's own Python code is not the student's
