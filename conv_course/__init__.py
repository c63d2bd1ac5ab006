"""conv_course: the helper package of *Convolution from scratch to fine-tuning*.

Chapters, exercises and graders import from here; nothing is copied between them.
Submodules are imported on demand (``from conv_course import ops``) so that the
numpy-only parts never pay for importing torch.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
