"""Assignment 07 through real nbgrader: full marks, zero, and wrong students whose bug is named.

Cells: test_numgrad_basic, test_numgrad_central, test_grad_bias, test_grad_weight, test_grad_x
(1 point each), test_grad_stride_padding (2 points). All submissions are autograded in ONE
nbgrader call. The numerical gradient and conv2d_backward are independent answers, so one
student can carry a bug in each.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.grading]

A = "07-backward"
CELLS = ["test_numgrad_basic", "test_numgrad_central", "test_grad_bias", "test_grad_weight", "test_grad_x",
         "test_grad_stride_padding"]


def numgrad_source(down="old - eps", divide="2 * eps", restore="x[i] = old"):
    return f'''
def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = {down}
        down = f(x)
        {restore}
        grad[i] = (up - down) / ({divide})
    return grad
'''


def backward_source(kernel="weight[:, :, u, v]", grad_w="grad_w[:, :, u, v] = contribution",
                    crop="grad_xp[:, :, p:p + x.shape[2], p:p + x.shape[3]]", grad_b="grad_out.sum(axis=(0, 2, 3))",
                    step="s"):
    """A student's conv2d_backward: loops over kernel offsets, one knob per bug."""
    return f'''
def conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    kh, kw = weight.shape[2:]
    h_out, w_out = grad_out.shape[2:]
    s, p = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    grad_xp = np.zeros(xp.shape)
    grad_w = np.zeros(weight.shape)
    for u in range(kh):
        for v in range(kw):
            window = xp[:, :, u:u + s * h_out:s, v:v + s * w_out:s]
            contribution = np.einsum("nohw,nchw->oc", grad_out, window)
            {grad_w}
            sl = (slice(None), slice(None), slice(u, u + {step} * h_out, {step}), slice(v, v + {step} * w_out, {step}))
            grad_xp[sl] += np.einsum("nohw,oc->nchw", grad_out, {kernel})
    return {crop}, grad_w, {grad_b}
'''


SUBMISSIONS = {
    "forward_difference_and_bias_not_summed": {
        "numerical_gradient": numgrad_source(down="old", divide="eps"),
        "conv2d_backward": backward_source(grad_b="grad_out.sum(axis=(2, 3))")},
    "not_restored_and_weight_flipped": {
        "numerical_gradient": numgrad_source(restore="pass"),
        "conv2d_backward": backward_source(grad_w="grad_w[:, :, kh - 1 - u, kw - 1 - v] = contribution")},
    "kernel_not_rotated": {"conv2d_backward": backward_source(kernel="weight[:, :, kh - 1 - u, kw - 1 - v]")},
    "padding_not_cropped": {"conv2d_backward": backward_source(crop="grad_xp")},
    "reference": {"conv2d_backward": "from conv_course.ops import conv2d_backward as _ref\n\n"
                                     "def conv2d_backward(grad_out, x, weight, stride=1, padding=0):\n"
                                     "    return _ref(grad_out, x, weight, stride, padding)\n"},
    "infinite_stride": {"conv2d_backward": backward_source().replace(
        "    kh, kw = weight.shape[2:]", "    while stride > 1:\n        pass\n    kh, kw = weight.shape[2:]")},
}

EXPECTED = {
    "forward_difference_and_bias_not_summed": (
        [1, 0, 0, 1, 1, 0], {"test_numgrad_central": "Likely bug: one-sided difference (f(x+eps) - f(x)) / eps",
                             "test_grad_bias": "Likely bug: grad_bias not summed over the batch"}),
    "not_restored_and_weight_flipped": (
        [0, 0, 1, 0, 1, 0], {"test_numgrad_basic": "Likely bug: x is not restored",
                             "test_grad_weight": "Likely bug: grad_weight is flipped"}),
    "kernel_not_rotated": ([1, 1, 1, 1, 0, 0], {"test_grad_x": "Likely bug: grad_x uses the kernel unrotated"}),
    "padding_not_cropped": ([1, 1, 1, 1, 1, 0], {"test_grad_stride_padding": "grad_x keeps the padded size"}),
    "reference": ([1, 1, 0, 0, 0, 0], {"test_grad_bias": "conv_course.ops is not available to student code while it is graded"}),
    "infinite_stride": ([1, 1, 1, 1, 1, 0], {"test_grad_stride_padding": "the per-cell limit"}),
}


@pytest.fixture(scope="module")
def graded(course_factory):
    return course_factory(A).grade_class(
        SUBMISSIONS, delete=["test_grad_x", "numerical_gradient"], timeout=8)


def test_solution_gets_full_marks(graded):
    r = graded.result("solution")
    assert r.scores == {c: (2.0 if c == "test_grad_stride_padding" else 1.0) for c in CELLS}
    assert r.max_total == 7


def test_untouched_release_gets_zero(graded):
    r = graded.result("untouched")
    assert r.total == 0 and set(r.scores) == set(CELLS)
    assert "not implemented yet" in r.text("test_grad_bias")


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_wrong_student_gets_partial_score_and_diagnosis(graded, student):
    graded.result(student).check(CELLS, *EXPECTED[student], relative=True)


def test_deleted_cells_are_restored_and_graded(graded):
    r = graded.result("deleted_cells")
    assert set(r.scores) == set(CELLS)
    assert [r.scores[c] for c in CELLS] == [0, 0, 1, 1, 1, 2]


def test_feedback_hides_hidden_tests_and_solutions(graded):
    import html as html_lib
    import re

    pages = graded.feedback()
    assert {"solution", "untouched", "kernel_not_rotated"} <= set(pages)
    solution_line = 'grad_w[:, :, u, v] = np.einsum("nohw,nchw->oc", grad_out, window)'
    for student, page in pages.items():
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", page))      # syntax highlighting splits tokens
        assert "HIDDEN TESTS" not in text and "hidden=True" not in text, student
        if student not in ("solution", "deleted_cells"):
            assert solution_line not in text, student
    assert "grad_x uses the kernel unrotated" in pages["kernel_not_rotated"]
