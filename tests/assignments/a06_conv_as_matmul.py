"""Assignment 06 (conv as matmul) as data for the end-to-end tests: wrong students whose bug is named.

Cells: test_im2col_basic, test_im2col_stride_padding, test_conv2d_matmul_basic,
test_conv2d_matmul_stride_padding, test_im2col_vectorized, test_conv2d_matmul_vectorized
(1 point each). All submissions are autograded in ONE nbgrader call (tests/assignments/conftest.py);
the tests are in test_assignments.py and test_06_conv_as_matmul_pipeline.py.
"""

A = "06-conv-as-matmul"
CELLS = ["test_im2col_basic", "test_im2col_stride_padding", "test_conv2d_matmul_basic",
         "test_conv2d_matmul_stride_padding", "test_im2col_vectorized", "test_conv2d_matmul_vectorized"]
POINTS = dict.fromkeys(CELLS, 1.0)


def im2col_source(pad="((0, 0), (0, 0), (padding, padding), (padding, padding))", step="stride", loop=None):
    """A student's im2col, vectorized over output pixels unless `loop` is "pixels" or "rows"."""
    head = f'''
def im2col(x, kernel_size, stride=1, padding=0):
    n, c, h, w = x.shape
    kh, kw = kernel_size
    xp = np.pad(x, {pad})
    h_out = (xp.shape[2] - kh) // {step} + 1
    w_out = (xp.shape[3] - kw) // {step} + 1
'''
    if loop == "pixels":
        return head + '''
    cols = np.empty((n, c * kh * kw, h_out * w_out))
    for i in range(h_out):
        for j in range(w_out):
            win = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            cols[:, :, i * w_out + j] = win.reshape(n, -1)
    return cols
'''
    return head + f'''
    cols = np.empty((n, c, kh, kw, h_out, w_out))
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = xp[:, :, u:u + {step} * h_out:{step}, v:v + {step} * w_out:{step}]
    return cols.reshape(n, c * kh * kw, h_out * w_out)
'''


def conv_source(flat="weight.reshape(c_out, -1)", bias="out + bias[:, None]", shape="(x.shape[0], c_out, h_out, w_out)",
                product="{flat} @ im2col(x, (kh, kw), stride, padding)", first=""):
    return f'''
def conv2d_matmul(x, weight, bias=None, stride=1, padding=0):
    {first}
    c_out, c_in, kh, kw = weight.shape
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    w_out = (x.shape[3] + 2 * padding - kw) // stride + 1
    out = {product.format(flat=flat)}
    if bias is not None:
        out = {bias}
    return out.reshape{shape}
'''


SUBMISSIONS = {
    "stride_ignored": {"im2col": im2col_source(step="1")},
    "pad_twice": {"im2col": im2col_source(pad="((0, 0), (0, 0), (2 * padding,) * 2, (2 * padding,) * 2)")},
    "pad_one_side": {"im2col": im2col_source(pad="((0, 0), (0, 0), (padding, 0), (padding, 0))")},
    "loop_pixels": {"im2col": im2col_source(loop="pixels")},
    "flipped": {"conv2d_matmul": conv_source(flat="weight[:, :, ::-1, ::-1].reshape(c_out, -1)")},
    "weight_order": {"conv2d_matmul": conv_source(flat="weight.transpose(0, 2, 3, 1).reshape(c_out, -1)")},
    "not_transposed": {"conv2d_matmul": conv_source(
        product="im2col(x, (kh, kw), stride, padding).transpose(0, 2, 1) @ {flat}.T", bias="out + bias")},
    "hw_swapped": {"conv2d_matmul": conv_source(shape="(x.shape[0], c_out, w_out, h_out)")},
    "reference": {"conv2d_matmul": conv_source(
        product="__import__('conv_course.ops').ops.conv2d(x, weight, None, stride, padding).reshape(x.shape[0], c_out, -1)")},
    "infinite_stride": {"conv2d_matmul": conv_source(first="while stride > 1:\n        pass")},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "stride_ignored": ([1, 0, 1, 0, 1, 1], {"test_im2col_stride_padding": "Likely bug: stride ignored"}),
    "pad_twice": ([1, 0, 1, 0, 1, 1], {"test_im2col_stride_padding": "Likely bug: padding applied twice"}),
    "pad_one_side": ([1, 0, 1, 0, 1, 1], {"test_im2col_stride_padding": "Likely bug: padding on one side only"}),
    "loop_pixels": ([1, 1, 1, 1, 0, 0], {"test_im2col_vectorized": "`im2col` is not vectorized",
                                         "test_conv2d_matmul_vectorized": "loop over output pixels"}),
    "flipped": ([1, 1, 0, 0, 1, 0], {"test_conv2d_matmul_basic": "Likely bug: the output equals the true "
                                                                 "convolution: the kernel is flipped"}),
    "weight_order": ([1, 1, 0, 0, 1, 0], {"test_conv2d_matmul_basic": "flattened in a different order"}),
    "not_transposed": ([1, 1, 0, 0, 1, 0], {"test_conv2d_matmul_basic": "reshaped straight into"}),
    "hw_swapped": ([1, 1, 0, 0, 1, 1], {"test_conv2d_matmul_basic": "height and width of the output swapped"}),
    "reference": ([1, 1, 0, 0, 1, 0], {"test_conv2d_matmul_basic": "conv_course.ops is not available to student code while it is graded"}),
    "infinite_stride": ([1, 1, 1, 0, 1, 1], {"test_conv2d_matmul_stride_padding": "the per-cell limit"}),
}

UNTOUCHED_TEXTS = {"test_im2col_basic": "not implemented yet"}

# A student who deleted a test cell and an answer cell: both are restored and graded.
DELETE = ["test_im2col_basic", "conv2d_matmul"]
DELETED_SCORES = [1, 1, 0, 0, 1, 0]

TIMEOUT = 8  # seconds per cell: infinite_stride is stopped there
RELATIVE = False
