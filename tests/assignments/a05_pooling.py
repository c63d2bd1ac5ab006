"""Assignment 05 (pooling) as data for the end-to-end tests: max and average pooling with torch semantics.

Cells: test_max_pool2d_basic, test_max_pool2d_stride_padding, test_avg_pool2d_basic,
test_avg_pool2d_stride_padding (1 point each). The tests are in test_assignments.py.
"""

A = "05-pooling"
CELLS = ["test_max_pool2d_basic", "test_max_pool2d_stride_padding", "test_avg_pool2d_basic",
         "test_avg_pool2d_stride_padding"]
POINTS = dict.fromkeys(CELLS, 1.0)


def pool_source(name, reduce, fill="0.0", default_stride="kernel_size", divide=""):
    return f'''
def {name}(x, kernel_size, stride=None, padding=0):
    kh, kw = pair(kernel_size)
    sh, sw = pair({default_stride} if stride is None else stride)
    ph, pw = pair(padding)
    xp = np.pad(x.astype(float), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values={fill})
    h_out, w_out = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            window = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = window.{reduce}(axis=(2, 3)){divide}
    return out
'''


EXCLUDE_PAD = '''
def avg_pool2d(x, kernel_size, stride=None, padding=0):
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    xp = np.pad(x.astype(float), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    real = np.pad(np.ones(x.shape[2:]), ((ph, ph), (pw, pw)))   # 1 where a pixel is real
    h_out, w_out = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            out[:, :, i, j] = xp[:, :, rows, cols].sum(axis=(2, 3)) / real[rows, cols].sum()
    return out
'''

SUBMISSIONS = {
    "zero_pad_max_and_summed_avg": {"max_pool2d": pool_source("max_pool2d", "max"),
                                    "avg_pool2d": pool_source("avg_pool2d", "sum")},
    "stride_one_default": {"max_pool2d": pool_source("max_pool2d", "max", "-np.inf", default_stride="1")},
    "excluded_padding": {"avg_pool2d": EXCLUDE_PAD},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "zero_pad_max_and_summed_avg": ([1, 0, 0, 0], {"test_max_pool2d_stride_padding": "padded with zeros",
                                                   "test_avg_pool2d_basic": "you summed each window"}),
    "stride_one_default": ([0, 1, 1, 1], {"test_max_pool2d_basic": "stride=None must mean stride = kernel_size"}),
    "excluded_padding": ([1, 1, 1, 0], {"test_avg_pool2d_stride_padding": "counts the padded zeros too"}),
}

UNTOUCHED_TEXTS = {}
DELETE = ()  # no student deletes cells
DELETED_SCORES = None
TIMEOUT = None  # the default per-cell limit
RELATIVE = False
