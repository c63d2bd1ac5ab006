"""conv_course: the helper package of *Convolution from scratch to fine-tuning*.

Chapters, exercises and graders import from here; nothing is copied between them.
Submodules are imported on demand (``from conv_course import ops``) so that the
numpy-only parts never pay for importing torch.

Three parts: what the chapters teach (the modules on this level, with `grading/` for the
notebooks' test cells and `widgets/`), the speed engine behind `ops` (`_engine/`, private) and
the instructor's grading pipeline (`autograding/`, which no chapter imports).
"""

import os

__version__ = "0.1.0"
__all__ = ["__version__", "PACKAGE_DIR", "REPO_ROOT"]

# Every path derived from where the code lives starts from these two, never from a module's own
# __file__: a module that moves into a subpackage would otherwise silently point one folder too deep.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
"""The installed `conv_course` package folder."""
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
"""The folder that holds the package: the repository (book/, solutions/, ...) in a checkout or
an editable install; site-packages otherwise, where the repository's folders do not exist."""
