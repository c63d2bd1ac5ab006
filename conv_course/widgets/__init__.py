"""Interactive widgets of the course (anywidget on ipywidgets 8), one per chapter that needs one.

Each widget's JavaScript lives in one file next to its Python class; the static book runs the
same file, computing without a kernel:

* `ConvArithmeticExplorer` steps a window through padding, stride, dilation and the transposed
  case (chapter 2);
* `ChannelsExplorer` adds the per-channel correlations of an RGB photo into one output channel
  (chapter 3);
* `KernelExplorer` drags a kernel over an image (chapter 4);
* `ReceptiveFieldExplorer` shows what one unit of a conv/pool stack sees, and what one pixel
  reaches (chapter 5);
* `BackpropStampExplorer` shows where one output gradient lands on grad_x and grad_weight
  (chapter 7);
* `NetworkExplorer` runs a trained network on a digit you draw and shows every feature map
  (chapter 8).
"""

from .backprop_stamp import BackpropStampExplorer
from .channels import ChannelsExplorer
from .conv_arithmetic import ConvArithmeticExplorer
from .kernel_explorer import KernelExplorer
from .network_explorer import NetworkExplorer
from .receptive_field import ReceptiveFieldExplorer

__all__ = ["BackpropStampExplorer", "ChannelsExplorer", "ConvArithmeticExplorer", "KernelExplorer",
           "NetworkExplorer", "ReceptiveFieldExplorer"]
