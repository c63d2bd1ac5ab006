"""Assignment 04 (student kernels) as data for the end-to-end tests: kernels are graded by behaviour,
so different designs pass.

Cells: test_vertical_edge, test_blur, test_sharpen, test_diagonal (1 point each). The tests are in
test_assignments.py.
"""

A = "04-student-kernels"
CELLS = ["test_vertical_edge", "test_blur", "test_sharpen", "test_diagonal"]
POINTS = dict.fromkeys(CELLS, 1.0)

SUBMISSIONS = {
    # Other designs than the solution's: Prewitt 5x5, Gaussian 5x5, unsharp mask, a 3x3 diagonal.
    "other_designs": {
        "vertical_edge": "vertical_edge = np.array([[1, 1, 0, -1, -1]] * 5)",
        "blur": "g = np.exp(-np.arange(-2, 3) ** 2 / 2)\nblur = np.outer(g, g) / np.outer(g, g).sum()",
        "sharpen": "sharpen = 2 * np.pad(np.ones((1, 1)), 1) - np.ones((3, 3)) / 9",
        "diagonal": "diagonal = np.eye(3) - 1 / 3"},
    "horizontal_edge_and_unnormalised_blur": {
        "vertical_edge": "vertical_edge = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])",
        "blur": "blur = np.ones((3, 3))"},
    "laplacian_and_antidiagonal": {
        "sharpen": "sharpen = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])",
        "diagonal": "diagonal = np.fliplr(2 * np.eye(5) - 0.4)"},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "other_designs": ([1, 1, 1, 1], {}),
    "horizontal_edge_and_unnormalised_blur": ([0, 0, 1, 1], {
        "test_vertical_edge": "your kernel detects horizontal edges",
        "test_blur": "divide the kernel by its sum"}),
    "laplacian_and_antidiagonal": ([1, 1, 0, 0], {
        "test_sharpen": "that is an edge detector, not a sharpener",
        "test_diagonal": "finds the other diagonal"}),
}

UNTOUCHED_TEXTS = {}
DELETE = ()  # no student deletes cells
DELETED_SCORES = None
TIMEOUT = None  # the default per-cell limit
RELATIVE = False
