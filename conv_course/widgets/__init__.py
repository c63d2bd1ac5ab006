"""Interactive widgets of the course (anywidget on ipywidgets 8).

Each widget's JavaScript lives in one file next to its Python class; the static book runs the
same file, computing without a kernel. `KernelExplorer` drags a kernel over an image (chapter 4);
`ConvArithmeticExplorer` steps a window through padding, stride, dilation and the transposed case
(chapter 2).
"""

from .conv_arithmetic import ConvArithmeticExplorer
from .kernel_explorer import KernelExplorer

__all__ = ["ConvArithmeticExplorer", "KernelExplorer"]
