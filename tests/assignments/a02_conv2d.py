"""Assignment 02 (conv2d) as data for the end-to-end tests: wrong students with their diagnoses.

Cells: test_conv2d_basic, test_conv2d_channels, test_conv2d_padding_stride, test_conv2d_dilation
(1 point each). The tests are in test_assignments.py.
"""

A = "02-conv2d"
CELLS = ["test_conv2d_basic", "test_conv2d_channels", "test_conv2d_padding_stride", "test_conv2d_dilation"]
POINTS = dict.fromkeys(CELLS, 1.0)


def conv2d_source(accumulate="+=", dilation="(dh, dw) = pair(dilation)", bias="out = out + bias[None, :, None, None]",
                  dtype="np.result_type(x, weight)"):
    """A student's loop-over-everything conv2d, one knob per bug."""
    return f'''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    {dilation}
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, h_out, w_out), dtype={dtype})
    for co in range(c_out):
        for ci in range(c_in):
            for i in range(h_out):
                for j in range(w_out):
                    patch = xp[:, ci, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    out[:, co, i, j] {accumulate} (patch * weight[co, ci]).sum(axis=(1, 2))
    if bias is not None:
        {bias}
    return out
'''


SUBMISSIONS = {
    "correct_loops": {"conv2d": conv2d_source()},
    "missing_channel_sum": {"conv2d": conv2d_source(accumulate="=")},
    "bias_along_width": {"conv2d": conv2d_source(bias="out = out + bias")},
    "dilation_ignored": {"conv2d": conv2d_source(dilation="(dh, dw) = (1, 1)")},
    "truncated": {"conv2d": conv2d_source(dtype="x.dtype", accumulate="= out[:, co, i, j] +")},
    "reference": {"conv2d": "import torch\n\ndef conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
                            "    t = lambda a: None if a is None else torch.from_numpy(a)\n"
                            "    return torch.nn.functional.conv2d(t(x), t(weight), t(bias), stride, padding,\n"
                            "                                      dilation).numpy()\n"},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "correct_loops": ([1, 1, 1, 1], {}),
    "missing_channel_sum": ([1, 0, 0, 0], {"test_conv2d_channels": "missing sum over input channels"}),
    "bias_along_width": ([1, 0, 0, 0], {"test_conv2d_channels": "bias not broadcast per output channel"}),
    "dilation_ignored": ([1, 1, 1, 0], {"test_conv2d_dilation": "dilation ignored"}),
    "truncated": ([0, 1, 1, 1], {"test_conv2d_basic": "integer truncation"}),
    "reference": ([0, 0, 0, 0], {"test_conv2d_basic": "torch is not available to student code while it is graded"}),
}

UNTOUCHED_TEXTS = {}
DELETE = ()  # no student deletes cells
DELETED_SCORES = None
TIMEOUT = None  # the default per-cell limit
RELATIVE = False
