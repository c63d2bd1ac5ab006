"""conv_course.ops by hand: tiny cases written as arithmetic, dtypes, and every documented error."""

import re

import numpy as np
import pytest

from conv_course import ops

X3 = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
K2 = np.array([[0, 1], [2, 3]])


def test_corr2d_3x3_image_2x2_kernel_by_hand():
    want = [[0 * 0 + 1 * 1 + 3 * 2 + 4 * 3, 1 * 0 + 2 * 1 + 4 * 2 + 5 * 3],
            [3 * 0 + 4 * 1 + 6 * 2 + 7 * 3, 4 * 0 + 5 * 1 + 7 * 2 + 8 * 3]]
    got = ops.corr2d(X3, K2)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_corr2d_does_not_flip_the_kernel():
    np.testing.assert_array_equal(ops.corr2d(X3, np.array([[1, 0], [0, 0]])), [[0, 1], [3, 4]])


def test_corr2d_padding_and_stride_by_hand():
    # padded image has a zero border; stride 2 keeps windows starting at rows/cols 0 and 2
    want = [[0 * 0 + 0 * 1 + 0 * 2 + 0 * 3, 0 * 0 + 0 * 1 + 1 * 2 + 2 * 3],
            [0 * 0 + 3 * 1 + 0 * 2 + 6 * 3, 4 * 0 + 5 * 1 + 7 * 2 + 8 * 3]]
    np.testing.assert_array_equal(ops.corr2d(X3, K2, stride=2, padding=1), want)


def test_valid_3x3_input_with_3x3_kernel_gives_one_value():
    # the seed article printed a 3x3 output here; a valid correlation has exactly one position
    assert ops.corr2d(np.ones((3, 3)), np.ones((3, 3))).tolist() == [[9.0]]


def test_conv2d_sums_channels_and_adds_bias_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]])
    weight = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]])
    got = ops.conv2d(x, weight, np.array([0.5]))
    assert got.shape == (1, 1, 1, 1)
    assert got.item() == (1 + 4) + (6 + 7) + 0.5


def test_conv2d_naive_hand_case_with_groups():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    weight = np.array([[[[1.0]]], [[[10.0]]]])  # group 0 scales channel 0 by 1, group 1 channel 1 by 10
    got = ops.conv2d_naive(x, weight, groups=2)
    np.testing.assert_array_equal(got, [[[[0, 1], [2, 3]], [[40, 50], [60, 70]]]])


def test_conv2d_backward_of_1x1_kernel_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    grad_out = np.array([[[[1.0, -1.0], [2.0, 0.5]]]])
    grad_x, grad_w, grad_b = ops.conv2d_backward(grad_out, x, np.array([[[[3.0]]]]))
    np.testing.assert_array_equal(grad_x, 3.0 * grad_out)
    assert grad_w.item() == 1 * 1 + 2 * -1 + 3 * 2 + 4 * 0.5
    assert grad_b.tolist() == [1 - 1 + 2 + 0.5]


def test_conv_transpose2d_stamps_the_kernel_by_hand():
    x = np.array([[[[2.0, 1.0]]]])  # one row, two pixels, stride 2: two non-overlapping stamps
    got = ops.conv_transpose2d(x, np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), stride=2)
    np.testing.assert_array_equal(got, [[[[2 * 1, 2 * 2, 1 * 1, 1 * 2], [2 * 3, 2 * 4, 1 * 3, 1 * 4]]]])


def test_max_pool2d_pads_with_minus_infinity():
    x = -np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(ops.max_pool2d(x, 3, stride=1, padding=1), -np.ones((1, 1, 2, 2)))


def test_avg_pool2d_counts_padding_in_the_divisor():
    x = np.ones((1, 1, 2, 2))  # every 3x3 window of the zero-padded 4x4 image holds the four ones
    np.testing.assert_allclose(ops.avg_pool2d(x, 3, stride=1, padding=1), np.full((1, 1, 2, 2), 4 / 9))


def test_integer_inputs_are_computed_exactly():
    big = 2**53  # float64 cannot hold 2**53 + 1
    x = (big + np.arange(4, dtype=np.int64)).reshape(1, 1, 2, 2)
    got = ops.conv2d(x, np.ones((1, 1, 2, 2), dtype=np.int64), np.array([1]))
    assert got.dtype == np.int64
    assert int(got.item()) == 4 * big + (0 + 1 + 2 + 3) + 1
    grad_x, grad_w, _ = ops.conv2d_backward(np.ones((1, 1, 1, 1), dtype=np.int64), x, np.ones((1, 1, 2, 2), np.int64))
    assert [int(v) for v in grad_w.ravel()] == [big, big + 1, big + 2, big + 3]
    assert int(ops.conv1d(x[:, :, 0], np.array([[[1, -1]]])).item()) == big - (big + 1)
    assert int(ops.max_pool2d(x, 2).item()) == big + 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_dtype_is_preserved(dtype):
    x, weight = np.ones((1, 2, 4, 4), dtype), np.ones((3, 2, 3, 3), dtype)
    assert ops.conv2d(x, weight).dtype == dtype
    assert ops.conv2d_naive(x, weight).dtype == dtype
    assert all(g.dtype == dtype for g in ops.conv2d_backward(np.ones((1, 3, 2, 2), dtype), x, weight))
    assert ops.conv_transpose2d(x, np.ones((2, 1, 2, 2), dtype)).dtype == dtype
    assert ops.avg_pool2d(x, 2).dtype == dtype and ops.max_pool2d(x, 2).dtype == dtype


def _all_ops(bad):
    good4, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    cols = np.concatenate([bad.reshape(1, 4, 4)] * 3, axis=2)[:, :, :9]  # (N, C*kh*kw, H_out*W_out)
    cols.flags.writeable = bad.flags.writeable
    return {
        "corr2d": lambda: ops.corr2d(bad[0, 0], w[0, 0]),
        "conv2d_naive": lambda: ops.conv2d_naive(bad, w),
        "conv2d": lambda: ops.conv2d(bad, w),
        "conv2d_backward": lambda: ops.conv2d_backward(np.ones((1, 1, 3, 3)), bad, w),
        "conv_transpose2d": lambda: ops.conv_transpose2d(bad, w),
        "conv1d": lambda: ops.conv1d(bad[:, :, 0], w[:, :, 0]),
        "im2col": lambda: ops.im2col(bad, 2),
        "col2im": lambda: ops.col2im(cols, (1, 1, 4, 4), 2),
        "max_pool2d": lambda: ops.max_pool2d(bad, 2),
        "avg_pool2d": lambda: ops.avg_pool2d(bad, 2),
        "weight": lambda: ops.conv2d(good4, w.astype(bad.dtype)),
    }


@pytest.mark.parametrize("dtype", [bool, np.complex128, object, "U1"])
@pytest.mark.parametrize("op", list(_all_ops(np.ones((1, 1, 4, 4)))))
def test_non_numeric_dtypes_raise_type_error(dtype, op):
    bad = np.ones((1, 1, 4, 4)).astype(dtype) if dtype != "U1" else np.full((1, 1, 4, 4), "a")
    with pytest.raises(TypeError, match=r"`\w+` must hold integers or floats; got dtype"):
        _all_ops(bad)[op]()


@pytest.mark.parametrize("op", [op for op in _all_ops(np.ones((1, 1, 4, 4))) if op != "weight"])
def test_no_op_writes_into_its_arguments(op):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x.flags.writeable = False  # any write would raise
    _all_ops(x)[op]()
    np.testing.assert_array_equal(x, np.arange(16.0).reshape(1, 1, 4, 4))


def raises(exc, fn, *parts):
    """Call fn, expect `exc`, and check that every part (escaped literally) appears in the message."""
    with pytest.raises(exc) as info:
        fn()
    for part in parts:
        assert re.search(re.escape(part), str(info.value)), f"{part!r} not in {info.value}"
    return str(info.value)


def test_wrong_ndim_names_argument_and_both_shapes():
    raises(ValueError, lambda: ops.conv2d(np.ones((28, 28)), np.ones((1, 1, 3, 3))),
           "conv2d", "`x`", "(N, C_in, H, W)", "(28, 28)")
    raises(ValueError, lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((3, 3))),
           "`weight`", "(C_out, C_in // groups, kh, kw)", "(3, 3)")
    raises(ValueError, lambda: ops.corr2d(np.ones((1, 5, 5)), np.ones((3, 3))), "`image`", "(H, W)", "(1, 5, 5)")
    raises(ValueError, lambda: ops.conv1d(np.ones((1, 5)), np.ones((1, 1, 3))), "`x`", "(N, C_in, L)", "(1, 5)")


def test_channel_mismatch_names_both_shapes():
    raises(ValueError, lambda: ops.conv2d(np.ones((2, 1, 28, 28)), np.ones((8, 3, 3, 3))),
           "conv2d: `x` must have shape (N, 3, H, W) to match `weight` (8, 3, 3, 3) with groups=1; "
           "got (2, 1, 28, 28)")
    raises(ValueError, lambda: ops.conv_transpose2d(np.ones((1, 2, 4, 4)), np.ones((3, 1, 2, 2))),
           "conv_transpose2d", "`x`", "(N, 3, H, W)", "(3, 1, 2, 2)", "(1, 2, 4, 4)")


def test_groups_not_dividing_channels_names_both_shapes():
    raises(ValueError, lambda: ops.conv2d(np.ones((1, 4, 5, 5)), np.ones((5, 2, 3, 3)), groups=2),
           "`weight`", "groups=2", "(4, 2, 3, 3)", "got (5, 2, 3, 3)")
    raises(ValueError, lambda: ops.conv2d(np.ones((1, 4, 5, 5)), np.ones((6, 2, 3, 3)), groups=3),
           "`x`", "(N, 6, H, W)", "groups=3", "got (1, 4, 5, 5)")
    raises(ValueError, lambda: ops.conv_transpose2d(np.ones((1, 4, 3, 3)), np.ones((4, 1, 2, 2)), groups=3),
           "`weight`", "(C_in, 1, 2, 2)", "groups=3", "got (4, 1, 2, 2)")


def test_output_size_below_one_names_padded_input_and_dilated_kernel():
    raises(ValueError, lambda: ops.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), padding=1, dilation=2),
           "output size 0x0 < 1", "padded input 4x4", "dilated kernel 5x5", "(1, 1, 2, 2)", "(1, 1, 3, 3)")
    raises(ValueError, lambda: ops.corr2d(np.ones((2, 4)), np.ones((3, 3))),
           "corr2d", "padded input 2x4", "dilated kernel 3x3", "`image` (2, 4)", "`kernel` (3, 3)")
    raises(ValueError, lambda: ops.max_pool2d(np.ones((1, 1, 2, 2)), 3), "padded input 2x2", "dilated kernel 3x3")
    raises(ValueError, lambda: ops.conv_output_size(2, 5), "padded input 2", "dilated kernel 5")
    raises(ValueError, lambda: ops.conv_transpose2d(np.ones((1, 1, 1, 1)), np.ones((1, 1, 2, 2)), padding=1),
           "output size 0x0 < 1", "full output 2x2", "(1, 1, 1, 1)", "(1, 1, 2, 2)")


def test_bias_shape_names_both_shapes():
    raises(ValueError, lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3)),
           "`bias` must have shape (2,)", "(2, 1, 3, 3)", "got (3,)")
    raises(ValueError, lambda: ops.conv_transpose2d(np.ones((1, 2, 3, 3)), np.ones((2, 3, 3, 3)), np.ones(2)),
           "`bias` must have shape (3,)", "got (2,)")


def test_grad_out_shape_names_both_shapes():
    raises(ValueError, lambda: ops.conv2d_backward(np.ones((1, 2, 4, 4)), np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3))),
           "`grad_out` must have shape (1, 2, 3, 3)", "got (1, 2, 4, 4)")


def test_col2im_cols_shape_names_both_shapes():
    raises(ValueError, lambda: ops.col2im(np.ones((1, 4, 8)), (1, 1, 4, 4), 2), "`cols`", "(1, 4, 9)", "(1, 4, 8)")


@pytest.mark.parametrize("call, parts", [
    (lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same"), ["'same'", "stride"]),
    (lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), ["`stride`", "0"]),
    (lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1), ["`padding`", "-1"]),
    (lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full"), ["`padding`", "'full'"]),
    (lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), groups=0), ["`groups`", "0"]),
    (lambda: ops.max_pool2d(np.ones((1, 1, 5, 5)), 2, padding=2), ["`padding`", "half", "(2, 2)"]),
    (lambda: ops.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), output_padding=1),
     ["`output_padding`", "stride"]),
])
def test_bad_hyperparameters_raise_value_error(call, parts):
    raises(ValueError, call, *parts)


@pytest.mark.parametrize("value", [True, 1.5, (1, 2, 3), "2"])
def test_stride_of_wrong_type_raises_type_error(value):
    raises(TypeError, lambda: ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=value),
           "`stride`", repr(value))
