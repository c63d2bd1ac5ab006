"""Assignment 01 (corr2d) as data for the end-to-end tests: one wrong student per diagnosed bug.

Cells: test_output_size, test_corr2d_basic, test_corr2d_padding, test_corr2d_stride,
test_corr2d_edge (1 point each). All submissions are autograded in ONE nbgrader call
(tests/assignments/conftest.py); the tests are in test_assignments.py and test_01_corr2d_pipeline.py.
"""

A = "01-corr2d"
CELLS = ["test_output_size", "test_corr2d_basic", "test_corr2d_padding", "test_corr2d_stride",
         "test_corr2d_edge"]
POINTS = dict.fromkeys(CELLS, 1.0)


def corr2d_source(pad="np.pad(image, padding)", h_out="(padded.shape[0] - kh) // stride + 1",
                  w_out="(padded.shape[1] - kw) // stride + 1", extra_cols=0,
                  dtype="np.result_type(image, kernel)", step="stride", store="out[i, j]",
                  shape="(h_out, w_out + {extra})", kernel="kernel", head=""):
    """A student's corr2d written the way students write it, with one knob per bug."""
    return f'''
{head}
def corr2d(image, kernel, stride=1, padding=0):
    padded = {pad}
    kh, kw = kernel.shape
    h_out = {h_out}
    w_out = {w_out}
    out = np.zeros({shape.format(extra=extra_cols)}, dtype={dtype})
    for i in range(h_out):
        for j in range(w_out):
            patch = padded[i * {step}:i * {step} + kh, j * {step}:j * {step} + kw]
            {store} = (patch * {kernel}).sum()
    return out
'''


# Visible edge cases never have a (3, 1) kernel; the hidden ones do (asserted in test_01_corr2d_pipeline.py).
HIDDEN_ONLY = corr2d_source(head="", store="out[i, j]").replace(
    "    return out", "    if kernel.shape == (3, 1):\n        out = out + 1.0\n    return out")

INFINITE_STRIDE = '''
def corr2d(image, kernel, stride=1, padding=0):
    padded = np.pad(image, padding)
    kh, kw = kernel.shape
    h_out = (padded.shape[0] - kh) // stride + 1
    w_out = (padded.shape[1] - kw) // stride + 1
    out = np.zeros((h_out, w_out), dtype=np.result_type(image, kernel))
    i = 0
    while i < h_out:            # rows advance by 1 // stride: 0 when stride > 1
        for j in range(w_out):
            out[i, j] = (padded[i * stride:i * stride + kh, j * stride:j * stride + kw] * kernel).sum()
        i += 1 // stride
    return out
'''

SUBMISSIONS = {
    "flipped": {"corr2d": corr2d_source(kernel="kernel[::-1, ::-1]")},
    "row_short": {"corr2d": corr2d_source(h_out="(padded.shape[0] - kh) // stride")},
    "column_long": {"corr2d": corr2d_source(extra_cols=1)},
    "stride_ignored": {"corr2d": corr2d_source(h_out="padded.shape[0] - kh + 1", w_out="padded.shape[1] - kw + 1",
                                               step="1")},
    "pad_one_side": {"corr2d": corr2d_source(pad="np.pad(image, ((padding, 0), (padding, 0)))")},
    "pad_twice": {"corr2d": corr2d_source(pad="np.pad(image, 2 * padding)  # 2P in total")},
    "swapped": {"corr2d": corr2d_source(shape="(w_out, h_out)", store="out[j, i]")},
    "truncated_and_no_plus_one": {
        "corr2d": corr2d_source(dtype="image.dtype"),
        "conv_output_size": "def conv_output_size(n, kernel_size, stride=1, padding=0):\n"
                            "    return (n + 2 * padding - kernel_size) // stride\n"},
    "reference": {"corr2d": "from scipy.signal import correlate2d\n\n"
                            "def corr2d(image, kernel, stride=1, padding=0):\n"
                            "    return correlate2d(np.pad(image, padding), kernel, mode='valid')[::stride, ::stride]\n"},
    "always_float64": {"corr2d": corr2d_source(dtype="np.float64")},
    "hidden_only": {"corr2d": HIDDEN_ONLY},
    "infinite_stride": {"corr2d": INFINITE_STRIDE},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "flipped": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "the kernel is flipped"}),
    "row_short": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "output is one row short"}),
    "column_long": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "output is one column long"}),
    "stride_ignored": ([1, 1, 1, 0, 1], {"test_corr2d_stride": "stride ignored"}),
    "pad_one_side": ([1, 1, 0, 1, 1], {"test_corr2d_padding": "padding on one side only"}),
    "pad_twice": ([1, 1, 0, 1, 1], {"test_corr2d_padding": "padding applied twice"}),
    "swapped": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "height and width are swapped"}),
    "truncated_and_no_plus_one": ([0, 1, 1, 1, 0], {"test_corr2d_edge": "integer truncation",
                                                    "test_output_size": "you forgot the + 1"}),
    "reference": ([1, 0, 0, 0, 0], {"test_corr2d_basic": "scipy is not available to student code while it is graded"}),
    "always_float64": ([1, 1, 1, 1, 0], {"test_corr2d_edge": "returned dtype float64; expected float32 = "
                                                             "np.result_type(image, kernel)"}),
    "hidden_only": ([1, 1, 1, 1, 0], {}),
    "infinite_stride": ([1, 1, 1, 0, 1], {"test_corr2d_stride": "the per-cell limit"}),
}

# The untouched release: every cell 0, and this cell says why.
UNTOUCHED_TEXTS = {"test_corr2d_basic": "not implemented yet"}

# A student who deleted a test cell and an answer cell: graded, not crashed. The answer cell is gone,
# so test_output_size gets 0; the test cell test_corr2d_padding was put back and run.
DELETE = ["test_corr2d_padding", "conv_output_size"]
DELETED_SCORES = [0, 1, 1, 1, 1]

TIMEOUT = 8  # seconds per cell: infinite_stride is stopped there
RELATIVE = False  # EXPECTED scores are points
