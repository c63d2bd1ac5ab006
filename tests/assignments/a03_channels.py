"""Assignment 03 (channels) as data for the end-to-end tests: channels, 1x1, groups, parameter counts.

Cells: test_multi_in, test_multi_in_out, test_conv1x1, test_grouped_conv2d, test_conv_params
(1 point each). The tests are in test_assignments.py.
"""

A = "03-channels"
CELLS = ["test_multi_in", "test_multi_in_out", "test_conv1x1", "test_grouped_conv2d", "test_conv_params"]
POINTS = dict.fromkeys(CELLS, 1.0)

SUBMISSIONS = {
    "last_channel_only": {"corr2d_multi_in": "def corr2d_multi_in(X, K):\n"
                                             "    for x, k in zip(X, K):\n"
                                             "        out = corr2d(x, k)   # overwritten, not added\n"
                                             "    return out\n"},
    "round_robin_groups": {"grouped_conv2d": '''
def grouped_conv2d(x, weight, groups):
    per_in = x.shape[1] // groups
    out = []
    for co in range(weight.shape[0]):
        g = co % groups
        out.append(np.stack([corr2d_multi_in(img[g * per_in:(g + 1) * per_in], weight[co]) for img in x]))
    return np.stack(out, axis=1)
'''},
    "transposed_1x1_and_no_bias": {
        "conv1x1": "def conv1x1(X, K):\n    c, h, w = X.shape\n    return (K.T @ X.reshape(c, h * w)).reshape(-1, h, w)\n",
        "conv_params": "def conv_params(c_in, c_out, kernel_size, groups=1, bias=True):\n"
                       "    return c_out * (c_in // groups) * kernel_size ** 2\n"},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "last_channel_only": ([0, 0, 1, 0, 1], {"test_multi_in": "missing sum over input channels"}),
    "round_robin_groups": ([1, 1, 1, 0, 1], {"test_grouped_conv2d": "assigned to groups round-robin"}),
    "transposed_1x1_and_no_bias": ([1, 1, 0, 1, 0], {"test_conv1x1": "yours multiplied by K.T",
                                                     "test_conv_params": "bias not counted"}),
}

UNTOUCHED_TEXTS = {}
DELETE = ()  # no student deletes cells
DELETED_SCORES = None
TIMEOUT = None  # the default per-cell limit
RELATIVE = False
