"""Assignment 07 (backward) as data for the end-to-end tests: wrong students whose bug is named.

Cells: test_numgrad_basic, test_numgrad_central, test_grad_bias, test_grad_weight, test_grad_x
(1 point each), test_grad_stride_padding (2 points). All submissions are autograded in ONE
nbgrader call (tests/assignments/conftest.py). The numerical gradient and conv2d_backward are
independent answers, so one student can carry a bug in each. The tests are in test_assignments.py
and test_07_backward_pipeline.py.
"""

A = "07-backward"
CELLS = ["test_numgrad_basic", "test_numgrad_central", "test_grad_bias", "test_grad_weight", "test_grad_x",
         "test_grad_stride_padding"]
POINTS = {"test_numgrad_basic": 1.0, "test_numgrad_central": 1.0, "test_grad_bias": 1.0, "test_grad_weight": 1.0,
          "test_grad_x": 1.0, "test_grad_stride_padding": 2.0}


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

# student -> (expected fraction of each cell's points in CELLS order, {cell: text expected in its output})
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

UNTOUCHED_TEXTS = {"test_grad_bias": "not implemented yet"}

# A student who deleted a test cell and an answer cell: both are restored and graded (points, not fractions).
DELETE = ["test_grad_x", "numerical_gradient"]
DELETED_SCORES = [0, 0, 1, 1, 1, 2]

TIMEOUT = 8  # seconds per cell: infinite_stride is stopped there
RELATIVE = True  # EXPECTED scores are fractions of each cell's points
