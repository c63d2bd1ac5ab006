"""Assignment 06 through real nbgrader: full marks, zero, and wrong students whose bug is named.

Cells: test_im2col_basic, test_im2col_stride_padding, test_conv2d_matmul_basic,
test_conv2d_matmul_stride_padding, test_im2col_vectorized, test_conv2d_matmul_vectorized
(1 point each). All submissions are autograded in ONE nbgrader call.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.grading]

A = "06-conv-as-matmul"
CELLS = ["test_im2col_basic", "test_im2col_stride_padding", "test_conv2d_matmul_basic",
         "test_conv2d_matmul_stride_padding", "test_im2col_vectorized", "test_conv2d_matmul_vectorized"]


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


@pytest.fixture(scope="module")
def graded(course_factory):
    return course_factory(A).grade_class(
        SUBMISSIONS, delete=["test_im2col_basic", "conv2d_matmul"], timeout=8)


def test_solution_gets_full_marks(graded):
    r = graded.result("solution")
    assert r.scores == dict.fromkeys(CELLS, 1.0)
    assert r.max_total == 6


def test_untouched_release_gets_zero(graded):
    r = graded.result("untouched")
    assert r.total == 0 and set(r.scores) == set(CELLS)
    assert "not implemented yet" in r.text("test_im2col_basic")


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_wrong_student_gets_partial_score_and_diagnosis(graded, student):
    graded.result(student).check(CELLS, *EXPECTED[student])


def test_deleted_cells_are_restored_and_graded(graded):
    r = graded.result("deleted_cells")
    assert set(r.scores) == set(CELLS)
    assert [r.scores[c] for c in CELLS] == [1, 1, 0, 0, 1, 0]


def test_hidden_tests_are_not_in_the_release(graded):
    text = "\n".join(c.source for c in graded.release().cells)
    assert "hidden=True" not in text and "BEGIN SOLUTION" not in text and "cols.reshape(n, c * kh * kw" not in text
