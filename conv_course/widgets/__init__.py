"""Interactive widgets of the course (anywidget on ipywidgets 8).

`KernelExplorer` lets readers drag a kernel over an image and watch the convolution. Its
JavaScript lives in one file next to the Python class; the static book runs the same file.
"""

from .kernel_explorer import KernelExplorer

__all__ = ["KernelExplorer"]
